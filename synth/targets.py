"""Synthesis targets: the Yosys script, the device and its capacity for each one.

``generic``
    Yosys's internal gate library (``synth -flatten``) plus a CMOS gate mapping priced
    by ``stat -tech cmos``: cells and transistor estimates, no place and route.
``ice40``
    ``synth_ice40`` for the iCE40 HX8K (ct256 package), the largest iCE40: 7,680 logic
    cells, no DSP blocks (multipliers are built from LUTs). Placed with
    ``nextpnr-ice40``, which has no out-of-context mode: every top-level port bit needs
    a pin, so a design with more port bits than the package's I/O does not fit.
``up5k``
    ``synth_ice40 -dsp`` for the iCE40 UP5K (sg48): 5,280 logic cells, eight SB_MAC16
    DSP blocks, 30 block RAMs and 39 pins. No design of the report has so few port
    bits, so it is sized, not placed: :func:`synth.area.largest_fitting` finds the
    largest array whose logic, DSPs and block RAMs fit (its bus ports would reach an
    SoC on the same chip, not pins).
``ecp5``
    ``synth_ecp5`` for the ECP5 LFE5U-85F (CABGA381): 83,640 LUT4s and flip-flops,
    156 MULT18X18D multipliers. Placed with ``nextpnr-ecp5``; a design with more port
    bits than the package's I/O is placed out of context (``--out-of-context``: no I/O
    buffers, the clock on fabric routing, so its Fmax is a little pessimistic).
"""

from dataclasses import dataclass, field

__all__ = ["Target", "TARGETS"]


@dataclass(frozen=True)
class Target:
    """One synthesis target.

    Attributes
    ----------
    name : str
        Target name (``generic``, ``ice40``, ``ecp5``).
    script : str
        File name of the Yosys script template in ``synth/``.
    device : str
        Human-readable device the numbers refer to (empty for ``generic``).
    nextpnr : str or None
        ``ice40`` or ``ecp5``: which nextpnr places it; None for no place and route.
    nextpnr_args : tuple of str
        Device arguments passed to nextpnr.
    capacity : dict
        Resources of the device: ``luts``, ``ffs``, ``dsps``, ``io``.
    freq_mhz : float
        Clock constraint given to nextpnr; set above any reachable Fmax so that
        timing-driven placement keeps pushing (the achieved Fmax is reported).
    """

    name: str
    script: str
    device: str = ""
    nextpnr: str | None = None
    nextpnr_args: tuple = ()
    capacity: dict = field(default_factory=dict)
    freq_mhz: float = 0.0


TARGETS = {
    "generic": Target(name="generic", script="generic.ys"),
    "ice40": Target(
        name="ice40", script="ice40.ys", device="iCE40 HX8K ct256",
        nextpnr="ice40", nextpnr_args=("--hx8k", "--package", "ct256"),
        capacity={"luts": 7680, "ffs": 7680, "dsps": 0, "io": 206}, freq_mhz=200.0),
    "up5k": Target(
        name="up5k", script="up5k.ys", device="iCE40 UP5K sg48",
        nextpnr="ice40", nextpnr_args=("--up5k", "--package", "sg48"),
        capacity={"luts": 5280, "ffs": 5280, "dsps": 8, "io": 39}, freq_mhz=100.0),
    "ecp5": Target(
        name="ecp5", script="ecp5.ys", device="ECP5 LFE5U-85F CABGA381",
        nextpnr="ecp5", nextpnr_args=("--85k", "--package", "CABGA381"),
        capacity={"luts": 83640, "ffs": 83640, "dsps": 156, "io": 365}, freq_mhz=300.0),
}

"""The designs the area report compares, and what each one is measured against."""

from dataclasses import dataclass

__all__ = ["Design", "DESIGNS", "DEFAULT_K_DEPTH", "expand"]

#: Default operand-buffer depth (largest K of a tile) of the accelerators in the area
#: report; ``neuroharden area --k-depth`` changes it.
DEFAULT_K_DEPTH = 64


@dataclass(frozen=True)
class Design:
    """One design of the area report.

    Attributes
    ----------
    name : str
        Report name.
    kind : str
        Block kind passed to :func:`hw.verilog.generate`.
    reference : str or None
        Unprotected baseline the overhead is computed against (None for a baseline).
    also_vs_array : bool
        Report the overhead against the whole array too (per-neuron units: LCU, voter).
    sized : bool
        Uses ``rows`` x ``cols``.
    protect : str
        ``protect`` of the ``accelerator`` kind (``"none"``, ``"lcu"``, ``"tmr"``).
    buffered : bool
        Has operand buffers ``k_depth`` deep (the accelerators).
    accumulates : bool
        Has accumulators, ``acc_width`` wide (all but the LCU and the voter).
    description : str
    """

    name: str
    kind: str
    reference: str | None
    also_vs_array: bool = False
    sized: bool = False
    protect: str = "none"
    buffered: bool = False
    accumulates: bool = True
    description: str = ""


DESIGNS = {
    "pe": Design("pe", "pe", None, description="one int8 processing element (baseline)"),
    "array": Design("array", "array", None, sized=True,
                    description="unprotected rows x cols systolic array (baseline)"),
    "lcu": Design("lcu", "lcu", "pe", also_vs_array=True, accumulates=False,
                  description="Lightweight Correction Unit of one neuron pair, 8 bit"),
    "voter": Design("voter", "voter", "pe", also_vs_array=True, accumulates=False,
                    description="neuron-level bitwise majority voter, 8 bit"),
    "tmr-pe": Design("tmr-pe", "tmr-pe", "pe", description="triplicated PE with voted outputs"),
    "tmr-array": Design("tmr-array", "tmr-array", "array", sized=True,
                        description="triplicated array with voted outputs"),
    "accel": Design("accel", "accelerator", None, sized=True, buffered=True,
                    description="unprotected accelerator: buffers, array, requantizers, "
                                "control (baseline)"),
    "accel-lcu": Design("accel-lcu", "accelerator", "accel", sized=True, protect="lcu",
                        buffered=True,
                        description="the accelerator with protect=lcu (one LCU per column)"),
    "accel-tmr": Design("accel-tmr", "accelerator", "accel", sized=True, protect="tmr",
                        buffered=True,
                        description="the accelerator with protect=tmr (one voter per column)"),
    "axi": Design("axi", "accelerator-axi", None, sized=True, buffered=True,
                  description="unprotected accelerator behind AXI4-Lite and AXI4-Stream, "
                              "with error counters (baseline of the wrapped designs)"),
    "axi-lcu": Design("axi-lcu", "accelerator-axi", "axi", sized=True, protect="lcu",
                      buffered=True, description="the wrapped accelerator with protect=lcu"),
    "axi-tmr": Design("axi-tmr", "accelerator-axi", "axi", sized=True, protect="tmr",
                      buffered=True, description="the wrapped accelerator with protect=tmr"),
}


def expand(names):
    """The designs to measure for ``names``: their references first, each once, in order.

    Raises
    ------
    ValueError
        For an unknown design name.
    """
    for name in names:
        if name not in DESIGNS:
            raise ValueError(f"unknown design {name!r}; choose from {', '.join(DESIGNS)}")
    wanted = set(names)
    for name in names:
        design = DESIGNS[name]
        if design.reference:
            wanted.add(design.reference)
            if design.also_vs_array:
                wanted.add("array")
    return [name for name in DESIGNS if name in wanted]

"""The designs the area report compares, and what each one is measured against."""

from dataclasses import dataclass

__all__ = ["Design", "DESIGNS", "UNAVAILABLE", "expand"]


@dataclass(frozen=True)
class Design:
    """One design of the area report.

    Attributes
    ----------
    name : str
        Report name (also the ``hw.verilog`` kind).
    kind : str
        Block kind passed to :func:`hw.verilog.generate`.
    reference : str or None
        Unprotected baseline the overhead is computed against (None for a baseline).
    also_vs_array : bool
        Report the overhead against the whole array too (per-neuron units: LCU, voter).
    sized : bool
        Uses ``rows`` x ``cols``.
    description : str
    """

    name: str
    kind: str
    reference: str | None
    also_vs_array: bool = False
    sized: bool = False
    description: str = ""


DESIGNS = {
    "pe": Design("pe", "pe", None, description="one int8 processing element (baseline)"),
    "array": Design("array", "array", None, sized=True,
                    description="unprotected rows x cols systolic array (baseline)"),
    "lcu": Design("lcu", "lcu", "pe", also_vs_array=True,
                  description="Lightweight Correction Unit of one neuron pair, 8 bit"),
    "voter": Design("voter", "voter", "pe", also_vs_array=True,
                    description="neuron-level bitwise majority voter, 8 bit"),
    "tmr-pe": Design("tmr-pe", "tmr-pe", "pe", description="triplicated PE with voted outputs"),
    "tmr-array": Design("tmr-array", "tmr-array", "array", sized=True,
                        description="triplicated array with voted outputs"),
}

#: Designs that cannot be measured yet, with the reason the report gives.
UNAVAILABLE = {
    "accel-lcu": "not available: the Accelerator with protect=lcu does not exist yet "
                 "(later issue)",
    "accel-tmr": "not available: the Accelerator with protect=tmr does not exist yet "
                 "(later issue)",
}


def expand(names):
    """The designs to measure for ``names``: their references first, each once, in order.

    Raises
    ------
    ValueError
        For an unknown design name.
    """
    known = list(DESIGNS) + list(UNAVAILABLE)
    for name in names:
        if name not in known:
            raise ValueError(f"unknown design {name!r}; choose from {', '.join(known)}")
    wanted = set(names)
    for name in names:
        design = DESIGNS.get(name)
        if design is not None and design.reference:
            wanted.add(design.reference)
            if design.also_vs_array:
                wanted.add("array")
    return [name for name in known if name in wanted]

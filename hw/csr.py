"""Control and status registers of the AXI accelerator: the one table of its register map.

:data:`CSRS` declares every register of :class:`~hw.axi_accelerator.AXIAccelerator`'s
AXI4-Lite port: its byte offset, access, bit fields and meaning. The component decodes
addresses from it, drivers (``sim.axi_tb``) look offsets and fields up in it, and
:func:`register_map_markdown` renders it as the documented register map (README,
``neuroharden generate accelerator-axi --register-map``).

Accesses are 32-bit words at 4-byte aligned offsets. A read or write of an offset not
in the table, and a write to a read-only register, get ``SLVERR`` and change nothing.
Write strobes select the bytes written of a read-write register.
"""

from dataclasses import dataclass

__all__ = ["ACCESS", "Field", "CSR", "CSRS", "ID_VALUE", "PROTECT_CODE", "ERROR_COUNTERS",
           "csr", "register_map_markdown"]

#: ``ro``: read only; ``rw``: read and write; ``w1c``: reads the flags, writing 1 clears
#: a flag; ``w1s``: reads 0, writing 1 to a bit performs its action.
ACCESS = ("ro", "rw", "w1c", "w1s")
#: Value of the ``ID`` register: ASCII ``"NHAX"``.
ID_VALUE = 0x4E484158
#: ``CONFIG.protect`` code of each protection.
PROTECT_CODE = {"none": 0, "lcu": 1, "tmr": 2}
#: The counter register of each error flag of :data:`hw.contract.ERROR_FLAGS`.
ERROR_COUNTERS = {"lcu_differ": "LCU_DIFFER", "tmr_differ": "TMR_DIFFER",
                  "tmr_no_majority": "TMR_NO_MAJORITY"}


@dataclass(frozen=True)
class Field:
    """A bit field of a register: ``width`` bits from bit ``lsb``."""

    name: str
    lsb: int
    width: int
    description: str

    @property
    def mask(self):
        """The field's bits in the register word."""
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class CSR:
    """One 32-bit register of the map."""

    name: str
    offset: int
    access: str
    fields: tuple
    description: str

    def __post_init__(self):
        if self.access not in ACCESS:
            raise ValueError(f"Register access must be one of {', '.join(ACCESS)}, "
                             f"not {self.access!r}")
        if self.offset % 4:
            raise ValueError(f"Register offset must be 4-byte aligned, not {self.offset:#x}")

    def field(self, name):
        """The :class:`Field` called ``name``."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"register {self.name} has no field {name!r}")


CSRS = (
    CSR("ID", 0x00, "ro", (Field("id", 0, 32, 'ASCII "NHAX"'),),
        "Identifies the accelerator."),
    CSR("CONFIG", 0x04, "ro", (
        Field("rows", 0, 8, "PE rows: the most output rows of a tile"),
        Field("cols", 8, 8, "PE columns: the most output columns of a tile"),
        Field("protect", 16, 2, "protection unit: 0 none, 1 LCU, 2 TMR"),
        Field("k_depth", 18, 14, "operand-buffer depth: the largest K")),
        "The generation parameters."),
    CSR("CTRL", 0x08, "w1s", (
        Field("start", 0, 1, "run the loaded tile (as soon as the load stream is between "
                             "tiles, no run is in progress and the last output is sent)"),
        Field("clear_errors", 1, 1, "clear the three error counters"),
        Field("clear_load_error", 2, 1, "clear STATUS.load_error")),
        "Commands."),
    CSR("STATUS", 0x0C, "ro", (
        Field("busy", 0, 1, "a start is pending, a run is in progress, or its output is "
                            "being sent"),
        Field("done", 1, 1, "the last run finished (0 from start to done)"),
        Field("loading", 2, 1, "the load stream is inside a tile"),
        Field("sending", 3, 1, "the output stream is sending the last run's rows"),
        Field("load_error", 4, 1, "a load packet's TLAST came early or late (sticky)")),
        "State of the accelerator."),
    CSR("IRQ_ENABLE", 0x10, "rw", (
        Field("done", 0, 1, "interrupt when a run finishes"),
        Field("error", 1, 1, "interrupt when the protection flags a row")),
        "Interrupt sources that drive ``irq``."),
    CSR("IRQ_STATUS", 0x14, "w1c", (
        Field("done", 0, 1, "a run finished"),
        Field("error", 1, 1, "the protection flagged a row")),
        "Pending interrupts; ``irq = |(IRQ_STATUS & IRQ_ENABLE)``."),
    CSR("K", 0x18, "rw", (Field("k", 0, 16, "reduction length K of the tile, 1 .. k_depth: "
                                            "set before streaming the tile"),),
        "Reduction length."),
    CSR("VOTE", 0x1C, "rw", (Field("word", 0, 1, "TMR: 1 selects the word-level vote, 0 the "
                                                 "bitwise one (reads 0 without TMR)"),),
        "Voting mode."),
    CSR("CYCLES", 0x20, "ro", (Field("cycles", 0, 32, "clock cycles of the last run, from "
                                                      "start to done"),),
        "Cycle counter."),
    *(CSR(name, offset, "ro", (Field("count", 0, 32, f"output rows {what} (saturating)"),),
          "Error counter.")
      for name, offset, what in (
          ("LCU_DIFFER", 0x24, "with an LCU pair whose halves differ"),
          ("TMR_DIFFER", 0x28, "with a TMR triple that is not unanimous"),
          ("TMR_NO_MAJORITY", 0x2C, "with a word-level vote of three different copies"))),
)

_BY_NAME = {register.name: register for register in CSRS}


def csr(name):
    """The :class:`CSR` called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no register {name!r}; the map has {', '.join(_BY_NAME)}") from None


def register_map_markdown():
    """The register map as a Markdown table: offset, register, access, bits, meaning."""
    lines = ["| offset | register | access | bits | field | meaning |",
             "|---|---|---|---|---|---|"]
    for register in CSRS:
        for index, field in enumerate(register.fields):
            bits = (f"{field.lsb}" if field.width == 1
                    else f"{field.lsb + field.width - 1}:{field.lsb}")
            head = ((f"`{register.offset:#04x}`", f"`{register.name}`", register.access)
                    if index == 0 else ("", "", ""))
            lines.append(f"| {' | '.join(head)} | {bits} | `{field.name}` | "
                         f"{field.description} |")
    return "\n".join(lines) + "\n"

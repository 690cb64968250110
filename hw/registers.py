"""Register maps: the registers a hardware block declares, by name, kind and shape.

The registers of a block are its fault sites (cocotb reaches them by name), so their
names are part of the block's interface. Each block that holds registers declares them
once, in a map ``name -> Register`` (:func:`hw.pe.registers`,
:func:`hw.systolic_array.registers`, :attr:`hw.contract.AcceleratorConfig.registers`):
its ``elaborate`` creates every register from its declaration (:meth:`Register.signal`),
and everything outside ``hw`` that names, classifies or forces a register (the fault-site
catalogue, the RTL fault runner, the testbenches, the Verilator control file) reads the
same declaration.

A name holds one ``{}`` per index of a family of registers (``"bias_{}"`` is
``bias_0``, ``bias_1``, ...); a memory is declared by its name and ``depth``, and its
words are ``name[index]``.
"""

import re
from dataclasses import dataclass

from amaranth.hdl import Shape, Signal

__all__ = ["KINDS", "Register", "template_regex"]

#: Register kinds (the fault-site kinds), in the order tables and totals list them:
#: the PE's operand and accumulator registers, the array's skew registers, the
#: post-processing registers, the protection map, memory words, and everything else
#: (controllers, counters).
KINDS = ("pe.a_reg", "pe.w_reg", "pe.acc", "skew", "requant", "protect", "buffer", "control")


def template_regex(template):
    """A regex that matches the names of ``template`` whole, one group per ``{}``."""
    return re.compile(r"(\d+)".join(re.escape(part) for part in template.split("{}")) + r"\Z")


@dataclass(frozen=True, eq=False)
class Register:
    """The declaration of one register, a family of registers, or a memory.

    Attributes
    ----------
    name : str
        The register's name, with one ``{}`` per index of a family (``"bias_{}"``).
    kind : str
        One of :data:`KINDS`.
    shape : amaranth shape-castable
        The shape of the register (of one word, for a memory).
    select : str or None
        The load-port select that writes it (``hw.contract.WRITE_SELECT``): a loaded
        register keeps the tile until it is overwritten. None for a register the design
        updates itself.
    depth : int or None
        Words of a memory; None for a register.
    init : int or None
        Value after reset (None: the shape's default, zero).
    """

    name: str
    kind: str
    shape: object
    select: str = None
    depth: int = None
    init: int = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Register name must be a non-empty string, not {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"Register kind must be one of {', '.join(KINDS)}, "
                             f"not {self.kind!r}")
        Shape.cast(self.shape)

    @property
    def width(self):
        """Bits of the register (of one word, for a memory)."""
        return Shape.cast(self.shape).width

    @property
    def loaded(self):
        """Whether the load port writes it (it then holds a tile until overwritten)."""
        return self.select is not None

    @property
    def memory(self):
        """Whether this declares a memory."""
        return self.depth is not None

    @property
    def indices(self):
        """Indices that name one register of the family: one for a memory's word."""
        return 1 if self.memory else self.name.count("{}")

    @property
    def pattern(self):
        """A compiled regex matching every name of the register whole (the words
        ``name[index]`` of a memory), one group per index."""
        return template_regex(f"{self.name}[{{}}]" if self.memory else self.name)

    @property
    def glob(self):
        """The names of the register as a glob (``"bias_*"``; a memory's own name)."""
        return self.name.replace("{}", "*")

    def path(self, *indices):
        """The name of one register of the family (one word of a memory).

        Raises
        ------
        ValueError
            When the number of indices differs from the name's (one for a memory).
        """
        if len(indices) != self.indices:
            raise ValueError(f"Register {self.name!r} takes {self.indices} index(es), "
                             f"not {len(indices)}")
        return f"{self.name}[{indices[0]}]" if self.memory else self.name.format(*indices)

    def signal(self, *indices):
        """A new Amaranth ``Signal`` of this register (one member of a family)."""
        if self.memory:
            raise ValueError(f"{self.name!r} is a memory, not a register")
        init = {} if self.init is None else {"init": self.init}
        return Signal(self.shape, name=self.path(*indices), **init)

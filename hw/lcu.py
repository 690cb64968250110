"""Lightweight Correction Unit of paper 004 (Fig. 3)."""

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import check_int

__all__ = ["LCU"]


class LCU(wiring.Component):
    """``y = (a AND b)`` with bit ``width - 2`` cleared (combinational).

    Merges the two halves of a split critical neuron after ReLU: fault-free, both lie in
    ``[0, 2**(width-2))``, so the AND masks any bit a fault set in only one copy, and
    clearing bit ``width - 2`` masks a fault that set it in both. Equal to
    :func:`golden.numerics.lcu`.

    Parameters
    ----------
    width : int
        Operand width, at least 2.

    Attributes
    ----------
    a, b : In(signed(width))
        The two copies.
    y : Out(signed(width))
        The corrected value.
    """

    def __init__(self, *, width=8):
        check_int("Operand width", width, minimum=2)
        self._width = width
        super().__init__({
            "a": In(signed(width)),
            "b": In(signed(width)),
            "y": Out(signed(width)),
        })

    @property
    def width(self):
        """Operand width in bits."""
        return self._width

    def elaborate(self, platform):
        m = Module()

        mask = ((1 << self.width) - 1) & ~(1 << (self.width - 2))
        m.d.comb += self.y.eq(self.a & self.b & mask)

        return m

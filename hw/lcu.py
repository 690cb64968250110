"""Lightweight Correction Unit of paper 004 (Fig. 3)."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import check_int

__all__ = ["LCU"]


class LCU(wiring.Component):
    """``y = (a AND b)`` with bit ``width - 2`` cleared, or bit ``width - 1`` when
    ``wide`` (combinational).

    Merges the two halves of a split critical neuron after ReLU: fault-free, both lie in
    ``[0, 2**(width-2))``, so the AND masks any bit a fault set in only one copy, and
    clearing bit ``width - 2`` masks a fault that set it in both. Wide halves (a layer
    with an output zero point: offset-free values saturated at ``2**(width-1) - 1``)
    lie in ``[0, 2**(width-1))`` and have the sign bit cleared instead. Equal to
    :func:`golden.numerics.lcu` (``bit=width - 1`` when ``wide``).

    Parameters
    ----------
    width : int
        Operand width, at least 2.

    Attributes
    ----------
    a, b : In(signed(width))
        The two copies.
    wide : In(1)
        Clear bit ``width - 1`` instead of bit ``width - 2``.
    y : Out(signed(width))
        The corrected value.
    """

    def __init__(self, *, width=8):
        check_int("Operand width", width, minimum=2)
        self._width = width
        super().__init__({
            "a": In(signed(width)),
            "b": In(signed(width)),
            "wide": In(1),
            "y": Out(signed(width)),
        })

    @property
    def width(self):
        """Operand width in bits."""
        return self._width

    def elaborate(self, platform):
        m = Module()

        word = (1 << self.width) - 1
        narrow, wide = word & ~(1 << (self.width - 2)), word & ~(1 << (self.width - 1))
        m.d.comb += self.y.eq(self.a & self.b & Mux(self.wide, wide, narrow))

        return m

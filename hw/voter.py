"""Majority voter of three copies, bitwise or word-level."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import check_int

__all__ = ["MajorityVoter", "MODES"]

#: Voting modes: per bit, or per word as in paper 000.
MODES = ("bitwise", "word")


class MajorityVoter(wiring.Component):
    """Vote three copies of a value and flag any disagreement (combinational).

    Parameters
    ----------
    width : int
        Width of each copy, at least 1.
    mode : {"bitwise", "word"}
        ``"bitwise"``: ``a&b | a&c | b&c`` (:func:`golden.numerics.vote_bitwise`);
        ``"word"``: the value two copies agree on, 0 when all three differ
        (:func:`golden.numerics.vote_word`).

    Attributes
    ----------
    a, b, c : In(signed(width))
        The three copies.
    y : Out(signed(width))
        The voted value.
    mismatch : Out(1)
        1 when the three copies are not all equal.
    """

    def __init__(self, *, width=8, mode="bitwise"):
        check_int("Voter width", width)
        if mode not in MODES:
            raise ValueError(f"Voter mode must be one of {MODES}, not {mode!r}")
        self._width = width
        self._mode = mode
        super().__init__({
            "a": In(signed(width)),
            "b": In(signed(width)),
            "c": In(signed(width)),
            "y": Out(signed(width)),
            "mismatch": Out(1),
        })

    @property
    def width(self):
        """Width of each copy in bits."""
        return self._width

    @property
    def mode(self):
        """Voting mode, ``"bitwise"`` or ``"word"``."""
        return self._mode

    def elaborate(self, platform):
        m = Module()

        a, b, c = self.a, self.b, self.c
        if self.mode == "bitwise":
            voted = (a & b) | (a & c) | (b & c)
        else:
            voted = Mux((a == b) | (a == c), a, Mux(b == c, b, 0))
        m.d.comb += [
            self.y.eq(voted),
            self.mismatch.eq((a != b) | (a != c)),
        ]

        return m

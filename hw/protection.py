"""Protection unit of the accelerator: merges the copies of critical neurons."""

from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .lcu import LCU
from .pe import check_int
from .voter import MajorityVoter

__all__ = ["ProtectionUnit", "SCHEMES", "group_layout", "encode_group", "index_width"]

#: Protection schemes: LCU pairs (split neurons) or TMR triples (triplicated neurons).
SCHEMES = ("lcu", "tmr")


def index_width(cols):
    """Bits of a column index ``0 .. cols - 1`` (at least 1)."""
    return max(1, (cols - 1).bit_length())


def group_layout(cols, scheme):
    """Layout of one column's protection-group code.

    ``enable`` (bit 0) marks the column as a copy; ``first`` (and, for ``"tmr"``,
    ``second``) are the other copies' column indices, each :func:`index_width` bits,
    packed upwards from bit 1. For ``"lcu"``, ``wide`` follows ``first``: the pair holds
    the offset-free halves of a layer with an output zero point, which saturate at
    ``INT8_MAX`` instead of ``HALF_MAX`` and whose LCU clears bit 7 instead of bit 6.
    """
    fields = {"enable": 1, "first": index_width(cols)}
    if scheme == "tmr":
        fields["second"] = index_width(cols)
    else:
        fields["wide"] = 1
    return data.StructLayout(fields)


def encode_group(cols, first, second=0, *, wide=False):
    """The integer code of an enabled column whose other copies are ``first``, ``second``
    (TMR), or whose LCU pair is ``wide``."""
    if second and wide:
        raise ValueError("A protection group is a wide LCU pair or a TMR triple, not both")
    bits = index_width(cols)
    return 1 | (first << 1) | ((second or int(bool(wide))) << (1 + bits))


class ProtectionUnit(wiring.Component):
    """Replace every protected column of one output row by its corrected value.

    Combinational. For each column ``c`` whose ``group[c].enable`` is set:

    * ``"lcu"``: ``out[c] = lcu(y[c], y[group[c].first])`` through ``lcu_{c}``
      (:func:`golden.numerics.lcu`, clearing bit 7 when ``group[c].wide``); both columns
      of a pair name each other, so both receive the merged value;
    * ``"tmr"``: ``out[c]`` is the majority of ``y[c]``, ``y[group[c].first]`` and
      ``y[group[c].second]``, bitwise (``vote_{c}``) or word-level (``vote_word_{c}``)
      as ``vote_word`` selects; both votes are symmetric, so the three columns of a
      triple receive the same value.

    Columns without ``enable`` pass ``y[c]`` through.

    It also reports what it saw, per column (error detection, counted by
    :class:`~hw.axi_accelerator.AXIAccelerator`): ``differ[c]`` is set for an enabled
    column whose copies are not all equal (an LCU pair whose halves differ, a TMR triple
    that is not unanimous), ``no_majority[c]`` (``"tmr"``) for an enabled column of a
    word-level vote whose three copies all differ, so that no value is voted.

    Parameters
    ----------
    cols : int
        Columns of a row, at least 2 for ``"lcu"`` and 3 for ``"tmr"``.
    scheme : {"lcu", "tmr"}
        Protection scheme.
    width : int
        Width of each output value.

    Attributes
    ----------
    y : In(ArrayLayout(signed(width), cols))
        One requantized output row.
    group : In(ArrayLayout(group_layout(cols, scheme), cols))
        Per-column protection-group codes.
    vote_word : In(1)
        ``"tmr"`` only: 1 selects the word-level vote, 0 the bitwise one.
    out : Out(ArrayLayout(signed(width), cols))
        The protected row.
    differ : Out(ArrayLayout(1, cols))
        Per column: protected, and its copies differ.
    no_majority : Out(ArrayLayout(1, cols))
        ``"tmr"`` only: protected, word-level vote, and all three copies differ.
    """

    def __init__(self, *, cols, scheme, width=8):
        check_int("Column count", cols)
        check_int("Output width", width, minimum=2)
        if scheme not in SCHEMES:
            raise ValueError(f"Protection scheme must be one of {', '.join(SCHEMES)}, "
                             f"not {scheme!r}")
        copies = 2 if scheme == "lcu" else 3
        if cols < copies:
            raise ValueError(f"Column count must be at least {copies} for {scheme!r} "
                             f"protection, not {cols!r}")
        self._cols, self._scheme, self._width = cols, scheme, width
        members = {
            "y": In(data.ArrayLayout(signed(width), cols)),
            "group": In(data.ArrayLayout(group_layout(cols, scheme), cols)),
            "out": Out(data.ArrayLayout(signed(width), cols)),
            "differ": Out(data.ArrayLayout(1, cols)),
        }
        if scheme == "tmr":
            members["vote_word"] = In(1)
            members["no_majority"] = Out(data.ArrayLayout(1, cols))
        super().__init__(members)

    @property
    def cols(self):
        """Columns of a row."""
        return self._cols

    @property
    def scheme(self):
        """``"lcu"`` or ``"tmr"``."""
        return self._scheme

    @property
    def width(self):
        """Width of each output value."""
        return self._width

    def elaborate(self, platform):
        m = Module()

        for c in range(self.cols):
            group = self.group[c]
            if self.scheme == "lcu":
                m.submodules[f"lcu_{c}"] = unit = LCU(width=self.width)
                m.d.comb += [unit.a.eq(self.y[c]), unit.b.eq(self.y[group.first]),
                             unit.wide.eq(group.wide)]
                merged = unit.y
                m.d.comb += self.differ[c].eq(group.enable & (self.y[c] != self.y[group.first]))
            else:
                m.submodules[f"vote_{c}"] = bitwise = MajorityVoter(width=self.width)
                m.submodules[f"vote_word_{c}"] = word = MajorityVoter(width=self.width,
                                                                      mode="word")
                for voter in (bitwise, word):
                    m.d.comb += [voter.a.eq(self.y[c]), voter.b.eq(self.y[group.first]),
                                 voter.c.eq(self.y[group.second])]
                merged = Mux(self.vote_word, word.y, bitwise.y)
                a, b, c3 = self.y[c], self.y[group.first], self.y[group.second]
                m.d.comb += [
                    self.differ[c].eq(group.enable & bitwise.mismatch),
                    self.no_majority[c].eq(group.enable & self.vote_word
                                           & (a != b) & (a != c3) & (b != c3)),
                ]
            m.d.comb += self.out[c].eq(Mux(group.enable, merged, self.y[c]))

        return m

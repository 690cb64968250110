"""Output-stationary systolic array of processing elements."""

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.data import ArrayLayout
from amaranth.lib.wiring import In, Out

from .pe import OPERAND_WIDTHS, PE, check_int, check_widths, read_register
from .registers import Register

__all__ = ["SystolicArray", "PE_NAME", "A_SKEW", "W_SKEW", "registers", "flush_cycles"]

#: Name of the PE submodule of row ``r``, column ``c`` (the prefix of its registers' paths).
PE_NAME = "pe_{}_{}"
#: Names of the skew registers: stage ``i`` of activation row ``r`` / weight column ``c``.
A_SKEW, W_SKEW = "a_skew_{}_{}", "w_skew_{}_{}"


def registers(*, width=8):
    """The register map of a :class:`SystolicArray` module (its PEs declare their own,
    :func:`hw.pe.registers`)."""
    check_int("Operand width", width)
    if width not in OPERAND_WIDTHS:
        raise ValueError(f"Operand width must be one of {OPERAND_WIDTHS}, not {width!r}")
    return {name: Register(name, "skew", signed(width)) for name in (A_SKEW, W_SKEW)}


def flush_cycles(rows, cols):
    """Cycles of zero inputs after the last streamed step until ``result`` holds the
    bottom row of ``C``: ``rows + cols - 1``."""
    return rows + cols - 1


class SystolicArray(wiring.Component):
    """A ``rows`` x ``cols`` output-stationary array computing ``C = A @ B``.

    PE ``pe_{r}_{c}`` (:data:`PE_NAME`) accumulates ``C[r, c]``. Activations enter row
    ``r`` from the west through ``r`` skew registers ``a_skew_{r}_{i}``; weights enter
    column ``c`` from the north through ``c`` skew registers ``w_skew_{c}_{i}``
    (:func:`registers`), so the caller presents unskewed columns of ``A`` and rows of
    ``B``.

    Protocol, for ``A`` of shape ``rows x K`` and ``B`` of shape ``K x cols``:

    1. one cycle with ``clear = 1`` and zero ``a_in``/``w_in``;
    2. for ``k = 0 .. K-1``: ``a_in = A[:, k]``, ``w_in = B[k, :]`` (``clear = 0``);
    3. ``rows + cols - 1`` cycles of zero inputs (flush, :func:`flush_cycles`);
    4. ``result`` now holds ``C[rows-1, :]``; each cycle with ``drain = 1`` shifts every
       row's accumulators one row south (row 0 loads zero), so reading ``result`` and then
       pulsing ``drain``, ``rows`` times, yields rows ``rows-1, rows-2, ..., 0`` of ``C``.

    PE ``(r, c)`` sees ``A[r, k]`` and ``B[k, c]`` on its inputs in cycle ``k + r + c``
    (counting from the first streaming cycle) and adds their product at the end of cycle
    ``k + r + c + 1``. Inputs must stay zero outside step 2 (also while draining): the
    skew and operand registers keep shifting, and a non-zero operand left in them would
    be accumulated after the next clear.

    Parameters
    ----------
    rows, cols : int
        Array size, each at least 1.
    width : int
        Operand width, 8 or 16.
    acc_width : int
        Accumulator width, from ``2 * width`` to 48.

    Attributes
    ----------
    a_in : In(ArrayLayout(signed(width), rows))
        Element ``r`` is the activation entering row ``r``.
    w_in : In(ArrayLayout(signed(width), cols))
        Element ``c`` is the weight entering column ``c``.
    clear, drain : In(1)
        Broadcast to every PE.
    result : Out(ArrayLayout(signed(acc_width), cols))
        The accumulators of the bottom row.
    """

    def __init__(self, *, rows, cols, width=8, acc_width=32):
        check_int("Row count", rows)
        check_int("Column count", cols)
        check_widths(width, acc_width)
        self._rows = rows
        self._cols = cols
        self._width = width
        self._acc_width = acc_width
        super().__init__({
            "a_in": In(ArrayLayout(signed(width), rows)),
            "w_in": In(ArrayLayout(signed(width), cols)),
            "clear": In(1),
            "drain": In(1),
            "result": Out(ArrayLayout(signed(acc_width), cols)),
        })

    @property
    def rows(self):
        """Number of PE rows (``M`` of a tile)."""
        return self._rows

    @property
    def cols(self):
        """Number of PE columns (``N`` of a tile)."""
        return self._cols

    @property
    def width(self):
        """Operand width in bits."""
        return self._width

    @property
    def acc_width(self):
        """Accumulator width in bits."""
        return self._acc_width

    @property
    def registers(self):
        """The register map of the array's own module (:func:`registers`)."""
        return registers(width=self.width)

    def elaborate(self, platform):
        m = Module()

        pes = [[PE(width=self.width, acc_width=self.acc_width) for _ in range(self.cols)]
               for _ in range(self.rows)]
        for r, row in enumerate(pes):
            for c, pe in enumerate(row):
                m.submodules[PE_NAME.format(r, c)] = pe

        # Row r is delayed by r cycles and column c by c cycles, so that A[r, k] and
        # B[k, c] meet in PE (r, c).
        a_skew, w_skew = (self.registers[name] for name in (A_SKEW, W_SKEW))
        a_chains = [[self.a_in[r], *(a_skew.signal(r, i) for i in range(r))]
                    for r in range(self.rows)]
        w_chains = [[self.w_in[c], *(w_skew.signal(c, i) for i in range(c))]
                    for c in range(self.cols)]

        for r, row in enumerate(pes):
            for c, pe in enumerate(row):
                m.d.comb += [
                    pe.a_in.eq(read_register(a_chains[r][-1]) if c == 0 else row[c - 1].a_out),
                    pe.w_in.eq(read_register(w_chains[c][-1]) if r == 0 else pes[r - 1][c].w_out),
                    pe.acc_in.eq(0 if r == 0 else pes[r - 1][c].acc_out),
                    pe.clear.eq(self.clear),
                    pe.drain.eq(self.drain),
                ]
        for c, pe in enumerate(pes[-1]):
            m.d.comb += self.result[c].eq(pe.acc_out)

        for chain in a_chains + w_chains:
            for source, stage in zip(chain, chain[1:]):
                m.d.sync += stage.eq(source)

        return m

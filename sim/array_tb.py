"""cocotb driver of the output-stationary systolic array (``hw.systolic_array``).

:class:`ArrayTB` owns the clock and reset and speaks the array's protocol: clear, stream
K activation columns and weight rows, flush, drain the accumulators row by row.
:func:`tiled_gemm` covers any M x K by K x N product with rows x cols tiles. The cocotb
modules of the regressions and of ``neuroharden gemm`` both drive the array through
these, so the protocol lives in one place.

Inputs change on falling clock edges and outputs are read on falling edges, which keeps
the driver free of delta-cycle races on both Icarus and Verilator.
"""

import numpy as np

from neuroharden.hw.contract import pack, unpack
from neuroharden.hw.systolic_array import flush_cycles
from .tb import ClockedTB

__all__ = ["ArrayTB", "tiled_gemm"]


class ArrayTB(ClockedTB):
    """Drives a ``SystolicArray`` (or a TMR-wrapped one) as a cocotb DUT.

    Parameters
    ----------
    dut : cocotb handle
        Top level with ports ``clk, rst, a_in, w_in, clear, drain, result``.
    rows, cols, width, acc_width : int
        The generation parameters of the array.
    """

    INPUTS = ("a_in", "w_in", "clear", "drain")

    def __init__(self, dut, *, rows, cols, width=8, acc_width=32):
        super().__init__(dut)
        self.rows, self.cols = rows, cols
        self.width, self.acc_width = width, acc_width

    def result_row(self):
        """The bottom row's accumulators as signed integers."""
        return unpack(self.dut.result.value.to_unsigned(), self.cols, self.acc_width)

    async def load(self, a_tile, b_tile, *, on_cycle=None):
        """Clear, stream ``a_tile`` (rows x K) and ``b_tile`` (K x cols), and flush.

        Parameters
        ----------
        a_tile, b_tile : numpy.ndarray
            Integer operands; ``a_tile`` has ``rows`` rows and ``b_tile`` ``cols``
            columns.
        on_cycle : callable, optional
            Called with the cycle index (0 = first streamed column) before each
            streaming and flush cycle; fault-injection hooks use it to act at a chosen
            cycle.
        """
        depth = a_tile.shape[1]
        self.dut.clear.value = 1
        await self.tick()
        self.dut.clear.value = 0
        for cycle in range(depth + flush_cycles(self.rows, self.cols)):
            if on_cycle is not None:
                await on_cycle(cycle)
            if cycle < depth:
                self.dut.a_in.value = pack(a_tile[:, cycle], self.width)
                self.dut.w_in.value = pack(b_tile[cycle, :], self.width)
            else:
                self.dut.a_in.value = 0
                self.dut.w_in.value = 0
            await self.tick()

    async def drain(self):
        """Read the accumulators out, bottom row first; returns a rows x cols array."""
        tile = np.zeros((self.rows, self.cols), dtype=np.int64)
        self.dut.drain.value = 1
        for row in reversed(range(self.rows)):
            tile[row] = self.result_row()
            await self.tick()
        self.dut.drain.value = 0
        return tile

    async def matmul_tile(self, a_tile, b_tile):
        """One full tile: load, flush and drain."""
        await self.load(a_tile, b_tile)
        return await self.drain()


async def tiled_gemm(tb, a, b):
    """Multiply ``a`` (M x K) by ``b`` (K x N) on the array, tile by tile.

    Edge tiles are padded with zeros, so M and N need not be multiples of the array
    size; K is streamed whole.

    Returns
    -------
    numpy.ndarray
        The int64 product, wrapped to the array's accumulator width.
    """
    m, k = a.shape
    n = b.shape[1]
    out = np.zeros((m, n), dtype=np.int64)
    for row in range(0, m, tb.rows):
        a_tile = np.zeros((tb.rows, k), dtype=np.int64)
        a_tile[: min(tb.rows, m - row)] = a[row:row + tb.rows]
        for col in range(0, n, tb.cols):
            b_tile = np.zeros((k, tb.cols), dtype=np.int64)
            b_tile[:, : min(tb.cols, n - col)] = b[:, col:col + tb.cols]
            tile = await tb.matmul_tile(a_tile, b_tile)
            out[row:row + tb.rows, col:col + tb.cols] = tile[: m - row, : n - col]
    return out

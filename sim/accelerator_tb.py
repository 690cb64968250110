"""cocotb driver of the accelerator (``hw.accelerator``): load a tile, run it, read it.

This is the one place that speaks the accelerator's load / start / done / read protocol;
the accelerator regressions, the network compiler's ``run-rtl`` and the RTL
fault-injection campaigns all drive the RTL through it. Its API is stable:

``AcceleratorTB(dut, config)``
    Wraps the cocotb handle of a generated ``accelerator`` top level built with the
    :class:`hw.contract.AcceleratorConfig` ``config`` (a testbench receives it as
    ``AcceleratorConfig.to_dict()`` JSON, under the key ``"accelerator"`` of its
    ``sim.runner`` configuration).
``await tb.start(*, clock_impl=None)``
    Starts the 10 ns clock and applies a two-cycle reset (:class:`sim.tb.ClockedTB`).
    Call once per simulation. ``clock_impl="gpi"`` runs the clock in the simulator
    interface instead of a Python task (cocotb's ``Clock(impl=...)``), so the simulator
    runs freely between the triggers a test awaits (``sim.tb_rtl_faults``).
``await tb.load(tile)``
    Writes a :class:`sim.tile.Tile` into the operand buffers and registers (zero-padded
    to the array; ``2 * K + 4 * cols + 1`` write cycles, plus ``cols`` with
    ``protect="lcu"`` and ``cols + 1`` with ``"tmr"``). Raises ``ValueError`` when the
    tile does not fit (``m > rows``, ``n > cols``, ``K > k_depth``) or uses protection
    this build lacks (LCU pairs need ``protect="lcu"``, TMR triples ``protect="tmr"``).
    The tile stays loaded: ``run`` can be repeated (one fault per run) without loading
    again.
``await tb.run(*, on_cycle=None)`` -> int
    Pulses ``start`` and waits for ``done``; returns the cycles taken, which is always
    :func:`hw.contract.tile_cycles` ``(rows, cols, K) = K + 2*rows + cols + 2`` of the
    *array* size (not the tile's), e.g. 90 for an 8x8 array and K = 64.
    ``on_cycle(cycle)`` is awaited at the falling edge inside each clock cycle of the
    run, before its rising edge; fault-injection hooks act there (``sim.inject``). The
    cycles are those of :class:`hw.contract.Schedule` (``config.schedule(K)``): cycle 0
    samples ``start``, 1 clears the array, then the stream, flush and drain cycles
    (drain cycle ``i`` feeds row ``rows-1-i`` to the requantizers, and the ``y_{c}``
    registers hold that row, being protected and written, in the next cycle), then the
    cycle writing row 0. Raises ``TimeoutError`` if ``done`` does not rise within
    ``tile_cycles + 64`` cycles (a fault in the controller can hang it).
``await tb.read()`` -> numpy.ndarray
    The int64 ``[m, n]`` protected int8 outputs of the loaded tile's shape (``m``
    cycles). They equal ``sim.tile.reference(tile, acc_width)[1]`` bit for bit.
``tb.read_accumulators()`` -> numpy.ndarray
    The int64 ``[m, n]`` biased accumulators (``wrap(A @ B + bias)``, equal to
    ``sim.tile.reference(tile, acc_width)[0]``) of the last run, as the array drained
    them into the requantizers: ``run`` samples the array's ``result`` port in every
    drain cycle, at the cycles the controller drains (so they include a fault injected
    before or during the drain). No extra cycles.
``await tb.run_tile(tile)`` -> numpy.ndarray
    ``load``, ``run`` and ``read`` in one call.
``await run_tiles(tb, tiles)`` -> list of numpy.ndarray
    ``run_tile`` over a sequence of tiles.
``tb.cycles``
    Clock cycles simulated since ``start`` (loads, runs and reads included).
``tb.tile``
    The tile loaded last (None before the first ``load``).
``await tb.write(select, address, data)``, ``await tb.tick(count=1)``
    One raw load-port write (``hw.contract.WRITE_SELECT``), and waiting cycles.
``random_tile(rng, m, k, n, ...)``
    A random :class:`sim.tile.Tile` whose outputs spread over the int8 range, for
    regressions and campaigns; ``protection_groups(config, n)`` a protection map for it.

Inputs change on falling clock edges and outputs are read on falling edges, which keeps
the driver free of delta-cycle races on both Icarus and Verilator. :func:`tile_writes`
is the pure encoding of a tile into load-port writes
(:meth:`hw.contract.AcceleratorConfig.load_writes`), shared with the Amaranth tests.
"""

import numpy as np

from neuroharden.golden.numerics import wrap
from neuroharden.hw.contract import ARRAY, OUTPUT_WIDTH, unpack
from .tb import ClockedTB
from .tile import Tile

__all__ = ["tile_writes", "random_tile", "protection_groups", "AcceleratorTB", "run_tiles"]

#: Cycles ``run`` waits beyond the nominal tile time before giving up.
TIMEOUT_SLACK = 64


def tile_writes(tile, config):
    """The load-port writes that put ``tile`` into an accelerator.

    Parameters
    ----------
    tile : sim.tile.Tile
        The tile; ``m <= rows``, ``n <= cols``, ``K <= k_depth``.
    config : hw.contract.AcceleratorConfig
        The accelerator.

    Returns
    -------
    list of (int, int, int)
        ``(wr_sel, wr_addr, wr_data)`` in write order
        (:meth:`hw.contract.AcceleratorConfig.load_writes`).

    Raises
    ------
    ValueError
        If the tile does not fit the array or the buffers, or needs protection the
        accelerator lacks.
    """
    return config.load_writes(activations=tile.activations, weights=tile.weights,
                              bias=tile.bias, multiplier=tile.multiplier, shift=tile.shift,
                              relu=tile.relu, zero_point=tile.zero_point,
                              lcu_pairs=tile.lcu_pairs, lcu_wide=tile.lcu_wide,
                              tmr_triples=tile.tmr_triples, word_vote=tile.vote_mode == "word")


def random_tile(rng, m, k, n, *, lcu_pairs=(), tmr_triples=(), vote_mode="bitwise", relu=None,
                identical_copies=False, nonnegative=False, zero_point=None, lcu_wide=None):
    """A random tile whose outputs spread over the int8 range.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    m, k, n : int
        Output rows, reduction length, output columns.
    lcu_pairs, tmr_triples, vote_mode, lcu_wide
        Protection map, as in :class:`sim.tile.Tile`.
    relu : bool, optional
        ReLU on every column; random per column when None.
    identical_copies : bool
        Give the columns of each protection group the weights and parameters of their
        first column, as the network compiler does for the copies of one neuron.
    nonnegative : bool
        Activations in ``[0, 127]`` (post-ReLU inputs) and non-negative weights and
        biases, so every accumulator is non-negative.
    zero_point : array-like, optional
        ``[n]`` output zero points (default zeros; taken as given, so the random draws
        are those of a tile without zero points).
    """
    low = 0 if nonnegative else -128
    weights = rng.integers(low, 128, (k, n))
    bias = rng.integers(0 if nonnegative else -20000, 20000, n)
    multiplier = rng.integers(1 << 14, 1 << 16, n)
    # (acc * M) >> s lands around the int8 range for |acc| ~ 64 * 64 * K.
    shift = 18 + int(k).bit_length() + rng.integers(-2, 3, n)
    relu = rng.integers(0, 2, n).astype(bool) if relu is None else np.full(n, relu)
    if identical_copies:
        for group in [*np.reshape(lcu_pairs, (-1, 2)), *np.reshape(tmr_triples, (-1, 3))]:
            for column in group[1:]:
                weights[:, column] = weights[:, group[0]]
                for values in (bias, multiplier, shift, relu):
                    values[column] = values[group[0]]
    return Tile(activations=rng.integers(low, 128, (m, k)), weights=weights, bias=bias,
                multiplier=multiplier, shift=shift, relu=relu, zero_point=zero_point,
                lcu_pairs=np.reshape(lcu_pairs, (-1, 2)), lcu_wide=lcu_wide,
                tmr_triples=np.reshape(tmr_triples, (-1, 3)), vote_mode=vote_mode)


def protection_groups(config, n):
    """Protection map of an ``n``-column tile for a build of ``config``: two groups if they fit (LCU:
    a narrow pair and a wide one)."""
    if config.protect == "lcu":
        return {"lcu_pairs": [[0, n - 1], [1, n - 2]][:n // 2],
                "lcu_wide": [False, True][:n // 2]}
    if config.protect == "tmr":
        return {"tmr_triples": [[n - 1, 0, n // 2]]}
    return {}


class AcceleratorTB(ClockedTB):
    """Drives a generated ``accelerator`` as a cocotb DUT (see the module docstring).

    Parameters
    ----------
    dut : cocotb handle
        Top level with ports ``clk, rst, wr_en, wr_sel, wr_addr, wr_data, start, busy,
        done, rd_addr, rd_data``.
    config : hw.contract.AcceleratorConfig
        The configuration the accelerator was generated with.

    Attributes
    ----------
    config : hw.contract.AcceleratorConfig
    cycles : int
        Clock cycles simulated since :meth:`start`.
    tile : sim.tile.Tile or None
        The tile loaded last.
    """

    INPUTS = ("wr_en", "wr_sel", "wr_addr", "wr_data", "start", "rd_addr")

    def __init__(self, dut, config):
        super().__init__(dut)
        self.config = config
        self.tile = None
        self._drained = None

    async def write(self, select, address, data):
        """One load-port write (``wr_sel``, ``wr_addr``, ``wr_data``)."""
        self.dut.wr_sel.value = select
        self.dut.wr_addr.value = address
        self.dut.wr_data.value = data
        self.dut.wr_en.value = 1
        await self.tick()
        self.dut.wr_en.value = 0

    async def load(self, tile):
        """Write ``tile`` into the buffers and registers (see :func:`tile_writes`)."""
        for write in tile_writes(tile, self.config):
            await self.write(*write)
        self.tile = tile

    async def run(self, *, on_cycle=None):
        """Run the loaded tile; returns the cycles from ``start`` to ``done``."""
        if self.tile is None:
            raise RuntimeError("No tile loaded: call load(tile) before run()")
        config = self.config
        schedule = config.schedule(self.tile.shape[1])
        drain, result = schedule.drain, getattr(self.dut, ARRAY).result
        self._drained = np.zeros((config.rows, config.cols), dtype=np.int64)
        self.dut.start.value = 1
        for cycle in range(schedule.cycles + TIMEOUT_SLACK):
            if on_cycle is not None:
                await on_cycle(cycle)
            if cycle in drain:
                self._drained[schedule.drained_row(cycle)] = unpack(
                    result.value.to_unsigned(), config.cols, config.acc_width)
            await self.tick()
            self.dut.start.value = 0
            if int(self.dut.done.value):
                return cycle + 1
        raise TimeoutError(f"done did not rise within {schedule.cycles + TIMEOUT_SLACK} "
                           f"cycles")

    async def read(self):
        """The protected int8 outputs of the loaded tile's shape, int64 ``[m, n]``."""
        m, _, n = self.tile.shape
        out = np.zeros((m, n), dtype=np.int64)
        for row in range(m):
            self.dut.rd_addr.value = row
            await self.tick()
            out[row] = unpack(self.dut.rd_data.value.to_unsigned(), self.config.cols,
                              OUTPUT_WIDTH)[:n]
        return out

    def read_accumulators(self):
        """The biased accumulators of the last run, int64 ``[m, n]`` of the tile's shape."""
        if self._drained is None:
            raise RuntimeError("No run yet: call run() before read_accumulators()")
        m, _, n = self.tile.shape
        return wrap(self._drained[:m, :n] + self.tile.bias[:n], self.config.acc_width)

    async def run_tile(self, tile):
        """Load, run and read one tile; returns its outputs."""
        await self.load(tile)
        await self.run()
        return await self.read()


async def run_tiles(tb, tiles):
    """Run every tile of ``tiles`` in turn on ``tb``; returns the list of outputs."""
    return [await tb.run_tile(tile) for tile in tiles]

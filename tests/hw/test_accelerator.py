# amaranth: UnusedElaboratable=no
"""Accelerator: random tiles through the load / start / done / read protocol against
sim.tile.reference, in the Amaranth simulator."""

import numpy as np
import pytest

from neuroharden.hw.accelerator import Accelerator
from neuroharden.hw.contract import AcceleratorConfig, tile_cycles, unpack
from neuroharden.sim.accelerator_tb import random_tile, tile_writes
from neuroharden.sim.tile import Tile, reference
from tests.hw.simulation import simulate


class Driver:
    """The accelerator protocol on an Amaranth simulator context."""

    def __init__(self, ctx, dut):
        self.ctx, self.dut = ctx, dut

    async def load(self, tile):
        ctx, dut = self.ctx, self.dut
        for select, address, value in tile_writes(tile, dut.config):
            ctx.set(dut.wr_sel, select)
            ctx.set(dut.wr_addr, address)
            ctx.set(dut.wr_data, value)
            ctx.set(dut.wr_en, 1)
            await ctx.tick()
        ctx.set(dut.wr_en, 0)

    async def run(self):
        """Pulse start; return the cycles until done, checking busy on the way."""
        ctx, dut = self.ctx, self.dut
        ctx.set(dut.start, 1)
        cycles = 0
        while True:
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles += 1
            if ctx.get(dut.done):
                assert not ctx.get(dut.busy)
                return cycles
            assert ctx.get(dut.busy) and cycles < 10_000

    async def read(self, m, n):
        ctx, dut = self.ctx, self.dut
        out = np.zeros((m, n), dtype=np.int64)
        for row in range(m):
            ctx.set(dut.rd_addr, row)
            await ctx.tick()
            out[row] = unpack(ctx.get(dut.rd_data.as_value()), dut.cols, 8)[:n]
        return out


def run_tiles(dut, tiles, *, reruns=1):
    """Load each tile and run it ``reruns`` times; returns [(outputs, cycles), ...]."""
    results = []

    async def testbench(ctx):
        driver = Driver(ctx, dut)
        for tile in tiles:
            await driver.load(tile)
            for _ in range(reruns):
                cycles = await driver.run()
                m, _, n = tile.shape
                results.append((await driver.read(m, n), cycles))

    simulate(dut, testbench)
    return results


def check(dut, tiles, *, reruns=1):
    results = run_tiles(dut, tiles, reruns=reruns)
    for index, tile in enumerate(tiles):
        expected = reference(tile, dut.acc_width)[1]
        for outputs, cycles in results[index * reruns:(index + 1) * reruns]:
            np.testing.assert_array_equal(outputs, expected, err_msg=f"tile {index}")
            assert cycles == tile_cycles(dut.rows, dut.cols, tile.shape[1])


def copy_column(tile, source, target):
    """``tile`` with column ``target`` computing the same neuron as column ``source``."""
    fields = {name: np.array(getattr(tile, name)) for name in
              ("weights", "bias", "multiplier", "shift", "relu", "zero_point")}
    fields["weights"][:, target] = fields["weights"][:, source]
    for name in ("bias", "multiplier", "shift", "relu", "zero_point"):
        fields[name][target] = fields[name][source]
    return Tile(activations=tile.activations, lcu_pairs=tile.lcu_pairs,
                tmr_triples=tile.tmr_triples, vote_mode=tile.vote_mode, **fields)


def test_unprotected_tiles_full_partial_k1_and_k_depth():
    rng = np.random.default_rng(1)
    dut = Accelerator(rows=3, cols=4, k_depth=9)
    tiles = [random_tile(rng, 3, 9, 4), random_tile(rng, 3, 1, 4),
             random_tile(rng, 2, 5, 3), random_tile(rng, 1, 9, 1)]
    check(dut, tiles)


def test_zero_points_are_added_per_column_and_reloaded():
    """Per-column output zero points (imported asymmetric networks), then a tile without
    them: the loader overwrites the zero-point registers."""
    rng = np.random.default_rng(13)
    dut = Accelerator(rows=3, cols=4, k_depth=6)
    tiles = [random_tile(rng, 3, 6, 4, zero_point=[-128, 3, 0, 90]),
             random_tile(rng, 3, 4, 4, relu=True, zero_point=[-128, -128, -20, 127]),
             random_tile(rng, 3, 6, 4)]
    assert reference(tiles[1])[1].min() == -128  # ReLU clips at the zero point
    check(dut, tiles)


def test_extreme_operands_wrap_the_accumulator():
    dut = Accelerator(rows=2, cols=2, acc_width=16, k_depth=4)
    tile = Tile(activations=np.full((2, 4), -128), weights=np.full((4, 2), -128),
                bias=[0, -(1 << 31)], multiplier=[1, (1 << 16) - 1], shift=[0, 63],
                relu=[False, True])
    check(dut, [tile])


def test_lcu_pairs_saturate_at_half_max_and_merge():
    rng = np.random.default_rng(2)
    dut = Accelerator(rows=2, cols=5, protect="lcu", k_depth=6)
    # Copies whose unsplit value lies in 64..126: the AND alone would clear bit 6 and
    # return 37, the HALF_MAX ceiling makes both 63 first.
    ceiling = Tile(activations=[[1], [2]], weights=[[1, 1, 1, 1, 1]],
                   bias=[100, 40, 7, 100, 70], multiplier=[1] * 5, shift=[0] * 5,
                   relu=[True] * 5, lcu_pairs=[[0, 3], [4, 1]])
    np.testing.assert_array_equal(reference(ceiling)[1], [[63, 41, 8, 63, 41],
                                                          [63, 42, 9, 63, 42]])
    tiles = [random_tile(rng, 2, 6, 5, lcu_pairs=[[0, 3], [4, 1]], relu=True), ceiling,
             random_tile(rng, 2, 1, 4, lcu_pairs=[[2, 3]], relu=True, identical_copies=True),
             random_tile(rng, 1, 4, 5, relu=True)]
    check(dut, tiles)


def test_wide_lcu_pairs_saturate_at_int8_max_and_clear_bit_7():
    """Wide pairs (offset-free halves of a layer with a zero point) beside a narrow one:
    the group's wide bit selects the requantizer's ceiling and the LCU's reset bit."""
    rng = np.random.default_rng(4)
    dut = Accelerator(rows=2, cols=5, protect="lcu", k_depth=6)
    wide = Tile(activations=[[1], [2]], weights=[[1, 1, 1, 1, 1]],
                bias=[100, 40, 7, 100, 70], multiplier=[1] * 5, shift=[0] * 5,
                relu=[True] * 5, lcu_pairs=[[0, 3], [4, 1]], lcu_wide=[True, False])
    np.testing.assert_array_equal(reference(wide)[1], [[101, 41, 8, 101, 41],
                                                       [102, 42, 9, 102, 42]])
    tiles = [wide, random_tile(rng, 2, 6, 5, lcu_pairs=[[0, 3], [4, 1]], relu=True)]
    tiles.append(Tile(**{**{name: getattr(tiles[1], name) for name in
                            ("activations", "weights", "bias", "multiplier", "shift",
                             "relu", "lcu_pairs")}, "lcu_wide": [True, True]}))
    check(dut, tiles)


@pytest.mark.parametrize("vote_mode", ["bitwise", "word"])
def test_tmr_triples_vote(vote_mode):
    rng = np.random.default_rng(3)
    dut = Accelerator(rows=2, cols=4, protect="tmr", k_depth=5)
    # Three different copies (word mode: 0), and two copies that agree.
    disagreeing = random_tile(rng, 2, 5, 4, tmr_triples=[[3, 0, 2]], vote_mode=vote_mode)
    agreeing = copy_column(random_tile(rng, 2, 2, 3, tmr_triples=[[0, 1, 2]],
                                       vote_mode=vote_mode), 0, 2)
    y = reference(agreeing)[1]
    assert (y[:, 0] == y[:, 2]).all() and (y[:, :3] != 0).any()
    check(dut, [disagreeing, agreeing])


def test_rerun_without_reload_gives_the_same_outputs():
    rng = np.random.default_rng(4)
    dut = Accelerator(rows=2, cols=3, protect="tmr", k_depth=4)
    check(dut, [random_tile(rng, 2, 4, 3, tmr_triples=[[0, 1, 2]])], reruns=3)


def test_tile_writes_reject_what_the_build_cannot_run():
    rng = np.random.default_rng(5)
    small = AcceleratorConfig(rows=2, cols=2, k_depth=4)
    with pytest.raises(ValueError, match="does not fit"):
        tile_writes(random_tile(rng, 3, 2, 2), small)
    with pytest.raises(ValueError, match="does not fit"):
        tile_writes(random_tile(rng, 2, 5, 2), small)
    with pytest.raises(ValueError, match="LCU pairs"):
        tile_writes(random_tile(rng, 2, 2, 3, lcu_pairs=[[0, 1]]),
                    AcceleratorConfig(rows=2, cols=3, k_depth=4, protect="tmr"))
    with pytest.raises(ValueError, match="TMR triples"):
        tile_writes(random_tile(rng, 2, 2, 3, tmr_triples=[[0, 1, 2]]),
                    AcceleratorConfig(rows=2, cols=3, k_depth=4, protect="lcu"))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rows": 0, "cols": 2}, ValueError, "Row count"),
    ({"rows": 2, "cols": 0}, ValueError, "Column count"),
    ({"rows": 2.0, "cols": 2}, TypeError, "Row count"),
    ({"rows": 2, "cols": 2, "k_depth": 0}, ValueError, "k_depth"),
    ({"rows": 2, "cols": 2, "k_depth": "8"}, TypeError, "k_depth"),
    ({"rows": 2, "cols": 2, "protect": "ecc"}, ValueError, "Protection"),
    ({"rows": 2, "cols": 1, "protect": "lcu"}, ValueError, "at least 2"),
    ({"rows": 2, "cols": 2, "protect": "tmr"}, ValueError, "at least 3"),
    ({"rows": 2, "cols": 2, "width": 12}, ValueError, "Operand width"),
    ({"rows": 2, "cols": 2, "acc_width": 64}, ValueError, "Accumulator width"),
])
def test_bad_parameters_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        Accelerator(**kwargs)


def test_parameters_are_read_only():
    dut = Accelerator(rows=3, cols=4, protect="lcu", k_depth=16, acc_width=24)
    assert (dut.rows, dut.cols, dut.width, dut.acc_width, dut.protect, dut.k_depth) == \
        (3, 4, 8, 24, "lcu", 16)
    assert dut.config == AcceleratorConfig(rows=3, cols=4, protect="lcu", k_depth=16,
                                           acc_width=24)
    with pytest.raises(AttributeError):
        dut.protect = "tmr"


def test_writes_while_busy_are_ignored():
    rng = np.random.default_rng(6)
    dut = Accelerator(rows=2, cols=3, k_depth=4)
    tile = random_tile(rng, 2, 4, 3)
    out = {}

    async def testbench(ctx):
        driver = Driver(ctx, dut)
        await driver.load(tile)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        # Overwrite operands, parameters and K on every cycle of the run.
        ctx.set(dut.wr_en, 1)
        cycle = 0
        while not ctx.get(dut.done):
            ctx.set(dut.wr_sel, cycle % 8)
            ctx.set(dut.wr_addr, cycle % 3)
            ctx.set(dut.wr_data, 0x5A5A_5A5A)
            await ctx.tick()
            cycle += 1
        ctx.set(dut.wr_en, 0)
        out["y"] = await driver.read(2, 3)
        out["rerun"] = (await driver.run(), await driver.read(2, 3))

    simulate(dut, testbench)
    expected = reference(tile)[1]
    np.testing.assert_array_equal(out["y"], expected)
    np.testing.assert_array_equal(out["rerun"][1], expected)

"""The RTL fault runner (sim.rtl_runner + sim.tb_rtl_faults) on Icarus and Verilator.

Each (simulator, protection) runs one fault list in one simulator process (a module
fixture) that the checks share: the fault-free run equals sim.tile.reference, an
accumulator upset after the last MAC is XORed into exactly that accumulator and its
requantized output, a stuck weight register corrupts its column from its row down,
the fast driver equals the naive one, LCU copies mask 0->1 flips and TMR copies any
fault confined to one copy. A job of several tiles gives each tile the results of its
own process, and the Dask split is checked against one process.
"""

from dataclasses import replace

import numpy as np
import pytest

from neuroharden.golden.numerics import requantize, wrap
from neuroharden.hw.contract import (ACT_BUF, BIAS, K_LEN, STATE, STEP, WGT_BUF, Y,
                                     AcceleratorConfig, pe_site, tile_cycles)
from neuroharden.hw.pe import ACC, W_REG
from neuroharden.sim.accelerator_tb import random_tile
from neuroharden.sim.rtl_faults import RTLFault, RTLFaultSpace, sample
from neuroharden.sim.rtl_runner import accelerator_design, load_tile, run_faults, run_groups, save_tile
from neuroharden.sim.sites import resolve
from neuroharden.sim.tile import reference

ROWS, COLS, K = 3, 4, 12
SCHEDULE = AcceleratorConfig(rows=ROWS, cols=COLS, k_depth=K).schedule(K)
# Accumulator upsets at the first drain cycle (after every PE's last MAC).
ACC_FAULTS = [RTLFault(pe_site(r, c, ACC), bit, "bitflip", SCHEDULE.first_drain)
              for r, c, bit in ((0, 0, 3), (2, 3, 20), (1, 2, 31), (2, 0, 0))]
STUCK_FAULTS = [RTLFault(pe_site(r, c, W_REG), bit, model)
                for r, c, bit, model in ((0, 1, 7, "stuck1"), (1, 3, 2, "stuck0"),
                                         (2, 2, 4, "stuck1"))]


def stuck_that_shows(site, values, bit):
    """A stuck-at of ``bit`` that differs from the bit in one of ``values``."""
    return RTLFault(site, bit, "stuck1" if (~values >> bit & 1).any() else "stuck0")


def config(protect):
    return AcceleratorConfig(rows=ROWS, cols=COLS, k_depth=K, protect=protect)


def sim_params(sim):
    # Verilator builds take over a minute per configuration: slow.
    return pytest.param(sim, marks=[pytest.mark.slow] if sim == "verilator" else [])


SIMS = [sim_params("icarus"), sim_params("verilator")]


@pytest.fixture(scope="module", params=SIMS)
def plain(request, tmp_path_factory):
    """A plain tile, accumulator, stuck-at and sampled faults, fast and naive drivers."""
    sim = request.param
    tile = random_tile(np.random.default_rng(5), ROWS, K, COLS)
    _, catalogue = accelerator_design(config("none"), sim=sim)
    space = RTLFaultSpace(catalogue, "bitflip", cycles=tile_cycles(ROWS, COLS, K))
    faults = ACC_FAULTS + STUCK_FAULTS + sample(space, 40, 3)
    log = tmp_path_factory.mktemp("rtl") / "sim.log"
    fast = run_faults(config("none"), tile, faults, sim=sim, log=log)
    naive = run_faults(config("none"), tile, faults, sim=sim, driver="naive", log=log)
    return tile, fast, naive, sim


def test_tile_round_trip(tmp_path):
    tile = random_tile(np.random.default_rng(1), 2, 3, 4, tmr_triples=[[0, 1, 3]],
                       vote_mode="word")
    save_tile(tmp_path / "tile.npz", tile)
    back = load_tile(tmp_path / "tile.npz")
    for name in ("activations", "weights", "bias", "multiplier", "shift", "relu",
                 "lcu_pairs", "tmr_triples", "vote_mode"):
        np.testing.assert_array_equal(getattr(back, name), getattr(tile, name))


def test_fault_free_run_matches_reference(plain):
    tile, fast, _, _ = plain
    acc, y = reference(tile)
    # run_faults raises unless the RTL's fault-free run equals the reference.
    np.testing.assert_array_equal(fast.expected, y)
    np.testing.assert_array_equal(fast.expected_accumulators, acc)
    assert (fast.cycles == tile_cycles(ROWS, COLS, K))[:len(ACC_FAULTS + STUCK_FAULTS)].all()


def test_accumulator_upset_is_xored_into_its_output(plain):
    tile, fast, _, _ = plain
    acc, y = reference(tile)
    for index, fault in enumerate(ACC_FAULTS):
        r, c = (int(part) for part in fault.site.split(".")[1].split("_")[1:])
        # The PE holds the unbiased sum; the requantizer adds the bias.
        unbiased = int(acc[r, c]) - int(tile.bias[c])
        expected_acc = acc.copy()
        expected_acc[r, c] = wrap(((unbiased & 0xFFFFFFFF) ^ (1 << fault.bit))
                                  + int(tile.bias[c]), 32)
        np.testing.assert_array_equal(fast.accumulators[index], expected_acc, str(fault))
        expected_y = y.copy()
        expected_y[r, c] = requantize(expected_acc[r, c], tile.multiplier[c], tile.shift[c],
                                      bool(tile.relu[c]))
        np.testing.assert_array_equal(fast.outputs[index], expected_y, str(fault))


def test_stuck_weight_register_corrupts_its_column_below(plain):
    tile, fast, _, _ = plain
    acc, y = reference(tile)
    offset = len(ACC_FAULTS)
    for index, fault in enumerate(STUCK_FAULTS, offset):
        r, c = (int(part) for part in fault.site.split(".")[1].split("_")[1:])
        column = tile.weights[:, c] & 0xFF
        column = column | (1 << fault.bit) if fault.model == "stuck1" \
            else column & ~(1 << fault.bit)
        column = np.where(column > 127, column - 256, column)
        expected_acc = acc.copy()
        expected_acc[r:, c] = wrap(tile.activations[r:] @ column + tile.bias[c], 32)
        np.testing.assert_array_equal(fast.accumulators[index], expected_acc, str(fault))
        assert (fast.accumulators[index][r:, c] != acc[r:, c]).any(), str(fault)
        changed = fast.outputs[index] != y
        assert not changed[:r].any() and not np.delete(changed, c, 1).any(), str(fault)


def test_fast_driver_equals_naive(plain):
    _, fast, naive, _ = plain
    np.testing.assert_array_equal(fast.outputs, naive.outputs)
    np.testing.assert_array_equal(fast.accumulators, naive.accumulators)
    np.testing.assert_array_equal(fast.cycles, naive.cycles)
    assert 0 < fast.masked.sum() < len(fast.faults)
    rows = fast.rows()
    assert [row["masked"] for row in rows] == fast.masked.tolist()
    assert all(len(row["positions"]) == row["differing"] for row in rows)


def test_job_of_several_tiles_equals_one_process_per_tile(plain):
    tile, fast, _, sim = plain
    # A shorter tile after the full-depth one: its faults that stretch K (K_LEN) read
    # the buffer words past its K, which the tile before it filled; controller and
    # buffer faults also leave state behind for the next fault and tile to meet.
    short = random_tile(np.random.default_rng(6), 2, 5, 3)
    _, catalogue = accelerator_design(config("none"), sim=sim)
    stateful = resolve(catalogue, [K_LEN, STEP, STATE, f"{ACT_BUF}[*]", f"{WGT_BUF}[*]",
                                   config("none").registers[BIAS].glob])
    faults = [RTLFault(K_LEN, 3, "stuck1"), RTLFault(K_LEN, 3, "bitflip", 1),
              RTLFault(f"{ACT_BUF}[7]", 0, "stuck1"), RTLFault(K_LEN, 2, "stuck1")] + \
        sample(RTLFaultSpace(stateful, "bitflip", cycles=tile_cycles(ROWS, COLS, 5)), 16, 9)
    alone = run_faults(config("none"), short, faults, sim=sim)
    assert not alone.masked.all()
    job = run_groups(config("none"), [(tile, fast.faults), (short, faults),
                                      (tile, fast.faults[:6])], sim=sim)
    for results, expected in zip(job, [fast, alone, fast]):
        count = len(results.faults)
        assert results.faults == expected.faults[:count]
        np.testing.assert_array_equal(results.outputs, expected.outputs[:count])
        np.testing.assert_array_equal(results.accumulators, expected.accumulators[:count])
        np.testing.assert_array_equal(results.cycles, expected.cycles[:count])
        np.testing.assert_array_equal(results.expected, expected.expected)


def test_job_checks_every_tile_before_the_simulator_starts():
    tile = random_tile(np.random.default_rng(2), ROWS, K, COLS)
    wide = random_tile(np.random.default_rng(3), ROWS, K, COLS + 1)
    with pytest.raises(ValueError, match="does not fit"):
        run_groups(config("none"), [(tile, []), (wide, [])], sim="icarus")
    with pytest.raises(ValueError, match="No tile"):
        run_groups(config("none"), [], sim="icarus")


@pytest.mark.parametrize("sim", SIMS)
def test_lcu_masks_single_zero_to_one_flips_in_a_copy(sim):
    tile = random_tile(np.random.default_rng(7), ROWS, K, COLS, lcu_pairs=[[0, COLS - 1]],
                       relu=True, identical_copies=True, nonnegative=True)
    # Shifts that bring each column's largest output to about 40 (below the copies'
    # ceiling of 63), so the outputs have 0 bits to flip.
    acc = reference(tile)[0]
    tile = replace(tile, shift=np.array([(int(acc[:, c].max()) * int(tile.multiplier[c])
                                          // 40).bit_length() for c in range(COLS)]))
    y = reference(tile)[1]
    # y_{c} holds output row ROWS-1-i while it is protected, at cycle first_drain+1+i.
    population = [RTLFault(Y.format(c), bit, "bitflip", SCHEDULE.first_drain + 1 + i)
                  for c in (0, COLS - 1) for i in range(ROWS) for bit in range(8)
                  if not y[ROWS - 1 - i, c] >> bit & 1]
    chosen = np.random.default_rng(8).choice(len(population), 16, replace=False)
    faults = [population[index] for index in chosen]
    # The same flips in the unprotected column 1 show.
    control = [RTLFault(Y.format(1), fault.bit, "bitflip", fault.cycle)
               for fault in faults[:4]]
    results = run_faults(config("lcu"), tile, faults + control, sim=sim, accumulators=False)
    assert results.masked[:len(faults)].all()
    assert not results.masked[len(faults):].any()


@pytest.mark.parametrize("sim", SIMS)
def test_tmr_masks_faults_confined_to_one_copy(sim):
    tile = random_tile(np.random.default_rng(9), ROWS, K, COLS, tmr_triples=[[0, 3, 1]],
                       identical_copies=True)
    _, catalogue = accelerator_design(config("tmr"), sim=sim)
    copy = resolve(catalogue, [pe_site("*", 3, W_REG), pe_site("*", 3, ACC), Y.format(3)])
    flips = sample(RTLFaultSpace(copy, "bitflip", cycles=tile_cycles(ROWS, COLS, K)), 20, 4)
    stuck = sample(RTLFaultSpace(copy, "stuck-at"), 8, 5)
    acc, y = reference(tile)
    unprotected = [stuck_that_shows(Y.format(2), y[:, 2] & 0xFF, 7),
                   stuck_that_shows(pe_site(0, 2, ACC), acc[:1, 2] & 0xFFFFFFFF, 30)]
    results = run_faults(config("tmr"), tile, flips + stuck + unprotected, sim=sim,
                         accumulators=False)
    assert results.masked[:-2].all()
    assert not results.masked[-2:].any()


@pytest.mark.slow
def test_dask_split_equals_one_process():
    from distributed import Client, LocalCluster

    from neuroharden.sim.rtl_runner import run_faults_dask

    tile = random_tile(np.random.default_rng(11), ROWS, K, COLS)
    _, catalogue = accelerator_design(config("none"), sim="icarus")
    faults = sample(RTLFaultSpace(catalogue, "bitflip", cycles=tile_cycles(ROWS, COLS, K)),
                    30, 6) + sample(RTLFaultSpace(catalogue, "stuck-at"), 10, 7)
    single = run_faults(config("none"), tile, faults, sim="icarus")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        split = run_faults_dask(client, config("none"), tile, faults, sim="icarus")
    assert split.faults == single.faults
    np.testing.assert_array_equal(split.outputs, single.outputs)
    np.testing.assert_array_equal(split.accumulators, single.accumulators)
    np.testing.assert_array_equal(split.cycles, single.cycles)

"""The stuck weight-input model (sim.stuck_weights) against itself, the compiler and the RTL.

The RTL checks run every bit of every PE weight register, stuck at 0 and at 1, against
a small tile (sim.rtl_runner.run_faults), on 8- and 16-bit arrays, and whole faulty
inferences of a small network (sim.tb_stuck_network). Verilator's builds take over a
minute each, and the whole inferences tens of seconds on either simulator, so only the
16-bit tile check on Icarus is in the quick subset.
"""

import numpy as np
import pytest

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.sim.accelerator_tb import random_tile
from neuroharden.sim.compiler import compile_network, infer
from neuroharden.sim.rtl_faults import RTLFault, paper003_space
from neuroharden.sim.rtl_runner import accelerator_design, run_faults
from neuroharden.sim.stuck_weights import (StuckWeightNetwork, parse_site, rtl_logits, stuck_values,
                               tile_outputs)
from neuroharden.sim.tile import reference
from tests.golden.fi_nets import random_net

ROWS, COLS, K = 3, 2, 5


def test_stuck_values_sign_extend_int8_weights():
    w = np.array([-3, 5, 0, -128, 127])
    np.testing.assert_array_equal(stuck_values(w, 0, "stuck0", 8), [-4, 4, 0, -128, 126])
    np.testing.assert_array_equal(stuck_values(w, 7, "stuck1", 8), [-3, -123, -128, -128, -1])
    # On a 16-bit array bits 8..15 hold copies of the sign.
    np.testing.assert_array_equal(stuck_values(w, 15, "stuck0", 16),
                                  [32765, 5, 0, 32640, 127])
    np.testing.assert_array_equal(stuck_values(w, 8, "stuck1", 16), [-3, 261, 256, -128, 383])
    # Negative weights have every upper bit set already.
    np.testing.assert_array_equal(stuck_values(w, 9, "stuck1", 16), [-3, 517, 512, -128, 639])
    with pytest.raises(ValueError, match="outside a 8-bit"):
        stuck_values(w, 8, "stuck0", 8)
    with pytest.raises(ValueError, match="stuck-at model"):
        stuck_values(w, 0, "bitflip", 8)


def test_parse_site():
    assert parse_site("array.pe_2_11.w_reg") == (2, 11)
    assert parse_site("pe_0_1.w_reg") == (0, 1)
    with pytest.raises(ValueError, match="not a PE weight register"):
        parse_site("array.pe_0_1.a_reg")


def test_tile_model_corrupts_its_column_from_its_row_down():
    tile = random_tile(np.random.default_rng(0), 4, 6, 3)
    acc, y = reference(tile)
    for width in (8, 16):
        faulty_acc, _ = tile_outputs(tile, "array.pe_1_2.w_reg", 3, "stuck1", width=width)
        column = stuck_values(tile.weights[:, 2], 3, "stuck1", width)
        expected = acc.copy()
        expected[1:, 2] = (tile.activations[1:] @ column + tile.bias[2] + 2**31) % 2**32 - 2**31
        np.testing.assert_array_equal(faulty_acc, expected)
    # A PE column beyond the tile's columns holds zero weights nobody reads.
    np.testing.assert_array_equal(tile_outputs(tile, "array.pe_0_5.w_reg", 0, "stuck1")[1], y)


@pytest.mark.parametrize("rows, cols", [(3, 3), (4, 5)])
def test_network_model_equals_the_tile_model_tile_by_tile(rows, cols):
    net, x = random_net(images=3)
    x = x.numpy()
    program = compile_network(net, rows=rows, cols=cols)
    rng = np.random.default_rng(rows)
    for width in (8, 16):
        model = StuckWeightNetwork(program, x, width=width)
        np.testing.assert_array_equal(model.logits, infer(program, x)[0])
        changed = 0
        for _ in range(12):
            site = f"array.pe_{rng.integers(rows)}_{rng.integers(cols)}.w_reg"
            bit, stuck = int(rng.integers(width)), ("stuck0", "stuck1")[rng.integers(2)]
            logits = model.run(site, bit, stuck)
            tiled = infer(program, x, lambda t: tile_outputs(t, site, bit, stuck,
                                                             width=width)[1])[0]
            np.testing.assert_array_equal(logits, tiled, f"{site} {bit} {stuck}")
            changed += not np.array_equal(logits, model.logits)
        assert changed > 0


@pytest.mark.parametrize("sim, width", [
    # Icarus at 16 bits (the sign-extension bits) stays in the quick subset.
    pytest.param("icarus", 8, marks=pytest.mark.slow), ("icarus", 16),
    pytest.param("verilator", 8, marks=pytest.mark.slow),
    pytest.param("verilator", 16, marks=pytest.mark.slow)])
def test_tile_model_equals_rtl_for_every_weight_bit(sim, width):
    config = AcceleratorConfig(rows=ROWS, cols=COLS, k_depth=K, width=width)
    _, catalogue = accelerator_design(config, sim=sim)
    space = paper003_space(catalogue)
    faults = [space.fault(k) for k in range(len(space))]
    assert len(faults) == 2 * width * ROWS * COLS
    rng = np.random.default_rng(width)
    # A full tile and one smaller than the array (padded rows and columns).
    for tile in (random_tile(rng, ROWS, K, COLS), random_tile(rng, ROWS - 1, K - 1, 1)):
        results = run_faults(config, tile, faults, sim=sim)
        for index, fault in enumerate(faults):
            acc, y = tile_outputs(tile, fault.site, fault.bit, fault.model, width=width)
            np.testing.assert_array_equal(results.accumulators[index], acc, str(fault))
            np.testing.assert_array_equal(results.outputs[index], y, str(fault))
        assert 0 < results.masked.sum() < len(faults)


@pytest.mark.slow(seconds=47)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_network_model_equals_whole_rtl_inferences(sim):
    net, x = random_net(images=2)
    x = x.numpy()
    program = compile_network(net, rows=ROWS, cols=COLS)
    faults = {8: [RTLFault("array.pe_0_1.w_reg", 6, "stuck1"),
                  RTLFault("array.pe_2_0.w_reg", 7, "stuck0")],
              16: [RTLFault("array.pe_1_0.w_reg", 15, "stuck0"),
                   RTLFault("array.pe_0_1.w_reg", 9, "stuck1")]}
    for width, chosen in faults.items():
        model = StuckWeightNetwork(program, x, width=width)
        logits = rtl_logits(program, x, chosen, width=width, sim=sim)
        for fault, rtl in zip(chosen, logits):
            expected = model.run(fault.site, fault.bit, fault.model)
            assert not np.array_equal(expected, model.logits), str(fault)
            np.testing.assert_array_equal(rtl, expected, str(fault))

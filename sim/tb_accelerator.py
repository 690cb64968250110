"""cocotb regression of the accelerator: random tiles against sim.tile.reference, and
single-copy faults corrected by the LCU or masked by the TMR voters.

The configuration (``sim.runner``) gives ``rows``, ``cols``, ``k_depth``, ``protect``,
``width`` and ``acc_width`` of the build; one module serves all three protections.
"""

from dataclasses import replace

import cocotb
import numpy as np

from neuroharden.hw.accelerator import WRITE_SELECT, tile_cycles
from .accelerator_tb import AcceleratorTB, random_tile, run_tiles
from .inject import flip
from .runner import tb_config
from .tile import reference


async def started_tb(dut):
    tb = AcceleratorTB.from_config(dut, tb_config())
    await tb.start()
    return tb


def protection_groups(tb, n):
    """Protection map of an ``n``-column tile for this build: two groups if they fit."""
    if tb.protect == "lcu":
        return {"lcu_pairs": [[0, n - 1], [1, n - 2]][:n // 2]}
    if tb.protect == "tmr":
        return {"tmr_triples": [[n - 1, 0, n // 2]]}
    return {}


def first_drain_cycle(tb):
    """The ``run`` cycle of the first drain (accumulators final, before the drain edge)."""
    return tb.tile.shape[1] + tb.rows + tb.cols + 1


@cocotb.test()
async def random_tiles_match_reference(dut):
    """Full and partial tiles, K = 1 and K = k_depth, with this build's protection."""
    tb = await started_tb(dut)
    rng = np.random.default_rng(11)
    shapes = [(tb.rows, tb.k_depth, tb.cols), (tb.rows, 1, tb.cols),
              (max(1, tb.rows - 1), tb.k_depth // 2 + 1, tb.cols - 1 or 1),
              (1, 3, tb.cols), (tb.rows, tb.k_depth, tb.cols)]
    tiles = []
    for index, (m, k, n) in enumerate(shapes):
        groups = protection_groups(tb, n) if n >= 3 else {}
        tiles.append(random_tile(rng, m, k, n, vote_mode=("bitwise", "word")[index % 2],
                                 identical_copies=index % 2 == 1, **groups))
    for index, (tile, outputs) in enumerate(zip(tiles, await run_tiles(tb, tiles))):
        np.testing.assert_array_equal(outputs, reference(tile, tb.acc_width)[1],
                                      err_msg=f"tile {index} {tile.shape}")
    np.testing.assert_array_equal(tb.read_accumulators(), reference(tiles[-1], tb.acc_width)[0])


@cocotb.test()
async def rerun_without_reload(dut):
    """A loaded tile runs again, with the advertised cycle count, without reloading."""
    tb = await started_tb(dut)
    tile = random_tile(np.random.default_rng(12), tb.rows, 5, tb.cols,
                       **protection_groups(tb, tb.cols))
    await tb.load(tile)
    acc, expected = reference(tile, tb.acc_width)
    for _ in range(3):
        assert await tb.run() == tile_cycles(tb.rows, tb.cols, 5)
        np.testing.assert_array_equal(await tb.read(), expected)
        np.testing.assert_array_equal(tb.read_accumulators(), acc)


async def faulty_run(tb, handle, bits, cycle):
    """Run the loaded tile with ``bits`` of ``handle`` flipped at ``cycle``; read it."""
    async def upset(now):
        if now == cycle:
            flip(handle, bits)
    await tb.run(on_cycle=upset)
    return await tb.read()


def protected_tile(tb, rng):
    """A ReLU tile whose protected copies compute one neuron with non-negative inputs,
    and whose column ``cols - 2`` is an unprotected control column."""
    n = tb.cols
    groups = ({"lcu_pairs": [[0, n - 1]]} if tb.protect == "lcu"
              else {"tmr_triples": [[0, n - 1, 1]]})
    while True:
        tile = random_tile(rng, tb.rows, 6, n, relu=True, identical_copies=True,
                           nonnegative=True, **groups)
        # Shifts that bring each column's largest output to about 40.
        acc = reference(tile, tb.acc_width)[0]
        shift = [(int(acc[:, c].max()) * int(tile.multiplier[c]) // 40).bit_length()
                 for c in range(n)]
        tile = replace(tile, shift=np.array(shift))
        y = reference(tile, tb.acc_width)[1]
        # Every fault-free value is below the copies' ceiling, so a fault shows.
        if ((y > 0) & (y < 63)).all():
            return tile, y


@cocotb.test(skip=tb_config().get("protect") not in ("lcu", "tmr"))
async def single_copy_faults_are_corrected(dut):
    """0->1 flips in one copy's accumulator or requantized value (LCU), or any flip
    in one copy (TMR), leave the outputs correct; the same flip in an unprotected
    column corrupts them."""
    tb = await started_tb(dut)
    assert tb.cols >= 4, "the fault test needs a control column besides the copies"
    rng = np.random.default_rng(13)
    tile, expected = protected_tile(tb, rng)
    await tb.load(tile)
    copy, control = tb.cols - 1, tb.cols - 2
    bottom = tb.rows - 1
    drain = first_drain_cycle(tb)
    acc_bit = tb.acc_width - 2
    cases = [
        # Accumulator of the bottom-row PE, before the drain: + 2**(acc_width-2), so the
        # copy saturates at its ceiling (0->1 flips in its int8 value).
        (f"array.pe_{bottom}_{{}}.acc", [acc_bit], drain),
        # An accumulator of the top row, which drains through the rows below.
        (f"array.pe_0_{{}}.acc", [acc_bit], drain),
        # The requantized value of the bottom row, while the protection unit reads it:
        # bit 6 (LCU: always 0 in a fault-free copy), then every bit that is 0.
        ("y_{}", [6], drain + 1),
        ("y_{}", [bit for bit in range(7) if not expected[bottom, copy] >> bit & 1],
         drain + 1),
    ]
    if tb.protect == "tmr":
        cases += [("y_{}", [7], drain + 1), ("y_{}", [0, 1, 2, 3, 4, 5, 6, 7], drain + 1),
                  (f"array.pe_{bottom}_{{}}.acc", [tb.acc_width - 1], drain)]
    for vote_mode in (("bitwise", "word") if tb.protect == "tmr" else ("bitwise",)):
        if tb.protect == "tmr":
            await tb.write(WRITE_SELECT["word_vote"], 0, int(vote_mode == "word"))
        for path, bits, cycle in cases:
            handle = dut
            for part in path.format(copy).split("."):
                handle = getattr(handle, part)
            outputs = await faulty_run(tb, handle, bits, cycle)
            np.testing.assert_array_equal(outputs, expected, err_msg=f"{path} {bits}")
            handle = dut
            for part in path.format(control).split("."):
                handle = getattr(handle, part)
            outputs = await faulty_run(tb, handle, bits, cycle)
            assert (outputs[:, control] != expected[:, control]).any(), (path, bits)
            assert np.array_equal(np.delete(outputs, control, 1),
                                  np.delete(expected, control, 1)), (path, bits)

"""cocotb regression of the accelerator: random tiles against sim.tile.reference, and
single-copy faults corrected by the LCU or masked by the TMR voters.

The configuration (``sim.runner``) gives the build's
:class:`hw.contract.AcceleratorConfig` as a dict (``accelerator``); one module serves
all three protections.
"""

from dataclasses import replace

import cocotb
import numpy as np

from neuroharden.hw.contract import WRITE_SELECT, WORD_VOTE, Y, AcceleratorConfig, pe_site
from neuroharden.hw.pe import ACC
from .accelerator_tb import AcceleratorTB, protection_groups, random_tile, run_tiles
from .inject import flip
from .runner import tb_config
from .sites import site_handle
from .tile import reference


def build_config():
    return AcceleratorConfig.from_dict(tb_config()["accelerator"])


async def started_tb(dut):
    tb = AcceleratorTB(dut, build_config())
    await tb.start()
    return tb


@cocotb.test()
async def random_tiles_match_reference(dut):
    """Full and partial tiles, K = 1 and K = k_depth, with this build's protection."""
    tb = await started_tb(dut)
    config = tb.config
    rng = np.random.default_rng(11)
    shapes = [(config.rows, config.k_depth, config.cols), (config.rows, 1, config.cols),
              (max(1, config.rows - 1), config.k_depth // 2 + 1, config.cols - 1 or 1),
              (1, 3, config.cols), (config.rows, config.k_depth, config.cols)]
    tiles = []
    for index, (m, k, n) in enumerate(shapes):
        groups = protection_groups(config, n) if n >= 3 else {}
        tiles.append(random_tile(rng, m, k, n, vote_mode=("bitwise", "word")[index % 2],
                                 identical_copies=index % 2 == 1, **groups))
    for index, (tile, outputs) in enumerate(zip(tiles, await run_tiles(tb, tiles))):
        np.testing.assert_array_equal(outputs, reference(tile, config.acc_width)[1],
                                      err_msg=f"tile {index} {tile.shape}")
    np.testing.assert_array_equal(tb.read_accumulators(),
                                  reference(tiles[-1], config.acc_width)[0])


@cocotb.test()
async def rerun_without_reload(dut):
    """A loaded tile runs again, with the advertised cycle count, without reloading."""
    tb = await started_tb(dut)
    config = tb.config
    tile = random_tile(np.random.default_rng(12), config.rows, 5, config.cols,
                       **protection_groups(config, config.cols))
    await tb.load(tile)
    acc, expected = reference(tile, config.acc_width)
    for _ in range(3):
        assert await tb.run() == config.schedule(5).cycles
        np.testing.assert_array_equal(await tb.read(), expected)
        np.testing.assert_array_equal(tb.read_accumulators(), acc)


async def faulty_run(tb, handle, bits, cycle):
    """Run the loaded tile with ``bits`` of ``handle`` flipped at ``cycle``; read it."""
    async def upset(now):
        if now == cycle:
            flip(handle, bits)
    await tb.run(on_cycle=upset)
    return await tb.read()


def protected_tile(config, rng):
    """A ReLU tile whose protected copies compute one neuron with non-negative inputs,
    and whose column ``cols - 2`` is an unprotected control column."""
    n = config.cols
    groups = ({"lcu_pairs": [[0, n - 1]]} if config.protect == "lcu"
              else {"tmr_triples": [[0, n - 1, 1]]})
    while True:
        tile = random_tile(rng, config.rows, 6, n, relu=True, identical_copies=True,
                           nonnegative=True, **groups)
        # Shifts that bring each column's largest output to about 40.
        acc = reference(tile, config.acc_width)[0]
        shift = [(int(acc[:, c].max()) * int(tile.multiplier[c]) // 40).bit_length()
                 for c in range(n)]
        tile = replace(tile, shift=np.array(shift))
        y = reference(tile, config.acc_width)[1]
        # Every fault-free value is below the copies' ceiling, so a fault shows.
        if ((y > 0) & (y < 63)).all():
            return tile, y


@cocotb.test(skip=build_config().protect == "none")
async def single_copy_faults_are_corrected(dut):
    """0->1 flips in one copy's accumulator or requantized value (LCU), or any flip
    in one copy (TMR), leave the outputs correct; the same flip in an unprotected
    column corrupts them."""
    tb = await started_tb(dut)
    config = tb.config
    assert config.cols >= 4, "the fault test needs a control column besides the copies"
    rng = np.random.default_rng(13)
    tile, expected = protected_tile(config, rng)
    await tb.load(tile)
    copy, control = config.cols - 1, config.cols - 2
    bottom = config.rows - 1
    schedule = config.schedule(tile.shape[1])
    drain, protected = schedule.first_drain, schedule.output_cycle(bottom)
    acc_bit = config.acc_width - 2
    y = config.registers[Y]
    # (path of a column's register, bits flipped, cycle)
    cases = [
        # Accumulator of the bottom-row PE, before the drain: + 2**(acc_width-2), so the
        # copy saturates at its ceiling (0->1 flips in its int8 value).
        (lambda c: pe_site(bottom, c, ACC), [acc_bit], drain),
        # An accumulator of the top row, which drains through the rows below.
        (lambda c: pe_site(0, c, ACC), [acc_bit], drain),
        # The requantized value of the bottom row, while the protection unit reads it:
        # bit 6 (LCU: always 0 in a fault-free copy), then every bit that is 0.
        (y.path, [6], protected),
        (y.path, [bit for bit in range(7) if not expected[bottom, copy] >> bit & 1],
         protected),
    ]
    if config.protect == "tmr":
        cases += [(y.path, [7], protected), (y.path, [0, 1, 2, 3, 4, 5, 6, 7], protected),
                  (lambda c: pe_site(bottom, c, ACC), [config.acc_width - 1], drain)]
    for vote_mode in (("bitwise", "word") if config.protect == "tmr" else ("bitwise",)):
        if config.protect == "tmr":
            await tb.write(WRITE_SELECT[config.registers[WORD_VOTE].select], 0,
                           int(vote_mode == "word"))
        for path, bits, cycle in cases:
            outputs = await faulty_run(tb, site_handle(dut, path(copy)), bits, cycle)
            np.testing.assert_array_equal(outputs, expected, err_msg=f"{path(copy)} {bits}")
            outputs = await faulty_run(tb, site_handle(dut, path(control)), bits, cycle)
            assert (outputs[:, control] != expected[:, control]).any(), (path(control), bits)
            assert np.array_equal(np.delete(outputs, control, 1),
                                  np.delete(expected, control, 1)), (path(control), bits)

"""cocotb regression of the AXI accelerator with cocotbext-axi as the bus peer: random
tiles under random backpressure against sim.tile.reference, the register map (SLVERR
included), the done interrupt, and the error counters after a deposited fault in one
copy of a protected neuron.

The configuration (``sim.runner``) gives the build's
:class:`hw.contract.AcceleratorConfig` as a dict (``accelerator``); one module serves
all three protections.
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, with_timeout

from neuroharden.hw.contract import ERROR_FLAGS, Y, AcceleratorConfig, State
from neuroharden.hw.csr import CSRS, ID_VALUE, PROTECT_CODE, csr
from .accelerator_tb import protection_groups, random_tile
from .axi_tb import AXIAcceleratorTB
from .runner import tb_config
from .sites import site_handle
from .tile import reference


async def started_tb(dut):
    tb = AXIAcceleratorTB(dut, AcceleratorConfig.from_dict(tb_config()["accelerator"]))
    await tb.start()
    return tb


@cocotb.test()
async def random_tiles_under_backpressure(dut):
    """Full and partial tiles, K = 1 and K = k_depth, with random pauses on both streams;
    the cycle counter reads the documented tile time."""
    tb = await started_tb(dut)
    config = tb.config
    rng = np.random.default_rng(21)
    tb.backpressure(np.random.default_rng(22))
    shapes = [(config.rows, config.k_depth, config.cols), (config.rows, 1, config.cols),
              (max(1, config.rows - 1), config.k_depth // 2 + 1, config.cols - 1 or 1),
              (1, 3, config.cols), (config.rows, config.k_depth, config.cols)]
    for index, (m, k, n) in enumerate(shapes):
        groups = protection_groups(config, n) if n >= 3 else {}
        tile = random_tile(rng, m, k, n, vote_mode=("bitwise", "word")[index % 2],
                           identical_copies=index % 2 == 1, **groups)
        outputs = await with_timeout(tb.run_tile(tile), 200, "us")
        np.testing.assert_array_equal(outputs, reference(tile, config.acc_width)[1],
                                      err_msg=f"tile {index} {tile.shape}")
        assert await tb.read_csr("CYCLES") == config.schedule(k).cycles
    status = await tb.read_csr("STATUS")
    assert tb.field(status, "STATUS", "busy") == 0 and tb.field(status, "STATUS", "done") == 1
    assert tb.field(status, "STATUS", "load_error") == 0


@cocotb.test()
async def register_map(dut):
    """Every register reads; read-write ones keep what is written; unmapped offsets,
    writes to read-only registers and an out-of-range K get SLVERR and change nothing."""
    tb = await started_tb(dut)
    config = tb.config
    assert await tb.read_csr("ID") == ID_VALUE
    value = await tb.read_csr("CONFIG")
    assert [tb.field(value, "CONFIG", name) for name in ("rows", "cols", "protect", "k_depth")] \
        == [config.rows, config.cols, PROTECT_CODE[config.protect], config.k_depth]
    for register in CSRS:
        await tb.read_csr(register.name)
    assert await tb.read_csr("K") == 1
    assert await tb.write_csr("K", config.k_depth) == 0
    assert await tb.read_csr("K") == config.k_depth
    for bad in (0, config.k_depth + 1):
        assert await tb.write_csr("K", bad) == 2
        assert await tb.read_csr("K") == config.k_depth
    assert await tb.write_csr("VOTE", 1) == 0
    assert await tb.read_csr("VOTE") == int(config.protect == "tmr")
    assert await tb.write_csr("IRQ_ENABLE", 3) == 0 and await tb.read_csr("IRQ_ENABLE") == 3
    for register in CSRS:
        if register.access == "ro":
            before = await tb.read_csr(register.name)
            assert await tb.write_csr(register.name, 0xFFFFFFFF) == 2, register.name
            if register.name not in ("STATUS", "CYCLES"):
                assert await tb.read_csr(register.name) == before, register.name
    last = max(register.offset for register in CSRS)
    for offset in (last + 4, 0x100, 0xFFC):
        response = await tb.axil.read(offset, 4)
        assert int(response.resp) == 2, hex(offset)
        response = await tb.axil.write(offset, b"\xff\xff\xff\xff")
        assert int(response.resp) == 2, hex(offset)
    # Byte strobes: a one-byte write of K changes that byte only.
    await tb.axil.write(csr("K").offset, bytes([3]))
    assert await tb.read_csr("K") == (config.k_depth & ~0xFF) | 3


@cocotb.test()
async def interrupt_on_done(dut):
    """irq rises when a run finishes if enabled, stays low if not, and clears on write 1."""
    tb = await started_tb(dut)
    config = tb.config
    tile = random_tile(np.random.default_rng(23), config.rows, 4, config.cols)
    # Disabled: the status bit is set, irq stays low.
    await tb.write_csr("IRQ_ENABLE", 0)
    await tb.send_tile(tile)
    await tb.write_csr("CTRL", csr("CTRL").field("start").mask)
    received = await with_timeout(tb.receive(tile.shape[::2]), 100, "us")
    np.testing.assert_array_equal(received, reference(tile, config.acc_width)[1])
    assert await tb.read_csr("IRQ_STATUS") & 1 == 1 and not int(dut.irq.value)
    assert await tb.write_csr("IRQ_STATUS", 1) == 0
    assert await tb.read_csr("IRQ_STATUS") & 1 == 0
    # Enabled: irq rises at done, and the acknowledgement lowers it.
    await tb.write_csr("IRQ_ENABLE", 1)
    await tb.send_tile(tile)
    await tb.write_csr("CTRL", csr("CTRL").field("start").mask)
    await with_timeout(tb.wait_irq(), 100, "us")
    assert tb.field(await tb.read_csr("STATUS"), "STATUS", "done") == 1
    await tb.write_csr("IRQ_STATUS", 1)
    await FallingEdge(dut.clk)
    assert not int(dut.irq.value)
    np.testing.assert_array_equal(await tb.receive(tile.shape[::2]),
                                  reference(tile, config.acc_width)[1])


async def run_with_deposit(tb, tile, flips):
    """Run ``tile`` with ``flips`` (column -> XOR mask) deposited into the ``y_{c}``
    registers while they hold the last output row: one faulty row."""
    core = tb.dut.core
    await tb.send_tile(tile)
    await tb.write_csr("CTRL", csr("CTRL").field("start").mask)
    while int(core.state.value) != State.DRAIN:
        await FallingEdge(tb.dut.clk)
    await FallingEdge(tb.dut.clk)   # y_{c} now hold row rows - 1, being protected
    for column, mask in flips.items():
        handle = site_handle(core, Y.format(column))
        handle.value = (int(handle.value.to_unsigned()) ^ mask) & 0xFF
    return await with_timeout(tb.receive(tile.shape[::2]), 100, "us")


@cocotb.test()
async def error_counters_count_a_fault_in_one_copy(dut):
    """A flip deposited in one copy of a protected neuron counts one row in the
    protection's counter and raises IRQ_STATUS.error; without protection nothing counts.
    With word-level TMR, two copies flipped differently count a row with no majority.
    clear_errors zeroes the counters."""
    tb = await started_tb(dut)
    config = tb.config
    n = config.cols
    rng = np.random.default_rng(24)
    groups = protection_groups(config, n)
    tile = random_tile(rng, config.rows, 6, n, identical_copies=True, **groups)
    expected = reference(tile, config.acc_width)[1]
    copy = n - 1   # a copy of the first protection group (or any column without one)
    await tb.write_csr("IRQ_ENABLE", 2)
    outputs = await run_with_deposit(tb, tile, {copy: 0x01})
    counts = await tb.error_counts()
    wanted = {flag: 0 for flag in ERROR_FLAGS}
    if config.protect != "none":
        wanted[f"{config.protect}_differ"] = 1
    assert counts == wanted, counts
    assert bool(await tb.read_csr("IRQ_STATUS") & 2) == (config.protect != "none")
    assert bool(int(tb.dut.irq.value)) == (config.protect != "none")
    if config.protect == "tmr":   # the vote corrects it
        np.testing.assert_array_equal(outputs, expected)
    elif config.protect == "none":   # nothing corrects it
        assert (outputs != expected).sum() == 1
    if config.protect == "tmr":
        tile = random_tile(rng, config.rows, 6, n, identical_copies=True, vote_mode="word",
                           **groups)
        first, second = tile.tmr_triples[0][:2]
        await run_with_deposit(tb, tile, {int(first): 0x01, int(second): 0x02})
        assert await tb.read_csr("TMR_NO_MAJORITY") == 1
        assert await tb.read_csr("TMR_DIFFER") == 2
    assert await tb.write_csr("CTRL", csr("CTRL").field("clear_errors").mask) == 0
    assert set((await tb.error_counts()).values()) == {0}
    await tb.write_csr("IRQ_STATUS", 3)
    await FallingEdge(tb.dut.clk)
    assert not int(tb.dut.irq.value)

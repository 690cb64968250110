# amaranth: UnusedElaboratable=no
"""AXIAccelerator in the Amaranth simulator: tiles through the streams under backpressure
against sim.tile.reference, the cycles of a tile, framing errors, a start while loading.
(The cocotbext-axi regressions under Icarus and Verilator: tests/sim/test_axi_accelerator.py.)"""

import numpy as np
import pytest

from neuroharden.hw.axi import OKAY, SLVERR
from neuroharden.hw.axi_accelerator import AXIAccelerator
from neuroharden.hw.contract import unpack
from neuroharden.hw.csr import csr
from neuroharden.sim.accelerator_tb import protection_groups, random_tile
from neuroharden.sim.axi_tb import tile_stream
from neuroharden.sim.tile import reference
from tests.hw.simulation import simulate


class Bus:
    """A minimal AXI4-Lite manager and stream peers on an Amaranth simulator context."""

    def __init__(self, ctx, dut, rng=None, pause=0.0):
        self.ctx, self.dut, self.rng, self.pause = ctx, dut, rng, pause
        self.cycle = 0

    async def tick(self):
        await self.ctx.tick()
        self.cycle += 1

    def paused(self):
        return self.rng is not None and self.rng.random() < self.pause

    async def write(self, name, value):
        ctx, axil = self.ctx, self.dut.s_axil
        for signal, data in ((axil.awaddr, csr(name).offset), (axil.wdata, value),
                             (axil.wstrb, 0xF), (axil.awvalid, 1), (axil.wvalid, 1),
                             (axil.bready, 1)):
            ctx.set(signal, data)
        while not ctx.get(axil.awready):
            await self.tick()
        await self.tick()
        ctx.set(axil.awvalid, 0)
        ctx.set(axil.wvalid, 0)
        while not ctx.get(axil.bvalid):
            await self.tick()
        response = ctx.get(axil.bresp)
        await self.tick()
        return response

    async def read(self, name):
        ctx, axil = self.ctx, self.dut.s_axil
        ctx.set(axil.araddr, csr(name).offset)
        ctx.set(axil.arvalid, 1)
        ctx.set(axil.rready, 1)
        while not ctx.get(axil.arready):
            await self.tick()
        await self.tick()
        ctx.set(axil.arvalid, 0)
        while not ctx.get(axil.rvalid):
            await self.tick()
        value = ctx.get(axil.rdata)
        await self.tick()
        return value

    async def stream(self, words, last=None):
        """Send ``words`` as one packet (TLAST on beat ``last``, default the last one)."""
        ctx, load = self.ctx, self.dut.s_axis
        last = len(words) - 1 if last is None else last
        index = 0
        while index < len(words):
            if self.paused():
                ctx.set(load.tvalid, 0)
                await self.tick()
                continue
            ctx.set(load.tdata, words[index])
            ctx.set(load.tlast, index == last)
            ctx.set(load.tvalid, 1)
            taken = ctx.get(load.tready)
            await self.tick()
            index += bool(taken)
        ctx.set(load.tvalid, 0)

    async def receive(self, limit=2000):
        """The next output packet: ``(rows, cycle of the last beat)``."""
        ctx, out = self.ctx, self.dut.m_axis
        rows = []
        for _ in range(limit):
            ready = not self.paused()
            ctx.set(out.tready, ready)
            taken = ready and ctx.get(out.tvalid)
            if taken:
                rows.append(unpack(ctx.get(out.tdata), self.dut.config.cols, 8))
                last = ctx.get(out.tlast)
            await self.tick()   # the beat is taken at this edge
            if taken and last:
                ctx.set(out.tready, 0)
                return np.array(rows), self.cycle - 1
        raise TimeoutError("no TLAST")


def run(dut, script):
    """Simulate ``script(bus)`` and return its result."""
    result = []

    async def testbench(ctx):
        result.append(await script(Bus(ctx, dut, *PEERS.get(id(dut), ()))))

    simulate(dut, testbench)
    return result[0]


#: (rng, pause probability) of the stream peers, per DUT.
PEERS = {}


@pytest.mark.parametrize("protect", ["none", "lcu", "tmr"])
def test_tiles_under_backpressure_match_the_reference(protect):
    dut = AXIAccelerator(rows=3, cols=4, k_depth=9, protect=protect)
    PEERS[id(dut)] = (np.random.default_rng(1), 0.4)
    rng = np.random.default_rng(2)
    tiles = [random_tile(rng, m, k, n, identical_copies=True,
                         **protection_groups(dut.config, n))
             for m, k, n in ((3, 9, 4), (2, 1, 4), (1, 5, 3))]

    async def script(bus):
        outputs = []
        for tile in tiles:
            words, k, word_vote = tile_stream(tile, dut.config)
            assert await bus.write("K", k) == OKAY
            await bus.stream(words)
            assert await bus.write("CTRL", 1) == OKAY
            rows, _ = await bus.receive()
            outputs.append(rows[:tile.shape[0], :tile.shape[2]])
        return outputs

    for tile, outputs in zip(tiles, run(dut, script)):
        np.testing.assert_array_equal(outputs, reference(tile, 32)[1])


@pytest.mark.parametrize("protect, params", [("none", 5), ("lcu", 6), ("tmr", 6)])
def test_a_tile_takes_one_beat_per_word(protect, params):
    """Without backpressure: one cycle per load word (2K + params * cols beats), then
    from the CTRL write's response to the last output beat the start sequence (2 cycles,
    3 with TMR), tile_cycles and one cycle per output row."""
    rows, cols, k = 4, 4, 7
    dut = AXIAccelerator(rows=rows, cols=cols, k_depth=8, protect=protect)
    tile = random_tile(np.random.default_rng(3), rows, k, cols,
                       **protection_groups(dut.config, cols))
    words, _, _ = tile_stream(tile, dut.config)
    assert len(words) == 2 * k + params * cols

    async def script(bus):
        await bus.write("K", k)
        start = bus.cycle
        await bus.stream(words)
        loaded = bus.cycle - start
        await bus.write("CTRL", 1)
        start = bus.cycle
        _, last = await bus.receive()
        return loaded, last - start

    loaded, run_cycles = run(dut, script)
    assert loaded == len(words)
    sequence = 3 if protect == "tmr" else 2
    assert run_cycles == sequence + dut.config.schedule(k).cycles + rows - 1


def test_framing_errors_are_flagged_and_the_stream_resynchronises():
    """An early TLAST ends the packet there; a late one drops the beats past the tile's
    end up to it; both set STATUS.load_error until cleared, and the next packet loads."""
    dut = AXIAccelerator(rows=2, cols=3, k_depth=4)
    tile = random_tile(np.random.default_rng(4), 2, 3, 3)
    words, k, _ = tile_stream(tile, dut.config)
    load_error = csr("STATUS").field("load_error").mask

    async def script(bus):
        seen = []
        await bus.write("K", k)
        for packet, last in ((words[:5], None), (words + [0xAB, 0xCD], len(words) + 1)):
            await bus.stream(packet, last)
            seen.append(bool(await bus.read("STATUS") & load_error))
            await bus.write("CTRL", csr("CTRL").field("clear_load_error").mask)
            seen.append(bool(await bus.read("STATUS") & load_error))
        # The late packet loaded the whole tile before its extra beats.
        await bus.write("CTRL", 1)
        late, _ = await bus.receive()
        await bus.stream(words)
        await bus.write("CTRL", 1)
        whole, _ = await bus.receive()
        return seen, late, whole

    seen, late, whole = run(dut, script)
    assert seen == [True, False, True, False]
    for rows in (late, whole):
        np.testing.assert_array_equal(rows[:2, :3], reference(tile, 32)[1])


def test_a_start_written_while_loading_waits_for_the_end_of_the_packet():
    dut = AXIAccelerator(rows=2, cols=3, k_depth=6)
    PEERS[id(dut)] = (np.random.default_rng(5), 0.5)
    tile = random_tile(np.random.default_rng(6), 2, 6, 3)
    words, k, _ = tile_stream(tile, dut.config)

    async def script(bus):
        await bus.write("K", k)
        await bus.stream(words[:4], last=99)   # the packet is open
        assert await bus.write("CTRL", 1) == OKAY
        await bus.stream(words[4:])
        rows, _ = await bus.receive()
        return rows

    np.testing.assert_array_equal(run(dut, script)[:2, :3], reference(tile, 32)[1])


def test_out_of_range_k_is_slverr():
    dut = AXIAccelerator(rows=2, cols=3, k_depth=6)

    async def script(bus):
        return [await bus.write("K", value) for value in (0, 6, 7)]

    assert run(dut, script) == [SLVERR, OKAY, SLVERR]


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="rows must be below 256"):
        AXIAccelerator(rows=256, cols=3)
    with pytest.raises(ValueError, match="at least 3"):
        AXIAccelerator(rows=2, cols=2, protect="tmr")

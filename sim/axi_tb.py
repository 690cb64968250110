"""cocotb driver of the AXI accelerator (``hw.axi_accelerator``) through cocotbext-axi.

A real bus peer on each port: an ``AxiLiteMaster`` on ``s_axil``, an
``AxiStreamSource`` on ``s_axis`` and an ``AxiStreamSink`` on ``m_axis``. The register
offsets and fields come from the one table of ``hw.csr``; the load packet from
:meth:`hw.contract.AcceleratorConfig.stream_words`.

``AXIAcceleratorTB(dut, config)``
    Wraps a generated ``accelerator_axi`` top level built with ``config``.
``await tb.start()``
    Clock and a two-cycle reset.
``await tb.read_csr(name)`` / ``await tb.write_csr(name, value)`` -> int / response code
    One register access; ``tb.field(value, register, field)`` extracts a field.
``tb.backpressure(rng)``
    Random pauses on both streams from now on (``TVALID`` of the load stream, ``TREADY``
    of the output stream).
``await tb.run_tile(tile)`` -> numpy.ndarray
    Set ``K`` (and ``VOTE``), stream the tile, start, wait for ``irq`` and receive the
    output packet; returns the int64 ``[m, n]`` outputs, equal to
    ``sim.tile.reference(tile, acc_width)[1]``.
"""

import logging

import cocotb
import numpy as np
from cocotb.triggers import Event, RisingEdge
from cocotbext.axi import (AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame,
                           AxiStreamSink, AxiStreamSource)

from neuroharden.hw.contract import OUTPUT_WIDTH
from neuroharden.hw.csr import ERROR_COUNTERS, csr
from .accelerator_tb import tile_writes
from .tb import ClockedTB

__all__ = ["AXIAcceleratorTB", "tile_stream"]


def tile_stream(tile, config):
    """``(words, k, word_vote)``: ``tile`` as an AXI load packet
    (:meth:`hw.contract.AcceleratorConfig.stream_words` of its load-port writes, which
    check that the tile fits), its ``K`` and its vote mode."""
    return (config.stream_words(tile_writes(tile, config)), tile.shape[1],
            tile.vote_mode == "word")


class AXIAcceleratorTB(ClockedTB):
    """Drives a generated ``accelerator_axi`` over its buses (see the module docstring).

    Parameters
    ----------
    dut : cocotb handle
        Top level with ``clk``, ``rst``, ``irq`` and the ports ``s_axil__*``,
        ``s_axis__*`` and ``m_axis__*``.
    config : hw.contract.AcceleratorConfig
        The configuration it was generated with.
    """

    def __init__(self, dut, config):
        super().__init__(dut)
        self.config = config
        for prefix in ("s_axil_", "s_axis_", "m_axis_"):   # one INFO line per transfer
            logging.getLogger(f"cocotb.{dut._name}.{prefix}").setLevel(logging.WARNING)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_"), dut.clk,
                                      dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_"), dut.clk, dut.rst)
        self.load_bytes = len(dut.s_axis__tdata) // 8
        self.out_bytes = len(dut.m_axis__tdata) // 8

    async def read_csr(self, name):
        """Read register ``name``; raises ``OSError`` on an error response."""
        response = await self.axil.read(csr(name).offset, 4)
        if int(response.resp):
            raise OSError(f"read of {name} answered {response.resp!r}")
        return int.from_bytes(response.data, "little")

    async def write_csr(self, name, value):
        """Write register ``name``; returns the response code (0 OKAY, 2 SLVERR)."""
        response = await self.axil.write(csr(name).offset, int(value).to_bytes(4, "little"))
        return int(response.resp)

    @staticmethod
    def field(value, register, name):
        """Field ``name`` of register ``register``'s word ``value``."""
        field = csr(register).field(name)
        return (value & field.mask) >> field.lsb

    def backpressure(self, rng):
        """Random pauses on the load stream's TVALID and the output stream's TREADY."""
        def pauses(probability):
            while True:
                yield bool(rng.random() < probability)
        self.source.set_pause_generator(pauses(0.4))
        self.sink.set_pause_generator(pauses(0.4))

    async def send_tile(self, tile):
        """Set ``K`` and ``VOTE`` and stream ``tile``'s load packet; returns once its
        last beat is taken."""
        words, k, word_vote = tile_stream(tile, self.config)
        assert await self.write_csr("K", k) == 0
        if self.config.protect == "tmr":
            assert await self.write_csr("VOTE", int(word_vote)) == 0
        payload = b"".join(word.to_bytes(self.load_bytes, "little") for word in words)
        sent = Event()
        await self.source.send(AxiStreamFrame(payload, tx_complete=sent))
        await sent.wait()

    async def receive(self, shape):
        """The next output packet as int64 outputs of ``shape`` ``(m, n)``."""
        frame = await self.sink.recv()
        rows = np.frombuffer(bytes(frame.tdata), dtype=np.int8).reshape(
            self.config.rows, self.out_bytes * 8 // OUTPUT_WIDTH)
        return rows[:shape[0], :shape[1]].astype(np.int64)

    async def error_counts(self):
        """The three error counters, by flag (:data:`hw.csr.ERROR_COUNTERS`)."""
        return {flag: await self.read_csr(register) for flag, register in ERROR_COUNTERS.items()}

    async def wait_irq(self):
        """Wait until ``irq`` is high."""
        while not int(self.dut.irq.value):
            await RisingEdge(self.dut.clk)

    async def run_tile(self, tile):
        """Stream, run and receive one tile (done interrupt enabled and acknowledged)."""
        await self.write_csr("IRQ_ENABLE", csr("IRQ_ENABLE").field("done").mask)
        await self.send_tile(tile)
        assert await self.write_csr("CTRL", csr("CTRL").field("start").mask) == 0
        received = cocotb.start_soon(self.receive(tile.shape[::2]))
        await self.wait_irq()
        await self.write_csr("IRQ_STATUS", csr("IRQ_STATUS").field("done").mask)
        return await received

"""The accelerator behind standard buses: AXI4-Lite control, AXI4-Stream data, error counters."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .accelerator import Accelerator
from .axi import OKAY, SLVERR, AXI4LiteSignature, AXI4StreamSignature
from .contract import ERROR_FLAGS, OUTPUT_WIDTH, WRITE_SELECT, AcceleratorConfig
from .csr import CSRS, ERROR_COUNTERS, ID_VALUE, PROTECT_CODE, csr
from .pe import read_register
from .registers import Register

__all__ = ["AXIAccelerator", "CSR_ADDR_WIDTH", "registers"]

#: Byte-address bits of the AXI4-Lite port (a 4 KiB register page).
CSR_ADDR_WIDTH = 12


def registers(config):
    """The register map of the wrapper's own module (the core declares its own,
    :attr:`hw.contract.AcceleratorConfig.registers`): the register file, the load-stream
    position, the start sequence, the output-stream position and the AXI4-Lite
    responses, all of kind ``control``."""
    segments = len(config.stream_segments(1))
    k = range(config.k_depth + 1)
    declared = [
        Register("csr_k", "control", k, init=1), Register("csr_vote", "control", 1),
        Register("irq_enable", "control", 2), Register("irq_status", "control", 2),
        Register("cycles", "control", 32),
        *(Register(ERROR_COUNTERS[flag].lower(), "control", 32) for flag in ERROR_FLAGS),
        Register("load_error", "control", 1), Register("start_pending", "control", 1),
        Register("load_segment", "control", range(segments)),
        Register("load_word", "control", range(max(config.k_depth, config.cols))),
        Register("load_dropping", "control", 1), Register("load_k", "control", k, init=1),
        Register("start_step", "control", range(4)),
        Register("out_sending", "control", 1), Register("out_row", "control",
                                                        range(config.rows)),
        Register("done_before", "control", 1),
        Register("axil_bvalid", "control", 1), Register("axil_bresp", "control", 2),
        Register("axil_rvalid", "control", 1), Register("axil_rresp", "control", 2),
        Register("axil_rdata", "control", 32),
    ]
    return {register.name: register for register in declared}


def _pick(index, values):
    """``values[index]`` as a chain of multiplexers."""
    picked = values[-1]
    for position in reversed(range(len(values) - 1)):
        picked = Mux(index == position, values[position], picked)
    return picked


class AXIAccelerator(wiring.Component):
    """An :class:`~hw.accelerator.Accelerator` (``core``) with AXI4-Lite control and
    status registers, an AXI4-Stream load port, an AXI4-Stream output port, error
    counters and an interrupt.

    **Registers** (``s_axil``): the map of :mod:`hw.csr`. Software sets ``K`` (and
    ``VOTE`` with TMR), streams the tile, writes ``CTRL.start`` and waits for ``irq``
    or ``STATUS.done``.

    **Load stream** (``s_axis``): one packet per tile, one beat per load-port word in
    the order of :meth:`hw.contract.AcceleratorConfig.stream_segments` (the ``K`` A
    columns, the ``K`` B rows, ``cols`` words of each per-column parameter and, with
    protection, of the protection map; :meth:`~hw.contract.AcceleratorConfig.stream_words`
    packs them), with ``TLAST`` on the last beat. A word sits in the low bits of
    ``TDATA``. The length comes from ``K`` as it is when the packet starts. A packet
    whose ``TLAST`` comes early ends there; one without ``TLAST`` on its last beat has
    its following beats dropped up to the next ``TLAST``; both set
    ``STATUS.load_error``. ``TREADY`` is low while a run is in progress (the core takes
    loads only while idle) and while a start is being issued, so a beat is never lost;
    a tile can be streamed while the previous run's output is still being sent.

    **Start**: ``CTRL.start`` is held pending until the load stream is between packets,
    the core is idle and the last output is sent; then ``K`` and the vote mode are
    written to the core and the run starts: :func:`~hw.contract.tile_cycles` cycles,
    counted in ``CYCLES``.

    **Output stream** (``m_axis``): when a run finishes, its ``rows`` output rows, one
    beat each (row 0 first, element ``c`` in ``TDATA`` bits ``8*c ..``), ``TLAST`` on
    the last. ``TVALID`` stays high until each beat is taken; one beat per cycle
    without backpressure.

    **Errors**: every output row the protection flags
    (:data:`~hw.contract.ERROR_FLAGS`) counts in ``LCU_DIFFER``, ``TMR_DIFFER`` or
    ``TMR_NO_MAJORITY`` (saturating, cleared by ``CTRL.clear_errors``) and raises
    ``IRQ_STATUS.error``.

    Parameters
    ----------
    rows, cols, width, acc_width, protect, k_depth
        As :class:`~hw.contract.AcceleratorConfig`, which validates them (``rows``,
        ``cols`` at most 255 and ``k_depth`` below 16384, the widths of
        ``CONFIG``'s fields).

    Attributes
    ----------
    s_axil : In(AXI4LiteSignature(addr_width=12, data_width=32))
        Control and status registers.
    s_axis : In(AXI4StreamSignature)
        Load stream, ``TDATA`` as wide as a load-port word.
    m_axis : Out(AXI4StreamSignature)
        Output rows, ``8 * cols`` bits.
    irq : Out(1)
        ``|(IRQ_STATUS & IRQ_ENABLE)``.
    """

    def __init__(self, *, rows, cols, width=8, acc_width=32, protect="none", k_depth=256):
        self._config = AcceleratorConfig(rows=rows, cols=cols, width=width,
                                         acc_width=acc_width, protect=protect,
                                         k_depth=k_depth)
        config = csr("CONFIG")
        for name, value in (("rows", rows), ("cols", cols), ("k_depth", k_depth)):
            if value >> config.field(name).width:
                raise ValueError(f"{name} must be below {1 << config.field(name).width} for "
                                 f"the CONFIG register, not {value!r}")
        # The core's load-port word: the widest of a bias, an A column and a B row.
        self._core = Accelerator(rows=rows, cols=cols, width=width, acc_width=acc_width,
                                 protect=protect, k_depth=k_depth)
        load_width = len(self._core.wr_data)
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=CSR_ADDR_WIDTH, data_width=32)),
            "s_axis": In(AXI4StreamSignature(data_width=load_width)),
            "m_axis": Out(AXI4StreamSignature(data_width=OUTPUT_WIDTH * cols)),
            "irq": Out(1),
        })

    @property
    def config(self):
        """The :class:`~hw.contract.AcceleratorConfig` of the wrapped accelerator."""
        return self._config

    def elaborate(self, platform):
        m = Module()
        config = self._config
        rows, cols, k_depth, protect = config.rows, config.cols, config.k_depth, config.protect
        axil, load, out = self.s_axil, self.s_axis, self.m_axis

        m.submodules.core = core = self._core

        declared = registers(config)
        (k_csr, vote, irq_enable, irq_status, cycles, load_error, start_pending, segment,
         word, dropping, packet_k, sequence, sending, out_row, done_before, bvalid, bresp,
         rvalid, rresp, rdata) = (
            declared[name].signal() for name in (
                "csr_k", "csr_vote", "irq_enable", "irq_status", "cycles", "load_error",
                "start_pending", "load_segment", "load_word", "load_dropping", "load_k",
                "start_step", "out_sending", "out_row", "done_before", "axil_bvalid",
                "axil_bresp", "axil_rvalid", "axil_rresp", "axil_rdata"))
        counters = {flag: declared[ERROR_COUNTERS[flag].lower()].signal()
                    for flag in ERROR_FLAGS}
        # The load stream's position: segment, word within it, dropping to the next TLAST.
        segments = config.stream_segments(1)
        between_packets = (segment == 0) & (word == 0) & ~dropping
        # The start sequence: write K, write the vote mode (TMR), pulse start.
        idle_step, push_k, push_vote, pulse = range(4)

        # --- comb ---
        launch = (start_pending & (sequence == idle_step) & ~core.busy & ~sending
                  & between_packets)
        m.d.comb += load.tready.eq(~core.busy & (sequence == idle_step) & ~launch)
        beat = load.tvalid & load.tready
        # Continuous assignments rather than a case statement: Icarus does not evaluate a
        # combinational process before one of its inputs changes, so a segment 0 that
        # holds from reset would leave the select undriven.
        counted = Mux(between_packets, k_csr, packet_k)
        length = _pick(segment, [counted if select in ("act", "wgt") else cols
                                 for select, _ in segments])
        segment_select = _pick(segment, [WRITE_SELECT[select] for select, _ in segments])
        segment_end = word == length - 1
        packet_end = segment_end & (segment == len(segments) - 1)
        pushing_k, pushing_vote = sequence == push_k, sequence == push_vote
        m.d.comb += [
            core.wr_en.eq((beat & ~dropping) | pushing_k | pushing_vote),
            core.wr_sel.eq(Mux(pushing_k, WRITE_SELECT["k"],
                               Mux(pushing_vote, WRITE_SELECT["word_vote"], segment_select))),
            core.wr_addr.eq(Mux(pushing_k | pushing_vote, 0, word)),
            core.wr_data.eq(Mux(pushing_k, k_csr, Mux(pushing_vote, vote, load.tdata))),
            core.start.eq(sequence == pulse),
        ]

        run_done = core.done & ~done_before
        fire = sending & out.tready
        last_row = out_row == rows - 1
        m.d.comb += [
            out.tvalid.eq(read_register(sending)), out.tlast.eq(last_row),
            out.tdata.eq(core.rd_data),
            # The read port answers a cycle later: present the row the next cycle sends.
            core.rd_addr.eq(Mux(fire, Mux(last_row, 0, out_row + 1), out_row)),
            self.irq.eq((irq_status & irq_enable).any()),
        ]
        flagged = Cat(getattr(core.errors, flag) for flag in ERROR_FLAGS).any()

        # AXI4-Lite: a write takes its address and data together; one response at a time.
        write = axil.awvalid & axil.wvalid & ~bvalid
        m.d.comb += [axil.awready.eq(write), axil.wready.eq(write), axil.arready.eq(~rvalid),
                     axil.bvalid.eq(read_register(bvalid)), axil.bresp.eq(read_register(bresp)),
                     axil.rvalid.eq(read_register(rvalid)), axil.rresp.eq(read_register(rresp)),
                     axil.rdata.eq(read_register(rdata))]
        read = axil.arvalid & ~rvalid
        strobe = Cat(bit.replicate(8) for bit in axil.wstrb)

        def written(value):
            """The register word after this write, under the write strobes."""
            return (value & ~strobe) | (axil.wdata & strobe)

        def bits(register, name):
            field = csr(register).field(name)
            return slice(field.lsb, field.lsb + field.width)

        def placed(register, **values):
            """A register word with each field's value at its bits (a continuous
            assignment, see above)."""
            parts, position = [], 0
            for field in sorted(csr(register).fields, key=lambda field: field.lsb):
                value = Value.cast(values[field.name])
                parts += [Const(0, field.lsb - position),
                          value.as_unsigned() if len(value) >= field.width else
                          Cat(value, Const(0, field.width - len(value)))]
                parts[-1] = parts[-1][:field.width]
                position = field.lsb + field.width
            return Cat(*parts, Const(0, 32 - position))

        busy = start_pending | (sequence != idle_step) | core.busy | sending
        readable = {
            "ID": Const(ID_VALUE, 32),
            "CONFIG": placed("CONFIG", rows=rows, cols=cols,
                             protect=PROTECT_CODE[protect], k_depth=k_depth),
            "CTRL": Const(0, 32),
            "STATUS": placed("STATUS", busy=busy, done=core.done, loading=~between_packets,
                             sending=sending, load_error=load_error),
            "IRQ_ENABLE": irq_enable, "IRQ_STATUS": irq_status, "K": k_csr, "VOTE": vote,
            "CYCLES": cycles,
            **{ERROR_COUNTERS[flag]: counter for flag, counter in counters.items()},
        }

        # --- sync ---
        # Load stream.
        with m.If(beat):
            with m.If(dropping):
                m.d.sync += dropping.eq(~load.tlast)
            with m.Elif(packet_end | load.tlast):
                m.d.sync += [segment.eq(0), word.eq(0)]
                with m.If(packet_end != load.tlast):
                    m.d.sync += [load_error.eq(1), dropping.eq(packet_end)]
            with m.Elif(segment_end):
                m.d.sync += [segment.eq(segment + 1), word.eq(0)]
            with m.Else():
                m.d.sync += word.eq(word + 1)
            with m.If(between_packets):
                m.d.sync += packet_k.eq(k_csr)   # the packet's length holds to its end

        # Start sequence and cycle counter.
        with m.Switch(sequence):
            with m.Case(idle_step):
                with m.If(launch):
                    m.d.sync += sequence.eq(push_k)
            with m.Case(push_k):
                m.d.sync += sequence.eq(push_vote if protect == "tmr" else pulse)
            with m.Case(push_vote):
                m.d.sync += sequence.eq(pulse)
            with m.Case(pulse):
                m.d.sync += [sequence.eq(idle_step), start_pending.eq(0), cycles.eq(1)]
        with m.If(core.busy):
            m.d.sync += cycles.eq(cycles + 1)

        # Output stream.
        m.d.sync += done_before.eq(core.done)
        with m.If(run_done):
            m.d.sync += [sending.eq(1), out_row.eq(0)]
        with m.Elif(fire):
            m.d.sync += [out_row.eq(Mux(last_row, 0, out_row + 1)), sending.eq(~last_row)]

        # Error counters and interrupts: CTRL.clear_errors (below) wins over a count in
        # the same cycle; an interrupt raised in the cycle of its acknowledgement stays
        # pending, so none is lost.
        with m.If(core.errors_valid):
            for flag, counter in counters.items():
                with m.If(getattr(core.errors, flag) & ~counter.all()):
                    m.d.sync += counter.eq(counter + 1)
        cleared = Signal.like(irq_status, name="irq_cleared")
        raised = Cat(run_done, core.errors_valid & flagged)
        m.d.sync += irq_status.eq((irq_status & ~cleared) | raised)

        # Register writes.
        with m.If(write):
            m.d.sync += [bvalid.eq(1), bresp.eq(SLVERR)]
            with m.Switch(axil.awaddr[2:]):
                for register in CSRS:
                    if register.access == "ro":
                        continue
                    with m.Case(register.offset >> 2):
                        m.d.sync += bresp.eq(OKAY)
                        if register.name == "CTRL":
                            command = axil.wdata & strobe
                            with m.If(command[bits("CTRL", "start")]):
                                m.d.sync += start_pending.eq(1)
                            with m.If(command[bits("CTRL", "clear_errors")]):
                                m.d.sync += [counter.eq(0) for counter in counters.values()]
                            with m.If(command[bits("CTRL", "clear_load_error")]):
                                m.d.sync += load_error.eq(0)
                        elif register.name == "IRQ_ENABLE":
                            m.d.sync += irq_enable.eq(written(irq_enable))
                        elif register.name == "IRQ_STATUS":
                            m.d.comb += cleared.eq(axil.wdata & strobe)
                        elif register.name == "K":
                            value = written(k_csr)
                            with m.If((value >= 1) & (value <= k_depth)):
                                m.d.sync += k_csr.eq(value)
                            with m.Else():
                                m.d.sync += bresp.eq(SLVERR)
                        elif register.name == "VOTE":
                            if protect == "tmr":
                                m.d.sync += vote.eq(written(vote)[0])
                        else:
                            raise NotImplementedError(f"no write action for {register.name}")
        with m.Elif(bvalid & axil.bready):
            m.d.sync += bvalid.eq(0)

        # Register reads.
        with m.If(read):
            m.d.sync += [rvalid.eq(1), rresp.eq(SLVERR), rdata.eq(0)]
            with m.Switch(axil.araddr[2:]):
                for register in CSRS:
                    with m.Case(register.offset >> 2):
                        m.d.sync += [rresp.eq(OKAY), rdata.eq(readable[register.name])]
        with m.Elif(rvalid & axil.rready):
            m.d.sync += rvalid.eq(0)

        return m

"""The accelerator: operand buffers, systolic array, post-processor, protection, control."""

from amaranth.hdl import Module, Mux, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .contract import (ACT_BUF, ARRAY, BIAS, DONE, GROUP, K_LEN, MULTIPLIER, OUT_BUF, OUT_ROW,
                       OUTPUT_WIDTH, RELU, SHIFT, STATE, STEP, WGT_BUF, WORD_VOTE,
                       WRITE_SELECT, Y, ZERO_POINT, AcceleratorConfig, State, error_layout)
from .pe import read_register
from .protection import ProtectionUnit, index_width
from .requantizer import BIAS_WIDTH, Requantizer
from .systolic_array import SystolicArray, flush_cycles

__all__ = ["Accelerator"]


class Accelerator(wiring.Component):
    """Output-stationary int8 accelerator that runs one loaded tile per ``start``.

    ``acc = A @ B`` on a ``rows x cols`` :class:`~hw.systolic_array.SystolicArray`
    (``array``), then per column ``y = requantize(acc + bias, multiplier, shift, relu,
    high, zero_point)`` (``requant_{c}``, one :class:`~hw.requantizer.Requantizer` per
    column), then the :class:`~hw.protection.ProtectionUnit` (``protect``) merges the
    copies of every protected neuron, and the rows are written to the output buffer.

    Its contract, :mod:`hw.contract`, declares the configuration
    (:class:`~hw.contract.AcceleratorConfig`), the load port
    (:data:`~hw.contract.WRITE_SELECT`), the names and shapes of every register and
    buffer (:attr:`~hw.contract.AcceleratorConfig.registers`, which this component
    creates its registers from), the cycle schedule (:class:`~hw.contract.Schedule`)
    and the packing of a tile into load-port words.

    **Loading** (only while idle, ``busy == 0``): each cycle with ``wr_en = 1`` writes
    ``wr_data`` into the buffer or register that ``wr_sel`` selects at ``wr_addr`` (the
    load-port table of :mod:`hw.contract`). Writes to a select this configuration lacks
    are ignored. A tile smaller than the array is padded with zeros by the loader;
    everything loaded stays until overwritten, so a tile can be run again without
    reloading.

    **Running**: ``start`` (sampled while idle) clears the array, streams ``K`` columns
    of A and rows of B from the buffers, flushes, drains the accumulators one row per
    cycle through the requantizers into the ``y_{c}`` registers, protects each row and
    writes it to the output buffer. ``done`` rises
    :func:`~hw.contract.tile_cycles` cycles after the cycle that sampled ``start`` and
    stays 1 until the next ``start``.

    **Reading**: ``rd_data`` is output row ``rd_addr`` of the last run (element ``c`` in
    bits ``8*c ..``), one cycle after ``rd_addr`` is presented (a synchronous read, so
    the buffers map to block RAM).

    **Error flags**: in each cycle that writes an output row (``errors_valid``),
    ``errors`` tells what the protection unit saw in that row
    (:data:`~hw.contract.ERROR_FLAGS`): ``lcu_differ`` when the halves of an LCU pair
    differ, ``tmr_differ`` when a TMR triple is not unanimous, ``tmr_no_majority`` when
    a word-level vote finds three different copies. A build without protection keeps
    them 0.

    The post-processing is parallel over columns (``cols`` requantizers and protection
    lanes), sequential over rows: the drain delivers one row per cycle, and the
    protection unit needs all copies of one row at once.

    Parameters
    ----------
    rows, cols, width, acc_width, protect, k_depth
        As :class:`~hw.contract.AcceleratorConfig`, which validates them.

    Attributes
    ----------
    wr_en, wr_sel, wr_addr, wr_data : In
        Load port (see above).
    start : In(1)
        Run the loaded tile.
    busy, done : Out(1)
        A run is in progress; the output buffer holds the results of the last run.
    rd_addr : In(unsigned)
        Output row to read.
    rd_data : Out(ArrayLayout(signed(8), cols))
        The row read.
    errors : Out(hw.contract.error_layout())
        Error flags of the row being written (see above).
    errors_valid : Out(1)
        An output row is written this cycle.
    """

    def __init__(self, *, rows, cols, width=8, acc_width=32, protect="none", k_depth=256):
        self._config = AcceleratorConfig(rows=rows, cols=cols, width=width,
                                         acc_width=acc_width, protect=protect,
                                         k_depth=k_depth)
        super().__init__({
            "wr_en": In(1),
            "wr_sel": In(unsigned(index_width(len(WRITE_SELECT)))),
            "wr_addr": In(unsigned(index_width(max(k_depth, cols)))),
            "wr_data": In(unsigned(max(BIAS_WIDTH, rows * width, cols * width))),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "rd_addr": In(unsigned(index_width(rows))),
            "rd_data": Out(data.ArrayLayout(signed(OUTPUT_WIDTH), cols)),
            "errors": Out(error_layout()),
            "errors_valid": Out(1),
        })

    @property
    def config(self):
        """The :class:`~hw.contract.AcceleratorConfig` the accelerator is built from."""
        return self._config

    @property
    def rows(self):
        """Number of PE rows: the most output rows of a tile."""
        return self._config.rows

    @property
    def cols(self):
        """Number of PE columns: the most output columns of a tile."""
        return self._config.cols

    @property
    def width(self):
        """Operand width in bits."""
        return self._config.width

    @property
    def acc_width(self):
        """Accumulator width in bits."""
        return self._config.acc_width

    @property
    def protect(self):
        """Protection unit: ``"none"``, ``"lcu"`` or ``"tmr"``."""
        return self._config.protect

    @property
    def k_depth(self):
        """Depth of the operand buffers: the largest reduction length ``K``."""
        return self._config.k_depth

    @property
    def registers(self):
        """The register map of the accelerator's own module
        (:attr:`hw.contract.AcceleratorConfig.registers`)."""
        return self._config.registers

    def elaborate(self, platform):
        m = Module()
        rows, cols, width = self.rows, self.cols, self.width
        declared = self.registers

        def column_registers(name):
            return [declared[name].signal(c) for c in range(cols)]

        m.submodules[ARRAY] = array = SystolicArray(rows=rows, cols=cols, width=width,
                                                    acc_width=self.acc_width)
        act_buf, wgt_buf, out_buf = (
            Memory(shape=declared[name].shape, depth=declared[name].depth, init=[])
            for name in (ACT_BUF, WGT_BUF, OUT_BUF))
        m.submodules[ACT_BUF] = act_buf
        m.submodules[WGT_BUF] = wgt_buf
        m.submodules[OUT_BUF] = out_buf

        # Loaded state: per-column post-processing parameters, K, the protection map.
        bias, multiplier, shift, relu, zero_point = (
            column_registers(name) for name in (BIAS, MULTIPLIER, SHIFT, RELU, ZERO_POINT))
        k_len = declared[K_LEN].signal()
        loaded = {declared[name].select: registers for name, registers in
                  ((BIAS, bias), (MULTIPLIER, multiplier), (SHIFT, shift), (RELU, relu),
                   (ZERO_POINT, zero_point))}
        if self.protect != "none":
            group = loaded[declared[GROUP].select] = column_registers(GROUP)
        if self.protect == "tmr":
            word_vote = declared[WORD_VOTE].signal()

        # Controller.
        state, step, done, out_row = (declared[name].signal()
                                      for name in (STATE, STEP, DONE, OUT_ROW))
        m.d.comb += [self.busy.eq(state != State.IDLE), self.done.eq(read_register(done))]

        # Load port: writes while idle only, so a run always sees one consistent tile.
        act_write, wgt_write = act_buf.write_port(), wgt_buf.write_port()
        writing = self.wr_en & (state == State.IDLE)
        act_select, wgt_select = (WRITE_SELECT[declared[name].select]
                                  for name in (ACT_BUF, WGT_BUF))
        m.d.comb += [
            act_write.addr.eq(self.wr_addr), act_write.data.eq(self.wr_data),
            act_write.en.eq(writing & (self.wr_sel == act_select)),
            wgt_write.addr.eq(self.wr_addr), wgt_write.data.eq(self.wr_data),
            wgt_write.en.eq(writing & (self.wr_sel == wgt_select)),
        ]
        with m.If(writing):
            for name, registers in loaded.items():
                with m.If(self.wr_sel == WRITE_SELECT[name]):
                    for c, register in enumerate(registers):
                        with m.If(self.wr_addr == c):
                            m.d.sync += register.eq(self.wr_data)
            with m.If(self.wr_sel == WRITE_SELECT[declared[K_LEN].select]):
                m.d.sync += k_len.eq(self.wr_data)
            if self.protect == "tmr":
                with m.If(self.wr_sel == WRITE_SELECT[declared[WORD_VOTE].select]):
                    m.d.sync += word_vote.eq(self.wr_data[0])

        # Streaming: the buffers read synchronously, so the address runs one step ahead
        # of the data the array receives (address 0 during the clear cycle).
        act_read = act_buf.read_port(transparent_for=())
        wgt_read = wgt_buf.read_port(transparent_for=())
        next_k = Mux(state == State.STREAM, step + 1, 0)
        m.d.comb += [act_read.addr.eq(next_k), wgt_read.addr.eq(next_k)]
        streaming = state == State.STREAM
        m.d.comb += [
            array.a_in.eq(Mux(streaming, act_read.data.as_value(), 0)),
            array.w_in.eq(Mux(streaming, wgt_read.data.as_value(), 0)),
            array.clear.eq(state == State.CLEAR),
            array.drain.eq(state == State.DRAIN),
        ]

        # Post-processing of the row being drained into the y_{c} registers.
        y = column_registers(Y)
        for c in range(cols):
            m.submodules[f"requant_{c}"] = requant = Requantizer(acc_width=self.acc_width)
            m.d.comb += [
                requant.acc.eq(array.result[c]),
                requant.bias.eq(read_register(bias[c])),
                requant.multiplier.eq(read_register(multiplier[c])),
                requant.shift.eq(read_register(shift[c])),
                requant.relu.eq(read_register(relu[c])),
                requant.zero_point.eq(read_register(zero_point[c])),
                # LCU copies saturate at HALF_MAX (numerics.lcu).
                requant.half.eq(group[c].enable & ~group[c].wide if self.protect == "lcu" else 0),
            ]
            with m.If(state == State.DRAIN):
                m.d.sync += y[c].eq(requant.y)

        # Protection of the row in y_{c}, written to the output buffer the cycle after
        # its drain.
        out_write = out_buf.write_port()
        if self.protect == "none":
            protected = [read_register(value) for value in y]
        else:
            m.submodules.protect = protect = ProtectionUnit(cols=cols, scheme=self.protect,
                                                            width=OUTPUT_WIDTH)
            m.d.comb += [protect.y[c].eq(read_register(y[c])) for c in range(cols)]
            m.d.comb += [protect.group[c].eq(read_register(group[c].as_value()))
                         for c in range(cols)]
            if self.protect == "tmr":
                m.d.comb += protect.vote_word.eq(read_register(word_vote))
            protected = [protect.out[c] for c in range(cols)]
            differ = getattr(self.errors, f"{self.protect}_differ")
            m.d.comb += differ.eq(protect.differ.as_value().any())
            if self.protect == "tmr":
                m.d.comb += self.errors.tmr_no_majority.eq(protect.no_majority.as_value().any())
        m.d.comb += [out_write.addr.eq(read_register(out_row)),
                     out_write.en.eq(((state == State.DRAIN) & (step != 0))
                                     | (state == State.WRITE)),
                     self.errors_valid.eq(out_write.en)]
        m.d.comb += [out_write.data[c].eq(value) for c, value in enumerate(protected)]

        out_read = out_buf.read_port(transparent_for=())
        m.d.comb += [out_read.addr.eq(self.rd_addr), self.rd_data.eq(out_read.data)]

        # Controller state machine.
        with m.Switch(state):
            with m.Case(State.IDLE):
                with m.If(self.start):
                    m.d.sync += [state.eq(State.CLEAR), done.eq(0)]
            with m.Case(State.CLEAR):
                m.d.sync += [state.eq(State.STREAM), step.eq(0)]
            with m.Case(State.STREAM):
                m.d.sync += step.eq(step + 1)
                # ">=" rather than "==": a K of 0 still ends the stream (after one step).
                with m.If(step + 1 >= k_len):
                    m.d.sync += [state.eq(State.FLUSH), step.eq(0)]
            with m.Case(State.FLUSH):
                m.d.sync += step.eq(step + 1)
                with m.If(step == flush_cycles(rows, cols) - 1):
                    m.d.sync += [state.eq(State.DRAIN), step.eq(0)]
            with m.Case(State.DRAIN):
                # The drain shifts the accumulators south: the bottom row comes first.
                m.d.sync += [step.eq(step + 1), out_row.eq(rows - 1 - step)]
                with m.If(step == rows - 1):
                    m.d.sync += state.eq(State.WRITE)
            with m.Case(State.WRITE):
                m.d.sync += [state.eq(State.IDLE), done.eq(1)]

        return m

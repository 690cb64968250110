"""The accelerator: operand buffers, systolic array, post-processor, protection, control."""

import enum

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from neuroharden.golden.numerics import MULTIPLIER_WIDTH, SHIFT_WIDTH
from .pe import check_int, check_widths, read_register
from .protection import ProtectionUnit, group_layout, index_width
from .requantizer import BIAS_WIDTH, Requantizer
from .systolic_array import SystolicArray

__all__ = ["Accelerator", "PROTECT", "WRITE_SELECT", "OUTPUT_WIDTH", "tile_cycles"]

#: Protection built into an accelerator.
PROTECT = ("none", "lcu", "tmr")
#: ``wr_sel`` code of every loadable buffer and register (see :class:`Accelerator`).
WRITE_SELECT = {"act": 0, "wgt": 1, "bias": 2, "multiplier": 3, "shift": 4, "relu": 5,
                "group": 6, "k": 7, "word_vote": 8}
#: Width of the int8 outputs.
OUTPUT_WIDTH = 8


class State(enum.IntEnum):
    """Controller states, in the order a run visits them."""

    IDLE = 0
    CLEAR = 1
    STREAM = 2
    FLUSH = 3
    DRAIN = 4
    WRITE = 5


def tile_cycles(rows, cols, k):
    """Clock cycles from the cycle ``start`` is sampled to the first cycle ``done`` is 1.

    One clear cycle, ``k`` streaming cycles, ``rows + cols - 1`` flush cycles, ``rows``
    drain cycles and one cycle writing the last row: ``k + 2 * rows + cols + 2``
    including the cycle that samples ``start``. It depends on the array size, not on the
    size of the tile loaded into it.
    """
    return k + 2 * rows + cols + 2


class Accelerator(wiring.Component):
    """Output-stationary int8 accelerator that runs one loaded tile per ``start``.

    ``acc = A @ B`` on a ``rows x cols`` :class:`~hw.systolic_array.SystolicArray`
    (``array``), then per column ``y = requantize(acc + bias, multiplier, shift, relu,
    high)`` (``requant_{c}``, one :class:`~hw.requantizer.Requantizer` per column), then
    the :class:`~hw.protection.ProtectionUnit` (``protect``) merges the copies of every
    protected neuron, and the rows are written to the output buffer.

    **Loading** (only while idle, ``busy == 0``): each cycle with ``wr_en = 1`` writes
    ``wr_data`` into the buffer or register that ``wr_sel`` selects
    (:data:`WRITE_SELECT`) at ``wr_addr``:

    ====================  ==========  =====================================================
    ``wr_sel``            ``wr_addr`` ``wr_data``
    ====================  ==========  =====================================================
    ``act`` (0)           ``k``       column ``k`` of A: element ``r`` = ``A[r, k]``
                                      in bits ``width*r ..`` (buffer ``act_buf``)
    ``wgt`` (1)           ``k``       row ``k`` of B: element ``c`` = ``B[k, c]``
                                      (buffer ``wgt_buf``)
    ``bias`` (2)          ``c``       int32 bias of column ``c`` (``bias_{c}``)
    ``multiplier`` (3)    ``c``       16-bit multiplier (``multiplier_{c}``)
    ``shift`` (4)         ``c``       6-bit shift (``shift_{c}``)
    ``relu`` (5)          ``c``       bit 0: ReLU (``relu_{c}``)
    ``group`` (6)         ``c``       protection-group code (``group_{c}``, see
                                      :func:`hw.protection.encode_group`; 0 = unprotected)
    ``k`` (7)             --          reduction length ``K`` in ``1 .. k_depth`` (``k_len``)
    ``word_vote`` (8)     --          ``"tmr"``: bit 0 selects the word-level vote
                                      (``word_vote``), 0 the bitwise one
    ====================  ==========  =====================================================

    Writes to a select this configuration lacks (``group`` without protection,
    ``word_vote`` without TMR) are ignored. A tile smaller than the array is padded
    with zeros by the loader; everything loaded stays until overwritten, so a tile can
    be run again without reloading.

    **Running**: ``start`` (sampled while idle) clears the array, streams ``K`` columns
    of A and rows of B from the buffers, flushes, drains the accumulators one row per
    cycle through the requantizers into the ``y_{c}`` registers, protects each row and
    writes it to ``out_buf``. ``done`` rises :func:`tile_cycles` cycles after the cycle
    that sampled ``start`` and stays 1 until the next ``start``.

    **Reading**: ``rd_data`` is output row ``rd_addr`` of the last run (element ``c`` in
    bits ``8*c ..``), one cycle after ``rd_addr`` is presented (a synchronous read, so
    the buffers map to block RAM).

    The post-processing is parallel over columns (``cols`` requantizers and protection
    lanes), sequential over rows: the drain delivers one row per cycle, and the
    protection unit needs all copies of one row at once.

    Parameters
    ----------
    rows, cols : int
        Array size, at least 1 (``cols`` at least 2 for ``"lcu"``, 3 for ``"tmr"``).
    width : int
        Operand width, 8 or 16.
    acc_width : int
        Accumulator width, from ``2 * width`` (at least 16) to 48.
    protect : {"none", "lcu", "tmr"}
        Protection unit: none, LCU pairs, or TMR triples.
    k_depth : int
        Depth of the operand buffers: the largest ``K`` of a tile.

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
    """

    def __init__(self, *, rows, cols, width=8, acc_width=32, protect="none", k_depth=256):
        check_int("Row count", rows)
        check_int("Column count", cols)
        check_widths(width, acc_width)
        check_int("Buffer depth (k_depth)", k_depth)
        if acc_width < 16:
            raise ValueError(f"Accumulator width must be at least 16, not {acc_width!r}")
        if protect not in PROTECT:
            raise ValueError(f"Protection must be one of {', '.join(PROTECT)}, "
                             f"not {protect!r}")
        copies = {"none": 1, "lcu": 2, "tmr": 3}[protect]
        if cols < copies:
            raise ValueError(f"Column count must be at least {copies} for {protect!r} "
                             f"protection, not {cols!r}")
        self._rows, self._cols = rows, cols
        self._width, self._acc_width = width, acc_width
        self._protect, self._k_depth = protect, k_depth
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
        })

    @property
    def rows(self):
        """Number of PE rows: the most output rows of a tile."""
        return self._rows

    @property
    def cols(self):
        """Number of PE columns: the most output columns of a tile."""
        return self._cols

    @property
    def width(self):
        """Operand width in bits."""
        return self._width

    @property
    def acc_width(self):
        """Accumulator width in bits."""
        return self._acc_width

    @property
    def protect(self):
        """Protection unit: ``"none"``, ``"lcu"`` or ``"tmr"``."""
        return self._protect

    @property
    def k_depth(self):
        """Depth of the operand buffers: the largest reduction length ``K``."""
        return self._k_depth

    def elaborate(self, platform):
        m = Module()
        rows, cols, width = self.rows, self.cols, self.width

        m.submodules.array = array = SystolicArray(rows=rows, cols=cols, width=width,
                                                   acc_width=self.acc_width)
        act_layout = data.ArrayLayout(signed(width), rows)
        wgt_layout = data.ArrayLayout(signed(width), cols)
        out_layout = data.ArrayLayout(signed(OUTPUT_WIDTH), cols)
        m.submodules.act_buf = act_buf = Memory(shape=act_layout, depth=self.k_depth, init=[])
        m.submodules.wgt_buf = wgt_buf = Memory(shape=wgt_layout, depth=self.k_depth, init=[])
        m.submodules.out_buf = out_buf = Memory(shape=out_layout, depth=rows, init=[])

        # Loaded state: per-column post-processing parameters, K, the protection map.
        bias = [Signal(signed(BIAS_WIDTH), name=f"bias_{c}") for c in range(cols)]
        multiplier = [Signal(unsigned(MULTIPLIER_WIDTH), name=f"multiplier_{c}")
                      for c in range(cols)]
        shift = [Signal(unsigned(SHIFT_WIDTH), name=f"shift_{c}") for c in range(cols)]
        relu = [Signal(1, name=f"relu_{c}") for c in range(cols)]
        k_len = Signal(range(self.k_depth + 1), name="k_len")
        loaded = {"bias": bias, "multiplier": multiplier, "shift": shift, "relu": relu}
        if self.protect != "none":
            layout = group_layout(cols, self.protect)
            loaded["group"] = [Signal(layout, name=f"group_{c}") for c in range(cols)]
        if self.protect == "tmr":
            word_vote = Signal(1, name="word_vote")

        # Controller.
        state = Signal(State, name="state")
        step = Signal(range(max(self.k_depth, rows + cols)), name="step")
        done = Signal(1, name="done_reg")
        out_row = Signal(range(rows), name="out_row")
        m.d.comb += [self.busy.eq(state != State.IDLE), self.done.eq(read_register(done))]

        # Load port: writes while idle only, so a run always sees one consistent tile.
        act_write, wgt_write = act_buf.write_port(), wgt_buf.write_port()
        writing = self.wr_en & (state == State.IDLE)
        m.d.comb += [
            act_write.addr.eq(self.wr_addr), act_write.data.eq(self.wr_data),
            act_write.en.eq(writing & (self.wr_sel == WRITE_SELECT["act"])),
            wgt_write.addr.eq(self.wr_addr), wgt_write.data.eq(self.wr_data),
            wgt_write.en.eq(writing & (self.wr_sel == WRITE_SELECT["wgt"])),
        ]
        with m.If(writing):
            for name, registers in loaded.items():
                with m.If(self.wr_sel == WRITE_SELECT[name]):
                    for c, register in enumerate(registers):
                        with m.If(self.wr_addr == c):
                            m.d.sync += register.eq(self.wr_data)
            with m.If(self.wr_sel == WRITE_SELECT["k"]):
                m.d.sync += k_len.eq(self.wr_data)
            if self.protect == "tmr":
                with m.If(self.wr_sel == WRITE_SELECT["word_vote"]):
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
        y = [Signal(signed(OUTPUT_WIDTH), name=f"y_{c}") for c in range(cols)]
        for c in range(cols):
            m.submodules[f"requant_{c}"] = requant = Requantizer(acc_width=self.acc_width)
            m.d.comb += [
                requant.acc.eq(array.result[c]),
                requant.bias.eq(read_register(bias[c])),
                requant.multiplier.eq(read_register(multiplier[c])),
                requant.shift.eq(read_register(shift[c])),
                requant.relu.eq(read_register(relu[c])),
                # LCU copies saturate at HALF_MAX (numerics.lcu).
                requant.half.eq(loaded["group"][c].enable if self.protect == "lcu" else 0),
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
            m.d.comb += [protect.group[c].eq(read_register(loaded["group"][c].as_value()))
                         for c in range(cols)]
            if self.protect == "tmr":
                m.d.comb += protect.vote_word.eq(read_register(word_vote))
            protected = [protect.out[c] for c in range(cols)]
        m.d.comb += [out_write.addr.eq(read_register(out_row)),
                     out_write.en.eq(((state == State.DRAIN) & (step != 0))
                                     | (state == State.WRITE))]
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
                with m.If(step == rows + cols - 2):
                    m.d.sync += [state.eq(State.DRAIN), step.eq(0)]
            with m.Case(State.DRAIN):
                # The drain shifts the accumulators south: the bottom row comes first.
                m.d.sync += [step.eq(step + 1), out_row.eq(rows - 1 - step)]
                with m.If(step == rows - 1):
                    m.d.sync += state.eq(State.WRITE)
            with m.Case(State.WRITE):
                m.d.sync += [state.eq(State.IDLE), done.eq(1)]

        return m

"""The accelerator's hardware contract: configuration, load port, registers, schedule, packing.

:class:`hw.accelerator.Accelerator` is built from an :class:`AcceleratorConfig` and
keeps this contract; everything that drives, simulates, injects faults into or costs
the accelerator reads it from here instead of restating it:

* **Configuration**: :class:`AcceleratorConfig` (array size, widths, protection, buffer
  depth), validated once, with :meth:`~AcceleratorConfig.to_dict` /
  :meth:`~AcceleratorConfig.from_dict` for the JSON that reaches a simulator process.
* **Load port**: :data:`WRITE_SELECT`, the ``wr_sel`` code of every loadable buffer and
  register.
* **Register map**: :attr:`AcceleratorConfig.registers`, every register and memory of
  the accelerator's own module by name (the constants below), kind, shape and the
  load-port select that writes it (:mod:`hw.registers`); the array's and the PEs' own
  registers are declared by :func:`hw.systolic_array.registers` and
  :func:`hw.pe.registers`, and :func:`pe_site` is the path of a PE register from the
  accelerator's top level.
* **Cycle schedule**: :class:`Schedule` (:meth:`AcceleratorConfig.schedule`), the
  cycle of every phase of a run, and :func:`tile_cycles`.
* **Tile packing**: :meth:`AcceleratorConfig.load_writes` (a tile's operands and
  parameters as load-port words, :func:`pack` / :func:`unpack`), :func:`row_blocks`
  and :func:`column_chunks` (how a layer's matrix product is cut into tiles).

Load port (writes only while idle, one per cycle with ``wr_en = 1``):

====================  ==========  =====================================================
``wr_sel``            ``wr_addr`` ``wr_data``
====================  ==========  =====================================================
``act`` (0)           ``k``       column ``k`` of A: element ``r`` = ``A[r, k]``
                                  in bits ``width*r ..`` (memory :data:`ACT_BUF`)
``wgt`` (1)           ``k``       row ``k`` of B: element ``c`` = ``B[k, c]``
                                  (memory :data:`WGT_BUF`)
``bias`` (2)          ``c``       int32 bias of column ``c`` (:data:`BIAS`)
``multiplier`` (3)    ``c``       16-bit multiplier (:data:`MULTIPLIER`)
``shift`` (4)         ``c``       6-bit shift (:data:`SHIFT`)
``relu`` (5)          ``c``       bit 0: ReLU (:data:`RELU`)
``group`` (6)         ``c``       protection-group code (:data:`GROUP`, see
                                  :func:`hw.protection.encode_group`; 0 = unprotected)
``k`` (7)             --          reduction length ``K`` in ``1 .. k_depth``
                                  (:data:`K_LEN`)
``word_vote`` (8)     --          ``"tmr"``: bit 0 selects the word-level vote
                                  (:data:`WORD_VOTE`), 0 the bitwise one
``zero_point`` (9)    ``c``       int8 output zero point, added after the shift
                                  (:data:`ZERO_POINT`; 0 for symmetric networks)
====================  ==========  =====================================================

Writes to a select a configuration lacks (``group`` without protection, ``word_vote``
without TMR) are ignored. The outputs are read from memory :data:`OUT_BUF` (``rows``
words of one output row, element ``c`` in bits ``8*c ..``).
"""

import enum
from dataclasses import asdict, dataclass, fields

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from neuroharden.golden.numerics import MULTIPLIER_WIDTH, SHIFT_WIDTH
from .pe import check_int, check_widths
from .protection import encode_group, group_layout
from .registers import Register
from .requantizer import BIAS_WIDTH
from .systolic_array import PE_NAME, flush_cycles

__all__ = [
    "PROTECT", "COPIES", "WRITE_SELECT", "STREAM_SELECTS", "OUTPUT_WIDTH", "ARRAY", "ACT_BUF",
    "WGT_BUF", "OUT_BUF", "BIAS", "MULTIPLIER", "SHIFT", "RELU", "ZERO_POINT", "GROUP", "WORD_VOTE",
    "K_LEN", "Y", "STATE", "STEP", "DONE", "OUT_ROW", "ERROR_FLAGS", "error_layout", "State",
    "pe_site", "tile_cycles", "Schedule",
    "AcceleratorConfig", "pack", "unpack", "row_blocks", "column_chunks",
]

#: Protection built into an accelerator.
PROTECT = ("none", "lcu", "tmr")
#: Columns holding the copies of one protected neuron, per protection.
COPIES = {"none": 1, "lcu": 2, "tmr": 3}
#: ``wr_sel`` code of every loadable buffer and register (the table above).
WRITE_SELECT = {"act": 0, "wgt": 1, "bias": 2, "multiplier": 3, "shift": 4, "relu": 5,
                "group": 6, "k": 7, "word_vote": 8, "zero_point": 9}
#: The selects an AXI load packet carries, in this order (:mod:`hw.axi_accelerator`): the
#: ``K`` A columns, the ``K`` B rows, then ``cols`` words of every per-column parameter
#: (the protection map only with protection). ``K`` and the vote mode are registers.
STREAM_SELECTS = ("act", "wgt", "bias", "multiplier", "shift", "relu", "zero_point", "group")
#: Width of the int8 outputs.
OUTPUT_WIDTH = 8

#: Name of the systolic-array submodule (the prefix of its registers' paths).
ARRAY = "array"
#: Memories: the A columns, the B rows, the output rows.
ACT_BUF, WGT_BUF, OUT_BUF = "act_buf", "wgt_buf", "out_buf"
#: Per-column post-processing parameters, loaded.
BIAS, MULTIPLIER, SHIFT, RELU = "bias_{}", "multiplier_{}", "shift_{}", "relu_{}"
#: Per-column output zero point, loaded (imported asymmetric networks).
ZERO_POINT = "zero_point_{}"
#: The protection map, loaded: per-column group codes and the TMR vote mode.
GROUP, WORD_VOTE = "group_{}", "word_vote"
#: The reduction length ``K`` of the loaded tile.
K_LEN = "k_len"
#: The requantized value of column ``c`` of the row being protected and written.
Y = "y_{}"
#: The controller: its state, step counter, done flag and the output row being written.
STATE, STEP, DONE, OUT_ROW = "state", "step", "done_reg", "out_row"


#: What the protection unit reports for each output row it writes (the accelerator's
#: ``errors`` port, valid with ``errors_valid``): an LCU pair whose halves differ, a TMR
#: triple that is not unanimous, and a TMR triple with no majority (word-level vote,
#: three different copies). Only the flags of the build's protection can be set.
ERROR_FLAGS = ("lcu_differ", "tmr_differ", "tmr_no_majority")


def error_layout():
    """Layout of the per-row error flags, one bit per :data:`ERROR_FLAGS` entry."""
    return data.StructLayout({flag: 1 for flag in ERROR_FLAGS})


class State(enum.IntEnum):
    """Controller states, in the order a run visits them."""

    IDLE = 0
    CLEAR = 1
    STREAM = 2
    FLUSH = 3
    DRAIN = 4
    WRITE = 5


def pe_site(row, col, register):
    """The path of a PE register from the accelerator's top level (``array.pe_0_1.acc``).

    Parameters
    ----------
    row, col : int
        The PE.
    register : str
        One of :data:`hw.pe.A_REG`, :data:`hw.pe.W_REG`, :data:`hw.pe.ACC`.
    """
    return f"{ARRAY}.{PE_NAME.format(row, col)}.{register}"


def tile_cycles(rows, cols, k):
    """Clock cycles from the cycle ``start`` is sampled to the first cycle ``done`` is 1.

    One clear cycle, ``k`` streaming cycles, ``rows + cols - 1`` flush cycles, ``rows``
    drain cycles and one cycle writing the last row: ``k + 2 * rows + cols + 2``
    including the cycle that samples ``start`` (:attr:`Schedule.cycles`). It depends on
    the array size, not on the size of the tile loaded into it.
    """
    return Schedule(rows=rows, cols=cols, k=k).cycles


@dataclass(frozen=True)
class Schedule:
    """The cycles of one run of a ``k``-step tile on a ``rows`` x ``cols`` accelerator.

    Cycles count from the one that samples ``start`` (0), as
    ``sim.accelerator_tb.AcceleratorTB.run`` numbers them: 1 clears the array, then
    :attr:`stream`, :attr:`flush` and :attr:`drain`, then :attr:`write` writes output
    row 0, and ``done`` is 1 from cycle :attr:`cycles` on. Drain cycle ``i`` feeds the
    accumulators of row ``rows - 1 - i`` (final from the first drain cycle) to the
    requantizers; the ``y_{c}`` registers hold that row, being protected and written to
    the output buffer, in the next cycle.

    Parameters
    ----------
    rows, cols : int
        Array size.
    k : int
        Reduction length of the loaded tile, at least 1.
    """

    rows: int
    cols: int
    k: int

    #: The cycle that samples ``start``, and the one that clears the array.
    START, CLEAR = 0, 1

    def __post_init__(self):
        check_int("Row count", self.rows)
        check_int("Column count", self.cols)
        check_int("Reduction length (k)", self.k)

    @property
    def stream(self):
        """Cycles streaming step ``k = cycle - stream.start`` into the array."""
        return range(self.CLEAR + 1, self.CLEAR + 1 + self.k)

    @property
    def flush(self):
        """Cycles of zero inputs that let the last products reach every PE."""
        return range(self.stream.stop, self.stream.stop + flush_cycles(self.rows, self.cols))

    @property
    def drain(self):
        """Cycles shifting one row of accumulators into the requantizers, bottom row first."""
        return range(self.flush.stop, self.flush.stop + self.rows)

    @property
    def first_drain(self):
        """The first drain cycle: every accumulator is final."""
        return self.drain.start

    @property
    def write(self):
        """The cycle writing output row 0, the last."""
        return self.drain.stop

    @property
    def cycles(self):
        """Cycles of the run, ``done`` included: :func:`tile_cycles`."""
        return self.write + 1

    def drain_cycle(self, row):
        """The drain cycle that feeds output row ``row`` to the requantizers."""
        return self.first_drain + self.rows - 1 - row

    def drained_row(self, cycle):
        """The output row a drain cycle feeds to the requantizers."""
        if cycle not in self.drain:
            raise ValueError(f"Cycle {cycle} is not a drain cycle ({self.drain.start} .. "
                             f"{self.drain.stop - 1})")
        return self.rows - 1 - (cycle - self.first_drain)

    def output_cycle(self, row):
        """The cycle in which the ``y_{c}`` registers hold output row ``row``."""
        return self.drain_cycle(row) + 1


@dataclass(frozen=True)
class AcceleratorConfig:
    """Generation parameters of an :class:`~hw.accelerator.Accelerator`, validated.

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

    Raises
    ------
    TypeError, ValueError
        For a parameter of the wrong type or out of range.
    """

    rows: int
    cols: int
    width: int = 8
    acc_width: int = 32
    protect: str = "none"
    k_depth: int = 256

    def __post_init__(self):
        check_int("Row count", self.rows)
        check_int("Column count", self.cols)
        check_widths(self.width, self.acc_width)
        check_int("Buffer depth (k_depth)", self.k_depth)
        if self.acc_width < 16:
            raise ValueError(f"Accumulator width must be at least 16, not {self.acc_width!r}")
        if self.protect not in PROTECT:
            raise ValueError(f"Protection must be one of {', '.join(PROTECT)}, "
                             f"not {self.protect!r}")
        copies = COPIES[self.protect]
        if self.cols < copies:
            raise ValueError(f"Column count must be at least {copies} for {self.protect!r} "
                             f"protection, not {self.cols!r}")

    def to_dict(self):
        """The parameters as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Build (and validate) a configuration from :meth:`to_dict`'s output.

        Missing optional parameters take their defaults.

        Raises
        ------
        ValueError
            For a parameter this class does not have.
        """
        if not isinstance(data, dict):
            raise TypeError(f"An accelerator configuration must be a dict, "
                            f"not {type(data).__name__}")
        unknown = set(data) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown accelerator parameter(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    @property
    def registers(self):
        """The register map of the accelerator's own module: name -> :class:`Register`.

        The memories, the loaded post-processing parameters, ``K`` and protection map,
        the controller and the ``y_{c}`` row, in the order the accelerator creates them.
        """
        rows, cols = self.rows, self.cols
        declared = [
            Register(ACT_BUF, "buffer", data.ArrayLayout(signed(self.width), rows),
                     select="act", depth=self.k_depth),
            Register(WGT_BUF, "buffer", data.ArrayLayout(signed(self.width), cols),
                     select="wgt", depth=self.k_depth),
            Register(OUT_BUF, "buffer", data.ArrayLayout(signed(OUTPUT_WIDTH), cols),
                     depth=rows),
            Register(BIAS, "requant", signed(BIAS_WIDTH), select="bias"),
            Register(MULTIPLIER, "requant", unsigned(MULTIPLIER_WIDTH), select="multiplier"),
            Register(SHIFT, "requant", unsigned(SHIFT_WIDTH), select="shift"),
            Register(RELU, "requant", 1, select="relu"),
            Register(ZERO_POINT, "requant", signed(OUTPUT_WIDTH), select="zero_point"),
            Register(K_LEN, "control", range(self.k_depth + 1), select="k"),
        ]
        if self.protect != "none":
            declared.append(Register(GROUP, "protect", group_layout(cols, self.protect),
                                     select="group"))
        if self.protect == "tmr":
            declared.append(Register(WORD_VOTE, "protect", 1, select="word_vote"))
        declared += [
            Register(STATE, "control", State),
            Register(STEP, "control", range(max(self.k_depth, rows + cols))),
            Register(DONE, "control", 1),
            Register(OUT_ROW, "control", range(rows)),
            Register(Y, "requant", signed(OUTPUT_WIDTH)),
        ]
        return {register.name: register for register in declared}

    def stream_segments(self, k):
        """The ``(select, words)`` segments of an AXI load packet of a ``k``-step tile, in
        order (:data:`STREAM_SELECTS`; ``group`` only with protection)."""
        return [(select, k if select in ("act", "wgt") else self.cols)
                for select in STREAM_SELECTS if select != "group" or self.protect != "none"]

    def stream_words(self, writes):
        """The AXI load packet of a tile from its :meth:`load_writes`: the ``wr_data`` of
        the writes of :data:`STREAM_SELECTS`, in :meth:`stream_segments` order. ``K`` and
        the vote mode travel in the ``K`` and ``VOTE`` registers instead (:mod:`hw.csr`)."""
        codes = {WRITE_SELECT[select] for select in STREAM_SELECTS}
        return [data for select, _, data in writes if select in codes]

    def schedule(self, k):
        """The :class:`Schedule` of a run of a ``k``-step tile."""
        return Schedule(rows=self.rows, cols=self.cols, k=k)

    def check_tile(self, m, k, n):
        """Raise ``ValueError`` unless an ``m x k`` by ``k x n`` tile fits the array and
        the buffers."""
        if m > self.rows or n > self.cols or k > self.k_depth:
            raise ValueError(f"Tile m={m}, k={k}, n={n} does not fit a {self.rows}x"
                             f"{self.cols} accelerator with k_depth={self.k_depth}")

    def load_writes(self, *, activations, weights, bias, multiplier, shift, relu,
                    zero_point=None, lcu_pairs=(), lcu_wide=None, tmr_triples=(),
                    word_vote=False):
        """The load-port writes that put one tile into the accelerator.

        Parameters
        ----------
        activations : sequence of sequence of int
            ``A``, ``m`` rows of ``k`` values.
        weights : sequence of sequence of int
            ``B``, ``k`` rows of ``n`` values.
        bias, multiplier, shift, relu : sequence of int
            Per-column post-processing parameters, ``n`` each.
        zero_point : sequence of int, optional
            Per-column int8 output zero points, ``n``; default zeros.
        lcu_pairs, tmr_triples : sequence of sequence of int
            Tile columns holding the copies of one protected neuron.
        lcu_wide : sequence of bool, optional
            Per LCU pair: wide (halves saturate at ``INT8_MAX``, the LCU clears bit 7;
            :func:`hw.protection.group_layout`); default none.
        word_vote : bool
            The TMR triples use the word-level vote.

        Returns
        -------
        list of (int, int, int)
            ``(wr_sel, wr_addr, wr_data)`` in write order: ``k`` A columns, ``k`` B
            rows, every parameter of every array column (the protection map when the
            accelerator has one), ``K``, and the vote mode with TMR. Array rows and
            columns the tile does not use get zero operands, zero parameters and no
            protection.

        Raises
        ------
        ValueError
            If the tile does not fit (:meth:`check_tile`) or needs protection the
            accelerator lacks.
        """
        m, k, n = len(activations), len(weights), len(weights[0])
        self.check_tile(m, k, n)
        if len(lcu_pairs) and self.protect != "lcu":
            raise ValueError(f"Tile has LCU pairs but the accelerator's protection is "
                             f"{self.protect!r}")
        if len(tmr_triples) and self.protect != "tmr":
            raise ValueError(f"Tile has TMR triples but the accelerator's protection is "
                             f"{self.protect!r}")
        writes = [(WRITE_SELECT["act"], step, pack([row[step] for row in activations],
                                                   self.width)) for step in range(k)]
        writes += [(WRITE_SELECT["wgt"], step, pack(weights[step], self.width))
                   for step in range(k)]
        if zero_point is None:
            zero_point = [0] * n
        columns = {"bias": bias, "multiplier": multiplier, "shift": shift, "relu": relu,
                   "zero_point": zero_point}
        columns = {name: [int(value) for value in values] + [0] * (self.cols - n)
                   for name, values in columns.items()}
        if self.protect != "none":
            columns["group"] = [0] * self.cols
            wide = [False] * len(lcu_pairs) if lcu_wide is None else lcu_wide
            for (c0, c1), pair_wide in zip(lcu_pairs, wide, strict=True):
                columns["group"][c0] = encode_group(self.cols, int(c1), wide=pair_wide)
                columns["group"][c1] = encode_group(self.cols, int(c0), wide=pair_wide)
            for triple in tmr_triples:
                for index, column in enumerate(triple):
                    first, second = (int(other) for position, other in enumerate(triple)
                                     if position != index)
                    columns["group"][column] = encode_group(self.cols, first, second)
        mask = (1 << BIAS_WIDTH) - 1
        for name, values in columns.items():
            writes += [(WRITE_SELECT[name], c, value & mask) for c, value in enumerate(values)]
        writes.append((WRITE_SELECT["k"], 0, k))
        if self.protect == "tmr":
            writes.append((WRITE_SELECT["word_vote"], 0, int(bool(word_vote))))
        return writes


def pack(values, width):
    """Pack signed integers into one unsigned word, element 0 in the low bits (an Amaranth
    ``ArrayLayout``: the load port's A and B words, the array's ports)."""
    mask = (1 << width) - 1
    word = 0
    for index, value in enumerate(values):
        word |= (int(value) & mask) << (index * width)
    return word


def unpack(word, count, width):
    """Split an unsigned word into ``count`` signed ``width``-bit integers (:func:`pack`'s
    inverse: the array's ``result``, the read port's ``rd_data``)."""
    mask, sign = (1 << width) - 1, 1 << (width - 1)
    elements = ((word >> (index * width)) & mask for index in range(count))
    return [element - (element & sign) * 2 for element in elements]


def row_blocks(m, rows):
    """The tiles' rows of an ``m``-row matrix product: consecutive blocks of ``rows``
    rows (the last may be shorter), as slices."""
    check_int("Matrix row count", m)
    check_int("Row count", rows)
    return tuple(slice(start, min(start + rows, m)) for start in range(0, m, rows))


def column_chunks(channels, groups, cols):
    """The tiles' columns of a layer: its channels packed into chunks of at most ``cols``.

    Greedy and order-preserving: the channels ``0 .. channels - 1`` (each alone, or with
    the other copies of its protected neuron, in the group's order) are taken in order
    of their smallest channel, and a group that does not fit the chunk being filled
    starts a new one, so the copies of a neuron always share a tile (the protection unit
    sees them at once).

    Parameters
    ----------
    channels : int
        Output channels of the layer, copies included.
    groups : iterable of sequence of int
        The channels of each protected neuron (LCU pairs, TMR triples).
    cols : int
        Array columns.

    Returns
    -------
    tuple of list of int
        The channels of each chunk, in order.

    Raises
    ------
    ValueError
        When a group has more copies than the array has columns.
    """
    check_int("Column count", cols)
    grouped = [[int(c) for c in group] for group in groups]
    members = {c for group in grouped for c in group}
    grouped += [[c] for c in range(channels) if c not in members]
    chunks, current = [], []
    for group in sorted(grouped, key=min):
        if len(group) > cols:
            raise ValueError(f"the array has {cols} columns, fewer than the {len(group)} "
                             f"copies of one protected neuron (they must share a tile)")
        if len(current) + len(group) > cols:
            chunks.append(current)
            current = []
        current = current + group
    chunks.append(current)
    return tuple(chunks)

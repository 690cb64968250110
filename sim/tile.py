"""One accelerator tile: the unit of work the network compiler emits and the RTL runs.

A tile is an int8 matrix product on the output-stationary array followed by the
post-processor and the protection unit::

    acc[r, c] = wrap(sum_k activations[r, k] * weights[k, c] + bias[c])
    y[r, c]   = requantize(acc[r, c], multiplier[c], shift[c], relu[c], high[c],
                           zero_point[c])

with ``high[c] = HALF_MAX`` on the columns that hold a copy of a split neuron and
``INT8_MAX`` elsewhere and ``zero_point[c]`` the column's output zero point (0 for
symmetric networks); then every LCU pair ``(c0, c1)`` writes ``lcu(y[:, c0], y[:, c1])``
into both of its columns, and every TMR triple writes the majority of its three columns
into all three. Array row ``r`` computes output row ``r`` (an image, or one output pixel
of a convolution after im2col); array column ``c`` computes output channel ``c``.

:func:`reference` is the one plain function that defines this arithmetic; the
accelerator's testbench and the compiler's tests check against it, and it only calls
:mod:`golden.numerics`.
"""

from dataclasses import dataclass, field

import numpy as np

from neuroharden.golden.numerics import (ACC_WIDTH, HALF_MAX, INT8_MAX, MAX_SHIFT, MULTIPLIER_WIDTH,
                             WIDTH, add_bias, lcu, requantize, vote_bitwise, vote_word)

__all__ = ["Tile", "reference", "postprocess", "VOTE_MODES"]

#: Voter modes of the protection unit (``numerics.vote_bitwise`` / ``vote_word``).
VOTE_MODES = ("bitwise", "word")


@dataclass(frozen=True, eq=False)
class Tile:
    """Operands, post-processing parameters and protection map of one tile.

    Parameters
    ----------
    activations : numpy.ndarray
        int8 ``[m, k]``: row ``r`` is streamed into array row ``r``.
    weights : numpy.ndarray
        int8 ``[k, n]``: column ``c`` is streamed into array column ``c``.
    bias : numpy.ndarray
        int32 ``[n]``.
    multiplier : numpy.ndarray
        ``[n]`` unsigned fixed-point multipliers in ``[0, 2**MULTIPLIER_WIDTH)``.
    shift : numpy.ndarray
        ``[n]`` shifts in ``[0, MAX_SHIFT]``.
    relu : numpy.ndarray
        bool ``[n]``.
    zero_point : numpy.ndarray, optional
        ``[n]`` int8 output zero points (imported asymmetric networks); default zeros.
    lcu_pairs : numpy.ndarray
        int ``[P, 2]``: column pairs holding the two copies of a split neuron.
    lcu_wide : numpy.ndarray, optional
        bool ``[P]``: wide pairs (offset-free halves of a layer with a zero point, see
        :attr:`golden.hardened.LayerProtection.wide`): they saturate at ``INT8_MAX`` and
        the LCU clears bit 7; default none.
    tmr_triples : numpy.ndarray
        int ``[T, 3]``: column triples holding the three copies of a triplicated neuron.
    vote_mode : str
        ``"bitwise"`` or ``"word"`` for every triple.

    Raises
    ------
    ValueError
        On a wrong shape, a value outside its field's range, or a column that belongs
        to more than one protection group.
    """

    activations: np.ndarray
    weights: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    relu: np.ndarray
    zero_point: np.ndarray = None
    lcu_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    lcu_wide: np.ndarray = None
    tmr_triples: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    vote_mode: str = "bitwise"

    def __post_init__(self):
        a = np.asarray(self.activations)
        w = np.asarray(self.weights)
        if a.ndim != 2 or w.ndim != 2 or a.shape[1] != w.shape[0]:
            raise ValueError(f"Tile operands must be [m, k] and [k, n] matrices, not "
                             f"{a.shape} and {w.shape}")
        m, k = a.shape
        n = w.shape[1]
        if min(m, k, n) < 1:
            raise ValueError(f"Tile must have at least one row, column and step, not "
                             f"m={m}, k={k}, n={n}")
        for name, matrix in (("activations", a), ("weights", w)):
            if matrix.min() < -128 or matrix.max() > INT8_MAX:
                raise ValueError(f"Tile {name} must be int8 values")
        columns = {}
        for name, low, high in (("bias", -(1 << 31), (1 << 31) - 1),
                                ("multiplier", 0, (1 << MULTIPLIER_WIDTH) - 1),
                                ("shift", 0, MAX_SHIFT), ("relu", 0, 1),
                                ("zero_point", -128, INT8_MAX)):
            given = getattr(self, name)
            values = np.asarray(np.zeros(n) if given is None else given
                                ).astype(np.int64).reshape(-1)
            if values.shape != (n,):
                raise ValueError(f"Tile {name} must hold one value per column ({n}), "
                                 f"not {values.size}")
            if values.min() < low or values.max() > high:
                raise ValueError(f"Tile {name} must lie in [{low}, {high}]")
            columns[name] = values
        pairs = np.asarray(self.lcu_pairs, dtype=np.int64).reshape(-1, 2)
        triples = np.asarray(self.tmr_triples, dtype=np.int64).reshape(-1, 3)
        members = np.concatenate([pairs.reshape(-1), triples.reshape(-1)])
        if members.size and (members.min() < 0 or members.max() >= n):
            raise ValueError(f"Tile protection groups must name columns in [0, {n})")
        if np.unique(members).size != members.size:
            raise ValueError("A tile column can belong to one protection group only")
        if self.vote_mode not in VOTE_MODES:
            raise ValueError(f"Vote mode must be one of {', '.join(VOTE_MODES)}, "
                             f"not {self.vote_mode!r}")
        object.__setattr__(self, "activations", a.astype(np.int64))
        object.__setattr__(self, "weights", w.astype(np.int64))
        for name, values in columns.items():
            object.__setattr__(self, name, values)
        object.__setattr__(self, "relu", columns["relu"].astype(bool))
        object.__setattr__(self, "lcu_pairs", pairs)
        wide = np.zeros(len(pairs), bool) if self.lcu_wide is None else self.lcu_wide
        object.__setattr__(self, "lcu_wide", np.asarray(wide, bool).reshape(len(pairs)))
        object.__setattr__(self, "tmr_triples", triples)

    @property
    def shape(self):
        """``(m, k, n)``: output rows, reduction length, output columns."""
        return (self.activations.shape[0], self.activations.shape[1],
                self.weights.shape[1])

    @property
    def high(self):
        """Per-column saturation ceiling: ``HALF_MAX`` on the copies of a pair that is not
        wide, else ``INT8_MAX``."""
        ceiling = np.full(self.shape[2], INT8_MAX, dtype=np.int64)
        ceiling[self.lcu_pairs[~self.lcu_wide].reshape(-1)] = HALF_MAX
        return ceiling


def reference(tile, acc_width=ACC_WIDTH):
    """The tile's accumulators and protected int8 outputs, as the RTL must produce them.

    Parameters
    ----------
    tile : Tile
        The tile.
    acc_width : int
        Accumulator width of the array (wrap-around width).

    Returns
    -------
    acc : numpy.ndarray
        int64 ``[m, n]``: the biased accumulators (after the bias add, wrapped).
    y : numpy.ndarray
        int64 ``[m, n]``: the int8 outputs after requantization and protection.
    """
    # Python ints keep the dot product exact before the wrap, at any K.
    return postprocess(tile, tile.activations.astype(object) @ tile.weights.astype(object),
                       acc_width)


def postprocess(tile, product, acc_width=ACC_WIDTH):
    """The tile's accumulators and outputs from its array product ``A @ B``.

    :func:`reference` with the product given, for models of faults inside the array
    (which change the product but not the post-processor or the protection unit).

    Parameters
    ----------
    tile : Tile
    product : numpy.ndarray
        ``[m, n]`` exact (unwrapped) integer products: Python ints (object array) at any
        size, or int64 below ``2**62`` in magnitude (the bias add must not overflow).
    acc_width : int
        Accumulator width of the array.

    Returns
    -------
    acc, y : numpy.ndarray
        As :func:`reference`.
    """
    product = np.asarray(product)
    bias = tile.bias.astype(object) if product.dtype == object else tile.bias
    acc = np.asarray(add_bias(product, bias, acc_width), dtype=np.int64)
    y = requantize(acc, tile.multiplier, tile.shift, True, tile.high, tile.zero_point)
    y = np.where(tile.relu, y, requantize(acc, tile.multiplier, tile.shift, False,
                                          tile.high, tile.zero_point))
    for (c0, c1), wide in zip(tile.lcu_pairs, tile.lcu_wide):
        y[:, c0] = y[:, c1] = lcu(y[:, c0], y[:, c1], bit=WIDTH - 1 if wide else None)
    vote = vote_bitwise if tile.vote_mode == "bitwise" else vote_word
    for c0, c1, c2 in tile.tmr_triples:
        y[:, c0] = y[:, c1] = y[:, c2] = vote(y[:, c0], y[:, c1], y[:, c2])
    return acc, y

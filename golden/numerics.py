"""The numeric contract shared bit for bit by the golden model and the RTL.

Every function here works element-wise on Python ints, numpy integer arrays and torch
integer tensors alike (it only uses ``+ * & | >> <<`` and ``.clip``), so the integer
model, the Amaranth post-processor tests and the cocotb reference models call the very
same code. Nothing here imports torch or Amaranth.

Contract (the README's "The numeric contract"):

* weights and activations are int8, symmetric; bias is int32 (imported asymmetric
  networks add an output zero point after the shift, see :func:`requantize`);
* accumulation is signed, ``acc_width`` bits, two's complement wrap-around;
* requantization is ``sat8(relu?((acc * M + 2**(s-1)) >> s))`` with an unsigned
  ``MULTIPLIER_WIDTH``-bit multiplier ``M`` and a shift ``s`` in ``[0, MAX_SHIFT]``,
  an arithmetic shift that rounds half up, and no rounding term when ``s == 0``.
"""

import numpy as np

__all__ = [
    "WIDTH", "ACC_WIDTH", "MULTIPLIER_WIDTH", "SHIFT_WIDTH", "MAX_SHIFT", "INT8_MAX",
    "HALF_MAX", "wrap", "add_bias", "requantize", "lcu", "vote_bitwise", "vote_word",
]

#: Operand width of activations and weights.
WIDTH = 8
#: Default accumulator width.
ACC_WIDTH = 32
#: Width of the unsigned fixed-point requantization multiplier.
MULTIPLIER_WIDTH = 16
#: Width of the requantization shift field.
SHIFT_WIDTH = 6
#: Largest shift the contract (and the hardware) accepts.
MAX_SHIFT = (1 << SHIFT_WIDTH) - 1
#: Saturation ceiling of an ordinary int8 output.
INT8_MAX = (1 << (WIDTH - 1)) - 1
#: Saturation ceiling of each copy of a split neuron (see :func:`lcu`): the largest
#: value whose bit ``WIDTH - 2`` is clear.
HALF_MAX = (1 << (WIDTH - 2)) - 1


def _clip(x, low, high):
    # Python ints are exact at any width but carry no .clip; arrays and tensors do (torch
    # only with bounds that are both numbers or both tensors, hence two steps).
    if isinstance(x, (int, np.integer)):
        return min(max(int(x), low), int(high))
    return x.clip(min=low).clip(max=high)


def wrap(x, width=ACC_WIDTH):
    """Wrap ``x`` to a signed two's complement value of ``width`` bits.

    Parameters
    ----------
    x : int, numpy.ndarray or torch.Tensor
        Integer value(s), 64-bit wide or narrower.
    width : int
        Target width in bits (at most 63).

    Returns
    -------
    Same type as ``x``, with every element in ``[-2**(width-1), 2**(width-1))``.
    """
    half = 1 << (width - 1)
    return ((x + half) & ((1 << width) - 1)) - half


def add_bias(acc, bias, acc_width=ACC_WIDTH):
    """Add the int32 bias to an accumulator with wrap-around at ``acc_width`` bits."""
    return wrap(acc + bias, acc_width)


def requantize(acc, multiplier, shift, relu, high=INT8_MAX, zero_point=0):
    """Scale an accumulator back to int8: ``sat8(relu?((acc * M + 2**(s-1)) >> s) + z)``.

    Parameters
    ----------
    acc : int, numpy.ndarray or torch.Tensor
        Signed accumulator values (bias already added), as int64.
    multiplier : int or array
        Unsigned fixed-point multiplier ``M`` in ``[0, 2**MULTIPLIER_WIDTH)``; broadcasts
        against ``acc`` (one per output channel).
    shift : int or array
        Right shift ``s`` in ``[0, MAX_SHIFT]``; broadcasts against ``acc``.
    relu : bool
        Apply ReLU before saturation.
    high : int or array
        Saturation ceiling: :data:`INT8_MAX` for ordinary outputs, :data:`HALF_MAX` for
        the copies of a split neuron (see :func:`lcu`); broadcasts against ``acc``.
    zero_point : int or array
        Output zero point ``z`` in ``[-128, 127]`` (imported asymmetric networks; 0 for
        the symmetric contract): an offset added after the shift and the ReLU, before
        saturation; broadcasts against ``acc`` (one per output channel).

    Returns
    -------
    int8 values as int64 elements of the type of ``acc``: in ``[z, high]`` with ReLU,
    ``[-128, high]`` without (``z = 0`` by default).

    Notes
    -----
    ``(((p << 1) >> s) + 1) >> 1`` equals ``(p + 2**(s-1)) >> s`` for ``s > 0`` and ``p``
    for ``s == 0`` (with ``2p = q 2**s + r``, both are ``floor((q + 1) / 2)``): the
    contract's rounding without a branch, and without the constant ``1 << 63`` that
    overflows int64 arrays and tensors at ``s = 63``. ``p << 1`` stays below ``2**63``
    for a 32-bit accumulator times a 16-bit multiplier.
    """
    rounded = ((((acc * multiplier) << 1) >> shift) + 1) >> 1
    # relu(v) + z == max(v + z, z): the ReLU clips at the zero point, real value 0.
    return _clip(rounded + zero_point, zero_point if relu else -128, high)


def lcu(a, b, width=WIDTH, bit=None):
    """Lightweight Correction Unit of paper 004 (Fig. 3).

    ``y = (a AND b)`` with bit ``bit`` of the ``width``-bit word cleared, by default bit
    ``width - 2`` (the MSB of the integer part of a non-negative value). Valid for the
    halves of a split neuron after ReLU, which both lie in ``[0, 2**(width-2))`` when
    fault-free.

    Parameters
    ----------
    a, b : int, numpy.ndarray or torch.Tensor
        The two halves, signed ``width``-bit values.
    width : int
        Operand width.
    bit : int, optional
        The bit to clear: ``width - 2`` (default) or ``width - 1``, the wide variant for
        the halves of a layer with an output zero point (imported asymmetric networks),
        which are offset-free, saturate at :data:`INT8_MAX` and so lie in
        ``[0, 2**(width-1))`` when fault-free. Clearing the sign bit of the word gives a
        non-negative result.

    Notes
    -----
    A half is ``requantize`` with the shift ``s + 1``, so it can reach 64 (an unsplit
    output of 127 rounds up to a half of 64) or more (where the unsplit output would
    saturate). The contract therefore saturates the copies of a split neuron at
    :data:`HALF_MAX` (``requantize(..., high=HALF_MAX)``): every fault-free half then
    has bit ``width - 2`` clear, the LCU is the identity without faults, and a fault
    upstream of a split neuron saturates both halves instead of being wrapped by the
    LCU's bit reset.
    """
    if bit is None:
        bit = width - 2
    # Re-extend the sign from the width-bit word: clearing its sign bit (bit width - 1)
    # makes the value non-negative, which the int64 representation only shows this way.
    return wrap((a & b) & ~(1 << bit), width)


def vote_bitwise(a, b, c):
    """Bitwise majority of three copies: ``a&b | a&c | b&c``."""
    return (a & b) | (a & c) | (b & c)


def vote_word(a, b, c):
    """Word-level majority of paper 000: the value two copies agree on, else 0."""
    if isinstance(a, (int, np.integer)):
        return a if a in (b, c) else b if b == c else 0
    a_wins = (a == b) | (a == c)
    return a * a_wins + b * ((b == c) & ~a_wins)

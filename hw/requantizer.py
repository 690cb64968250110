"""Combinational post-processor: bias, fixed-point scaling, ReLU, zero point, int8 saturation."""

from amaranth.hdl import Const, Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from neuroharden.golden.numerics import HALF_MAX, INT8_MAX, MULTIPLIER_WIDTH, SHIFT_WIDTH
from .pe import MAX_ACC_WIDTH, check_int

__all__ = ["Requantizer", "BIAS_WIDTH"]

#: Width of the bias input (int32, per the numeric contract).
BIAS_WIDTH = 32


class Requantizer(wiring.Component):
    """``y = requantize(add_bias(acc, bias, acc_width), multiplier, shift, relu, high,
    zero_point)``.

    Bit-exact with :func:`golden.numerics.requantize` for every shift ``0 .. 63`` and
    zero point: the biased accumulator wraps at ``acc_width`` bits, then
    ``v = ((acc * M + 2**(s-1)) >> s) + z`` with an arithmetic shift and no rounding
    term when ``s == 0``, and ``y = min(max(v, low), high)`` with ``low = z`` with ReLU
    (the ReLU clips at the zero point, real value 0) and ``-128`` without, and ``high``
    ``HALF_MAX`` (63) when ``half`` is set (a copy of a split neuron), ``INT8_MAX``
    (127) otherwise. Internal signals are wide enough that the product, the rounding
    term and the offset never overflow.

    Parameters
    ----------
    acc_width : int
        Accumulator width, from 16 to 48.

    Attributes
    ----------
    acc : In(signed(acc_width))
        Accumulator from the array.
    bias : In(signed(32))
        Bias, added with wrap-around at ``acc_width`` bits.
    multiplier : In(unsigned(MULTIPLIER_WIDTH))
        Unsigned fixed-point multiplier ``M``.
    shift : In(unsigned(SHIFT_WIDTH))
        Right shift ``s``.
    relu : In(1)
        Clamp negative results to zero.
    half : In(1)
        Saturate at ``HALF_MAX`` instead of ``INT8_MAX`` (the copies of a split neuron,
        see :func:`golden.numerics.lcu`).
    zero_point : In(signed(8))
        Output zero point ``z``, added after the shift (0 for symmetric networks).
    y : Out(signed(8))
        The int8 output.
    """

    def __init__(self, *, acc_width=32):
        check_int("Accumulator width", acc_width)
        if not 16 <= acc_width <= MAX_ACC_WIDTH:
            raise ValueError(f"Accumulator width must be between 16 and {MAX_ACC_WIDTH}, "
                             f"not {acc_width!r}")
        self._acc_width = acc_width
        super().__init__({
            "acc": In(signed(acc_width)),
            "bias": In(signed(BIAS_WIDTH)),
            "multiplier": In(unsigned(MULTIPLIER_WIDTH)),
            "shift": In(unsigned(SHIFT_WIDTH)),
            "relu": In(1),
            "half": In(1),
            "zero_point": In(signed(8)),
            "y": Out(signed(8)),
        })

    @property
    def acc_width(self):
        """Accumulator width in bits."""
        return self._acc_width

    def elaborate(self, platform):
        m = Module()

        biased = (self.acc + self.bias)[:self.acc_width].as_signed()
        # (1 << s) >> 1 is 2**(s-1) for s > 0 and 0 for s == 0, as in the contract; the
        # arithmetic on Values widens the result, so nothing here can overflow.
        rounding = (Const(1, 1) << self.shift) >> 1
        scaled = (biased * self.multiplier + rounding) >> self.shift
        offset = scaled + self.zero_point
        low = Mux(self.relu, self.zero_point, -128)
        high = Mux(self.half, HALF_MAX, INT8_MAX)
        # min(max(v, low), high), in the contract's order: a zero point above ``high``
        # (possible with ``half``) saturates at ``high``.
        floored = Mux(offset < low, low, offset)
        m.d.comb += self.y.eq(Mux(floored > high, high, floored))

        return m

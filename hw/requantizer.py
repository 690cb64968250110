"""Combinational post-processor: bias, fixed-point scaling, ReLU, int8 saturation."""

from amaranth.hdl import Const, Module, Mux, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from neuroharden.golden.numerics import HALF_MAX, INT8_MAX, MULTIPLIER_WIDTH, SHIFT_WIDTH
from .pe import MAX_ACC_WIDTH, check_int

__all__ = ["Requantizer", "BIAS_WIDTH"]

#: Width of the bias input (int32, per the numeric contract).
BIAS_WIDTH = 32


class Requantizer(wiring.Component):
    """``y = requantize(add_bias(acc, bias, acc_width), multiplier, shift, relu, high)``.

    Bit-exact with :func:`golden.numerics.requantize` for every shift ``0 .. 63``: the
    biased accumulator wraps at ``acc_width`` bits, then
    ``sat(relu?((acc * M + 2**(s-1)) >> s))`` with an arithmetic shift and no
    rounding term when ``s == 0``, saturated to ``[-128 (0 with ReLU), high]`` where
    ``high`` is ``HALF_MAX`` (63) when ``half`` is set (a copy of a split neuron) and
    ``INT8_MAX`` (127) otherwise. Internal signals are wide enough that the product and
    the rounding term never overflow.

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
        low = Mux(self.relu, 0, -128)
        high = Mux(self.half, HALF_MAX, INT8_MAX)
        m.d.comb += self.y.eq(Mux(scaled > high, high, Mux(scaled < low, low, scaled)))

        return m

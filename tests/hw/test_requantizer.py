# amaranth: UnusedElaboratable=no
"""Requantizer: bit-exact with golden.numerics for random and edge operands."""

import itertools
import random

import pytest

from neuroharden.golden.numerics import HALF_MAX, INT8_MAX, MAX_SHIFT, MULTIPLIER_WIDTH, add_bias, requantize
from neuroharden.hw.requantizer import Requantizer
from tests.hw.simulation import simulate

MAX_MULTIPLIER = (1 << MULTIPLIER_WIDTH) - 1


def check(acc_width, cases, *, half=(0,), zero_points=(0,)):
    """Every case under every ``half`` setting and zero point against the contract."""
    dut = Requantizer(acc_width=acc_width)
    mismatches = []

    async def testbench(ctx):
        for acc, bias, multiplier, shift, relu in cases:
            ctx.set(dut.acc, acc)
            ctx.set(dut.bias, bias)
            ctx.set(dut.multiplier, multiplier)
            ctx.set(dut.shift, shift)
            ctx.set(dut.relu, relu)
            for ceiling, zero_point in itertools.product(half, zero_points):
                ctx.set(dut.half, ceiling)
                ctx.set(dut.zero_point, zero_point)
                expected = requantize(add_bias(acc, bias, acc_width), multiplier, shift, relu,
                                      HALF_MAX if ceiling else INT8_MAX, zero_point)
                if ctx.get(dut.y) != expected:
                    mismatches.append((acc, bias, multiplier, shift, relu, ceiling,
                                       zero_point, ctx.get(dut.y), expected))

    simulate(dut, testbench, clocked=False)
    assert mismatches == []


@pytest.mark.parametrize("acc_width", [32, 16, 48])
def test_random_operands_match_golden(acc_width):
    rng = random.Random(acc_width)
    half = 1 << (acc_width - 1)
    cases = [(rng.randrange(-half, half), rng.randrange(-(1 << 31), 1 << 31),
              rng.randrange(MAX_MULTIPLIER + 1), rng.randrange(MAX_SHIFT + 1),
              rng.randrange(2))
             for _ in range(1500)]
    # Realistic layers: small accumulators and biases, shifts around 16..40.
    cases += [(rng.randrange(-50000, 50000), rng.randrange(-2000, 2000),
               rng.randrange(1 << 14, MAX_MULTIPLIER + 1), rng.randrange(16, 41),
               rng.randrange(2))
              for _ in range(1500)]
    check(acc_width, cases, half=(0, 1))


def test_edge_values_match_golden():
    accs = [0, 1, -1, 127, -128, 2 ** 31 - 1, -2 ** 31, 12345, -12345, 2 ** 20 + 1]
    biases = [0, 1, -1, 2 ** 31 - 1, -2 ** 31]
    multipliers = [0, 1, 1 << 15, MAX_MULTIPLIER]
    shifts = [0, 1, 2, 15, 16, 31, 32, 47, 48, 62, MAX_SHIFT]
    cases = list(itertools.product(accs, biases, multipliers, shifts, (0, 1)))
    check(32, cases, half=(0, 1))


def test_saturation_rounding_and_relu():
    cases = [
        (10_000, 0, 1, 0, 0),          # saturates high: 127
        (-10_000, 0, 1, 0, 0),         # saturates low: -128
        (-10_000, 0, 1, 0, 1),         # ReLU: 0
        (5, 0, 1, 1, 0),               # 2.5 rounds half up to 3
        (-5, 0, 1, 1, 0),              # -2.5 rounds half up to -2
        (2 ** 31 - 1, 1, 1, 0, 0),     # the bias wraps the accumulator to -2**31
    ]
    check(32, cases)
    assert [requantize(add_bias(acc, bias), m, s, r) for acc, bias, m, s, r in cases] == \
        [127, -128, 0, 3, -2, -128]


def test_half_ceiling_saturates_split_neuron_copies_at_half_max():
    # 64 and 127 saturate to 63 with the half ceiling; 63, 0 and negatives are unchanged.
    cases = [(64, 0, 1, 0, 1), (127, 0, 1, 0, 1), (10_000, 0, 1, 0, 0), (63, 0, 1, 0, 1),
             (127, 0, 1, 1, 1), (-5, 0, 1, 0, 0), (-5, 0, 1, 0, 1)]
    check(32, cases, half=(1,))
    assert [requantize(acc, m, s, r, HALF_MAX) for acc, _, m, s, r in cases] == \
        [63, 63, 63, 63, 63, -5, 0]


def test_zero_points_match_golden():
    # Extreme zero points (uint8 activations import as z = -128), with and without ReLU
    # and the half ceiling, around the values where the offset output saturates.
    rng = random.Random(13)
    cases = [(rng.randrange(-3000, 3000), rng.randrange(-500, 500),
              rng.randrange(1 << 14, MAX_MULTIPLIER + 1), rng.randrange(8, 20),
              rng.randrange(2))
             for _ in range(300)]
    cases += list(itertools.product([-300, -129, -1, 0, 1, 126, 300], [0], [1], [0], (0, 1)))
    check(32, cases, half=(0, 1), zero_points=(-128, -127, -5, 0, 17, 64, 127))


def test_zero_point_is_added_after_the_shift_and_relu_clips_at_it():
    cases = [(-10_000, 0, 1, 0, 1),    # ReLU: the zero point, -128
             (10, 0, 1, 1, 1),         # 5 + z = -123
             (300, 0, 1, 0, 0),        # 300 - 128 = 172 saturates at 127
             (-10_000, 0, 1, 0, 0)]    # saturates low at -128
    check(32, cases, zero_points=(-128,))
    assert [requantize(acc, m, s, r, zero_point=-128) for acc, _, m, s, r in cases] == \
        [-128, -123, 127, -128]
    # A zero point above the half ceiling saturates at the ceiling.
    check(32, [(0, 0, 1, 0, 1)], half=(1,), zero_points=(100,))
    assert requantize(0, 1, 0, True, HALF_MAX, 100) == HALF_MAX


@pytest.mark.parametrize("acc_width, error", [(15, ValueError), (49, ValueError),
                                              (0, ValueError), ("32", TypeError)])
def test_bad_parameters_are_rejected(acc_width, error):
    with pytest.raises(error, match="Accumulator width"):
        Requantizer(acc_width=acc_width)

"""cocotb regression of the requantizer against the numeric contract."""

import random

import cocotb
from cocotb.triggers import Timer

from neuroharden.golden.numerics import HALF_MAX, INT8_MAX, MAX_SHIFT, MULTIPLIER_WIDTH, add_bias, requantize
from .runner import tb_config


async def apply(dut, acc, bias, multiplier, shift, relu, half=False, zero_point=0):
    acc_width = tb_config()["acc_width"]
    dut.acc.value = acc & ((1 << acc_width) - 1)
    dut.bias.value = bias & 0xFFFFFFFF
    dut.multiplier.value = multiplier
    dut.shift.value = shift
    dut.relu.value = int(relu)
    dut.half.value = int(half)
    dut.zero_point.value = zero_point & 0xFF
    await Timer(1, unit="ns")
    return dut.y.value.to_signed()


def expected(acc, bias, multiplier, shift, relu, half=False, zero_point=0):
    return requantize(add_bias(acc, bias, tb_config()["acc_width"]), multiplier, shift, relu,
                      HALF_MAX if half else INT8_MAX, zero_point)


async def check(dut, case):
    got = await apply(dut, *case)
    assert got == expected(*case), (case, got)


@cocotb.test()
async def edge_values(dut):
    """Saturation at both ends, shift 0 and 63, the largest multiplier, negative sums."""
    acc_width = tb_config()["acc_width"]
    low, high = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    m_max = (1 << MULTIPLIER_WIDTH) - 1
    accs = [low, low + 1, -1000, -1, 0, 1, 1000, high - 1, high]
    biases = [-(1 << 31), -5, 0, 7, (1 << 31) - 1]
    for acc in accs:
        for bias in biases:
            for multiplier in (0, 1, 1 << 15, m_max):
                for shift in (0, 1, 15, 31, 47, MAX_SHIFT):
                    for relu in (False, True):
                        await check(dut, (acc, bias, multiplier, shift, relu))


@cocotb.test()
async def rounding_half_up(dut):
    """Exact halves round towards +infinity, for positive and negative values."""
    for acc in range(-20, 21):
        for shift in (1, 2, 3):
            await check(dut, (acc, 0, 1, shift, False))


@cocotb.test()
async def random_values(dut):
    """Random accumulators, biases, multipliers and shifts."""
    acc_width = tb_config()["acc_width"]
    rng = random.Random(7)
    for _ in range(3000):
        case = (rng.randint(-(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1),
                rng.randint(-(1 << 20), 1 << 20), rng.randint(0, (1 << MULTIPLIER_WIDTH) - 1),
                rng.randint(0, 40), rng.random() < 0.5)
        await check(dut, case)


@cocotb.test()
async def half_ceiling(dut):
    """With ``half`` set (split-neuron copies) outputs saturate at HALF_MAX."""
    rng = random.Random(8)
    for _ in range(1000):
        case = (rng.randint(-(1 << 16), 1 << 16), rng.randint(-1000, 1000),
                rng.randint(0, (1 << MULTIPLIER_WIDTH) - 1), rng.randint(0, 20),
                rng.random() < 0.5, True)
        await check(dut, case)


@cocotb.test()
async def zero_points(dut):
    """Output zero points (imported asymmetric networks): added after the shift, ReLU
    clipping at them, with both ceilings; the extremes and random values."""
    rng = random.Random(9)
    for zero_point in (-128, -127, -1, 1, 64, 127):
        for acc in (-(1 << 16), -300, -129, -1, 0, 1, 126, 300, 1 << 16):
            for relu in (False, True):
                for half in (False, True):
                    await check(dut, (acc, 0, 1, 0, relu, half, zero_point))
    for _ in range(1000):
        case = (rng.randint(-(1 << 16), 1 << 16), rng.randint(-1000, 1000),
                rng.randint(0, (1 << MULTIPLIER_WIDTH) - 1), rng.randint(8, 20),
                rng.random() < 0.5, rng.random() < 0.3, rng.randint(-128, 127))
        await check(dut, case)

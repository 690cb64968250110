"""cocotb regression of the Lightweight Correction Unit (paper 004, Fig. 3)."""

import cocotb
from cocotb.triggers import Timer

from neuroharden.golden.numerics import lcu, wrap
from .runner import tb_config


async def apply(dut, a, b, width, wide=0):
    mask = (1 << width) - 1
    dut.wide.value = wide
    dut.a.value = a & mask
    dut.b.value = b & mask
    await Timer(1, unit="ns")
    return dut.y.value.to_signed()


@cocotb.test()
async def every_input_pair(dut):
    """All 2**(2*width) pairs (65,536 for int8) against the reference."""
    width = tb_config()["width"]
    values = range(-(1 << (width - 1)), 1 << (width - 1))
    for a in values:
        for b in values:
            got = await apply(dut, a, b, width)
            assert got == lcu(a, b, width), (a, b, got)


@cocotb.test()
async def every_input_pair_wide(dut):
    """All pairs again with ``wide``: the sign bit is cleared instead (``bit=width - 1``)."""
    width = tb_config()["width"]
    values = range(-(1 << (width - 1)), 1 << (width - 1))
    for a in values:
        for b in values:
            got = await apply(dut, a, b, width, wide=1)
            assert got == lcu(a, b, width, bit=width - 1), (a, b, got)


@cocotb.test()
async def flips_in_one_half_are_masked(dut):
    """For equal halves in [0, 2**(width-2)), every set of 0->1 flips in one half is masked.

    Each half of a split neuron holds the fault-free value (at most 63 for int8 after
    the extra shift); any upward flips in one copy are removed by the AND with the
    other copy, or, for the integer-part MSB, by its reset.
    """
    width = tb_config()["width"]
    mask = (1 << width) - 1
    for value in range(1 << (width - 2)):
        zeros = ~value & mask
        flips = zeros
        while True:  # every subset of the zero bits of value
            signed = wrap(value | flips, width)
            assert await apply(dut, value, signed, width) == value, (value, flips)
            assert await apply(dut, signed, value, width) == value, (value, flips)
            if flips == 0:
                break
            flips = (flips - 1) & zeros

"""cocotb regression of the majority voter (bitwise, and word-level as in paper 000)."""

import itertools
import random

import cocotb
from cocotb.triggers import Timer

from neuroharden.golden.numerics import vote_bitwise, vote_word, wrap
from .runner import tb_config


async def apply(dut, a, b, c, width):
    mask = (1 << width) - 1
    dut.a.value, dut.b.value, dut.c.value = a & mask, b & mask, c & mask
    await Timer(1, unit="ns")
    return dut.y.value.to_signed(), int(dut.mismatch.value)


def values(width):
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


@cocotb.test()
async def one_corrupted_input_is_outvoted(dut):
    """Any single corrupted copy, every single bit or a random value, is outvoted."""
    width = tb_config()["width"]
    low, high = values(width)
    rng = random.Random(11)
    for _ in range(200):
        good = rng.randint(low, high)
        corruptions = [wrap(good ^ (1 << bit), width) for bit in range(width)]
        for bad in corruptions + [rng.randint(low, high)]:
            for position in range(3):
                copies = [good, good, good]
                copies[position] = bad
                y, mismatch = await apply(dut, *copies, width)
                assert y == good, (copies, y)
                assert mismatch == int(bad != good), (copies, mismatch)


@cocotb.test()
async def matches_the_reference(dut):
    """Random triples against the reference function of the configured mode."""
    config = tb_config()
    width, mode = config["width"], config["mode"]
    reference = vote_word if mode == "word" else vote_bitwise
    low, high = values(width)
    rng = random.Random(12)
    for _ in range(3000):
        a, b, c = (rng.randint(low, high) for _ in range(3))
        if rng.random() < 0.3:
            b = a
        y, mismatch = await apply(dut, a, b, c, width)
        assert y == reference(a, b, c), (a, b, c, y)
        assert mismatch == int(not a == b == c)


@cocotb.test()
async def word_mode_outputs_zero_without_majority(dut):
    """Word mode: three different copies give 0; bitwise mode gives the bit majority."""
    config = tb_config()
    width, mode = config["width"], config["mode"]
    for a, b, c in itertools.permutations([1, 2, 4]):
        y, mismatch = await apply(dut, a, b, c, width)
        assert y == (0 if mode == "word" else vote_bitwise(a, b, c)) and mismatch == 1

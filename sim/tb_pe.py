"""cocotb regression of the processing element against a Python reference."""

import random

import cocotb

from neuroharden.golden.numerics import wrap
from .pe_tb import PETB
from .runner import tb_config


def reference_mac(pairs, acc_width):
    return wrap(sum(int(a) * int(w) for a, w in pairs), acc_width)


@cocotb.test()
async def random_macs(dut):
    """Random operand streams of length 1..300, extreme products included."""
    config = tb_config()
    width, acc_width = config["width"], config["acc_width"]
    tb = PETB(dut, width=width, acc_width=acc_width)
    await tb.start()
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    rng = random.Random(2)
    streams = [[(low, low)], [(low, low)] * 300, [(high, low)] * 17, [(0, high)]]
    streams += [[(rng.randint(low, high), rng.randint(low, high)) for _ in range(rng.randint(1, 300))]
                for _ in range(20)]
    for pairs in streams:
        got = await tb.mac(pairs)
        assert got == reference_mac(pairs, acc_width), (len(pairs), got)


@cocotb.test()
async def accumulator_wraps(dut):
    """The accumulator wraps around in two's complement at its width."""
    config = tb_config()
    width, acc_width = config["width"], config["acc_width"]
    tb = PETB(dut, width=width, acc_width=acc_width)
    await tb.start()
    low = -(1 << (width - 1))
    # Enough -128 x -128 (or -32768^2) products to cross 2**(acc_width-1) at least once.
    count = (1 << (acc_width - 1)) // (low * low) + 3
    if count > 5000:
        return  # wide accumulators never wrap within a test's budget
    pairs = [(low, low)] * count
    assert await tb.mac(pairs) == reference_mac(pairs, acc_width)


@cocotb.test()
async def operands_pass_through(dut):
    """Activations leave east and weights south one cycle after they enter."""
    config = tb_config()
    tb = PETB(dut, width=config["width"], acc_width=config["acc_width"])
    await tb.start()
    rng = random.Random(3)
    low, high = -(1 << (config["width"] - 1)), (1 << (config["width"] - 1)) - 1
    for _ in range(50):
        a, w = rng.randint(low, high), rng.randint(low, high)
        dut.a_in.value = a & ((1 << config["width"]) - 1)
        dut.w_in.value = w & ((1 << config["width"]) - 1)
        await tb.tick()
        assert (dut.a_out.value.to_signed(), dut.w_out.value.to_signed()) == (a, w)


@cocotb.test()
async def drain_loads_the_accumulator_from_the_north(dut):
    """With drain set the accumulator takes acc_in instead of accumulating."""
    config = tb_config()
    tb = PETB(dut, width=config["width"], acc_width=config["acc_width"])
    await tb.start()
    await tb.mac([(3, 4)])
    dut.acc_in.value = 12345
    dut.drain.value = 1
    await tb.tick()
    dut.drain.value = 0
    assert dut.acc_out.value.to_signed() == 12345

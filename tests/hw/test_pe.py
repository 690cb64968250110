# amaranth: UnusedElaboratable=no
"""PE: registered operands, MAC with wrap-around, clear and drain, parameter checks."""

import random

import pytest

from neuroharden.golden.numerics import wrap
from neuroharden.hw.pe import PE
from tests.hw.simulation import simulate


def run_pe(pe, steps):
    """Apply (a, w, clear, drain, acc_in) per cycle; return the outputs seen after each."""
    seen = []

    async def testbench(ctx):
        for a, w, clear, drain, acc_in in steps:
            ctx.set(pe.a_in, a)
            ctx.set(pe.w_in, w)
            ctx.set(pe.clear, clear)
            ctx.set(pe.drain, drain)
            ctx.set(pe.acc_in, acc_in)
            await ctx.tick()
            seen.append((ctx.get(pe.a_out), ctx.get(pe.w_out), ctx.get(pe.acc_out)))

    simulate(pe, testbench)
    return seen


def reference(steps, width, acc_width):
    a_reg = w_reg = acc = 0
    expected = []
    for a, w, clear, drain, acc_in in steps:
        acc = 0 if clear else acc_in if drain else wrap(acc + a_reg * w_reg, acc_width)
        a_reg, w_reg = a, w
        expected.append((a_reg, w_reg, acc))
    return expected


@pytest.mark.parametrize("width, acc_width", [(8, 32), (16, 32), (8, 16), (16, 48)])
def test_random_macs_match_reference(width, acc_width):
    rng = random.Random(width * 100 + acc_width)
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    steps = [(low, low, 1, 0, 0)]
    steps += [(low, low, 0, 0, 0)] * 5
    steps += [(high, low, 0, 0, 0)] * 3
    steps += [(rng.randint(low, high), rng.randint(low, high),
               int(rng.random() < 0.05), int(rng.random() < 0.05),
               rng.randint(-(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1))
              for _ in range(300)]
    pe = PE(width=width, acc_width=acc_width)
    assert run_pe(pe, steps) == reference(steps, width, acc_width)


def test_accumulator_wraps_around():
    # (-128) * (-128) = 16384 per cycle overflows a 16-bit accumulator after two cycles.
    steps = [(-128, -128, 1, 0, 0)] + [(-128, -128, 0, 0, 0)] * 4
    seen = run_pe(PE(width=8, acc_width=16), steps)
    assert [acc for _, _, acc in seen] == [0, 16384, -32768, -16384, 0]


def test_clear_wins_over_drain_and_drain_loads():
    steps = [(3, 4, 1, 0, 0), (0, 0, 0, 0, 0), (0, 0, 0, 1, -77), (0, 0, 1, 1, 5)]
    assert [acc for _, _, acc in run_pe(PE(), steps)] == [0, 12, -77, 0]


@pytest.mark.parametrize("kwargs, error", [
    ({"width": 4}, ValueError),
    ({"width": 32}, ValueError),
    ({"width": 8, "acc_width": 15}, ValueError),
    ({"width": 16, "acc_width": 31}, ValueError),
    ({"acc_width": 49}, ValueError),
    ({"width": 0}, ValueError),
    ({"width": 8.0}, TypeError),
    ({"width": True}, TypeError),
    ({"acc_width": "32"}, TypeError),
])
def test_bad_parameters_are_rejected(kwargs, error):
    with pytest.raises(error, match="width"):
        PE(**kwargs)


def test_parameters_are_read_only():
    pe = PE(width=16, acc_width=40)
    assert (pe.width, pe.acc_width) == (16, 40)
    with pytest.raises(AttributeError):
        pe.width = 8

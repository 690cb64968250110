# amaranth: UnusedElaboratable=no
"""LCU and MajorityVoter against golden.numerics."""

import itertools
import random

import pytest

from neuroharden.golden.numerics import lcu, vote_bitwise, vote_word
from neuroharden.hw.lcu import LCU
from neuroharden.hw.voter import MajorityVoter
from tests.hw.simulation import simulate, to_signed


def outputs(dut, cases, names):
    seen = []

    async def testbench(ctx):
        for case in cases:
            for name, value in zip(names, case):
                ctx.set(getattr(dut, name), value)
            seen.append(tuple(ctx.get(port) for port in dut.outputs))

    dut.outputs = [dut.y] + ([dut.mismatch] if hasattr(dut, "mismatch") else [])
    simulate(dut, testbench, clocked=False)
    return seen


@pytest.mark.parametrize("width", [8, 16])
def test_lcu_matches_golden(width):
    rng = random.Random(width)
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    cases = [(rng.randint(low, high), rng.randint(low, high)) for _ in range(2000)]
    cases += [(low, low), (high, high), (-1, -1), (0, -1)]
    expected = [(to_signed(lcu(a, b, width), width),) for a, b in cases]
    assert outputs(LCU(width=width), cases, "ab") == expected


def test_wide_lcu_matches_golden():
    rng = random.Random(7)
    cases = [(rng.randint(-128, 127), rng.randint(-128, 127), rng.randint(0, 1))
             for _ in range(2000)]
    cases += [(-128, -128, 1), (127, 127, 1), (-1, -1, 1), (-1, -1, 0), (100, 100, 1)]
    expected = [(lcu(a, b, bit=7 if wide else 6),) for a, b, wide in cases]
    assert outputs(LCU(width=8), cases, ["a", "b", "wide"]) == expected


def test_wide_lcu_masks_a_bit_flip_in_one_copy_of_an_offset_free_half():
    # Wide halves use all seven value bits; the flip of any bit, the sign bit included,
    # in one copy loses at most that bit and never sets one.
    cases = [(value, to_signed(value ^ (1 << bit), 8), 1)
             for value in range(128) for bit in range(8)]
    for (value, _, _), (y,) in zip(cases, outputs(LCU(width=8), cases, ["a", "b", "wide"])):
        assert y >= 0 and y & ~value == 0
        assert bin(value & ~y).count("1") <= 1


def test_lcu_masks_a_bit_flip_in_one_copy_of_a_relu_output():
    cases = [(value, value ^ (1 << bit)) for value in range(64) for bit in range(8)]
    got = outputs(LCU(width=8), cases, "ab")
    for (value, _), (y,) in zip(cases, got):
        # A flip either clears a bit of ``value`` (one bit lost) or is masked entirely.
        assert y & ~value == 0
        assert bin(value & ~y).count("1") <= 1


@pytest.mark.parametrize("mode", ["bitwise", "word"])
def test_voter_matches_golden(mode):
    rng = random.Random(mode)
    values = [-128, -1, 0, 1, 5, 127]
    cases = list(itertools.product(values, repeat=3))
    cases += [tuple(rng.randint(-128, 127) for _ in range(3)) for _ in range(500)]
    vote = vote_bitwise if mode == "bitwise" else vote_word
    expected = [(to_signed(vote(a, b, c), 8), int(not a == b == c)) for a, b, c in cases]
    assert outputs(MajorityVoter(width=8, mode=mode), cases, "abc") == expected


def test_word_voter_outputs_zero_when_all_differ():
    assert outputs(MajorityVoter(mode="word"), [(1, 2, 4), (3, 3, 9)], "abc") == [(0, 1), (3, 1)]


@pytest.mark.parametrize("factory, error, match", [
    (lambda: LCU(width=1), ValueError, "width"),
    (lambda: LCU(width=8.0), TypeError, "width"),
    (lambda: MajorityVoter(width=0), ValueError, "width"),
    (lambda: MajorityVoter(mode="tmr"), ValueError, "mode"),
])
def test_bad_parameters_are_rejected(factory, error, match):
    with pytest.raises(error, match=match):
        factory()

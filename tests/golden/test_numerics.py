"""The numeric contract's literal values (golden/numerics.py), worked out by hand.

Every expected value here is a literal, not a call of the implementation, so these tests
pin the contract itself: a change of a width, of the rounding or of a voter shows here
before it shows as a mismatch between the RTL and the golden model.
"""

import numpy as np
import pytest
import torch

from neuroharden.golden import numerics
from neuroharden.golden.numerics import (add_bias, lcu, requantize, vote_bitwise, vote_word,
                                         wrap)

#: The array kinds every function accepts besides Python ints, element-wise.
KINDS = {"numpy": lambda values: np.array(values, dtype=np.int64),
         "torch": lambda values: torch.tensor(values, dtype=torch.int64)}


def as_list(value):
    return value.tolist() if hasattr(value, "tolist") else value


def test_widths_and_ceilings():
    assert (numerics.WIDTH, numerics.ACC_WIDTH) == (8, 32)
    assert (numerics.MULTIPLIER_WIDTH, numerics.SHIFT_WIDTH, numerics.MAX_SHIFT) == (16, 6, 63)
    assert numerics.INT8_MAX == 127
    # 63 = 0b0111111: the largest value whose bit 6 (the bit the LCU clears) is 0.
    assert numerics.HALF_MAX == 63


@pytest.mark.parametrize("value, width, expected", [
    (2**31 - 1, 32, 2**31 - 1),
    (2**31, 32, -2**31),
    (-2**31 - 1, 32, 2**31 - 1),
    (2**32 + 5, 32, 5),
    (3 * 128 * 128, 16, -16384),   # 49,152 = 0xC000
    (127, 8, 127),
    (128, 8, -128),
    (200, 8, -56),
    (255, 8, -1),
    (-129, 8, 127),
])
def test_wrap_is_twos_complement(value, width, expected):
    assert wrap(value, width) == expected


def test_bias_add_wraps_at_the_accumulator_width():
    assert add_bias(2**31 - 10, 20) == -2**31 + 10
    assert add_bias(100, -30) == 70
    assert add_bias(120, 10, acc_width=8) == -126


@pytest.mark.parametrize("kind", KINDS)
def test_wrap_and_bias_are_element_wise(kind):
    make = KINDS[kind]
    assert as_list(wrap(make([2**31 + 7, -2**31 - 2, 40]))) == [-2**31 + 7, 2**31 - 2, 40]
    assert as_list(add_bias(make([2**31 - 10, 100, 120]), make([20, -30, 10]))) == \
        [-2**31 + 10, 70, 130]
    assert as_list(add_bias(make([120, -100]), make([10, -30]), acc_width=8)) == [-126, 126]


# (acc, multiplier, shift, relu, expected): the exact value acc * M / 2**s, rounded half up.
REQUANTIZE = [
    (5, 3, 0, False, 15),        # s = 0: no rounding term, 15 exactly
    (-7, 1, 0, False, -7),
    (3, 1, 1, False, 2),         # 1.5 -> 2
    (-3, 1, 1, False, -1),       # -1.5 -> -1 (half up, towards +inf)
    (5, 1, 2, False, 1),         # 1.25 -> 1
    (6, 1, 2, False, 2),         # 1.5 -> 2
    (-6, 1, 2, False, -1),       # -1.5 -> -1
    (-7, 1, 2, False, -2),       # -1.75 -> -2
    (201, 1 << 15, 16, False, 101),   # 201 * 0.5 = 100.5 -> 101
    (1000, 3 << 14, 16, False, 127),  # 750 saturates at INT8_MAX
    (-1000, 3 << 14, 16, False, -128),
    (-50, 1, 0, False, -50),     # negative accumulator without ReLU
    (-50, 1, 0, True, 0),        # ... and with ReLU
    (-1, (1 << 16) - 1, 16, False, -1),   # -0.99998 -> -1
    (300, 1, 0, True, 127),
]


@pytest.mark.parametrize("acc, multiplier, shift, relu, expected", REQUANTIZE)
def test_requantize_worked_values(acc, multiplier, shift, relu, expected):
    assert requantize(acc, multiplier, shift, relu) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_requantize_is_element_wise(kind):
    make = KINDS[kind]
    for relu in (False, True):
        cases = [row for row in REQUANTIZE if row[3] == relu]
        acc, m, s, _, expected = (list(column) for column in zip(*cases))
        assert as_list(requantize(make(acc), make(m), make(s), relu)) == expected


def test_requantize_half_ceiling_saturates_split_copies_at_63():
    assert requantize(64, 1, 0, True, high=numerics.HALF_MAX) == 63
    assert requantize(127, 1, 1, True, high=numerics.HALF_MAX) == 63   # 63.5 -> 64 -> 63
    assert requantize(125, 1, 1, True, high=numerics.HALF_MAX) == 63   # 62.5 -> 63
    assert requantize(-20, 1, 0, False, high=numerics.HALF_MAX) == -20
    assert as_list(requantize(np.array([100, 100]), 1, 0, True,
                              high=np.array([127, 63]))) == [100, 63]


def test_requantize_largest_shift_on_python_ints():
    # (2**31 - 1) * (2**16 - 1) + 2**62 is below 2**63: the result of s = 63 is 0.
    assert requantize(2**31 - 1, 2**16 - 1, 63, False) == 0
    assert requantize(2**31 - 1, 2**16 - 1, 46, False) == 2   # 1.99997 -> 2


@pytest.mark.parametrize("a, b, expected", [
    (37, 37, 37),      # equal fault-free halves: the identity
    (37, 39, 37),      # a 0->1 flip of bit 1 in one half is masked by the AND
    (37, 101, 37),     # a 0->1 flip of bit 6 (37 + 64) in one half
    (100, 100, 36),    # bit 6 set in both: cleared
    (0b1010101, 0b1010101, 0b0010101),
    (45, 54, 36),      # 0b0101101 & 0b0110110
    (0, 63, 0),
    (-1, -1, -65),     # all ones with bit 6 cleared
])
def test_lcu(a, b, expected):
    assert lcu(a, b) == expected


@pytest.mark.parametrize("a, b, expected", [
    (100, 100, 100),   # wide halves of an asymmetric layer: bit 6 is a value bit
    (100, 228 - 256, 100),  # a 0->1 flip of the sign bit (100 + 128) in one half
    (-1, -1, 127),     # all ones with the sign bit cleared: non-negative
    (-56, -56, 72),    # 0b11001000 -> 0b01001000
    (127, 63, 63),
])
def test_wide_lcu_clears_bit_7(a, b, expected):
    assert lcu(a, b, bit=7) == expected


@pytest.mark.parametrize("kind", KINDS)
def test_lcu_is_element_wise(kind):
    make = KINDS[kind]
    assert as_list(lcu(make([37, 100, 45]), make([101, 100, 54]))) == [37, 36, 36]
    assert as_list(lcu(make([100, -1, -56]), make([-28, -1, -56]), bit=7)) == [100, 127, 72]


@pytest.mark.parametrize("a, b, c, bitwise, word", [
    (7, 7, 9, 7, 7),
    (9, 7, 7, 7, 7),
    (7, 9, 7, 7, 7),
    (1, 2, 3, 3, 0),           # bitwise: 0 | 1 | 2; no two copies agree
    (0b1100, 0b1010, 0b0110, 0b1110, 0),
    (5, 5, -128, 5, 5),
    (-128, 5, -128, -128, -128),
    (-1, 0, 0, 0, 0),
])
def test_voters(a, b, c, bitwise, word):
    assert vote_bitwise(a, b, c) == bitwise
    assert vote_word(a, b, c) == word


@pytest.mark.parametrize("kind", KINDS)
def test_voters_are_element_wise(kind):
    make = KINDS[kind]
    a, b, c = make([1, 7, 1, 1, 12]), make([1, 2, 2, 2, 10]), make([3, 2, 1, 3, 6])
    assert as_list(vote_word(a, b, c)) == [1, 2, 1, 0, 0]
    assert as_list(vote_bitwise(a, b, c)) == [1, 2, 1, 3, 14]


@pytest.mark.parametrize("array", [np.array, torch.tensor])
def test_requantize_shift_63_on_int64_arrays(array):
    # |acc * M| < 2**62 is below half of 2**63, so every value rounds to 0 at s = 63; the
    # rounding constant 1 << 63 would overflow int64 and give -1.
    acc = array([(1 << 62) - 1, 1 << 40, 0, -5, -(1 << 62)])
    out = requantize(acc, 1, array([63] * 5), relu=False)
    assert list(map(int, out)) == [0] * 5
    assert [requantize(int(a), 1, 63, relu=False) for a in acc] == [0] * 5

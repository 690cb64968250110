# amaranth: UnusedElaboratable=no
"""ProtectionUnit: LCU pairs and TMR triples against golden.numerics, any column map."""

import numpy as np
import pytest

from neuroharden.golden.numerics import lcu, vote_bitwise, vote_word
from neuroharden.hw.protection import ProtectionUnit, encode_group
from tests.hw.simulation import simulate


def run(unit, rows, codes, word=0):
    """The unit's output, ``differ`` and ``no_majority`` (zeros for LCU) for each row of
    ``rows`` with the per-column ``codes``."""
    seen = []

    async def testbench(ctx):
        for c, code in enumerate(codes):
            ctx.set(unit.group[c].as_value(), code)
        if unit.scheme == "tmr":
            ctx.set(unit.vote_word, word)
        for row in rows:
            for c, value in enumerate(row):
                ctx.set(unit.y[c], int(value))
            seen.append([[ctx.get(port[c]) for c in range(unit.cols)] for port in
                         (unit.out, unit.differ,
                          unit.no_majority if unit.scheme == "tmr" else unit.differ)])

    simulate(unit, testbench, clocked=False)
    out, differ, no_majority = np.array(seen).transpose(1, 0, 2)
    return out, differ, no_majority * (unit.scheme == "tmr")


def protect(unit, rows, codes, word=0):
    """The unit's output for each row of ``rows`` with the per-column ``codes``."""
    return run(unit, rows, codes, word)[0]


def test_lcu_pairs_are_merged_into_both_columns_and_others_pass():
    rng = np.random.default_rng(0)
    rows = rng.integers(-128, 128, (200, 5))
    codes = [encode_group(5, 3), 0, encode_group(5, 4), encode_group(5, 0), encode_group(5, 2)]
    got = protect(ProtectionUnit(cols=5, scheme="lcu"), rows, codes)
    expected = rows.copy()
    for c0, c1 in ((0, 3), (2, 4)):
        expected[:, c0] = expected[:, c1] = lcu(rows[:, c0], rows[:, c1])
    np.testing.assert_array_equal(got, expected)


def test_a_wide_pair_clears_bit_7_and_a_narrow_one_bit_6():
    rng = np.random.default_rng(2)
    rows = rng.integers(-128, 128, (200, 4))
    codes = [encode_group(4, 2, wide=True), encode_group(4, 3), encode_group(4, 0, wide=True),
             encode_group(4, 1)]
    got = protect(ProtectionUnit(cols=4, scheme="lcu"), rows, codes)
    expected = rows.copy()
    expected[:, 0] = expected[:, 2] = lcu(rows[:, 0], rows[:, 2], bit=7)
    expected[:, 1] = expected[:, 3] = lcu(rows[:, 1], rows[:, 3])
    np.testing.assert_array_equal(got, expected)
    assert bool((got[:, 0] >= 0).all())


def test_group_codes():
    # 5 columns: 3-bit indices; wide sits where a TMR code keeps its second copy.
    assert encode_group(5, 3) == 0b0111
    assert encode_group(5, 3, wide=True) == 0b10111
    assert encode_group(5, 3, 4) == 0b1000111
    with pytest.raises(ValueError, match="not both"):
        encode_group(5, 3, 4, wide=True)


@pytest.mark.parametrize("word, vote", [(0, vote_bitwise), (1, vote_word)])
def test_tmr_triples_are_voted_into_all_three_columns(word, vote):
    rng = np.random.default_rng(1)
    rows = rng.integers(-128, 128, (200, 4))
    rows[:100, 3] = rows[:100, 1]        # two copies agree on half of the rows
    codes = [0, encode_group(4, 2, 3), encode_group(4, 1, 3), encode_group(4, 1, 2)]
    got = protect(ProtectionUnit(cols=4, scheme="tmr"), rows, codes, word)
    expected = rows.copy()
    expected[:, 1] = expected[:, 2] = expected[:, 3] = vote(rows[:, 1], rows[:, 2], rows[:, 3])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"cols": 1, "scheme": "lcu"}, ValueError, "at least 2"),
    ({"cols": 2, "scheme": "tmr"}, ValueError, "at least 3"),
    ({"cols": 4, "scheme": "none"}, ValueError, "scheme"),
    ({"cols": "4", "scheme": "lcu"}, TypeError, "Column count"),
])
def test_bad_parameters_are_rejected(kwargs, error, match):
    with pytest.raises(error, match=match):
        ProtectionUnit(**kwargs)


def test_lcu_pairs_flag_halves_that_differ():
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 4, (200, 5))   # small values: equal halves are frequent
    codes = [encode_group(5, 3), 0, encode_group(5, 4), encode_group(5, 0), encode_group(5, 2)]
    _, differ, _ = run(ProtectionUnit(cols=5, scheme="lcu"), rows, codes)
    for c0, c1 in ((0, 3), (2, 4)):
        np.testing.assert_array_equal(differ[:, c0], rows[:, c0] != rows[:, c1])
        np.testing.assert_array_equal(differ[:, c1], rows[:, c0] != rows[:, c1])
    assert not differ[:, 1].any() and 0 < differ[:, 0].sum() < len(rows)


@pytest.mark.parametrize("word", [0, 1])
def test_tmr_triples_flag_disagreement_and_no_majority(word):
    rng = np.random.default_rng(6 + word)
    rows = rng.integers(0, 3, (300, 4))
    codes = [encode_group(4, 2, 3), 0, encode_group(4, 0, 3), encode_group(4, 0, 2)]
    _, differ, no_majority = run(ProtectionUnit(cols=4, scheme="tmr"), rows, codes, word)
    a, b, c = rows[:, 0], rows[:, 2], rows[:, 3]
    for column in (0, 2, 3):
        np.testing.assert_array_equal(differ[:, column], (a != b) | (a != c))
        np.testing.assert_array_equal(no_majority[:, column],
                                      word * ((a != b) & (a != c) & (b != c)))
    assert not differ[:, 1].any() and not no_majority[:, 1].any()
    assert no_majority.any() == bool(word)

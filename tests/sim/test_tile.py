"""The tile contract between the network compiler and the accelerator.

:func:`reference` calls golden.numerics, so it is checked here against worked literal
tiles and against a plain-Python model of the contract written without golden.numerics
(exact rationals, modular wrap-around), never against the functions it calls itself.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

from neuroharden.sim.tile import Tile, reference


def _passthrough(values, relu=False, **protection):
    """A tile whose outputs before protection are ``values`` (int8 ``[m, n]``).

    A is the identity, B is ``values``, bias 0, multiplier 1, shift 0: every biased
    accumulator is a value, and requantization only applies ReLU and the ceiling.
    """
    values = np.asarray(values)
    m, n = values.shape
    return Tile(activations=np.eye(m, dtype=np.int64), weights=values, bias=np.zeros(n),
                multiplier=np.ones(n), shift=np.zeros(n), relu=np.full(n, relu),
                **protection)


def _plain_contract(tile, acc_width=32):
    """The unprotected tile arithmetic in plain Python, independent of golden.numerics."""
    m, k, n = tile.shape
    half = 1 << (acc_width - 1)
    acc = np.zeros((m, n), dtype=np.int64)
    y = np.zeros((m, n), dtype=np.int64)
    for r in range(m):
        for c in range(n):
            total = sum(int(tile.activations[r, i]) * int(tile.weights[i, c])
                        for i in range(k)) + int(tile.bias[c])
            acc[r, c] = (total + half) % (2 * half) - half
            # Round half up: floor(exact + 1/2), the exact value acc * M / 2**s.
            exact = Fraction(int(acc[r, c]) * int(tile.multiplier[c]), 2 ** int(tile.shift[c]))
            rounded = math.floor(exact + Fraction(1, 2))
            # The zero point is the real value 0: ReLU clips there, after the offset.
            z = int(tile.zero_point[c])
            y[r, c] = min(max(rounded + z, z if tile.relu[c] else -128), 127)
    return acc, y


def test_reference_of_a_worked_tile():
    tile = Tile(activations=[[1, 2], [3, -4]], weights=[[5, 6, 100], [7, 8, 100]],
                bias=[1, -2, 0], multiplier=[1, 3, 1], shift=[3, 0, 0],
                relu=[False, True, False])
    acc, y = reference(tile)
    # A @ B = [[19, 22, 300], [-13, -14, -100]], plus the bias.
    assert acc.tolist() == [[20, 20, 300], [-12, -16, -100]]
    # Column 0: 20 / 8 = 2.5 -> 3, -12 / 8 = -1.5 -> -1 (half up); column 1: 3 x acc with
    # ReLU; column 2: 300 saturates at 127.
    assert y.tolist() == [[3, 60, 127], [-1, 0, -100]]


def test_reference_matches_an_independent_model_of_the_contract():
    rng = np.random.default_rng(0)
    m, k, n = 5, 7, 9
    tile = Tile(activations=rng.integers(-128, 128, (m, k)),
                weights=rng.integers(-128, 128, (k, n)),
                bias=rng.integers(-5000, 5000, n), multiplier=rng.integers(1, 1 << 16, n),
                shift=np.array([0, 1, 2, 20, 22, 23, 24, 26, 62]),
                relu=rng.integers(0, 2, n).astype(bool))
    acc, y = reference(tile)
    expected_acc, expected_y = _plain_contract(tile)
    assert np.array_equal(acc, expected_acc) and np.array_equal(y, expected_y)
    assert len(np.unique(y)) > 5   # the sample spans more than the saturation values
    assert not tile.zero_point.any()


def test_zero_points_match_an_independent_model_of_the_contract():
    rng = np.random.default_rng(4)
    m, k, n = 6, 5, 8
    tile = Tile(activations=rng.integers(-128, 128, (m, k)),
                weights=rng.integers(-128, 128, (k, n)),
                bias=rng.integers(-5000, 5000, n), multiplier=rng.integers(1, 1 << 16, n),
                shift=np.array([0, 8, 12, 14, 15, 16, 17, 20]),
                relu=np.array([True, False] * 4),
                zero_point=np.array([-128, -128, -3, 40, 127, 0, -60, 5]))
    acc, y = reference(tile)
    expected_acc, expected_y = _plain_contract(tile)
    assert np.array_equal(acc, expected_acc) and np.array_equal(y, expected_y)
    assert len(np.unique(y)) > 5


def test_worked_zero_points():
    tile = _passthrough([[-100, -100, 100], [10, 10, 10]], relu=True,
                        zero_point=[-128, 0, 50])
    tile_no_relu = _passthrough([[-100, -100, 100], [10, 10, 10]], zero_point=[-128, 0, 50])
    # ReLU clips at the zero point: -100 -> -128 (z = -128), 0 (z = 0), 50 (z = 50);
    # 100 + 50 saturates at 127.
    assert reference(tile)[1].tolist() == [[-128, 0, 127], [-118, 10, 60]]
    assert reference(tile_no_relu)[1].tolist() == [[-128, -100, 127], [-118, 10, 60]]


def test_accumulator_wraps_at_the_array_width():
    tile = Tile(activations=np.full((1, 3), -128), weights=np.full((3, 1), -128),
                bias=[0], multiplier=[1], shift=[0], relu=[False])
    assert reference(tile, acc_width=16)[0].tolist() == [[-16384]]  # 49,152 = 0xC000
    assert reference(tile)[0].tolist() == [[49152]]
    edge = Tile(activations=[[1]], weights=[[1]], bias=[2**31 - 1], multiplier=[1],
                shift=[0], relu=[False])
    assert reference(edge)[0].tolist() == [[-2**31]]


def test_lcu_copies_saturate_at_half_max_and_are_merged():
    tile = _passthrough([[45, 100, -5, 54],
                         [100, 7, 100, 100],
                         [-20, 0, 1, 5]], relu=True, lcu_pairs=[[0, 3]])
    assert tile.high.tolist() == [63, 127, 127, 63]
    _, y = reference(tile)
    # Pair (0, 3): 45 & 54 = 36; 100 saturates at 63 in both copies; ReLU(-20) & 5 = 0.
    # Columns 1 and 2 are not protected and saturate at 127.
    assert y.tolist() == [[36, 100, 0, 36],
                          [63, 7, 100, 63],
                          [0, 0, 1, 0]]


def test_wide_lcu_pairs_saturate_at_127_and_clear_bit_7():
    tile = _passthrough([[100, 100, 45, 54],
                         [120, 127, 100, 100],
                         [-20, 0, 0, 5]], relu=True, lcu_pairs=[[0, 1], [2, 3]],
                        lcu_wide=[True, False])
    assert tile.high.tolist() == [127, 127, 63, 63]
    _, y = reference(tile)
    # Wide pair (0, 1): 100 passes (bit 6 is a value bit), 120 & 127 = 120; narrow pair
    # (2, 3) as before.
    assert y.tolist() == [[100, 100, 36, 36],
                          [120, 120, 63, 63],
                          [0, 0, 0, 0]]


@pytest.mark.parametrize("mode, agreed", [("bitwise", 3), ("word", 0)])
def test_vote_writes_the_majority_to_all_three_columns(mode, agreed):
    # Triple (1, 2, 5) holds (7, 7, 9), (1, 2, 3) and (-128, 5, -128).
    tile = _passthrough([[11, 7, 7, 12, 13, 9],
                         [-1, 1, 2, -2, -3, 3],
                         [0, -128, 5, 4, 4, -128]],
                        tmr_triples=[[1, 2, 5]], vote_mode=mode)
    _, y = reference(tile)
    # (1, 2, 3): bitwise majority 0b11 = 3; word mode finds no two equal copies -> 0.
    assert y.tolist() == [[11, 7, 7, 12, 13, 7],
                          [-1, agreed, agreed, -2, -3, agreed],
                          [0, -128, -128, 4, 4, -128]]


@pytest.mark.parametrize("change, message", [
    (dict(weights=np.zeros((4, 6))), "matrices"),
    (dict(shift=np.full(6, 64)), "shift"),
    (dict(bias=np.zeros(5)), "one value per column"),
    (dict(lcu_pairs=[[0, 1]], tmr_triples=[[1, 2, 3]]), "one protection group"),
    (dict(lcu_pairs=[[0, 6]]), "columns in"),
    (dict(vote_mode="median"), "Vote mode"),
    (dict(zero_point=np.full(6, 128)), "zero_point must lie in"),
    (dict(zero_point=np.zeros(5)), "zero_point must hold one value per column"),
    (dict(activations=np.full((3, 5), 128)), "int8"),
])
def test_bad_tiles_are_refused(change, message):
    rng = np.random.default_rng(3)
    fields = dict(activations=rng.integers(-128, 128, (3, 5)),
                  weights=rng.integers(-128, 128, (5, 6)), bias=np.zeros(6),
                  multiplier=np.ones(6), shift=np.zeros(6), relu=np.zeros(6, bool))
    fields.update(change)
    with pytest.raises(ValueError, match=message):
        Tile(**fields)

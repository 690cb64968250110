"""The tile contract between the network compiler and the accelerator."""

import numpy as np
import pytest

from neuroharden.golden.numerics import HALF_MAX, lcu, requantize, vote_word, wrap
from neuroharden.sim.tile import Tile, reference


def _tile(rng, m=3, k=5, n=6, **protection):
    return Tile(activations=rng.integers(-128, 128, (m, k)),
                weights=rng.integers(-128, 128, (k, n)),
                bias=rng.integers(-5000, 5000, n), multiplier=rng.integers(1, 1 << 16, n),
                shift=rng.integers(10, 20, n), relu=rng.integers(0, 2, n).astype(bool),
                **protection)


def test_reference_matches_the_numeric_contract_element_by_element():
    rng = np.random.default_rng(0)
    tile = _tile(rng)
    acc, y = reference(tile)
    for r in range(3):
        for c in range(6):
            exact = sum(int(tile.activations[r, k]) * int(tile.weights[k, c])
                        for k in range(5))
            assert acc[r, c] == wrap(exact + int(tile.bias[c]))
            assert y[r, c] == requantize(int(acc[r, c]), int(tile.multiplier[c]),
                                         int(tile.shift[c]), bool(tile.relu[c]))


def test_accumulator_wraps_at_the_array_width():
    tile = Tile(activations=np.full((1, 300), -128), weights=np.full((300, 1), -128),
                bias=[0], multiplier=[1], shift=[0], relu=[False])
    acc, _ = reference(tile, acc_width=16)
    assert acc[0, 0] == wrap(300 * 128 * 128, 16)


def test_lcu_copies_saturate_at_half_max_and_are_merged():
    rng = np.random.default_rng(1)
    tile = _tile(rng, lcu_pairs=[[0, 3]])
    tile = Tile(activations=tile.activations, weights=tile.weights, bias=tile.bias,
                multiplier=tile.multiplier, shift=tile.shift, relu=np.ones(6, bool),
                lcu_pairs=[[0, 3]])
    acc, y = reference(tile)
    for c in (0, 3):
        assert tile.high[c] == HALF_MAX
    half = [requantize(acc[:, c], tile.multiplier[c], tile.shift[c], True, HALF_MAX)
            for c in (0, 3)]
    assert np.array_equal(y[:, 0], lcu(*half))
    assert np.array_equal(y[:, 3], y[:, 0])


def test_word_vote_writes_the_majority_to_all_three_columns():
    rng = np.random.default_rng(2)
    _, y = reference(_tile(rng, tmr_triples=[[1, 2, 5]], vote_mode="word"))
    _, plain = reference(_tile(np.random.default_rng(2)))
    expected = vote_word(plain[:, 1], plain[:, 2], plain[:, 5])
    for c in (1, 2, 5):
        assert np.array_equal(y[:, c], expected)


@pytest.mark.parametrize("change, message", [
    (dict(weights=np.zeros((4, 6))), "matrices"),
    (dict(shift=np.full(6, 64)), "shift"),
    (dict(bias=np.zeros(5)), "one value per column"),
    (dict(lcu_pairs=[[0, 1]], tmr_triples=[[1, 2, 3]]), "one protection group"),
    (dict(lcu_pairs=[[0, 6]]), "columns in"),
    (dict(vote_mode="median"), "Vote mode"),
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

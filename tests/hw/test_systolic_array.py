# amaranth: UnusedElaboratable=no
"""SystolicArray: GEMMs against numpy following the documented protocol exactly."""

import numpy as np
import pytest

from neuroharden.golden.numerics import wrap
from neuroharden.hw.systolic_array import SystolicArray
from tests.hw.simulation import gemm, simulate


def run_gemm(array, a, b):
    out = {}

    async def testbench(ctx):
        out["c"] = await gemm(ctx, array, a, b)

    simulate(array, testbench)
    return np.array(out["c"], dtype=np.int64)


def random_operands(rng, rows, depth, cols, width=8):
    low, high = -(1 << (width - 1)), (1 << (width - 1))
    return (rng.integers(low, high, (rows, depth), dtype=np.int64),
            rng.integers(low, high, (depth, cols), dtype=np.int64))


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 3), (3, 2), (4, 4)])
@pytest.mark.parametrize("depth", [1, 5, 17])
def test_gemm_matches_numpy(rows, cols, depth):
    rng = np.random.default_rng(rows * 1000 + cols * 100 + depth)
    a, b = random_operands(rng, rows, depth, cols)
    assert np.array_equal(run_gemm(SystolicArray(rows=rows, cols=cols), a, b), a @ b)


def test_extreme_operands_and_back_to_back_tiles():
    array = SystolicArray(rows=2, cols=3)
    a = np.full((2, 17), -128, dtype=np.int64)
    b = np.full((17, 3), -128, dtype=np.int64)
    rng = np.random.default_rng(7)
    a2, b2 = random_operands(rng, 2, 5, 3)
    out = {}

    async def testbench(ctx):
        out["first"] = await gemm(ctx, array, a, b)
        out["second"] = await gemm(ctx, array, a2, b2)

    simulate(array, testbench)
    assert np.array_equal(out["first"], a @ b)
    assert np.array_equal(out["second"], a2 @ b2)


def test_int16_operands_and_narrow_accumulator_wrap():
    rng = np.random.default_rng(11)
    a, b = random_operands(rng, 2, 9, 2, width=16)
    expected = wrap(a @ b, 32)
    assert np.array_equal(run_gemm(SystolicArray(rows=2, cols=2, width=16), a, b), expected)


@pytest.mark.parametrize("kwargs, error", [
    ({"rows": 0, "cols": 2}, ValueError),
    ({"rows": 2, "cols": -1}, ValueError),
    ({"rows": 2.5, "cols": 2}, TypeError),
    ({"rows": 2, "cols": None}, TypeError),
    ({"rows": 2, "cols": 2, "width": 12}, ValueError),
    ({"rows": 2, "cols": 2, "acc_width": 8}, ValueError),
])
def test_bad_parameters_are_rejected(kwargs, error):
    with pytest.raises(error, match="count|width"):
        SystolicArray(**kwargs)


def test_parameters_are_read_only():
    array = SystolicArray(rows=3, cols=2, width=16, acc_width=40)
    assert (array.rows, array.cols, array.width, array.acc_width) == (3, 2, 16, 40)
    with pytest.raises(AttributeError):
        array.rows = 4

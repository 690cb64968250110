"""cocotb regression of the systolic array: random int8 GEMMs against numpy."""

import cocotb
import numpy as np

from neuroharden.golden.numerics import wrap
from .array_tb import ArrayTB, tiled_gemm
from .runner import tb_config


def make_tb(dut):
    config = tb_config()
    return ArrayTB(dut, rows=config["rows"], cols=config["cols"],
                   width=config["width"], acc_width=config["acc_width"])


def random_int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int64)


@cocotb.test()
async def random_gemms(dut):
    """M and N not multiples of the array, K from 1 to 300."""
    tb = make_tb(dut)
    await tb.start()
    rng = np.random.default_rng(5)
    for m, k, n in [(1, 1, 1), (tb.rows + 1, 1, tb.cols + 2), (2 * tb.rows - 1, 7, tb.cols - 1 or 1),
                    (tb.rows, 64, tb.cols), (tb.rows + 2, 300, 2 * tb.cols + 1)]:
        a, b = random_int8(rng, (m, k)), random_int8(rng, (k, n))
        got = await tiled_gemm(tb, a, b)
        np.testing.assert_array_equal(got, wrap(a @ b, tb.acc_width), err_msg=f"{m}x{k}x{n}")


@cocotb.test()
async def extreme_products(dut):
    """-128 x -128 everywhere, and mixed signs at both ends of the range."""
    tb = make_tb(dut)
    await tb.start()
    k = 300
    a = np.full((tb.rows, k), -128, dtype=np.int64)
    b = np.full((k, tb.cols), -128, dtype=np.int64)
    np.testing.assert_array_equal(await tiled_gemm(tb, a, b), a @ b)
    b[:, ::2] = 127
    np.testing.assert_array_equal(await tiled_gemm(tb, a, b), a @ b)


@cocotb.test()
async def tiles_do_not_leak(dut):
    """A tile's result does not depend on the tile computed before it."""
    tb = make_tb(dut)
    await tb.start()
    rng = np.random.default_rng(6)
    a, b = random_int8(rng, (tb.rows, 9)), random_int8(rng, (9, tb.cols))
    first = await tb.matmul_tile(a, b)
    await tb.matmul_tile(random_int8(rng, (tb.rows, 4)), random_int8(rng, (4, tb.cols)))
    np.testing.assert_array_equal(await tb.matmul_tile(a, b), first)

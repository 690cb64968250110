"""cocotb module behind ``neuroharden gemm``: one tiled GEMM on the array.

Configuration (through :func:`sim.runner.tb_config`): ``a``, ``b`` (paths of int8
``.npy`` operands), ``c`` (where the int32 product goes), ``stats`` (a JSON file for the
cycle count and the wall-clock seconds of the simulation proper), ``rows``, ``cols``, ``width``, ``acc_width``.
"""

import json
import time

import cocotb
import numpy as np

from .array_tb import ArrayTB, tiled_gemm
from .runner import tb_config


@cocotb.test()
async def gemm(dut):
    """Multiply the configured operands and save the product."""
    config = tb_config()
    a = np.load(config["a"], allow_pickle=False).astype(np.int64)
    b = np.load(config["b"], allow_pickle=False).astype(np.int64)
    tb = ArrayTB(dut, rows=config["rows"], cols=config["cols"],
                 width=config["width"], acc_width=config["acc_width"])
    await tb.start()
    started = time.perf_counter()
    product = await tiled_gemm(tb, a, b)
    seconds = time.perf_counter() - started
    np.save(config["c"], product.astype(np.int32))
    with open(config["stats"], "w") as stats:
        json.dump({"cycles": tb.cycles, "seconds": seconds}, stats)

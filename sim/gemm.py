"""``neuroharden gemm``: an int8 matrix product computed on the generated RTL array."""

import json
import tempfile
from pathlib import Path

import numpy as np

from neuroharden.hw.verilog import generate
from .runner import DEFAULT_BUILD_ROOT, build, run

__all__ = ["run_gemm"]


def run_gemm(a, b, *, rows=8, cols=8, sim="verilator", build_root=DEFAULT_BUILD_ROOT):
    """Multiply int8 ``a`` (M x K) by int8 ``b`` (K x N) on a rows x cols RTL array.

    The array is generated, built once per configuration and simulated; the product is
    tiled over M and N and streams any K.

    Returns
    -------
    product : numpy.ndarray
        int32 M x N product (two's complement wrap-around at 32 bits, as the RTL).
    stats : dict
        ``cycles`` simulated and ``seconds`` of simulation proper (without build and
        simulator start-up).
    """
    verilog = generate("array", rows=rows, cols=cols)
    design = build(verilog, toplevel="array", sim=sim, build_root=build_root,
                   log=Path(build_root) / "gemm-build.log")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        np.save(work / "a.npy", a)
        np.save(work / "b.npy", b)
        config = {"a": str(work / "a.npy"), "b": str(work / "b.npy"),
                  "c": str(work / "c.npy"), "stats": str(work / "stats.json"),
                  "rows": rows, "cols": cols, "width": 8, "acc_width": 32}
        run(design, "neuroharden.sim.tb_gemm", config=config, log=work / "sim.log")
        product = np.load(work / "c.npy", allow_pickle=False)
        stats = json.loads((work / "stats.json").read_text())
    return product, stats

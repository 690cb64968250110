"""Simulation throughput of the 8x8 array under Verilator and Icarus, in one run.

Both simulators run the same tiled int8 GEMM on the same generated RTL; the figures
are simulated clock cycles and useful multiply-accumulates per wall-clock second of
simulation proper (builds and simulator start-up are excluded and printed apart).
The ratio is what to read: both are measured side by side on the same machine.

    .venv/bin/python benchmarks/sim_throughput.py [--m 64 --k 256 --n 64] [--json]
"""

import argparse
import json
import time

import numpy as np

from neuroharden.sim.gemm import run_gemm
from neuroharden.sim.runner import SIMULATORS


def measure(sim, a, b, rows, cols):
    started = time.perf_counter()
    product, stats = run_gemm(a, b, rows=rows, cols=cols, sim=sim)
    total = time.perf_counter() - started
    if not np.array_equal(product, a.astype(np.int64) @ b.astype(np.int64)):
        raise SystemExit(f"{sim}: the RTL product differs from numpy")
    macs = a.shape[0] * a.shape[1] * b.shape[1]
    return {"sim": sim, "cycles": stats["cycles"], "seconds": stats["seconds"],
            "cycles_per_second": stats["cycles"] / stats["seconds"],
            "macs_per_second": macs / stats["seconds"], "total_seconds": total}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--m", type=int, default=64)
    parser.add_argument("--k", type=int, default=256)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (args.m, args.k), dtype=np.int8)
    b = rng.integers(-128, 128, (args.k, args.n), dtype=np.int8)
    # A first, unmeasured run per simulator builds the design (cached afterwards).
    for sim in SIMULATORS:
        run_gemm(a[:1, :1], b[:1, :1], rows=args.rows, cols=args.cols, sim=sim)
    results = {sim: measure(sim, a, b, args.rows, args.cols) for sim in SIMULATORS}
    ratio = results["verilator"]["cycles_per_second"] / results["icarus"]["cycles_per_second"]
    if args.json:
        print(json.dumps({"array": f"{args.rows}x{args.cols}", "gemm": [args.m, args.k, args.n],
                          "results": results, "verilator_over_icarus": ratio}))
        return
    print(f"{args.rows}x{args.cols} array, GEMM {args.m}x{args.k} @ {args.k}x{args.n}, "
          f"{results['icarus']['cycles']} cycles")
    for sim, row in results.items():
        print(f"  {sim:9s}  {row['cycles_per_second']:10.0f} cycles/s  "
              f"{row['macs_per_second']:12.0f} MACs/s  ({row['seconds']:.2f} s simulating, "
              f"{row['total_seconds']:.2f} s with start-up)")
    print(f"  Verilator / Icarus: {ratio:.2f}x")


if __name__ == "__main__":
    main()

"""Model-level fault-injection throughput: fast engine vs naive full re-run, in one run.

A LeNet-5 neuron-output single-bit-flip campaign sized by Leveugle et al. for its
4,684 x 8 fault population at 95 % confidence and 1 % margin (7,645 faults); every fault
is evaluated on the whole digits test split (360 images).

* fast: :class:`golden.injection.InjectionEngine` (fault-free records cached, faults
  batched along the batch dimension, only the layers after the fault re-run, unchanged
  rows pruned), timed on the whole sample, outcome classification included;
* naive: :func:`golden.injection.naive_logits`, a full re-run of the integer network per
  fault with the fault applied inside the layer loop. It is timed on a random subset of
  the same faults (``--naive-faults``, default 200) and *extrapolated* per fault to the
  whole sample; the subset's logits are also checked against the fast engine's.

    .venv/bin/python benchmarks/model_fi.py [--model LENET5.pt] [--threads 2] [--json]

Both engines run in the same process with the same torch thread count (``--threads``,
default 2: the issue's two cores; 1 is steadier on a machine shared with other jobs).

Without ``--model`` a LeNet-5 is trained once on digits (seed 0, default epochs) and
cached in ``build/bench/lenet5-digits-seed0.pt``; training time is not part of the figures.
"""

import argparse
import json
import os
import random
import time

import torch

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.injection import InjectionEngine, naive_logits
from neuroharden.golden.sampling import FaultSpace, leveugle_sample_size, sample_indices

CACHE = os.path.join("build", "bench", "lenet5-digits-seed0.pt")


def checkpoint(path):
    if path:
        return path
    if not os.path.exists(CACHE):
        from neuroharden.golden.models import save_checkpoint
        from neuroharden.golden.train import train

        os.makedirs(os.path.dirname(CACHE), exist_ok=True)
        print(f"training LeNet-5 once -> {CACHE}")
        net, metadata = train("lenet5", seed=0)
        save_checkpoint(net, CACHE, **metadata)
    return CACHE


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="LeNet-5 checkpoint (default: train and cache one)")
    parser.add_argument("--naive-faults", type=int, default=200,
                        help="faults timed with the naive engine (extrapolated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    net, _, metadata, data = quantize_checkpoint(checkpoint(args.model))
    x = net.quantize_input(data.x_test)
    labels = data.y_test
    space = FaultSpace(net, "bitflip", "output")
    n = leveugle_sample_size(len(space), 0.95, 0.01)
    faults = [space.fault(k) for k in sample_indices(len(space), n, args.seed)]

    started = time.perf_counter()
    engine = InjectionEngine(net, x, labels)
    results = engine.evaluate(faults)
    fast = time.perf_counter() - started

    subset = random.Random(args.seed).sample(range(n), min(args.naive_faults, n))
    fast_subset = engine.run([faults[k] for k in subset])
    started = time.perf_counter()
    for j, k in enumerate(subset):
        logits = naive_logits(net, x, faults[k])
        if not torch.equal(logits, fast_subset[j]):
            raise SystemExit(f"fast and naive engines differ on {faults[k]}")
    naive_per_fault = (time.perf_counter() - started) / len(subset)
    naive = naive_per_fault * n

    critical = sum(r["critical"] for r in results)
    report = {
        "model": metadata.get("model", "lenet5"), "images": len(x), "population": len(space),
        "faults": n, "fast_seconds": fast, "fast_faults_per_second": n / fast,
        "naive_faults_timed": len(subset), "naive_seconds_per_fault": naive_per_fault,
        "naive_seconds_extrapolated": naive, "naive_faults_per_second": 1 / naive_per_fault,
        "speedup": naive / fast, "critical_004": critical,
        "outcomes_003": {o: sum(r["outcome"] == o for r in results)
                         for o in ("masked", "tolerable", "critical")},
        "torch_threads": torch.get_num_threads(),
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"LeNet-5 neuron-output bit flips: {n} faults (Leveugle 95 %/1 % of "
          f"{len(space)}) x {len(x)} images")
    print(f"  fast engine : {fast:8.1f} s  {n / fast:9.1f} faults/s")
    print(f"  naive engine: {naive:8.1f} s  {1 / naive_per_fault:9.1f} faults/s "
          f"(extrapolated from {len(subset)} faults timed)")
    print(f"  speed-up    : {naive / fast:8.1f} x")
    print(f"  paper 004 critical faults: {critical} ({100 * critical / n:.2f} %); paper 003: "
          + ", ".join(f"{k} {v}" for k, v in report["outcomes_003"].items()))


if __name__ == "__main__":
    main()

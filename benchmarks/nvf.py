"""NVF (paper 004) against the exact bit-flip oracle on every LeNet-5 neuron, in one run.

Both rank all 4,684 hidden neurons of LeNet-5 over the same first N training images
(default 200): NVF by Algorithm 1 (gradient filter, bisection deviation search), the
oracle by 8 single-bit flips per (neuron, image) through the fast injection engine. It
prints both times, the evaluations each method asked for, and the NVF error against the
oracle (MAE in percentage points, Spearman rank correlation), then, as its last line, a
JSON object with those figures. Targets on two cores: NVF < 5 min, oracle < 15 min.

    .venv/bin/python benchmarks/nvf.py [--model LENET5.pt] [--images 200]

Without --model, LeNet-5 is trained on digits (seed 0) into a temporary file first.
"""

import argparse
import json
import os
import tempfile
import time

import torch

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.exact import exact_vulnerability
from neuroharden.golden.nvf import nvf
from neuroharden.golden.ranking import compare_nvf_exact


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="LeNet-5 checkpoint (default: train one)")
    parser.add_argument("--images", type=int, default=200, help="training images analysed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from neuroharden.golden.models import save_checkpoint
            from neuroharden.golden.train import train

            model = os.path.join(tmp, "lenet5.pt")
            net, metadata = train("lenet5", seed=0, progress=False)
            save_checkpoint(net, model, **metadata)
        net, _, metadata, data = quantize_checkpoint(model)
    if metadata.get("model") != "lenet5":
        raise SystemExit(f"{model} is not a LeNet-5 checkpoint")
    x = net.quantize_input(data.x_train[:args.images])
    neurons = sum(net.layers[i].neurons for i in range(len(net.layers) - 1))
    start = time.perf_counter()
    nvf_result = nvf(net, x)
    nvf_seconds = time.perf_counter() - start
    start = time.perf_counter()
    exact_result = exact_vulnerability(net, x)
    exact_seconds = time.perf_counter() - start
    report = compare_nvf_exact(net, x, neurons, nvf_result=nvf_result,
                               exact_result=exact_result)
    analysed = sum(int(a.sum()) for a in nvf_result["analysed"].values())
    nvf_all = torch.cat(list(nvf_result["scores"].values()))
    exact_all = torch.cat(list(exact_result["scores"].values()))
    print(f"LeNet-5, {neurons} neurons, {args.images} training images, "
          f"{torch.get_num_threads()} threads")
    print(f"  NVF:   {nvf_seconds:8.1f} s  {report['evaluations_nvf']:>10} evaluations  "
          f"({analysed} of {neurons * args.images} (neuron, image) pairs pass the filter)")
    print(f"  exact: {exact_seconds:8.1f} s  {report['evaluations_exact']:>10} evaluations")
    print(f"  mean NVF {float(nvf_all.mean()):.3f} %, mean exact {float(exact_all.mean()):.3f} %,"
          f" MAE {report['mae_pp']:.3f} pp, Spearman {report['spearman']}")
    print(json.dumps({"model": "lenet5", "neurons": neurons, "images": args.images,
                      "nvf_seconds": nvf_seconds, "exact_seconds": exact_seconds,
                      "evaluations_nvf": report["evaluations_nvf"],
                      "evaluations_exact": report["evaluations_exact"],
                      "pairs_analysed": analysed, "mae_pp": report["mae_pp"],
                      "spearman": report["spearman"],
                      "mean_nvf": float(nvf_all.mean()), "mean_exact": float(exact_all.mean())}))


if __name__ == "__main__":
    main()

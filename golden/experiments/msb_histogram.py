"""Paper 002, Fig. 3/4 and Fig. 7: bit-flip failure rates before and after feature optimization.

* **MSB histogram** (Fig. 3b/4b). Every hidden neuron (or ``--neurons`` per layer, the
  same ones in both networks) gets a flip of bit ``--bit`` of its int8 output
  (:class:`golden.faults.Fault`, target ``output``; default bit 7, the MSB of the int8
  word: a ReLU output ``v`` becomes ``v - 128``), evaluated with the fast engine
  (:class:`golden.injection.InjectionEngine`). Paper 002's *failure rate* of a neuron is
  the fraction of the test images the fault-free int8 network classifies correctly that
  the faulty one misclassifies. The fault sits in the neuron for one inference of each
  image, which is the paper's single upset per inference. The histogram counts neurons
  per failure-rate bin (equal bins from 0 to the largest rate of either network).
* **Bit-error rate** (Fig. 7). Each bit of every hidden neuron output (all int8
  activations between layers, before pooling; not the input image, not the logits, not
  the weights: the paper flips "all DNN activations") flips independently with
  probability BER, in every inference. A run is one pass over the test images with
  fresh flips; the failure rate of a run is the fraction of the originally correct images
  that are misclassified, averaged over ``--runs`` runs (paper: 1,000 on MNIST). Both
  networks see exactly the same flip positions (same seed, same shapes: common random
  numbers), so their difference is not sampling noise between the two. Flip positions
  are drawn exactly as a Bernoulli process with geometric gaps, and only images whose
  layer input differs from the fault-free one are recomputed.
* **Optimized network.** ``--optimized`` or, by default, :func:`golden.optimize.
  optimize_checkpoint` on ``--model`` (cached in ``--cache``, keyed by the model's
  sha256 and the optimization parameters).
* **Bottlenecks.** The per-layer table flags paper 002's bottleneck layers
  (:func:`golden.optimize.bottlenecks`) next to their mean and worst failure rates.

Outputs in ``-o DIR``: ``msb_failure_rates.csv`` (per neuron), ``msb_histogram.csv``,
``ber_failure_rates.csv``, ``msb_histogram.png``, ``ber_failure_rate.png``,
``msb_histogram.md`` (tables) and ``summary.json``; each written atomically.
"""

import json
import math
import os

import click

from ..atomic import atomic_output

__all__ = ["PAPER", "DEFAULT_BERS", "msb_failure_rates", "ber_failure_rates",
           "histogram", "command"]

#: Paper 002's own figures (Section V-E): relative reductions by feature optimization.
PAPER = {"worst_case_reduction": "more than 40 % (all three benchmarks)",
         "ber_mean_reduction": {"MNIST": 0.29, "CIFAR-10": 0.27, "ILSVRC": 0.15}}
#: Bit-error rates of the BER sweep.
DEFAULT_BERS = "1e-5,3e-5,1e-4,3e-4,1e-3,3e-3,1e-2"
_ROWS = 2048  # (run, image) rows per chunk of the BER sweep (bounds memory)


def _correct_mask(net, x, labels):
    return net.predict(x) == labels


def msb_failure_rates(net, x, labels, neurons, bit=7, progress=None):
    """Failure rate of a single flip of ``bit`` in each listed neuron's output.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 test images (int64) ``[B, C, H, W]``.
    labels : torch.Tensor
        ``[B]``.
    neurons : list of (str, int)
        (layer name, flat neuron index).
    bit : int
        Bit of the int8 output (7 = MSB).
    progress : bool, optional
        tqdm bar; by default only on a terminal.

    Returns
    -------
    torch.Tensor
        float64 ``[len(neurons)]``: misclassified / originally correct images.
    """
    import torch
    from tqdm import tqdm

    from ..faults import Fault
    from ..injection import InjectionEngine

    correct = _correct_mask(net, x, labels)
    if not bool(correct.any()):
        raise ValueError("the network classifies none of the images correctly")
    x, labels = x[correct], labels[correct]
    engine = InjectionEngine(net, x, labels)
    faults = [Fault(layer, "output", index, bits=(bit,)) for layer, index in neurons]
    rates = torch.empty(len(faults), dtype=torch.float64)
    chunk = 256
    with tqdm(total=len(faults), desc=f"bit {bit} flips", unit="neuron",
              disable=None if progress is None else not progress) as bar:
        for a in range(0, len(faults), chunk):
            logits = engine.run(faults[a:a + chunk])
            rates[a:a + chunk] = (logits.argmax(-1) != labels).double().mean(1)
            bar.update(len(faults[a:a + chunk]))
    return rates


def _flip_positions(total, p, generator):
    """Positions in ``[0, total)`` of a Bernoulli(p) process (geometric gaps)."""
    import torch

    if p <= 0:
        return torch.zeros(0, dtype=torch.int64)
    if p >= 1:
        return torch.arange(total)
    log_q = math.log1p(-p)
    found, start = [], 0
    while start < total:
        n = int((total - start) * p * 1.1) + 16
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        # floor(log(U) / log(1 - p)) failures before each success, U in (0, 1].
        gaps = torch.floor(torch.log1p(-u) / log_q).clamp(max=total).to(torch.int64)
        positions = start + torch.cumsum(gaps + 1, 0) - 1
        found.append(positions[positions < total])
        start = int(positions[-1]) + 1
    return torch.cat(found)


def _flip(y, p, generator):
    """Flip every bit of the int8 values ``y`` with probability ``p``."""
    import torch

    from ..numerics import WIDTH, wrap

    positions = _flip_positions(y.numel() * WIDTH, p, generator)
    if positions.numel() == 0:
        return y
    mask = torch.zeros(y.numel(), dtype=torch.int64)
    # Distinct (element, bit) pairs: summing the bit values is their OR.
    mask.index_put_((positions // WIDTH,), torch.ones_like(positions) << (positions % WIDTH),
                    accumulate=True)
    return wrap((y & ((1 << WIDTH) - 1)) ^ mask.view(y.shape), WIDTH)


def ber_failure_rates(net, x, labels, ber, runs, seed, progress=None):
    """Failure rate of each run with every hidden output bit flipped at rate ``ber``.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x, labels : torch.Tensor
        int8 test images and labels.
    ber : float
        Bit-error rate in [0, 1].
    runs : int
        Passes over the images, each with fresh flips.
    seed : int
        Seed of the flips (the same seed gives the same flips on any network of the
        same architecture and images).
    progress : bool, optional
        tqdm bar; by default only on a terminal.

    Returns
    -------
    torch.Tensor
        float64 ``[runs]``: misclassified / originally correct images per run.
    """
    import torch
    from tqdm import tqdm

    correct = _correct_mask(net, x, labels)
    if not bool(correct.any()):
        raise ValueError("the network classifies none of the images correctly")
    generator = torch.Generator().manual_seed(seed)
    B = x.shape[0]
    inputs, ys, h = [], [], x
    with torch.no_grad():
        for i in range(len(net.layers)):
            _, y = net.layer_step(i, h)
            inputs.append(h)
            ys.append(y)
            h = net.next_input(i, y)
    per_chunk = max(1, _ROWS // B)
    failures = []
    with tqdm(total=runs, desc=f"BER {ber:g}", unit="run",
              disable=None if progress is None else not progress) as bar, torch.no_grad():
        for a in range(0, runs, per_chunk):
            n = min(per_chunk, runs - a)
            image = torch.arange(B).repeat(n)
            h = None  # None: every row's input is the fault-free one
            for i, layer in enumerate(net.layers):
                y = ys[i][image].clone()
                if h is not None:
                    changed = (h != inputs[i][image]).flatten(1).any(1)
                    if bool(changed.any()):
                        y[changed] = net.layer_step(i, h[changed])[1]
                if layer.relu and ber > 0:
                    y = _flip(y, ber, generator)
                h = net.next_input(i, y)
            wrong = (h.argmax(1) != labels[image]).view(n, B)[:, correct]
            failures.append(wrong.double().mean(1))
            bar.update(n)
    return torch.cat(failures)


def histogram(rates, bins):
    """Neuron counts per equal-width bin of ``[0, max]`` for each set of rates.

    Parameters
    ----------
    rates : dict of str to sequence of float
    bins : int

    Returns
    -------
    (list of float, dict of str to list of int)
        The ``bins + 1`` edges and the counts per set.
    """
    top = max((max(r) for r in rates.values() if len(r)), default=0.0)
    top = top if top > 0 else 1.0
    edges = [top * k / bins for k in range(bins + 1)]
    counts = {}
    for name, values in rates.items():
        c = [0] * bins
        for v in values:
            c[min(bins - 1, int(v / top * bins))] += 1
        counts[name] = c
    return edges, counts


# -- output ---------------------------------------------------------------------------

def _write(path, text_or_bytes):
    binary = isinstance(text_or_bytes, bytes)
    with atomic_output(path, "wb" if binary else "w", **({} if binary else {"newline": ""})) \
            as file:
        file.write(text_or_bytes)


def _csv(header, rows):
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _png(figure):
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _pct(v, digits=2):
    return f"{100 * v:.{digits}f} %"


def _share(v):
    return "n/a" if v is None else _pct(v, 1)


def _reduction(before, after):
    return (before - after) / before if before > 0 else None


def _plots(edges, counts, bers, ber_means, bit):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    width = edges[1] - edges[0]
    centres = [100 * (e + width / 2) for e in edges[:-1]]
    for offset, (name, values) in zip((-0.2, 0.2), counts.items()):
        axis.bar([c + offset * 100 * width for c in centres], values,
                 width=0.4 * 100 * width, label=name)
    axis.set(yscale="log", xlabel=f"failure rate after a flip of bit {bit} (%)",
             ylabel="neurons", title="Per-neuron failure rate (paper 002, Fig. 3b)")
    axis.legend()
    axis.grid(True, alpha=0.3)
    msb_png = _png(figure)
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, means in ber_means.items():
        axis.plot(bers, [100 * m for m in means], marker="o", label=name)
    axis.set(xscale="log", xlabel="bit-error rate of the hidden neuron outputs",
             ylabel="failure rate (%)", title="Failure rate vs BER (paper 002, Fig. 7)")
    axis.legend()
    axis.grid(True, which="both", alpha=0.3)
    return msb_png, _png(figure)


# -- command --------------------------------------------------------------------------

def _baseline(model_path, arch, train_epochs, cache, seed, say):
    if model_path is not None:
        return model_path
    from ..models import save_checkpoint
    from ..train import DEFAULT_EPOCHS, train

    epochs = DEFAULT_EPOCHS[arch] if train_epochs is None else train_epochs
    path = os.path.join(cache, f"{arch}-digits-seed{seed}-e{epochs}.pt")
    if not os.path.isfile(path):
        say(f"training {arch} ({epochs} epochs) -> {path}")
        net, metadata = train(arch, epochs=epochs, seed=seed)
        save_checkpoint(net, path, **metadata)
    return path


def _optimized(model_path, optimized_path, cache, epochs, iterations, images, seed, say):
    if optimized_path is not None:
        return optimized_path, None
    from ..campaign import file_sha256
    from ..optimize import optimize_checkpoint

    stem = os.path.splitext(os.path.basename(model_path))[0]
    path = os.path.join(cache, f"{stem}-{file_sha256(model_path)[:12]}-optimized-e{epochs}"
                               f"-i{iterations}-n{images}-s{seed}.pt")
    report_path = path + ".json"
    if os.path.isfile(path) and os.path.isfile(report_path):
        with open(report_path) as file:
            return path, json.load(file)
    say(f"optimizing {model_path} -> {path}")
    report = optimize_checkpoint(model_path, path, epochs=epochs, max_iterations=iterations,
                                 images=images, seed=seed)
    _write(report_path, json.dumps(report, indent=1) + "\n")
    return path, report


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Trained checkpoint (default: --arch trained on digits, cached).")
@click.option("--arch", type=click.Choice(("mlp7", "lenet5", "alexnet")), default="lenet5",
              show_default=True, help="Network trained when --model is not given.")
@click.option("--train-epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs of --arch (default: per model).")
@click.option("--optimized", "optimized_path", type=click.Path(dir_okay=False),
              default=None, help="Optimized checkpoint (default: `neuroharden optimize` "
                                 "of --model with the options below, cached).")
@click.option("--epochs", type=click.IntRange(min=0), default=None,
              help="Fine-tuning epochs per iteration of the optimization (default: "
                   "golden.optimize's).")
@click.option("--iterations", type=click.IntRange(min=1), default=None,
              help="Most iterations of the optimization (default: golden.optimize's).")
@click.option("--relevance-images", type=click.IntRange(min=1), default=None,
              help="Training images of the relevance analysis (default: golden.optimize's).")
@click.option("--images", type=click.IntRange(min=1), default=None,
              help="First N test images (default: all).")
@click.option("--neurons", type=click.IntRange(min=1), default=None,
              help="Neurons per hidden layer in the histogram, drawn with --seed "
                   "(default: all).")
@click.option("--bit", type=click.IntRange(0, 7), default=7, show_default=True,
              help="Flipped bit of the int8 neuron output (7 = MSB).")
@click.option("--bers", default=DEFAULT_BERS, show_default=True,
              help="Comma-separated bit-error rates.")
@click.option("--runs", type=click.IntRange(min=1), default=100, show_default=True,
              help="Runs (passes over the test images) per bit-error rate.")
@click.option("--bins", type=click.IntRange(min=1), default=20, show_default=True,
              help="Histogram bins.")
@click.option("-o", "--output", type=click.Path(file_okay=False),
              default=os.path.join("build", "experiments", "msb-histogram"),
              show_default=True, help="Output directory.")
@click.option("--cache", type=click.Path(file_okay=False),
              default=os.path.join("build", "experiments", "cache"), show_default=True,
              help="Cache of trained and optimized checkpoints.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of training, optimization, neuron sample and bit flips.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
def command(model_path, arch, train_epochs, optimized_path, epochs, iterations,
            relevance_images, images, neurons, bit, bers, runs, bins, output, cache, seed,
            as_json):
    """Paper 002: per-neuron MSB failure-rate histogram and failure rate vs BER, before
    and after feature optimization."""
    try:
        ber_list = [float(b) for b in bers.split(",") if b.strip()]
    except ValueError:
        raise click.ClickException(f"--bers must be comma-separated numbers, not {bers!r}") \
            from None
    if not ber_list or not all(0 <= b <= 1 for b in ber_list):
        raise click.ClickException(f"--bers must list rates in [0, 1], not {bers!r}")
    for path in (model_path, optimized_path):
        if path is not None and not os.path.isfile(path):
            raise click.ClickException(f"{path}: no such file")
    for directory in (output, cache):
        if os.path.exists(directory) and not os.path.isdir(directory):
            raise click.ClickException(f"{directory}: exists and is not a directory")

    def say(text):
        if not as_json:
            click.echo(text, err=True)

    try:
        summary = _run(model_path, arch, train_epochs, optimized_path, epochs, iterations,
                       relevance_images, images, neurons, bit, ber_list, runs, bins, output,
                       cache, seed, say)
    except ValueError as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if as_json:
        click.echo(json.dumps(summary))
        return
    for name in ("baseline", "optimized"):
        s = summary["networks"][name]
        click.echo(f"{name}: int8 accuracy {_pct(s['int8_accuracy'])}, worst-case "
                   f"failure rate {_pct(s['worst_case'])}, mean {_pct(s['mean'], 3)}")
    click.echo(f"worst-case reduction {_share(summary['worst_case_reduction'])}, mean "
               f"relative failure-rate reduction over the BERs "
               f"{_share(summary['ber_mean_reduction'])}")
    click.echo(f"wrote {len(summary['files'])} files to {output}")


def _run(model_path, arch, train_epochs, optimized_path, epochs, iterations,
         relevance_images, images, neurons, bit, bers, runs, bins, output, cache, seed, say):
    import torch

    from .. import optimize as opt
    from ..checkpoint import is_imported, quantize_checkpoint
    from ..models import load_checkpoint

    if model_path is not None:
        if is_imported(model_path):
            raise ValueError(f"{model_path}: paper 002's optimization fine-tunes float "
                             f"weights, which an imported network does not have; give a "
                             f"checkpoint (MODEL.pt)")
        load_checkpoint(model_path)  # a bad file fails here, before any work
    os.makedirs(cache, exist_ok=True)
    model_path = _baseline(model_path, arch, train_epochs, cache, seed, say)
    optimized_path, report = _optimized(
        model_path, optimized_path, cache,
        opt.DEFAULT_FINE_TUNE_EPOCHS if epochs is None else epochs,
        opt.DEFAULT_MAX_ITERATIONS if iterations is None else iterations,
        opt.DEFAULT_IMAGES if relevance_images is None else relevance_images, seed, say)
    nets = {}
    for name, path in (("baseline", model_path), ("optimized", optimized_path)):
        nets[name] = quantize_checkpoint(path)
    if nets["baseline"][2]["model"] != nets["optimized"][2]["model"]:
        raise ValueError(f"{optimized_path}: not the architecture of {model_path}")
    intnet0, _, metadata, data = nets["baseline"]
    x_test = data.x_test if images is None else data.x_test[:images]
    y_test = data.y_test if images is None else data.y_test[:images]
    generator = torch.Generator().manual_seed(seed)
    sample = []
    hidden = [layer for layer in intnet0.layers if layer.relu]
    for layer in hidden:
        chosen = (range(layer.neurons) if neurons is None or neurons >= layer.neurons
                  else sorted(torch.randperm(layer.neurons, generator=generator)[:neurons]
                              .tolist()))
        sample += [(layer.name, k) for k in chosen]
    flags = {b["layer"]: b["bottleneck"] for b in opt.bottlenecks(metadata["model"])}
    results = {}
    for name, (intnet, _, _, _) in nets.items():
        x = intnet.quantize_input(x_test)
        say(f"{name}: bit {bit} flips in {len(sample)} neurons, BER sweep of {runs} runs")
        rates = msb_failure_rates(intnet, x, y_test, sample, bit)
        sweep = [ber_failure_rates(intnet, x, y_test, b, runs, seed + k)
                 for k, b in enumerate(bers)]
        results[name] = {"rates": rates, "sweep": sweep,
                         "int8_accuracy": float((intnet.predict(x) == y_test)
                                                .double().mean())}
    os.makedirs(output, exist_ok=True)
    files = []

    def put(filename, content):
        path = os.path.join(output, filename)
        _write(path, content)
        files.append(path)

    put("msb_failure_rates.csv", _csv(
        ("network", "layer", "index", "bottleneck", "failure_rate"),
        [(name, layer, index, int(flags[layer]), f"{float(r['rates'][n]):.6f}")
         for name, r in results.items() for n, (layer, index) in enumerate(sample)]))
    edges, counts = histogram({n: r["rates"].tolist() for n, r in results.items()}, bins)
    put("msb_histogram.csv", _csv(
        ("bin_low", "bin_high", "baseline", "optimized"),
        [(f"{edges[k]:.6f}", f"{edges[k + 1]:.6f}", counts["baseline"][k],
          counts["optimized"][k]) for k in range(bins)]))
    put("ber_failure_rates.csv", _csv(
        ("network", "ber", "runs", "mean_failure_rate", "sd"),
        [(name, f"{b:g}", runs, f"{float(s.mean()):.6f}", f"{float(s.std(unbiased=False)):.6f}")
         for name, r in results.items() for b, s in zip(bers, r["sweep"])]))
    ber_means = {n: [float(s.mean()) for s in r["sweep"]] for n, r in results.items()}
    msb_png, ber_png = _plots(edges, counts, bers, ber_means, bit)
    put("msb_histogram.png", msb_png)
    put("ber_failure_rate.png", ber_png)

    networks = {n: {"int8_accuracy": r["int8_accuracy"],
                    "worst_case": float(r["rates"].max()), "mean": float(r["rates"].mean()),
                    "neurons_failing": int((r["rates"] > 0).sum())}
                for n, r in results.items()}
    worst = _reduction(networks["baseline"]["worst_case"], networks["optimized"]["worst_case"])
    ber_reductions = [_reduction(b, a) for b, a in zip(ber_means["baseline"],
                                                       ber_means["optimized"])]
    defined = [r for r in ber_reductions if r is not None]
    mean_ber = sum(defined) / len(defined) if defined else None
    layers = []
    for layer in hidden:
        picks = torch.tensor([n for n, (name, _) in enumerate(sample) if name == layer.name])
        row = {"layer": layer.name, "neurons": layer.neurons, "tested": len(picks),
               "bottleneck": flags[layer.name]}
        for name, r in results.items():
            row[name] = {"mean": float(r["rates"][picks].mean()),
                         "worst": float(r["rates"][picks].max())}
        layers.append(row)
    put("msb_histogram.md", _markdown(metadata["model"], bit, len(x_test), runs, networks,
                                      worst, layers, edges, counts, bers, ber_means,
                                      ber_reductions, mean_ber, report))
    summary = {"experiment": "msb-histogram", "model": metadata["model"],
               "baseline": str(model_path), "optimized": str(optimized_path),
               "bit": bit, "images": len(x_test), "neurons_tested": len(sample),
               "runs": runs, "networks": networks, "layers": layers,
               "worst_case_reduction": worst, "bers": bers, "ber_failure_rates": ber_means,
               "ber_reductions": ber_reductions, "ber_mean_reduction": mean_ber,
               "optimization": None if report is None else {
                   k: report[k] for k in ("converged", "float_accuracy", "int8_accuracy",
                                          "criticality_spread_before",
                                          "criticality_spread_after", "seconds")},
               "paper": PAPER}
    put("summary.json", json.dumps(summary, indent=1) + "\n")
    summary["files"] = files
    return summary


def _markdown(model, bit, images, runs, networks, worst, layers, edges, counts, bers,
              ber_means, ber_reductions, mean_ber, report):
    from ..optimize import BOTTLENECK_RATIO

    text = [f"# Paper 002 on {model}: bit-flip failure rates before and after feature "
            f"optimization\n\n",
            f"Failure rate: share of the originally correct test images (of {images}) that "
            f"are misclassified. Single flips of bit {bit} of one neuron output; BER: every "
            f"bit of every hidden neuron output flipped with that probability, {runs} runs "
            f"per rate.\n\n"]
    if report is not None:
        text.append(f"Optimization: {len(report['iterations'])} iteration(s), "
                    f"{'converged' if report['converged'] else 'not converged'}; float "
                    f"{_pct(report['float_accuracy']['before'])} -> "
                    f"{_pct(report['float_accuracy']['after'])}, int8 "
                    f"{_pct(report['int8_accuracy']['before'])} -> "
                    f"{_pct(report['int8_accuracy']['after'])}; criticality spread "
                    f"{report['criticality_spread_before']:.3f} -> "
                    f"{report['criticality_spread_after']:.3f}.\n\n")
    text.append(_table(("network", "int8 accuracy", "worst-case failure rate",
                        "mean failure rate", "neurons with failures"),
                       [(n, _pct(s["int8_accuracy"]), _pct(s["worst_case"]),
                         _pct(s["mean"], 3), s["neurons_failing"])
                        for n, s in networks.items()]))
    text.append(f"\nWorst-case reduction: {_share(worst)} (paper 002: "
                f"{PAPER['worst_case_reduction']}).\n")
    text.append(f"\n## Per layer (bottleneck: fewer than {100 * BOTTLENECK_RATIO:g} % of the "
                f"largest layer's neurons)\n\n")
    text.append(_table(("layer", "neurons", "bottleneck", "baseline mean", "baseline worst",
                        "optimized mean", "optimized worst"),
                       [(r["layer"], r["neurons"], "yes" if r["bottleneck"] else "no",
                         _pct(r["baseline"]["mean"], 3), _pct(r["baseline"]["worst"]),
                         _pct(r["optimized"]["mean"], 3), _pct(r["optimized"]["worst"]))
                        for r in layers]))
    text.append("\n## Histogram (neurons per failure-rate bin)\n\n")
    text.append(_table(("failure rate", "baseline", "optimized"),
                       [(f"{100 * edges[k]:.2f}-{100 * edges[k + 1]:.2f} %",
                         counts["baseline"][k], counts["optimized"][k])
                        for k in range(len(edges) - 1)]))
    text.append("\n## Failure rate vs bit-error rate\n\n")
    text.append(_table(("BER", "baseline", "optimized", "relative reduction"),
                       [(f"{b:g}", _pct(ber_means["baseline"][k], 3),
                         _pct(ber_means["optimized"][k], 3), _share(ber_reductions[k]))
                        for k, b in enumerate(bers)]))
    paper = ", ".join(f"{k} {_pct(v, 0)}" for k, v in PAPER["ber_mean_reduction"].items())
    text.append(f"\nMean relative reduction over the BERs: {_share(mean_ber)} (paper 002: "
                f"{paper}).\n")
    return "".join(text)

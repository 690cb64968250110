"""Paper 003, Section V-C / Table I: stuck-at faults in the PE weight inputs, int8 vs int16.

Paper 003 injects single stuck-at faults (one bit forced to 0 or 1) into the weight
input of the PEs of an output-stationary systolic array running LeNet-5, on a 16-bit
array (its precise baseline) and an 8-bit one; the fault space is ``2 x K x M`` (``K``
the PE operand width, ``M`` the PEs) and the sample is Leveugle-sized at 99 %
confidence and 1 % margin with ``p = 0.5``. Each (image, fault) pair is classified
against the fault-free output: masked (identical outputs), tolerable (same top-1 and a
top-1 probability not below 0.95 of the fault-free one) or critical
(:func:`golden.outcomes.classify`).

Here the faults are the bits of the ``pe_{r}_{c}.w_reg`` registers of the generated
accelerator (:func:`sim.rtl_faults.paper003_space`), held for every tile of every layer
of whole inferences (a permanent fault). They are evaluated with the exact numpy model
of :mod:`sim.stuck_weights`: the stuck bit corrupts the weights that PE and the PEs
below it in its column use, in every tile. ``--rtl-check N`` first re-runs ``N`` of the
sampled faults per array as whole inferences on the RTL (every tile with the stuck-at
held, :func:`sim.stuck_weights.rtl_logits`) and stops with an error unless the logits
agree with the model's on every image; the model is also checked against the RTL for
every weight bit of small arrays in ``tests/sim/test_stuck_weights.py``.

Differences from the paper, stated in the outputs:

* the array is ``--rows`` x ``--cols`` (default 8 x 8; the paper's is 28 x 28), so the
  fault space and sample are smaller;
* both arrays run the same int8-quantized LeNet-5 trained on ``--dataset`` (default
  the bundled digits; ``--model`` runs any other network file, a quantized ``.onnx``
  included; the paper quantized separate 8- and 16-bit networks trained on MNIST):
  on the 16-bit
  array an int8 weight is sign-extended, so bits 8..15 are copies of its sign bit and a
  stuck bit there adds or removes a multiple of 256 (or 32,768) to the weight;
* the paper's unit of classification is the (image, fault) pair; the table gives that
  and, per fault, the worst class over the images (the project's campaign convention).

Each array is one campaign of golden's runner (:func:`golden.campaign.run`, level
``sa-fi``, evaluated by :class:`StuckAtEvaluator`): the per-fault rows go to
``results.sqlite`` as they are computed, so an interrupted run resumes where it
stopped; ``sa_fi.csv``, ``sa_fi_faults.csv``, ``sa_fi.md``, ``sa_fi.png`` and
``summary.json`` are written atomically at the end.
"""

import json
import time

import click

from neuroharden.golden.evaluator import Evaluator
from neuroharden.golden.experiments import common

__all__ = ["PAPER", "WIDTHS", "StuckAtEvaluator", "command"]

#: Paper 003 Table I, the two precise configurations: (accuracy, injected faults as a
#: portion of the fault space, masked, tolerable, critical), in %.
PAPER = {16: {"label": "16-bit baseline", "accuracy": 99.07, "injected": 10,
              "masked": 47.58, "tolerable": 29.18, "critical": 23.24},
         8: {"label": "8-bit precise", "accuracy": 99.05, "injected": 19,
             "masked": 64.65, "tolerable": 23.01, "critical": 12.34}}
#: Operand widths of the two arrays.
WIDTHS = (8, 16)
_CLASSES = ("masked", "tolerable", "critical")
_CHUNK = 16  # faults per committed batch


def _campaign(program, width, *, confidence, margin, cap, seed, images, model_sha256,
              dataset_field):
    """One array's fault space, campaign definition and Leveugle's size of the space."""
    from neuroharden.golden.campaign import CampaignDefinition
    from neuroharden.golden.sampling import leveugle_sample_size
    from neuroharden.sim.rtl_faults import paper003_space
    from neuroharden.sim.sites import design_catalogue

    catalogue = design_catalogue("accelerator", rows=program.rows, cols=program.cols,
                                 width=width, k_depth=program.k_depth)
    space = paper003_space(catalogue)
    leveugle = leveugle_sample_size(len(space), confidence, margin, 0.5)
    definition = CampaignDefinition(
        level="sa-fi", faults=leveugle if cap is None else min(cap, leveugle), seed=seed,
        images=images, population=len(space),
        fields={"model_sha256": model_sha256, "width": width, "rows": program.rows,
                "cols": program.cols, "fault_model": "stuck-at", "sites": "pe.w_reg",
                **dataset_field})
    return space, definition, leveugle


class StuckAtEvaluator(Evaluator):
    """Stuck-at faults of the PE weight registers, held for whole inferences on the exact
    numpy model of the array (:class:`sim.stuck_weights.StuckWeightNetwork`).

    Parameters
    ----------
    model : sim.stuck_weights.StuckWeightNetwork
    space : sim.rtl_faults.RTLFaultSpace
        Paper 003's stuck-at space of the same array.
    labels : torch.Tensor
        Labels of the model's images.
    out_scale : float
        Real value of one logit LSB.
    """

    def __init__(self, model, space, labels, out_scale):
        self.model, self.space, self.labels, self.out_scale = model, space, labels, out_scale

    def fault_free_correct(self):
        import torch

        return int((torch.from_numpy(self.model.logits).argmax(1) == self.labels).sum())

    def evaluate(self, batch):
        import numpy as np
        import torch

        from neuroharden.golden.outcomes import classify

        faults = [self.space.fault(p) for p in batch]
        logits = np.stack([self.model.run(f.site, f.bit, f.model) for f in faults])
        outcomes = classify(torch.from_numpy(logits), torch.from_numpy(self.model.logits),
                            self.labels, self.out_scale)
        return [(p, f.to_json(), outcome) for p, f, outcome in zip(batch, faults, outcomes)]


def _rtl_check(ctx, program, x, width, faults, sim):
    """Whole RTL inferences of ``faults`` against the model; raises on any difference."""
    import numpy as np

    from neuroharden.sim.stuck_weights import StuckWeightNetwork, rtl_logits

    model = StuckWeightNetwork(program, x, width=width)
    ctx.say(f"RTL check, {width}-bit array: {len(faults)} faults x {len(x)} images on {sim}")
    started = time.perf_counter()
    rtl = rtl_logits(program, x, faults, width=width, sim=sim)
    expected = [model.run(f.site, f.bit, f.model) for f in faults]
    agree = [bool(np.array_equal(a, b)) for a, b in zip(rtl, expected)]
    changed = sum(not np.array_equal(e, model.logits) for e in expected)
    result = {"faults": len(faults), "images": len(x), "sim": sim,
              "agreement": sum(agree) / len(agree), "changed_logits": changed,
              "seconds": round(time.perf_counter() - started, 1)}
    if not all(agree):
        wrong = [f.to_json() for f, ok in zip(faults, agree) if not ok]
        raise click.ClickException(f"RTL check failed on the {width}-bit array: the model "
                                   f"differs from the RTL for {len(wrong)} of {len(faults)} "
                                   f"faults (first {wrong[0]})")
    return result


def _rates(rows, images):
    """Per-fault and per-pair counts and portions (%) of the three classes."""
    faults = {c: sum(r["outcome"] == c for r in rows) for c in _CLASSES}
    pairs = {c: sum(r[f"{c}_images"] for r in rows) for c in _CLASSES}
    n, total = len(rows), len(rows) * images
    return {"fault_counts": faults, "pair_counts": pairs,
            "fault_pct": {c: 100 * v / n for c, v in faults.items()},
            "pair_pct": {c: 100 * v / total for c, v in pairs.items()},
            "fault_ci": {c: [100 * b for b in common.wilson(v, n)]
                         for c, v in faults.items()}}


def _plot(ctx, results, rows, cols, name):
    plt = common.pyplot()
    colors = {"masked": "#4c9a5b", "tolerable": "#e0a030", "critical": "#c8443c"}
    bars = []
    for width in sorted(results, reverse=True):
        r = results[width]
        bars += [(f"{width}-bit\n(image, fault)\nours", r["pair_pct"]),
                 (f"{width}-bit\nper fault\nours", r["fault_pct"]),
                 (f"{width}-bit\npaper 003", {c: PAPER[width][c] for c in _CLASSES})]
    figure, axis = plt.subplots(figsize=(1.3 * len(bars) + 1.5, 4.2))
    positions = range(len(bars))
    bottom = [0.0] * len(bars)
    for c in _CLASSES:
        values = [b[1][c] for b in bars]
        axis.bar(positions, values, 0.7, bottom=bottom, color=colors[c], label=c)
        for p, v, low in zip(positions, values, bottom):
            if v >= 4:
                axis.text(p, low + v / 2, f"{v:.1f}", ha="center", va="center", fontsize=7)
        bottom = [low + v for low, v in zip(bottom, values)]
    axis.set_xticks(list(positions), [b[0] for b in bars], fontsize=7)
    axis.set_ylabel("%")
    axis.set_ylim(0, 100)
    axis.set_title(f"Paper 003 Table I: stuck-at faults in the PE weight inputs\n"
                   f"ours: {name}, {rows} x {cols} array; paper: LeNet-5, MNIST, 28 x 28 "
                   f"array",
                   fontsize=9)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return common.save_figure(ctx, figure, "sa_fi.png")


@click.command("sa-fi")
@click.option("--model", "model_path", type=click.Path(dir_okay=False, exists=True),
              default=None,
              help="Network file: a checkpoint, a quantized .onnx or a QNET.npz "
                   "(default: LeNet-5 trained on --dataset, cached).")
@click.option("--rows", type=click.IntRange(min=1), default=8, show_default=True,
              help="Array rows (the paper's array is 28 x 28).")
@click.option("--cols", type=click.IntRange(min=1), default=8, show_default=True,
              help="Array columns.")
@click.option("--images", type=click.IntRange(min=1), default=200, show_default=True,
              help="First test images of each faulty inference.")
@click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.99, show_default=True, help="Leveugle confidence level.")
@click.option("--margin", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.01, show_default=True, help="Leveugle error margin.")
@click.option("--faults", "cap", type=click.IntRange(min=1), default=None,
              help="Cap each array's sample at N faults for a quick run "
                   "(default: Leveugle's size).")
@click.option("--rtl-check", type=click.IntRange(min=0), default=8, show_default=True,
              help="Sampled faults per array re-run as whole inferences on the RTL "
                   "first; the run stops unless they agree with the model (0: skip).")
@click.option("--rtl-images", type=click.IntRange(min=1), default=2, show_default=True,
              help="Test images of each RTL-checked inference.")
@click.option("--sim", type=click.Choice(["verilator", "icarus"]), default="verilator",
              show_default=True, help="Simulator of the RTL check.")
@common.common_options("sa-fi")
def command(model_path, rows, cols, images, confidence, margin, cap, rtl_check, rtl_images,
            sim, output, cache, seed, as_json, dataset, data_dir):
    """Paper 003 Table I: stuck-at faults in the PE weight inputs of 8- and 16-bit arrays.

    Samples Leveugle's number of single stuck-at faults (2 x K x M weight-register bits
    of a ROWS x COLS array, K = 8 or 16) for each array, runs LeNet-5 with each fault held
    in every tile of every layer (exact numpy model of the array, checked against the RTL
    with --rtl-check) and classifies every (image, fault) pair as masked, tolerable or
    critical beside paper 003's Table I.
    """
    from neuroharden.golden.campaign import ResultsDB, file_sha256, run
    from neuroharden.golden.checkpoint import dataset_field
    from neuroharden.sim.compiler import compile_network
    from neuroharden.sim.stuck_weights import StuckWeightNetwork

    ctx = common.prepare("sa-fi", output, cache, seed, as_json, dataset, data_dir)
    try:
        network = common.networks(ctx, [] if model_path else ["lenet5"],
                                  [model_path] if model_path else [])[0]
        path = network.path
        net, _, _, data = network.load()
        name = f"{network.label}, {data.name}"
        if images > len(data.x_test):
            raise ValueError(f"--images {images} exceeds the {len(data.x_test)} test images")
        x = net.quantize_input(data.x_test[:images]).numpy()
        labels = data.y_test[:images]
        program = compile_network(net, rows=rows, cols=cols)
        if program.protect != "none":
            raise ValueError(f"{path}: a hardened network; the experiment runs the plain one")
        sha = file_sha256(path)
        identity = dataset_field(path, network.source.get("dataset"), data)
        campaigns = {w: _campaign(program, w, confidence=confidence, margin=margin, cap=cap,
                                  seed=seed, images=images, model_sha256=sha,
                                  dataset_field=identity)
                     for w in WIDTHS}
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    checks = {}
    if rtl_check:
        for width in WIDTHS:
            space, definition, _ = campaigns[width]
            faults = [space.fault(p) for p in definition.sample()[:rtl_check]]
            checks[width] = _rtl_check(ctx, program, x[:rtl_images], width, faults, sim)
    results, summary_arrays, fault_rows = {}, {}, []
    for width in WIDTHS:
        space, definition, leveugle = campaigns[width]
        started = time.perf_counter()
        evaluator = StuckAtEvaluator(StuckWeightNetwork(program, x, width=width), space,
                                     labels, net.layers[-1].out_scale)
        summary = run(definition, evaluator, db_path=ctx.db, chunk=_CHUNK,
                      progress=False if ctx.as_json else None, label=f"{width}-bit array")
        seconds = time.perf_counter() - started
        with ResultsDB(ctx.db) as db:
            rows_db = db.results(summary["campaign"])
        rates = _rates(rows_db, images)
        results[width] = rates
        n = definition.faults
        summary_arrays[str(width)] = {
            "population": definition.population, "leveugle": leveugle, "faults": n,
            "capped": n < leveugle, "injected_pct": 100 * n / definition.population,
            "fault_free_accuracy": summary["fault_free_accuracy"],
            "evaluated_now": summary["evaluated_now"], "seconds": round(seconds, 1),
            **rates, "rtl_check": checks.get(width), "paper": PAPER[width]}
        fault_rows += [[width, json.loads(r["fault"])["site"],
                        json.loads(r["fault"])["bit"], json.loads(r["fault"])["model"],
                        r["outcome"], r["masked_images"], r["tolerable_images"],
                        r["critical_images"], r["changed"], r["correct"]]
                       for r in rows_db]
    _write(ctx, program, images, confidence, margin, summary_arrays, fault_rows, name)
    _plot(ctx, results, rows, cols, name)
    lines = [f"{w}-bit array: {s['faults']} of {s['population']} faults; (image, fault) "
             f"pairs masked {s['pair_pct']['masked']:.2f} %, tolerable "
             f"{s['pair_pct']['tolerable']:.2f} %, critical {s['pair_pct']['critical']:.2f} % "
             f"(paper: {PAPER[int(w)]['masked']} / {PAPER[int(w)]['tolerable']} / "
             f"{PAPER[int(w)]['critical']} %)" for w, s in summary_arrays.items()]
    lines += [f"RTL check, {w}-bit: {c['faults']} faults x {c['images']} images on {c['sim']}, "
              f"agreement {c['agreement']:.2f}" for w, c in checks.items()]
    common.finish(ctx, {"model": path, "rows": rows, "cols": cols, "images": images,
                        "confidence": confidence, "margin": margin, "seed": seed,
                        "arrays": summary_arrays}, lines)


def _write(ctx, program, images, confidence, margin, arrays, fault_rows, name):
    header = ["width", "population", "faults", "leveugle", "injected_pct", "images",
              "fault_free_accuracy"]
    for unit in ("pair", "fault"):
        header += [f"{c}_{unit}_pct" for c in _CLASSES]
    header += [f"paper_{c}_pct" for c in _CLASSES] + ["paper_injected_pct"]
    rows, md = [], []
    for w, s in arrays.items():
        paper = PAPER[int(w)]
        rows.append([w, s["population"], s["faults"], s["leveugle"],
                     round(s["injected_pct"], 2), images,
                     round(s["fault_free_accuracy"], 4)]
                    + [round(s["pair_pct"][c], 2) for c in _CLASSES]
                    + [round(s["fault_pct"][c], 2) for c in _CLASSES]
                    + [paper[c] for c in _CLASSES] + [paper["injected"]])
        for unit, key in (("(image, fault) pairs, ours", "pair_pct"),
                          ("faults (worst image), ours", "fault_pct")):
            md.append([f"{w}-bit", unit, f"{s['faults']:,} of {s['population']:,}"]
                      + [f"{s[key][c]:.2f} %" for c in _CLASSES])
        md.append([f"{w}-bit", f"paper 003 ({paper['label']}, 28x28, MNIST)",
                   f"{paper['injected']} % of 2 x {w} x 784"]
                  + [f"{paper[c]:.2f} %" for c in _CLASSES])
    common.write_csv(ctx, "sa_fi.csv", header, rows)
    common.write_csv(ctx, "sa_fi_faults.csv",
                     ["width", "site", "bit", "model", "outcome", "masked_images",
                      "tolerable_images", "critical_images", "changed_top1", "correct"],
                     fault_rows)
    notes = [
        f"- Array {program.rows} x {program.cols} (paper: 28 x 28); fault space 2 x K x M "
        f"stuck-at bits of the PE weight registers; Leveugle's sample at "
        f"{100 * confidence:g} % confidence, {100 * margin:g} % margin, p = 0.5: "
        + ", ".join(f"{s['leveugle']:,} of {s['population']:,} ({w}-bit)"
                    + (f", capped at {s['faults']:,} by --faults" if s["capped"] else "")
                    for w, s in arrays.items())
        + f"; each fault held in every tile of every layer; {images} test images.",
        f"- Both arrays run the same int8 network ({name}); on the 16-bit array the int8 "
        "weights "
        "are sign-extended, so bits 8..15 copy the sign bit (the paper quantized a "
        "separate 16-bit network).",
        "- Per fault: critical if critical on any image, else tolerable if any logit "
        "changed, else masked.",
    ] + [f"- {w}-bit: fault-free accuracy {100 * s['fault_free_accuracy']:.2f} % on these "
         f"images; RTL check " + (f"{s['rtl_check']['faults']} faults x "
                                  f"{s['rtl_check']['images']} images, agreement "
                                  f"{s['rtl_check']['agreement']:.2f}"
                                  if s["rtl_check"] else "skipped") + "."
         for w, s in arrays.items()]
    common.write_text(ctx, "sa_fi.md", common.markdown_table(
        ["array", "unit", "faults injected", "masked", "tolerable", "critical"], md)
        + "\n" + "\n".join(notes) + "\n")

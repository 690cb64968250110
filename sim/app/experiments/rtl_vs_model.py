"""What neuron-level fault models miss: RTL PE-register faults vs model-level faults.

The same network (LeNet-5 by default) and the same first ``--images`` test images are
injected at two levels:

- RTL (:mod:`sim.rtl_campaign`, cross-layer): single bit-flips at a sampled cycle of a
  sampled tile in one class of processing-element registers of the accelerator —
  ``array.pe_*.w_reg`` (a weight on its way south: every PE below it in the column
  multiplies the corrupted weight), ``array.pe_*.a_reg`` (an activation on its way
  east: every PE to its right multiplies it), ``array.pe_*.acc`` (the accumulator at
  any cycle, i.e. also in the middle of the accumulation; bits above the int8 range
  are not truncated away until the requantizer);
- model level (:mod:`golden.campaign`): single bit-flips of one neuron's int8 output,
  one neuron's int32 accumulator, or one int8 weight (which the model applies to every
  output that uses it, in every image).

Outcomes use both papers' classes (:func:`golden.outcomes.classify`): paper 003's
masked / tolerable / critical and paper 004's critical fault (one image's class
changes). Each rate comes with its 95 % Wilson interval, so classes whose intervals do
not overlap differ beyond sampling noise. The two levels do not hit the same number of
inferences: a model-level fault corrupts its neuron or weight in every test image,
an RTL transient corrupts one tile run (at most ``rows`` rows: pixels of one image in
a convolution, images in a fully connected layer), so the table also gives the mean
number of top-1 changes per fault. RTL campaigns are sized by ``--faults`` (RTL
costs milliseconds to seconds per fault); model-level campaigns are Leveugle-sized
(95 %, 1 %) unless ``--model-faults`` is given. All campaigns live in
``results.sqlite`` and resume.
"""

import click

from neuroharden.golden.experiments import common

__all__ = ["RTL_CLASSES", "MODEL_CLASSES", "command"]

#: RTL fault classes: name -> (site glob, description).
RTL_CLASSES = {
    "w_reg": ("array.pe_*.w_reg", "RTL: PE weight register (flows south)"),
    "a_reg": ("array.pe_*.a_reg", "RTL: PE activation register (flows east)"),
    "acc": ("array.pe_*.acc", "RTL: PE accumulator, any cycle"),
}
#: Model-level fault classes: name -> (campaign target, description).
MODEL_CLASSES = {
    "output": ("output", "model: neuron output (int8)"),
    "accumulator": ("accumulator", "model: neuron accumulator (int32)"),
    "weight": ("weight", "model: weight (int8)"),
}
_MODELS = ("lenet5", "mlp7", "alexnet")


def _rate(summary, key):
    n = summary["completed"]
    k = summary[key]
    low, high = common.wilson(k, n)
    return k / n if n else 0.0, low, high


def _changes(summary):
    """Test images whose top-1 class a fault changes, on average over the faults."""
    return summary["changed_images"] / summary["completed"] if summary["completed"] else 0.0


def _plot(ctx, rows):
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(8, 4))
    labels = [row["label"] for row in rows]
    positions = range(len(rows))
    for offset, key, name in ((-0.2, "critical_003", "critical (paper 003)"),
                              (0.2, "critical", "critical fault (paper 004)")):
        values = [100 * row[key][0] for row in rows]
        # Clamped: the Wilson bounds of a zero count can sit a rounding error off 0.
        errors = [[max(0.0, 100 * (row[key][0] - row[key][1])) for row in rows],
                  [max(0.0, 100 * (row[key][2] - row[key][0])) for row in rows]]
        axis.bar([p + offset for p in positions], values, width=0.4, yerr=errors,
                 capsize=3, label=name)
    for p, row in zip(positions, rows):
        if row["level"] == "rtl":
            axis.axvspan(p - 0.5, p + 0.5, color="0.92", zorder=0)
    axis.set_xticks(list(positions))
    axis.set_xticklabels(labels, rotation=25, ha="right", fontsize=8)
    axis.set_ylabel("faults (%)")
    axis.set_title("Critical faults: RTL PE registers (shaded) vs model-level fault models")
    axis.grid(True, axis="y", alpha=0.3)
    axis.legend(fontsize=8)
    return common.save_figure(ctx, figure, "rtl_vs_model.png")


@click.command("rtl-vs-model")
@click.option("--model", "model_name", default="lenet5", show_default=True,
              metavar="NAME|FILE",
              help=f"A built-in network ({', '.join(_MODELS)}; trained on --dataset, "
                   f"cached) or a network file (checkpoint, quantized .onnx, QNET.npz).")
@click.option("--images", type=click.IntRange(min=1), default=64, show_default=True,
              help="First test images every fault is evaluated on (both levels).")
@click.option("--faults", type=click.IntRange(min=1), default=500, show_default=True,
              help="RTL faults per PE-register class.")
@click.option("--model-faults", type=click.IntRange(min=1), default=None,
              help="Faults per model-level class (default: Leveugle 95 %/1 %).")
@click.option("--classes", default="w_reg,a_reg,acc,output,accumulator,weight",
              show_default=True, help="Comma-separated fault classes to run (RTL: "
              "w_reg, a_reg, acc; model level: output, accumulator, weight).")
@click.option("--rows", type=click.IntRange(min=1), default=8, show_default=True,
              help="Accelerator rows.")
@click.option("--cols", type=click.IntRange(min=1), default=8, show_default=True,
              help="Accelerator columns.")
@click.option("--sim", type=click.Choice(["verilator", "icarus"]), default="verilator",
              show_default=True, help="Simulator of the RTL campaigns.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Dask workers of the RTL campaigns.")
@common.common_options("rtl-vs-model")
def command(model_name, images, faults, model_faults, classes, rows, cols, sim, workers,
            output, cache, seed, as_json, dataset, data_dir):
    """RTL PE-register bit-flips vs model-level neuron / accumulator / weight bit-flips."""
    from neuroharden.golden.campaign import run_campaign
    from neuroharden.sim.rtl_campaign import run_rtl_campaign

    chosen = common.parse_names(classes, "--classes", [*RTL_CLASSES, *MODEL_CLASSES])
    ctx = common.prepare("rtl-vs-model", output, cache, seed, as_json, dataset, data_dir)
    results = []
    try:
        builtin = model_name in _MODELS
        network = common.networks(ctx, [model_name] if builtin else [],
                                  [] if builtin else [model_name])[0]
        path, source = network.path, network.source
        for name in chosen:
            if name in RTL_CLASSES:
                glob, label = RTL_CLASSES[name]
                ctx.say(f"{label}: {faults} faults on {images} images ({sim})")
                summary = run_rtl_campaign(
                    path, images=images, fault_model="bitflip", sites=glob, faults=faults,
                    seed=seed, db_path=ctx.db, rows=rows, cols=cols, sim=sim,
                    workers=workers, progress=None if not as_json else False, **source)
                level = "rtl"
            else:
                target, label = MODEL_CLASSES[name]
                ctx.say(f"{label}: {model_faults or 'Leveugle-sized'} faults on "
                        f"{images} images")
                summary = run_campaign(path, fault_model="bitflip", target=target,
                                       faults=model_faults, seed=seed, db_path=ctx.db,
                                       images=images,
                                       progress=None if not as_json else False, **source)
                level = "model"
            results.append({"name": name, "label": label, "level": level,
                            "summary": summary,
                            "masked": _rate(summary, "masked"),
                            "critical_003": _rate(summary, "critical_003"),
                            "critical": _rate(summary, "critical")})
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None

    def pct(rate):
        value, low, high = rate
        return f"{100 * value:.2f} % [{100 * low:.2f}, {100 * high:.2f}]"

    header = ["class", "level", "population", "faults", "masked", "critical (003)",
              "critical fault (004)", "top-1 changes per fault", "faults/s"]
    md_rows, csv_rows = [], []
    for row in results:
        s = row["summary"]
        fps = s.get("faults_per_second")
        md_rows.append([row["label"], row["level"], f"{s['population']:,}",
                        f"{s['completed']:,}", pct(row["masked"]), pct(row["critical_003"]),
                        pct(row["critical"]), f"{_changes(s):.4f}",
                        "" if fps is None else f"{fps:.1f}"])
        csv_rows.append([row["name"], row["level"], s["population"], s["completed"],
                         s["masked"], s["tolerable"], s["critical_003"], s["critical"],
                         round(100 * row["critical"][0], 4),
                         round(100 * row["critical"][1], 4),
                         round(100 * row["critical"][2], 4), s["changed_images"], s["images"]])
    common.write_csv(ctx, "rtl_vs_model.csv",
                     ["class", "level", "population", "faults", "masked", "tolerable",
                      "critical_003", "critical_004", "critical_004_pct", "ci_low_pct",
                      "ci_high_pct", "changed_images", "images"], csv_rows)
    common.write_text(ctx, "rtl_vs_model.md", common.markdown_table(header, md_rows) + (
        f"\n{network.label} ({network.dataset}), first {images} test images, "
        f"{rows}x{cols} accelerator on {sim}; rates with 95 % Wilson intervals.\n"))
    _plot(ctx, results)
    summary = {"model": model_name, "dataset": network.dataset, "images": images,
               "rows": rows, "cols": cols,
               "sim": sim,
               "classes": {row["name"]: {
                   "level": row["level"], "population": row["summary"]["population"],
                   "faults": row["summary"]["completed"],
                   "masked": row["summary"]["masked"],
                   "tolerable": row["summary"]["tolerable"],
                   "critical_003": row["summary"]["critical_003"],
                   "critical": row["summary"]["critical"],
                   "critical_rate": row["critical"][0],
                   "critical_rate_ci": list(row["critical"][1:]),
                   "changed_images": row["summary"]["changed_images"],
                   "faults_per_second": row["summary"].get("faults_per_second")}
                   for row in results}}
    lines = [f"{row['label']}: critical (003) {pct(row['critical_003'])}, critical fault "
             f"(004) {pct(row['critical'])} of {row['summary']['completed']} faults"
             for row in results]
    common.finish(ctx, summary, lines)

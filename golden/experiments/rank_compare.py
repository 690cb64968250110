"""Which ranking buys the most LCU protection per protected neuron?

For each network and each ranking method (``nvf``, ``exact``, ``activation``, ``lrp``,
``random``; :mod:`golden.ranking`, over the same first ``--images`` training images), the
top ``f`` % of the ranking is protected by the LCU (neuron splitting,
:func:`golden.harden.harden`; a conv neuron protects its whole channel) for each ``f`` of
``--fractions``, and the hardened network gets a single-bit-flip campaign on neuron
outputs, Leveugle-sized (95 %, 1 %) over its own fault population by default; ``--faults
N`` (alias ``--max-faults``) caps each campaign for a quick run. The unprotected network
is the common starting point.

Reported per point: the neurons really protected, the critical-fault portion with its
95 % Wilson interval, and the *protection per protected neuron*: the drop of the
critical-fault portion from the unprotected network, in points per 1,000 protected
neurons. The ``exact`` ranking (every neuron's measured single-bit-flip vulnerability)
is the oracle; each method's gap to it is the difference of their critical-fault
portions at the same fraction.

Paper 004's criterion (a fault is critical when it changes the class of at least one
test image) lets a single borderline image decide a point: a protection that moves one
image's top-2 logits by an LSB makes nearly every fault upstream of it critical. So
each point also reports the accuracy loss (fault-free accuracy minus the mean faulty
accuracy, which weighs images) and its reduction factor against the unprotected
network, the criterion to read when the two disagree. Splitting can change a fault-free
prediction (the halves round differently); the fault-free accuracy of each hardened
network is reported, and a negative accuracy loss means faults restore more images
than they break.
"""

import click

from . import common

__all__ = ["METHODS", "command"]

#: Rankings compared, the oracle first.
METHODS = ("exact", "nvf", "activation", "lrp", "random")
_MODELS = ("mlp7", "lenet5", "alexnet")


@click.command("rank-compare")
@common.model_options(_MODELS, "lenet5,mlp7")
@click.option("--methods", default=",".join(METHODS), show_default=True,
              help="Comma-separated rankings (exact, nvf, activation, lrp, random).")
@click.option("--images", default="200", show_default=True,
              help="Training images of every ranking: N, and/or MODEL=N.")
@click.option("--fractions", default="1,5,20", show_default=True,
              help="Top percentages of each ranking protected by the LCU.")
@common.faults_option
@click.option("--test-images", type=click.IntRange(min=1), default=None,
              help="Campaigns on the first N test images only (default: all).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs of the built-in networks (default: each one's own).")
@common.common_options("rank-compare")
def command(models, model_files, methods, images, fractions, max_faults, test_images, epochs,
            output, cache, seed, as_json, dataset, data_dir):
    """Critical faults vs LCU-protected neurons for the rankings nvf, exact, activation,
    lrp and random."""
    from .table1 import parse_images

    methods = common.parse_names(methods, "--methods", METHODS)
    grid = sorted(set(common.parse_floats(fractions, "--fractions", low=0, high=100)))
    per_model = parse_images(images, common.network_keys(models, model_files))
    ctx = common.prepare("rank-compare", output, cache, seed, as_json, dataset, data_dir)
    from tqdm import tqdm

    from ..harden import cost, harden, select_top, to_channels

    rows = []
    try:
        networks = common.networks(ctx, models, model_files, epochs=epochs)
        labels = {n.key: n.label for n in networks}
        for network in networks:
            model, path, source = network.key, network.path, network.source
            rankings = {m: common.ranking_list(
                common.ranking_path(ctx, path, m, images=per_model[model], source=source),
                path) for m in methods}
            net = network.load()[0]
            per = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
            ctx.say(f"{network.label}: unprotected campaign")
            base = common.campaign(ctx, path, cap=max_faults, images=test_images,
                                   source=source)
            rows.append(_row(model, "none", 0, 0, cost(net)["hidden_neurons"], base, base))
            bar = tqdm(total=len(methods) * len(grid), desc=f"rank-compare {model}",
                       unit="point", disable=True if as_json else None)
            for method in methods:
                for fraction in grid:
                    selection = select_top(rankings[method], fraction=fraction)
                    protect = to_channels(net, selection)
                    if not protect:
                        result, size = base, cost(net)["hidden_neurons"]
                    else:
                        hardened = harden(net, "lcu", protect)
                        hpath = common.hardened_path(
                            ctx, hardened, path,
                            f"{model}-{method}{per_model[model]}-f{fraction:g}-lcu.pt",
                            {"scheme": "lcu", "method": method, "fraction": fraction},
                            source)
                        result = common.campaign(ctx, hpath, cap=max_faults,
                                                 images=test_images, source=source)
                        size = cost(hardened)["hidden_neurons"]
                    rows.append(_row(model, method, fraction,
                                     sum(per[n] for n, _ in protect), size, result, base))
                    bar.update()
            bar.close()
    except ValueError as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    _gaps(rows)
    common.write_csv(ctx, "rank_compare.csv", list(rows[0]),
                     [[round(v, 4) if isinstance(v, float) else v for v in r.values()]
                      for r in rows])
    _plot(ctx, rows, labels, methods)
    summary, lines = _summarize(rows, labels, methods)
    md = common.markdown_table(
        ["network", "ranking", "top %", "protected neurons", "faults",
         "critical faults (95 % CI)", "drop (points)", "points per 1,000 protected",
         "gap to exact (points)", "fault-free accuracy", "accuracy loss (points)",
         "accuracy-loss factor"],
        [[labels[r["model"]], r["method"], f"{r['fraction_pct']:g}",
          f"{r['protected_neurons']:,}", f"{r['faults']:,}",
          f"{r['critical_pct']:.2f} % ({r['critical_low_pct']:.2f}-{r['critical_high_pct']:.2f})",
          f"{r['drop_pts']:+.2f}",
          "" if r["per_1000"] is None else f"{r['per_1000']:+.2f}",
          "" if r["gap_to_exact_pts"] is None else f"{r['gap_to_exact_pts']:+.2f}",
          f"{r['fault_free_accuracy_pct']:.2f} %", f"{r['accuracy_loss_pts']:.4f}",
          "n/a" if r["loss_factor"] is None else f"{r['loss_factor']:.2f}x"]
         for r in rows])
    common.write_text(ctx, "rank_compare.md", md + "\n" + "\n".join(f"- {s}" for s in lines)
                      + "\n")
    common.finish(ctx, {"models": summary, "max_faults": max_faults}, lines)


def _row(model, method, fraction, protected, size, result, base):
    low, high = common.wilson(result["critical"], result["completed"])
    drop = 100 * (base["critical_rate"] - result["critical_rate"])
    return {"model": model, "method": method, "fraction_pct": fraction,
            "protected_neurons": protected, "hidden_neurons": size,
            "faults": result["completed"], "leveugle_faults": result["leveugle"],
            "critical": result["critical"], "critical_pct": 100 * result["critical_rate"],
            "critical_low_pct": 100 * low, "critical_high_pct": 100 * high,
            "fault_free_accuracy_pct": 100 * result["fault_free_accuracy"],
            "accuracy_loss_pts": 100 * result["accuracy_loss"],
            "loss_factor": common.reduction_factor(base["accuracy_loss"],
                                                   result["accuracy_loss"]),
            "drop_pts": drop, "per_1000": 1000 * drop / protected if protected else None,
            "gap_to_exact_pts": None}


def _gaps(rows):
    exact = {(r["model"], r["fraction_pct"]): r["critical_pct"] for r in rows
             if r["method"] == "exact"}
    for r in rows:
        key = (r["model"], r["fraction_pct"])
        if r["method"] not in ("none", "exact") and key in exact:
            r["gap_to_exact_pts"] = r["critical_pct"] - exact[key]


def _plot(ctx, rows, labels, methods):
    plt = common.pyplot()
    figure, axes = plt.subplots(2, len(labels), figsize=(5 * len(labels), 7.2),
                                squeeze=False)
    for c, model in enumerate(labels):
        base = next(r for r in rows if r["model"] == model and r["method"] == "none")
        for axis, key, label in ((axes[0][c], "critical_pct", "critical faults (%)"),
                                 (axes[1][c], "accuracy_loss_pts", "accuracy loss (points)")):
            for n, method in enumerate(methods):
                mine = sorted((r for r in rows
                               if r["model"] == model and r["method"] == method),
                              key=lambda r: r["protected_neurons"])
                xs = [0] + [r["protected_neurons"] for r in mine]
                ys = [base[key]] + [r[key] for r in mine]
                axis.plot(xs, ys, marker="o", color="k" if method == "exact" else f"C{n}",
                          linestyle="--" if method == "exact" else "-", label=method)
            axis.set_ylabel(label)
            axis.grid(True, alpha=0.3)
        axes[0][c].set_title(labels[model])
        axes[0][c].legend(fontsize=7)
        axes[1][c].set_xlabel("neurons protected by the LCU")
    common.save_figure(ctx, figure, "rank_compare.png")


def _summarize(rows, labels, methods):
    summary, lines = {}, []
    for model in labels:
        mine = [r for r in rows if r["model"] == model and r["method"] != "none"]
        base = next(r for r in rows if r["model"] == model and r["method"] == "none")
        per_method = {}
        for method in methods:
            pts = [r for r in mine if r["method"] == method]
            protected = sum(r["protected_neurons"] for r in pts)
            # Mean drop per 1,000 protected neurons over the fractions (total drop over
            # total neurons, so large fractions weigh by what they cost).
            per_1000 = (1000 * sum(r["drop_pts"] for r in pts) / protected
                        if protected else None)
            gaps = [r["gap_to_exact_pts"] for r in pts if r["gap_to_exact_pts"] is not None]
            per_method[method] = {
                "points": [{k: r[k] for k in ("fraction_pct", "protected_neurons",
                                              "critical_pct", "drop_pts",
                                              "accuracy_loss_pts", "loss_factor")}
                           for r in pts],
                "per_1000": per_1000,
                "mean_gap_to_exact_pts": sum(gaps) / len(gaps) if gaps else None}
        best = max((m for m in per_method if per_method[m]["per_1000"] is not None),
                   key=lambda m: per_method[m]["per_1000"], default=None)
        summary[model] = {"unprotected_critical_pct": base["critical_pct"],
                          "methods": per_method, "best_per_neuron": best}
        lines.append(
            f"{labels[model]}: unprotected {base['critical_pct']:.2f} % critical "
            f"faults; drop per 1,000 protected neurons: " + ", ".join(
                f"{m} {v['per_1000']:+.2f}" for m, v in per_method.items()
                if v["per_1000"] is not None)
            + (f"; best: {best}" if best else "") + "; mean gap to exact: " + ", ".join(
                f"{m} {v['mean_gap_to_exact_pts']:+.2f}" for m, v in per_method.items()
                if v["mean_gap_to_exact_pts"] is not None) + " points; accuracy-loss "
            "factors by fraction: " + ", ".join(
                f"{m} " + "/".join("n/a" if p["loss_factor"] is None else
                                   f"{p['loss_factor']:.2f}x" for p in v["points"])
                for m, v in per_method.items()))
    return summary, lines

"""Paper 004, Fig. 4: accuracy loss, critical faults and network size vs NVF threshold.

For each network and NVF threshold ``T`` the neurons with NVF >= T (NVF of
:mod:`golden.nvf` over the first ``--images`` training images, shared with ``table1``)
are protected by the LCU (neuron splitting) and by selective TMR
(:func:`golden.harden.harden`; a conv neuron protects its whole output channel, so the
neurons really protected can exceed the neurons selected). Each network, unprotected
and hardened, then gets a single-bit-flip campaign on neuron outputs sized by Leveugle
et al. at 95 % confidence and 1 % margin over *its own* fault population (copies
included: a protected neuron is more hardware, hence more fault sites), on the whole
test split (7,645 faults for the unprotected LeNet-5, whose population is 4,684 neurons
x 8 bits). This is the default; ``--faults N`` (alias ``--max-faults``) caps every
campaign at ``N`` faults for a quick run (the margin then widens; the 95 % Wilson
interval of each critical-fault portion is reported, and the Markdown table says
``N of`` Leveugle's size). Campaigns resume from ``results.sqlite``, so an interrupted
full run continues where it stopped. Reported per point, as in the paper: the accuracy
loss (fault-free accuracy minus the mean faulty accuracy, in points), the portion of
critical faults (the top-1 class changes on at least one test image) and the network
size (hidden neurons, copies included).

Interpretation of the 20 % threshold: the paper states its reduction factors at
NVF >= 20 %, which protects 17.86 % (MLP-7), 3.99 % (LeNet-5) and 0.6 % (AlexNet) of
its neurons. On digits the largest NVF is a few percent, so 20 % selects no neuron and
the factors there are 1. The experiment therefore also evaluates the *matched* point:
the top-ranked neurons in the same portion as the paper protects at 20 %
(:data:`golden.experiments.table1.PAPER_AT_20`), selected by rank (ties at the boundary
broken by the ranking's order), and states the factors at both.
In the plot the matched points are the hollow markers at their NVF threshold.
"""

import click

from . import common
from .table1 import PAPER_AT_20, matched_threshold, parse_images

__all__ = ["PAPER_AT_20_RESULTS", "run", "command"]

#: Paper 004 at NVF >= 20 %: LCU accuracy loss (points) and the reduction factors of the
#: accuracy loss and of the critical faults against the unprotected network.
PAPER_AT_20_RESULTS = {
    "mlp7": {"lcu_accuracy_loss": 4.86, "accuracy_factor": 2.14, "critical_factor": 1.85,
             "neurons_tmr": 3822, "neurons_lcu": 3319},
    "lenet5": {"lcu_accuracy_loss": 3.88, "accuracy_factor": 3.38, "critical_factor": 2.78,
               "neurons_tmr": 5058, "neurons_lcu": 4871},
    "alexnet": {"lcu_accuracy_loss": 1.56, "accuracy_factor": 3.36, "critical_factor": 1.97,
                "neurons_tmr": 104412, "neurons_lcu": 103790},
}
_MODELS = ("mlp7", "lenet5", "alexnet")
_SCHEMES = ("lcu", "tmr")


def _point(ctx, network, net, stem, label, selection, scheme, cap, test_images,
           unprotected):
    """Harden with ``scheme`` and run its campaign; the unprotected result when nothing is
    selected."""
    from ..harden import cost, harden, to_channels

    if not selection:
        return {**unprotected, "protected_neurons": 0}
    protect = to_channels(net, selection)
    per = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
    hardened = harden(net, scheme, protect)
    path = common.hardened_path(ctx, hardened, network.path, f"{stem}-{label}-{scheme}.pt",
                                {"scheme": scheme, "point": label,
                                 "selected_neurons": len(selection)}, network.source)
    summary = common.campaign(ctx, path, cap=cap, images=test_images, source=network.source)
    return {**summary, "protected_neurons": sum(per[name] for name, _ in protect),
            "hidden_neurons": cost(hardened)["hidden_neurons"]}


def _row(model, label, threshold, scheme, selected, result):
    low, high = common.wilson(result["critical"], result["completed"])
    return {"model": model, "point": label, "threshold_pct": threshold, "scheme": scheme,
            "selected_neurons": selected, "protected_neurons": result["protected_neurons"],
            "hidden_neurons": result["hidden_neurons"], "faults": result["completed"],
            "leveugle_faults": result["leveugle"], "critical": result["critical"],
            "critical_pct": 100 * result["critical_rate"], "critical_low_pct": 100 * low,
            "critical_high_pct": 100 * high,
            "accuracy_loss_pts": 100 * result["accuracy_loss"],
            "fault_free_accuracy_pct": 100 * result["fault_free_accuracy"]}


def _plot(ctx, rows, networks):
    plt = common.pyplot()
    figure, axes = plt.subplots(3, len(networks), figsize=(4.2 * len(networks), 9),
                                squeeze=False)
    keys = (("accuracy_loss_pts", "accuracy loss (points)"),
            ("critical_pct", "critical faults (%)"), ("hidden_neurons", "network size (neurons)"))
    styles = {"none": ("unprotected", "k", "o"), "lcu": ("LCU (splitting)", "C0", "s"),
              "tmr": ("TMR", "C3", "^")}
    for c, network in enumerate(networks):
        model = network.key
        points = [r for r in rows if r["model"] == model and r["point"] != "matched"]
        for r_, (key, title) in enumerate(keys):
            axis = axes[r_][c]
            for scheme, (name, color, marker) in styles.items():
                mine = sorted((r for r in points if r["scheme"] == scheme),
                              key=lambda r: r["threshold_pct"])
                if not mine:
                    continue
                xs = [r["threshold_pct"] for r in mine]
                axis.plot(xs, [r[key] for r in mine], color=color, marker=marker, label=name)
                matched = [r for r in rows if r["model"] == model and r["point"] == "matched"
                           and r["scheme"] == scheme]
                axis.scatter([r["threshold_pct"] for r in matched], [r[key] for r in matched],
                             marker=marker, facecolors="none", edgecolors=color, s=70,
                             label=f"{name}, matched portion" if scheme == "none" or
                             r_ == 0 else None)
                if key == "critical_pct":
                    axis.fill_between(xs, [r["critical_low_pct"] for r in mine],
                                      [r["critical_high_pct"] for r in mine], color=color,
                                      alpha=0.12)
            axis.set_xscale("symlog", linthresh=1)
            axis.grid(True, alpha=0.3)
            if r_ == 0:
                axis.set_title(f"{network.label} ({network.dataset})")
            if r_ == 2:
                axis.set_xlabel("NVF threshold (%)")
            if c == 0:
                axis.set_ylabel(title)
    axes[0][0].legend(fontsize=7)
    figure.suptitle("Paper 004 Fig. 4 (single bit flips in neuron outputs)")
    return common.save_figure(ctx, figure, "fig4.png")


def run(ctx, networks, *, images, thresholds, max_faults=None, test_images=None):
    """Paper 004's Fig. 4 into ``ctx``'s output directory: fig4.csv, fig4.md, fig4.png.

    Parameters
    ----------
    ctx : golden.experiments.common.Context
        Output directory, cache (checkpoints and rankings), seed, and whether to print
        progress.
    networks : sequence of golden.experiments.common.Network
        The networks (:func:`golden.experiments.common.networks`). The matched point and
        the paper's figures exist for the built-in architectures only.
    images : dict
        Network key -> training images analysed by NVF.
    thresholds : sequence of float
        NVF thresholds (%) in [0, 100]; the matched point is added for a built-in
        network. A threshold selecting no neuron reuses the unprotected campaign.
    max_faults : int, optional
        Cap of every campaign (default: Leveugle's size, see the module docstring).
    test_images : int, optional
        Campaigns on the first ``test_images`` test images only (default: all).

    Returns
    -------
    (dict, list of str)
        The summary (``models``: per network the reduction factors at NVF >= 20 % and,
        for a built-in one, at the matched point; ``max_faults``) and the statements
        printed with it.

    Raises
    ------
    ValueError
        A threshold outside [0, 100], a network without an image count, or a failing
        campaign.
    """
    from tqdm import tqdm

    from ..harden import cost, select_top

    for network in networks:
        if not isinstance(images.get(network.key), int) or images[network.key] < 1:
            raise ValueError(f"images of {network.key} must be a positive integer, not "
                             f"{images.get(network.key)!r}")
    grid = sorted(set(float(t) for t in thresholds))
    if not grid or not 0 <= grid[0] <= grid[-1] <= 100:
        raise ValueError(f"thresholds must be at least one number in [0, 100], not "
                         f"{list(thresholds)!r}")
    rows, statements, summary = [], [], {}
    for network in networks:
        model, path = network.key, network.path
        ranking = common.ranking_list(
            common.ranking_path(ctx, path, "nvf", images=images[model],
                                source=network.source), path)
        net = network.load()[0]
        stem = f"{model}-nvf{images[model]}"
        ctx.say(f"{network.label}: unprotected campaign")
        base = common.campaign(ctx, path, cap=max_faults, images=test_images,
                               source=network.source)
        base.update({"protected_neurons": 0, "hidden_neurons": cost(net)["hidden_neurons"]})
        rows_model = []
        points = [(f"{t:g}", t, select_top(ranking, threshold=t)) for t in grid]
        if network.builtin:
            fraction = PAPER_AT_20[model]
            points.append(("matched", matched_threshold([s for _, _, s in ranking], fraction),
                           select_top(ranking, fraction=fraction)))
        bar = tqdm(total=len(points) * len(_SCHEMES), desc=f"fig4 {model}", unit="point",
                   disable=None if not ctx.as_json else True)
        for label, t, selection in points:
            rows_model.append(_row(model, label, t, "none", len(selection), base))
            for scheme in _SCHEMES:
                result = _point(ctx, network, net, stem,
                                "matched" if label == "matched" else f"t{label}",
                                selection, scheme, max_faults, test_images, base)
                rows_model.append(_row(model, label, t, scheme, len(selection), result))
                bar.update()
        bar.close()
        rows += rows_model
        summary[model] = {"dataset": network.dataset,
                          **_statements(network, rows_model, statements)}
    header = list(rows[0])
    common.write_csv(ctx, "fig4.csv", header,
                     [[round(v, 4) if isinstance(v, float) else v for v in r.values()]
                      for r in rows])
    labels = {n.key: n.label for n in networks}
    md = common.markdown_table(
        ["network", "NVF >=", "scheme", "protected neurons", "network size", "faults",
         "critical faults (95 % CI)", "accuracy loss (points)"],
        [[labels[r["model"]],
          "matched" + f" ({r['threshold_pct']:.3g} %)" if r["point"] == "matched"
          else f"{r['threshold_pct']:g} %", r["scheme"], f"{r['protected_neurons']:,}",
          f"{r['hidden_neurons']:,}",
          f"{r['faults']:,}" + ("" if r["faults"] >= r["leveugle_faults"] else
                                f" of {r['leveugle_faults']:,}"),
          f"{r['critical_pct']:.2f} % ({r['critical_low_pct']:.2f}-{r['critical_high_pct']:.2f})",
          f"{r['accuracy_loss_pts']:.3f}"] for r in rows])
    common.write_text(ctx, "fig4.md", md + "\n" + "\n".join(f"- {s}" for s in statements)
                      + "\n")
    _plot(ctx, rows, networks)
    return {"models": summary, "max_faults": max_faults}, statements


@click.command("fig4")
@common.model_options(_MODELS, "lenet5,mlp7")
@click.option("--images", default="200", show_default=True,
              help="Training images analysed by NVF: N, and/or MODEL=N per network.")
@click.option("--thresholds", default="0,0.5,1,2,3,5,10,20,30,40,50", show_default=True,
              help="NVF thresholds (%): the paper's 0-50 % and finer steps where digits "
                   "NVFs lie; the matched point is always added. A threshold selecting no "
                   "neuron reuses the unprotected campaign.")
@common.faults_option
@click.option("--test-images", type=click.IntRange(min=1), default=None,
              help="Campaigns on the first N test images only (default: all).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs of the built-in networks (default: each one's own).")
@common.common_options("fig4")
def command(models, model_files, images, thresholds, max_faults, test_images, epochs, output,
            cache, seed, as_json, dataset, data_dir):
    """Paper 004 Figure 4: accuracy loss, critical faults, size vs NVF threshold."""
    grid = common.parse_floats(thresholds, "--thresholds", low=0, high=100)
    per_model = parse_images(images, common.network_keys(models, model_files))
    ctx = common.prepare("fig4", output, cache, seed, as_json, dataset, data_dir)
    try:
        networks = common.networks(ctx, models, model_files, epochs=epochs)
        summary, statements = run(ctx, networks, images=per_model, thresholds=grid,
                                  max_faults=max_faults, test_images=test_images)
    except ValueError as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    common.finish(ctx, summary, statements)

def _statements(network, rows, statements):
    """Reduction factors of the LCU and TMR against unprotected at 20 % and matched."""
    model, label = network.key, f"{network.label} ({network.dataset})"
    paper = PAPER_AT_20_RESULTS.get(model) if network.builtin else None
    out = {}
    for point in ("20", "matched"):
        here = {r["scheme"]: r for r in rows if r["point"] == point}
        if not here:
            continue
        base = here["none"]
        entry = {"threshold_pct": base["threshold_pct"],
                 "selected_neurons": base["selected_neurons"]}
        for scheme in _SCHEMES:
            r = here[scheme]
            entry[scheme] = {
                "accuracy_loss_pts": r["accuracy_loss_pts"], "critical_pct": r["critical_pct"],
                "hidden_neurons": r["hidden_neurons"],
                "accuracy_factor": common.reduction_factor(base["accuracy_loss_pts"], r["accuracy_loss_pts"]),
                "critical_factor": common.reduction_factor(base["critical_pct"], r["critical_pct"])}
        out[point] = entry
        where = ("NVF >= 20 %" if point == "20" else
                 f"the matched point (top {PAPER_AT_20[model]} % of the NVF ranking, "
                 f"NVF >= {base['threshold_pct']:.3g} %)")

        def fmt(f):
            return "n/a" if f is None else f"{f:.2f}x"
        parts = [f"{name} accuracy loss {e['accuracy_loss_pts']:.3f} points (factor "
                 f"{fmt(e['accuracy_factor'])}), critical faults {e['critical_pct']:.2f} % "
                 f"(factor {fmt(e['critical_factor'])}), {e['hidden_neurons']:,} neurons"
                 for name, e in (("LCU", entry["lcu"]), ("TMR", entry["tmr"]))]
        statements.append(
            f"{label} at {where}: {base['selected_neurons']:,} neurons selected; unprotected "
            f"accuracy loss {base['accuracy_loss_pts']:.3f} points, critical faults "
            f"{base['critical_pct']:.2f} %; " + "; ".join(parts) + "." + (
                "" if paper is None else
                f" Paper 004 at 20 %: LCU loss {paper['lcu_accuracy_loss']} points, factors "
                f"{paper['accuracy_factor']}x (accuracy loss) and {paper['critical_factor']}x "
                f"(critical faults), {paper['neurons_lcu']:,} (LCU) vs "
                f"{paper['neurons_tmr']:,} (TMR) neurons."))
    return out

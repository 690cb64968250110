"""Paper 004, Table I: how many neurons have an NVF at or above each threshold.

For each network (MLP-7, LeNet-5 and the AlexNet-style net on digits at 32x32) the NVF
of every hidden neuron (:mod:`golden.nvf`, over the first ``--images`` training images)
is computed once (cached) and counted against two grids of thresholds: the paper's (0,
5, ..., 50 %) and a finer one covering the range that the digits networks really reach
(their largest NVF is a few percent, far below the paper's MNIST / CIFAR-10 values). The Markdown table puts the paper's counts next to
ours. It also gives, per network, the *matched threshold*: the NVF above which the
same portion of neurons is selected as the paper selects at 20 % (:data:`PAPER_AT_20`),
used by the ``fig4`` experiment.

Image counts: 200 training images for MLP-7 and LeNet-5 but only
:data:`ALEXNET_IMAGES` for AlexNet (``--images 200,alexnet=5``). NVF cost grows with the
neurons and with the layers each deviation runs through: AlexNet's 33,024 neurons took
5.7 min of wall time for 5 images on 2 shared cores (load 7-13; 2 min of training
before that), so 200 images would take hours. ``--images 200,alexnet=N`` analyses more.
"""

import click

from . import common

__all__ = ["PAPER_GRID", "PAPER_TABLE1", "PAPER_AT_20", "ALEXNET_IMAGES", "count_at",
           "matched_threshold", "parse_images", "command"]

#: The paper's NVF thresholds (%).
PAPER_GRID = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
#: Paper 004 Table I: neurons with NVF >= each threshold of :data:`PAPER_GRID`.
PAPER_TABLE1 = {
    "mlp7": [2816, 2513, 1382, 903, 503, 272, 184, 85, 26, 7, 0],
    "lenet5": [4684, 4380, 1659, 222, 187, 70, 3, 0, 0, 0, 0],
    "alexnet": [103168, 46322, 15818, 5171, 622, 398, 232, 147, 56, 6, 0],
}
#: Portion of neurons (%) the paper protects at its NVF threshold of 20 %.
PAPER_AT_20 = {"mlp7": 17.86, "lenet5": 3.99, "alexnet": 0.6}
#: Default NVF training images of AlexNet (its NVF costs about 35x LeNet-5's per image).
ALEXNET_IMAGES = 5
_MODELS = ("mlp7", "lenet5", "alexnet")


def count_at(scores, threshold):
    """Neurons whose score is at least ``threshold``."""
    return sum(1 for s in scores if s >= threshold)


def matched_threshold(scores, portion):
    """The score threshold selecting the top ``portion`` % of ``scores`` (best first).

    Returns the score of the last selected neuron (ties may select a few more).
    """
    k = max(1, round(portion * len(scores) / 100))
    return sorted(scores, reverse=True)[k - 1]


def parse_images(text, models):
    """``--images``: ``N`` for every network and/or ``KEY=N`` overrides.

    ``models``: the keys of the networks run (built-in names, file stems); an override
    of another network is ignored, so that a default such as ``200,alexnet=5`` holds for
    any choice of networks.
    """
    out, default = {}, None
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, value = item.rpartition("=")
        try:
            number = int(value)
        except ValueError:
            raise click.ClickException(f"--images: {item!r} is not N or MODEL=N") from None
        if number < 1:
            raise click.ClickException(f"--images: {item!r} must be at least 1 image")
        if name:
            if name not in models and name not in _MODELS:
                raise click.ClickException(f"--images: unknown network {name!r} (the "
                                           f"networks run: {', '.join(models)})")
            out[name] = number
        else:
            default = number
    if default is None and any(m not in out for m in models):
        raise click.ClickException("--images needs a number for every model")
    return {m: out.get(m, default) for m in models}


def _plot(ctx, rows_by_model, networks):
    plt = common.pyplot()
    figure, axis = plt.subplots(figsize=(7, 4))
    for network in networks:
        model, points = network.key, rows_by_model[network.key]
        thresholds = [t for t, _, _ in points]
        line, = axis.plot(thresholds, [p for _, _, p in points], marker=".",
                          label=f"{network.label} ({network.dataset}, ours)")
        if network.builtin:
            axis.plot(PAPER_GRID, [100 * n / PAPER_TABLE1[model][0]
                                   for n in PAPER_TABLE1[model]],
                      linestyle="--", color=line.get_color(), alpha=0.6,
                      label=f"{common.MODEL_LABELS[model]} (paper 004)")
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xlabel("NVF threshold (%)")
    axis.set_ylabel("neurons with NVF >= threshold (%)")
    axis.set_title("Paper 004 Table I: portion of critical neurons")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7)
    return common.save_figure(ctx, figure, "table1.png")


@click.command("table1")
@common.model_options(_MODELS, "mlp7,lenet5,alexnet")
@click.option("--images", default=f"200,alexnet={ALEXNET_IMAGES}", show_default=True,
              help="Training images analysed by NVF: N, and/or MODEL=N per network "
                   "(AlexNet's NVF is slow: a few images by default).")
@click.option("--thresholds", default="0,0.1,0.25,0.5,1,2,3,4", show_default=True,
              help="Fine NVF thresholds (%) reported besides the paper's 0, 5, ..., 50.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs of the built-in networks (default: each one's own).")
@common.common_options("table1")
def command(models, model_files, images, thresholds, epochs, output, cache, seed, as_json,
            dataset, data_dir):
    """Paper 004 Table I: neurons with NVF >= 0, 5, ..., 50 % (and finer thresholds)."""
    fine = common.parse_floats(thresholds, "--thresholds", low=0, high=100)
    per_model = parse_images(images, common.network_keys(models, model_files))
    ctx = common.prepare("table1", output, cache, seed, as_json, dataset, data_dir)
    csv_rows, md_rows, curves, summary = [], [], {}, {}
    try:
        networks = common.networks(ctx, models, model_files, epochs=epochs)
        for network in networks:
            model, path = network.key, network.path
            ranking = common.ranking_list(
                common.ranking_path(ctx, path, "nvf", images=per_model[model],
                                    source=network.source), path)
            scores = [s for _, _, s in ranking]
            total = len(scores)
            top = max(scores)
            paper = network.builtin
            matched = matched_threshold(scores, PAPER_AT_20[model]) if paper else None
            points = []
            grid = sorted({("fine", t) for t in fine if t not in PAPER_GRID}
                          | {("paper", t) for t in PAPER_GRID}, key=lambda g: g[1])
            for kind, t in grid:
                n = count_at(scores, t)
                paper_n = (PAPER_TABLE1[model][PAPER_GRID.index(t)]
                           if kind == "paper" and paper else None)
                paper_p = 100 * paper_n / PAPER_TABLE1[model][0] if paper_n is not None else None
                csv_rows.append([model, kind, t, n, round(100 * n / total, 4),
                                 "" if paper_n is None else paper_n,
                                 "" if paper_p is None else round(paper_p, 4)])
                points.append((t, n, 100 * n / total))
                md_rows.append([f"{network.label} ({network.dataset})", f">= {t:g} %" +
                                ("" if kind == "paper" else " (fine)"),
                                f"{n:,}", f"{100 * n / total:.2f} %",
                                "" if paper_n is None else f"{paper_n:,}",
                                "" if paper_p is None else f"{paper_p:.2f} %"])
            curves[model] = sorted(set(points))
            summary[model] = {
                "label": network.label, "dataset": network.dataset,
                "neurons": total, "images": per_model[model], "max_nvf": top,
                "mean_nvf": sum(scores) / total,
                "counts": {f"{t:g}": count_at(scores, t)
                           for t in sorted(set(fine) | set(PAPER_GRID))},
                "nonzero": sum(1 for v in scores if v > 0)}
            if paper:
                summary[model].update({
                    "paper_neurons": PAPER_TABLE1[model][0],
                    "paper_portion_at_20": PAPER_AT_20[model],
                    "matched_threshold": matched,
                    "matched_neurons": max(1, round(PAPER_AT_20[model] * total / 100))})
    except ValueError as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    common.write_csv(ctx, "table1.csv", ["model", "grid", "threshold_pct", "neurons",
                                         "portion_pct", "paper_neurons", "paper_portion_pct"],
                     csv_rows)
    notes = [f"- {s['label']} ({s['dataset']}): {s['neurons']:,} neurons, NVF over "
             f"{s['images']} training images; largest NVF {s['max_nvf']:.3f} %, mean "
             f"{s['mean_nvf']:.4f} %, {s['nonzero']:,} neurons with NVF > 0." + (
                 "" if "matched_neurons" not in s else
                 f" The paper's 20 % threshold protects {PAPER_AT_20[m]} % of its neurons; "
                 f"the top {s['matched_neurons']:,} here reach down to NVF "
                 f"{s['matched_threshold']:.4g} %"
                 + (" (fewer neurons than that have NVF > 0: the rest are taken in the "
                    "ranking's tie order)" if s["nonzero"] < s["matched_neurons"] else "")
                 + ".") for m, s in summary.items()]
    common.write_text(ctx, "table1.md", common.markdown_table(
        ["network", "NVF", "neurons (ours)", "portion (ours)", "neurons (paper 004)",
         "portion (paper 004)"], md_rows) + "\n" + "\n".join(notes) + "\n")
    _plot(ctx, curves, networks)
    lines = [f"{s['label']} ({s['dataset']}): {s['neurons']} neurons, max NVF "
             f"{s['max_nvf']:.3f} %, >= 5 %: {s['counts']['5']}" + (
                 f", matched threshold {s['matched_threshold']:.4g} %"
                 if "matched_threshold" in s else "") for m, s in summary.items()]
    common.finish(ctx, {"models": summary}, lines)

"""Paper 000: critical vs random crashes, TMR-pNeu with pruning, its cost, Byzantine faults.

The ranking is paper 000's activation-magnitude list (:mod:`golden.activation_rank`,
``--pneu`` % merged from the class-oriented lists, over the first ``--images`` training
images). Faults are *cumulative*: many neurons are faulty at once during the whole test
split (paper 000's multiple-fault experiments), injected by one forward pass of the
integer network with the faulty int8 outputs overwritten after each layer computes and
before the protection unit corrects it.

1. **Critical vs random crashes** (paper 000 Fig. 3): the top ``p`` % of the ranking
   crashed (output 0) against ``p`` % drawn at random (``--repeats`` draws, mean and
   standard deviation), for each ``p`` of ``--crash``.
2. **Pruning** (Fig. 4): accuracy when the bottom ``p`` % of the ranking is removed
   (a pruned neuron's output is 0, exactly what :func:`golden.harden.harden` builds).
3. **TMR-pNeu with pruning and its cost** (Table II): for each pNeu of ``--tmr`` the top
   pNeu % are triplicated with paper 000's word voter (0 when no two copies agree) and as
   many bottom neurons are pruned (``neuroharden harden --scheme tmr-prune``); memory
   (int8 weights + int32 biases) and MACs per image against the unprotected network.
   The unit of protection of a conv layer is an output channel, so a conv pixel in the
   top pNeu % triplicates its whole channel, and a channel is pruned only when all its
   pixels are in the bottom pNeu % (:func:`golden.harden.to_channels`).
4. **Crashes on the protected networks** (Fig. 5): the critical crash curve again on each
   TMR-pNeu network. A crashed neuron is one hardware copy crashing: the first copy of a
   triplicated neuron (its voter outvotes it), nothing for a pruned one.
5. **Byzantine faults** (Fig. 6): ``k`` random neurons (the same draw for every network,
   ``--repeats`` draws) output random int8 values (the whole int8 range: these are int8
   registers; the paper draws 32-bit floats), on the unprotected and the TMR-pNeu
   networks; a protected neuron's fault hits one of its copies.
"""

import click

from . import common

__all__ = ["PAPER_TABLE2", "first_copies", "sites_for", "faulty_accuracy", "command"]

#: Paper 000 Table II (CIFAR-10): memory / MAC change of TMR-pNeu with pruning, in %.
PAPER_TABLE2 = {
    "ResNet-20": {1: (7.67, 0.04), 2.5: (10.06, 0.05), 5: (22.56, 0.12)},
    "ResNet-32": {1: (1.66, -0.01), 2.5: (7.13, 0.03), 5: (15.45, -0.08)},
    "DenseNet-121": {1: (0.03, -0.16), 2.5: (0.03, -0.37), 5: (0.04, -0.87)},
    "DenseNet-161": {1: (0.01, -0.20), 2.5: (0.01, -0.42), 5: (0.01, -0.76)},
}
_MODELS = ("mlp7", "lenet5", "alexnet")


def first_copies(original, hardened):
    """Per layer, the hardened channel computing each original channel (its first copy),
    ``-1`` for a pruned channel; ``None`` for an unprotected network."""
    import torch

    if hardened is None or not hasattr(hardened, "protection"):
        return None
    out = []
    for layer, p in zip(original.layers, hardened.protection):
        first = torch.full((layer.weight.shape[0],), -1, dtype=torch.int64)
        for h in reversed(range(len(p.source))):
            first[p.source[h]] = h
        out.append(first)
    return out


def sites_for(original, copies, neurons, values):
    """Fault sites of a network from neurons of the original one.

    Parameters
    ----------
    original : golden.intmodel.IntNet
    copies : list of torch.Tensor or None
        :func:`first_copies` (``None``: the network is the original).
    neurons : list of (int, int)
        ``(layer index, flat neuron index)`` in the original network.
    values : list of int
        Faulty int8 value of each neuron.

    Returns
    -------
    dict
        Layer index -> ``(flat indices, values)`` int64 tensors in that network.
    """
    import torch

    grouped = {}
    for (i, n), v in zip(neurons, values):
        if copies is not None:
            per = original.layers[i].neurons // original.layers[i].weight.shape[0]
            channel = int(copies[i][n // per])
            if channel < 0:
                continue  # pruned: not computed, nothing to corrupt
            n = channel * per + n % per
        grouped.setdefault(i, ([], []))
        grouped[i][0].append(n)
        grouped[i][1].append(v)
    return {i: (torch.tensor(a, dtype=torch.int64), torch.tensor(b, dtype=torch.int64))
            for i, (a, b) in grouped.items()}


def faulty_accuracy(net, x, labels, sites, batch=500):
    """Accuracy with every fault of ``sites`` present at once.

    Each layer's int8 outputs at the sites are overwritten right after the layer computes
    and before the network's protection unit (``correct``, if any) sees them.
    """
    import torch

    hook = getattr(net, "correct", None)
    correct = 0
    with torch.no_grad():
        for a in range(0, len(x), batch):
            h = x[a:a + batch]
            for i in range(len(net.layers)):
                _, y = net.layer_step(i, h)
                if i in sites:
                    flat = y.reshape(y.shape[0], -1).clone()
                    flat[:, sites[i][0]] = sites[i][1]
                    y = flat.view(y.shape)
                if hook is not None:
                    y = hook(i, y)
                h = net.next_input(i, y)
            correct += int((h.argmax(1) == labels[a:a + batch]).sum())
    return correct / len(x)


def _neurons(net, ranking):
    index = {layer.name: i for i, layer in enumerate(net.layers)}
    return [(index[name], n) for name, n, _ in ranking]


def _count(pct, total):
    return round(pct * total / 100)


@click.command("tmr-pneu")
@common.model_options(_MODELS, "lenet5,mlp7")
@click.option("--images", default="200", show_default=True,
              help="Training images of the activation ranking: N, and/or MODEL=N.")
@click.option("--pneu", type=click.FloatRange(0, 100, min_open=True), default=5.0,
              show_default=True, help="pNeu (%) merged from the class-oriented lists.")
@click.option("--crash", default="0.5,1,2.5,5,10,15,20,25", show_default=True,
              help="Percentages of crashed (and pruned) neurons.")
@click.option("--tmr", "tmr_levels", default="1,2.5,5", show_default=True,
              help="TMR-pNeu levels (%).")
@click.option("--byzantine", default="1,2,5,10,20,50,100", show_default=True,
              help="Numbers of cumulative Byzantine neurons.")
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True,
              help="Random draws per point (random crashes, Byzantine faults).")
@click.option("--test-images", type=click.IntRange(min=1), default=None,
              help="First N test images only (default: all).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs of the built-in networks (default: each one's own).")
@common.common_options("tmr-pneu")
def command(models, model_files, images, pneu, crash, tmr_levels, byzantine, repeats,
            test_images, epochs, output, cache, seed, as_json, dataset, data_dir):
    """Paper 000: critical vs random crashes, TMR-pNeu + pruning, cost, Byzantine faults."""
    from .table1 import parse_images

    crash_pct = sorted(set(common.parse_floats(crash, "--crash", low=0, high=100)))
    levels = sorted(set(common.parse_floats(tmr_levels, "--tmr", low=0, high=50)))
    counts = sorted({int(c) for c in common.parse_floats(byzantine, "--byzantine", low=1)})
    per_model = parse_images(images, common.network_keys(models, model_files))
    ctx = common.prepare("tmr-pneu", output, cache, seed, as_json, dataset, data_dir)
    try:
        networks = common.networks(ctx, models, model_files, epochs=epochs)
        results = {n.key: _run_model(ctx, n, per_model[n.key], pneu, crash_pct, levels,
                                     counts, repeats, test_images) for n in networks}
    except ValueError as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    _write(ctx, results, levels)
    lines = []
    for m, r in results.items():
        lines.append(f"{results[m]['label']}: fault-free {100 * r['accuracy']:.2f} %; "
                     + ", ".join(f"{p:g} % crashed: critical {100 * c:.1f} % / random "
                                 f"{100 * rnd:.1f} %" for p, c, rnd, _ in r["crash"]
                                 if p in (1, 5, 10)))
        for t in r["table2"]:
            lines.append(f"  TMR-{t['pneu']:g}: memory {t['memory_pct']:+.2f} %, MACs "
                         f"{t['macs_pct']:+.2f} %, accuracy {100 * t['accuracy']:.2f} %")
    common.finish(ctx, {"models": results, "pneu": pneu, "repeats": repeats}, lines)


def _run_model(ctx, network, images, pneu, crash_pct, levels, counts, repeats, test_images):
    import torch
    from tqdm import tqdm

    from ..harden import cost, harden, select_bottom, select_top, to_channels

    model, path = network.key, network.path
    ranking = common.ranking_list(
        common.ranking_path(ctx, path, "activation", images=images, source=network.source),
        path)
    net, _, _, data = network.load()
    x, labels = data.x_test, data.y_test
    if test_images is not None:
        x, labels = x[:test_images], labels[:test_images]
    x = net.quantize_input(x)
    neurons = _neurons(net, ranking)
    total = len(neurons)
    accuracy = faulty_accuracy(net, x, labels, {})
    steps = len(crash_pct) * (repeats + 2) + len(levels) * (1 + len(crash_pct)) \
        + len(counts) * repeats * (1 + len(levels))
    bar = tqdm(total=steps, desc=f"tmr-pneu {model}", unit="run",
               disable=True if ctx.as_json else None)

    def run(network, copies, chosen, values=None):
        bar.update()
        values = [0] * len(chosen) if values is None else values
        return faulty_accuracy(network, x, labels, sites_for(net, copies, chosen, values))

    crash_rows = []
    for p in crash_pct:
        k = _count(p, total)
        critical = run(net, None, neurons[:k])
        draws = [run(net, None, [neurons[j] for j in torch.randperm(
            total, generator=torch.Generator().manual_seed(ctx.seed * 1000 + r))[:k].tolist()])
                 for r in range(repeats)]
        mean = sum(draws) / repeats
        std = (sum((d - mean) ** 2 for d in draws) / repeats) ** 0.5
        pruned = run(net, None, neurons[total - k:]) if k else accuracy
        crash_rows.append((p, critical, mean, std, pruned))
    before = cost(net)
    protected = {}
    table2 = []
    for level in levels:
        top = select_top(ranking, fraction=level)
        protect = to_channels(net, top)
        prune = to_channels(net, select_bottom(ranking, len(top)), whole=True)
        hardened = harden(net, "tmr", protect, prune=prune, voter="word",
                          label="tmr-prune")
        after = cost(hardened)
        per = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
        copies = first_copies(net, hardened)
        protected[level] = (hardened, copies)
        curve = [run(hardened, copies, neurons[:_count(p, total)]) for p in crash_pct]
        table2.append({
            "pneu": level, "selected": len(top),
            "protected_neurons": sum(per[n] for n, _ in protect),
            "protected_channels": len(protect),
            "pruned_neurons": sum(per[n] for n, _ in prune), "pruned_channels": len(prune),
            "memory_bytes": after["memory_bytes"], "macs": after["macs"],
            "memory_pct": 100 * (after["memory_bytes"] / before["memory_bytes"] - 1),
            "macs_pct": 100 * (after["macs"] / before["macs"] - 1),
            "neurons": after["hidden_neurons"], "accuracy": run(hardened, copies, []),
            "crash_curve": curve})
    byz = []
    for k in counts:
        if k > total:
            continue
        per_net = {"unprotected": []} | {f"TMR-{lv:g}": [] for lv in levels}
        for r in range(repeats):
            gen = torch.Generator().manual_seed(ctx.seed * 1000 + 500 + r)
            chosen = [neurons[j] for j in torch.randperm(total, generator=gen)[:k].tolist()]
            values = torch.randint(-128, 128, (k,), generator=gen).tolist()
            per_net["unprotected"].append(run(net, None, chosen, values))
            for level in levels:
                hardened, copies = protected[level]
                per_net[f"TMR-{level:g}"].append(run(hardened, copies, chosen, values))
        for name, accs in per_net.items():
            mean = sum(accs) / len(accs)
            std = (sum((a - mean) ** 2 for a in accs) / len(accs)) ** 0.5
            byz.append((k, name, mean, std))
    bar.close()
    return {"label": network.label, "dataset": data.name,
            "neurons": total, "images": images, "accuracy": accuracy,
            "before": {"memory_bytes": before["memory_bytes"], "macs": before["macs"]},
            "crash": [(p, c, m, s) for p, c, m, s, _ in crash_rows],
            "pruning": [(p, pr) for p, _, _, _, pr in crash_rows],
            "crash_pct": crash_pct, "table2": table2, "byzantine": byz}


def _write(ctx, results, levels):
    plt = common.pyplot()
    rows = []
    for m, r in results.items():
        for (p, c, mean, std), (_, pr) in zip(r["crash"], r["pruning"]):
            rows += [[m, "critical", p, round(c, 6), ""], [m, "random", p, round(mean, 6),
                                                          round(std, 6)],
                     [m, "pruned-bottom", p, round(pr, 6), ""]]
        for t in r["table2"]:
            rows += [[m, f"TMR-{t['pneu']:g} critical", p, round(a, 6), ""]
                     for p, a in zip(r["crash_pct"], t["crash_curve"])]
    common.write_csv(ctx, "crash.csv", ["model", "scenario", "crashed_pct", "accuracy",
                                        "std"], rows)
    common.write_csv(ctx, "byzantine.csv", ["model", "network", "faulty_neurons",
                                            "accuracy", "std"],
                     [[m, name, k, round(a, 6), round(s, 6)] for m, r in results.items()
                      for k, name, a, s in r["byzantine"]])
    common.write_csv(ctx, "table2.csv", ["model", "pneu", "selected", "protected_neurons",
                                         "protected_channels", "pruned_neurons",
                                         "pruned_channels", "memory_bytes", "memory_pct",
                                         "macs", "macs_pct", "neurons", "accuracy"],
                     [[m, t["pneu"], t["selected"], t["protected_neurons"],
                       t["protected_channels"], t["pruned_neurons"], t["pruned_channels"],
                       t["memory_bytes"], round(t["memory_pct"], 4), t["macs"],
                       round(t["macs_pct"], 4), t["neurons"], round(t["accuracy"], 6)]
                      for m, r in results.items() for t in r["table2"]])
    models = list(results)
    # Fig. 3 and 4 of paper 000: critical vs random crashes, pruning.
    figure, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.6),
                                squeeze=False)
    for axis, m in zip(axes[0], models):
        r = results[m]
        ps = [p for p, *_ in r["crash"]]
        axis.plot(ps, [100 * c for _, c, _, _ in r["crash"]], "o-", color="C3",
                  label="critical (top of ranking)")
        axis.errorbar(ps, [100 * a for _, _, a, _ in r["crash"]],
                      yerr=[100 * s for *_, s in r["crash"]], fmt="s-", color="C0",
                      capsize=3, label="random")
        axis.plot(ps, [100 * a for _, a in r["pruning"]], "^--", color="C2",
                  label="pruned (bottom of ranking)")
        axis.set_title(results[m]["label"])
        axis.set_xlabel("crashed / pruned neurons (%)")
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=7)
    common.save_figure(ctx, figure, "crash.png")
    # Fig. 5 and 6: the protected networks.
    figure, axes = plt.subplots(2, len(models), figsize=(4.5 * len(models), 7.2),
                                squeeze=False)
    for c, m in enumerate(models):
        r = results[m]
        axis = axes[0][c]
        axis.plot(r["crash_pct"], [100 * cr for _, cr, _, _ in r["crash"]], "o-", color="k",
                  label="unprotected")
        for n, t in enumerate(r["table2"]):
            axis.plot(r["crash_pct"], [100 * a for a in t["crash_curve"]], ".-",
                      color=f"C{n}", label=f"TMR-{t['pneu']:g} + pruning")
        axis.set_title(f"{results[m]['label']}: critical neurons crashed")
        axis.set_xlabel("crashed neurons (%)")
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
        axis = axes[1][c]
        names = list(dict.fromkeys(name for _, name, _, _ in r["byzantine"]))
        for n, name in enumerate(names):
            pts = [(k, a, s) for k, nm, a, s in r["byzantine"] if nm == name]
            axis.errorbar([k for k, _, _ in pts], [100 * a for _, a, _ in pts],
                          yerr=[100 * s for _, _, s in pts], fmt=".-", capsize=2,
                          color="k" if name == "unprotected" else f"C{n - 1}", label=name)
        axis.set_xscale("log")
        axis.set_title(f"{results[m]['label']}: random Byzantine neurons")
        axis.set_xlabel("faulty neurons")
        axis.set_ylabel("accuracy (%)")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    common.save_figure(ctx, figure, "protected.png")
    md = ["## Critical vs random crashes (paper 000 Fig. 3) and pruning (Fig. 4)\n",
          common.markdown_table(
              ["network", "crashed %", "critical", "random (mean +- std)", "bottom pruned"],
              [[results[m]["label"], f"{p:g}", f"{100 * c:.2f} %",
                f"{100 * a:.2f} +- {100 * s:.2f} %", f"{100 * pr:.2f} %"]
               for m, r in results.items()
               for (p, c, a, s), (_, pr) in zip(r["crash"], r["pruning"])]),
          "\n## TMR-pNeu with pruning: overhead (paper 000 Table II)\n",
          common.markdown_table(
              ["network", "TMR", "protected neurons (channels)", "pruned neurons (channels)",
               "memory", "MACs", "neurons", "accuracy"],
              [[results[m]["label"], f"TMR-{t['pneu']:g}",
                f"{t['protected_neurons']:,} ({t['protected_channels']})",
                f"{t['pruned_neurons']:,} ({t['pruned_channels']})",
                f"{t['memory_bytes']:,} B ({t['memory_pct']:+.2f} %)",
                f"{t['macs']:,} ({t['macs_pct']:+.2f} %)", f"{t['neurons']:,}",
                f"{100 * t['accuracy']:.2f} %"] for m, r in results.items()
               for t in r["table2"]]
              + [[results[m]["label"], "none", "", "",
                  f"{r['before']['memory_bytes']:,} B", f"{r['before']['macs']:,}",
                  f"{r['neurons']:,}", f"{100 * r['accuracy']:.2f} %"]
                 for m, r in results.items()]),
          "\nPaper 000 Table II (CIFAR-10), memory / MACs change:\n",
          common.markdown_table(["network"] + [f"TMR-{lv:g}" for lv in (1, 2.5, 5)],
                                [[name] + [f"{v[lv][0]:+.2f} % / {v[lv][1]:+.2f} %"
                                           for lv in (1, 2.5, 5)]
                                 for name, v in PAPER_TABLE2.items()]),
          "\n## Critical crashes on the protected networks (Fig. 5)\n",
          common.markdown_table(
              ["network", "crashed %", "unprotected"] + [f"TMR-{lv:g}" for lv in levels],
              [[results[m]["label"], f"{p:g}", f"{100 * r['crash'][j][1]:.2f} %"]
               + [f"{100 * t['crash_curve'][j]:.2f} %" for t in r["table2"]]
               for m, r in results.items() for j, p in enumerate(r["crash_pct"])]),
          "\n## Random Byzantine neurons (Fig. 6), accuracy mean +- std\n",
          common.markdown_table(
              ["network", "faulty neurons", "unprotected"] + [f"TMR-{lv:g}" for lv in levels],
              [[results[m]["label"], str(k)]
               + [f"{100 * a:.2f} +- {100 * s:.2f} %" for kk, _, a, s in r["byzantine"]
                  if kk == k]
               for m, r in results.items()
               for k in dict.fromkeys(k for k, *_ in r["byzantine"])])]
    common.write_text(ctx, "tmr_pneu.md", "".join(md))

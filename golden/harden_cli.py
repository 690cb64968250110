"""``neuroharden harden``: protect the critical neurons of a model, report the cost.

Selection: the ranking is a CRITICAL.json of the same model
(:func:`golden.ranking.load_critical`, sorted by decreasing score); ``--threshold T``
protects every neuron whose score (NVF in %) is at least T, ``--fraction P`` the first
P % of the ranked list (ties in the file's order). Conv neurons (pixels) map to whole
output channels (:func:`golden.harden.to_channels`). ``tmr-prune`` is paper 000's flow:
TMR on the selected neurons and pruning of as many neurons from the bottom of the
ranking (the bottom P % with ``--fraction``); the output layer is never pruned.

The report compares the original and hardened integer networks: neurons, parameters,
MACs and memory (int8 weights + int32 biases), fault-free int8 test accuracy and the
number of test images whose prediction changed (split neurons round, pruning removes).
"""

import json
import os

import click

_SCHEMES = ("lcu", "tmr", "tmr-prune")


def _accuracy(net, x, labels):
    from .evaluation import int8_predictions

    predictions = int8_predictions(net, x)
    return predictions, float((predictions == labels).double().mean())


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint written by `neuroharden train` (MODEL.pt).")
@click.option("--critical", "critical_path", type=click.Path(dir_okay=False), required=True,
              help="Neuron ranking of that model (CRITICAL.json).")
@click.option("--scheme", type=click.Choice(_SCHEMES), required=True,
              help="lcu: split + LCU; tmr: triplicate + voter; tmr-prune: paper 000.")
@click.option("--threshold", type=float, default=None,
              help="Protect neurons with score >= T (NVF in %).")
@click.option("--fraction", type=click.FloatRange(0, 100), default=None,
              help="Protect the top P % of the ranking.")
@click.option("--voter", type=click.Choice(["bitwise", "word"]), default=None,
              help="TMR voter: bitwise majority (default) or word (0 if all disagree).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Hardened network file to write (HARDENED.pt).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def harden(model_path, critical_path, scheme, threshold, fraction, voter, data_dir, output,
           as_json):
    """Harden the critical neurons (LCU splitting, selective TMR, TMR + pruning)."""
    import torch

    from .campaign import file_sha256
    from .harden import cost, harden as build, select_bottom, select_top, to_channels
    from .hardened import is_hardened, save_hardened
    from .quantize import quantize_checkpoint
    from .ranking import load_critical

    if (threshold is None) == (fraction is None):
        raise click.ClickException("give exactly one of --threshold and --fraction")
    if voter is not None and scheme == "lcu":
        raise click.ClickException("--voter applies to the tmr schemes only")
    if os.path.abspath(output) in (os.path.abspath(model_path),
                                   os.path.abspath(critical_path)):
        raise click.ClickException("-o must not overwrite the model or the ranking")
    if is_hardened(model_path):
        raise click.ClickException(f"{model_path}: is already a hardened network; "
                                   f"give the original model checkpoint")
    try:
        net, _, _, data = quantize_checkpoint(model_path, data_dir)
        model_sha = file_sha256(model_path)
        ranking = [(n["layer"], n["index"], n["score"])
                   for n in load_critical(critical_path, model_path)["neurons"]]
        top = select_top(ranking, threshold=threshold, fraction=fraction)
        protect = to_channels(net, top)
        prune = (to_channels(net, [n for n in select_bottom(ranking, len(top))
                                   if n[0] != net.layers[-1].name], whole=True)
                 if scheme == "tmr-prune" else [])
        hardened = build(net, "lcu" if scheme == "lcu" else "tmr", protect, prune=prune,
                         voter=voter or "bitwise", label=scheme)
        before, after = cost(net), cost(hardened)
        x = data.x_test
        pred_before, acc_before = _accuracy(net, x, data.y_test)
        pred_after, acc_after = _accuracy(hardened, x, data.y_test)
        per_layer = {layer.name: {"protected": sorted(c for n, c in protect if n == layer.name),
                                  "pruned": sorted(c for n, c in prune if n == layer.name)}
                     for layer in net.layers}
        pixels = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
        protected_neurons = sum(pixels[name] for name, _ in protect)
        selection = {"scheme": scheme, "voter": hardened.voter, "threshold": threshold,
                     "fraction": fraction, "critical": str(critical_path),
                     "selected_neurons": len(top), "protected_neurons": protected_neurons,
                     "protected_channels": len(protect), "pruned_channels": len(prune),
                     "pruned_neurons": sum(pixels[name] for name, _ in prune)}
        raw = torch.load(model_path, map_location="cpu", weights_only=True)
        save_hardened(hardened, output, model_sha256=model_sha, checkpoint=raw,
                      selection=selection)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    report = {**selection, "model": str(model_path), "model_sha256": model_sha,
              "output": str(output), "layers": per_layer, "before": before, "after": after,
              "images": len(x), "int8_accuracy_before": acc_before,
              "int8_accuracy_after": acc_after,
              "changed_predictions": int((pred_before != pred_after).sum())}
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{scheme}: {len(top)} selected neurons -> {len(protect)} protected channels "
               f"({protected_neurons} neurons), {len(prune)} pruned -> {output}")
    for key in ("neurons", "parameters", "macs", "memory_bytes"):
        click.echo(f"  {key}: {before[key]} -> {after[key]} "
                   f"({100 * (after[key] / before[key] - 1):+.2f} %)")
    click.echo(f"  int8 accuracy: {100 * acc_before:.2f} % -> {100 * acc_after:.2f} % "
               f"({report['changed_predictions']} of {len(x)} predictions changed)")

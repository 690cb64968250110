"""Subcommands of the golden model: train, eval, export, sample-size, rank, harden, optimize.

Each command parses its options, calls the library function that does the job and
prints the result. Bad input (an unknown model or dataset, a missing or foreign file) is
reported as a one-line :class:`click.ClickException`; the root group turns it into exit
status 2.
"""

import json
import os

import click

from .checkpoint import MODEL_FILES
from .crosscheck import ENGINES
from .datasets import DATASETS
from .harden import CHECKPOINT_SCHEMES
from .models import MODEL_NAMES
from .optimize import (BOTTLENECK_RATIO, DEFAULT_FINE_TUNE_EPOCHS, DEFAULT_IMAGES,
                       DEFAULT_MAX_ITERATIONS)
from .ranking import DEFAULT_PNEU, METHODS

__all__ = ["train", "evaluate", "export", "sample_size", "rank", "harden", "optimize"]


#: Help of ``--dataset`` on the commands that read a network file.
_IMAGE_SOURCE = ("Image source of an imported .onnx / .npz network (default digits; its "
                 "input shape must match); for a checkpoint, instead of its own.")


def _check_output(output):
    """Refuse an output file that cannot be written, before a (possibly long) run."""
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise click.ClickException(f"{output}: directory {directory} does not exist")
    if os.path.isdir(output):
        raise click.ClickException(f"{output}: is a directory")


@click.command()
@click.option("--model", "model", type=click.Choice(MODEL_NAMES), required=True,
              help="Network to train.")
@click.option("--dataset", type=click.Choice(DATASETS), default="digits", show_default=True,
              help="digits is bundled; mnist and cifar10 read raw files from --data-dir.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory of the MNIST IDX or CIFAR-10 binary files.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Training epochs (default: per model).")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint file to write (MODEL.pt).")
def train(model, dataset, data_dir, epochs, seed, output):
    """Train a float network deterministically and save its checkpoint."""
    from .models import save_checkpoint
    from .train import train as train_model

    try:
        net, metadata = train_model(model, dataset, data_dir, epochs, seed)
        save_checkpoint(net, output, **metadata)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{model} on {dataset}: float test accuracy "
               f"{100 * metadata['float_accuracy']:.2f} % after {metadata['epochs']} epochs "
               f"({metadata['train_seconds']:.1f} s) -> {output}")


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help=f"Network file: {MODEL_FILES}.")
@click.option("--dataset", type=click.Choice(DATASETS), default=None, help=_IMAGE_SOURCE)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--json", "as_json", is_flag=True,
              help="Print float_accuracy (null for an imported network), int8_accuracy, "
                   "images and predictions as JSON.")
def evaluate(model_path, dataset, data_dir, as_json):
    """Test accuracy of a network in float and in the bit-exact int8 model.

    An imported network (.onnx, .npz) has no float model: its float accuracy is
    reported as unavailable.
    """
    from .evaluation import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(model_path, data_dir, dataset)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['model']} on {result['dataset']} ({result['images']} test images)")
    if result["float_accuracy"] is None:
        click.echo("float accuracy: unavailable (an imported network has no float model)")
    else:
        click.echo(f"float accuracy: {100 * result['float_accuracy']:.2f} %")
    click.echo(f"int8 accuracy:  {100 * result['int8_accuracy']:.2f} %")


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="MODEL.pt written by `neuroharden train`, or a quantized MODEL.onnx.")
@click.option("--engine", type=click.Choice(ENGINES), default="onnxruntime",
              show_default=True,
              help="torch: torch.ao's quantized kernels (MODEL.pt only); onnxruntime: the "
                   "network as QDQ ONNX (MODEL.pt) or as it is (MODEL.onnx), on the CPU.")
@click.option("--dataset", default=None, metavar="NAME",
              help="Image source (default: the one used for training; digits for .onnx).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (mnist, cifar10).")
@click.option("--images", type=click.IntRange(min=1), default=None,
              help="First N test images (default: the whole test split).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def crosscheck(model_path, engine, dataset, data_dir, images, as_json):
    """Compare every layer of the integer model with an independent int8 engine.

    Each layer is fed the very input the other engine gave that layer, so that one
    difference does not propagate; the contract is met when at least 99 % of the outputs
    are identical and none differs by more than 1 LSB.
    """
    from .crosscheck import crosscheck_checkpoint, onnxruntime_saturation_note

    try:
        rows = crosscheck_checkpoint(model_path, engine, dataset=dataset, data_dir=data_dir,
                                     images=images)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    layers = [row for row in rows if row.name != "input" and not row.name.startswith("logits")]
    total = {"identical": sum(row.identical for row in layers),
             "total": sum(row.total for row in layers),
             "max_difference": max(row.max_difference for row in layers)}
    met = all(row.fraction >= 0.99 and row.max_difference <= 1 for row in layers)
    note = (onnxruntime_saturation_note(model_path)
            if not met and engine == "onnxruntime" and str(model_path).lower().endswith(".onnx")
            else None)
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "engine": engine,
                               "rows": [{"name": row.name, "identical": row.identical,
                                         "total": row.total,
                                         "max_difference": row.max_difference}
                                        for row in rows], "layers": total,
                               "contract_met": met, "note": note}))
        return
    for row in rows:
        click.echo(f"{row.name:20s} {100 * row.fraction:10.5f} % identical "
                   f"({row.identical:,d} / {row.total:,d}), largest difference "
                   f"{row.max_difference} LSB")
    click.echo(f"{'every layer':20s} {100 * total['identical'] / total['total']:10.5f} % "
               f"identical ({total['identical']:,d} / {total['total']:,d}), largest "
               f"difference {total['max_difference']} LSB ({engine})")
    if note:
        click.echo(note, err=True)


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help=f"Network file: {MODEL_FILES}.")
@click.option("--dataset", type=click.Choice(DATASETS), default=None, help=_IMAGE_SOURCE)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory for calibration (default: the one used for training).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="File to write: QNET.npz (format: golden.export's docstring) or MODEL.onnx.")
@click.option("--format", "file_format", type=click.Choice(["npz", "onnx"]), default="npz",
              show_default=True, help="npz integer network, or a QDQ ONNX model that "
                                      "onnxruntime runs (golden.onnx_export); a HARDENED.pt "
                                      "exports to onnx only, with its LCU/TMR corrections.")
def export(model_path, dataset, data_dir, output, file_format):
    """Quantize a network and write the integer network as a self-contained npz or ONNX."""
    from .export import export_intnet
    from .checkpoint import load_intnet

    try:
        intnet = load_intnet(model_path, data_dir, dataset)
        if file_format == "onnx":
            from .onnx_export import export_onnx

            export_onnx(intnet, output)
        else:
            export_intnet(intnet, output)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from error
    click.echo(f"{len(intnet.layers)} integer layers -> {output}")


@click.command("sample-size")
@click.option("--population", default=None,
              help="Fault population N (an integer; omit or 'inf' for an infinite one).")
@click.option("--confidence", type=float, default=0.95, show_default=True,
              help="Confidence level in (0, 1).")
@click.option("--margin", type=float, default=0.01, show_default=True,
              help="Error margin in (0, 1).")
@click.option("--p", "p", type=float, default=0.5, show_default=True,
              help="Estimated probability of a fault failing.")
@click.option("--round-to", type=click.IntRange(min=1), default=1, show_default=True,
              help="Round up to a multiple of this (50 reproduces paper 004's sizes).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def sample_size(population, confidence, margin, p, round_to, as_json):
    """Leveugle et al. (DATE 2009) statistical fault-injection sample size."""
    from .sampling import leveugle_sample_size

    if population is None or str(population).lower() in ("inf", "infinite"):
        n_pop = None
    else:
        try:
            n_pop = int(population)
        except ValueError:
            raise click.ClickException(f"--population must be an integer or 'inf', "
                                       f"got {population!r}") from None
    try:
        n = leveugle_sample_size(n_pop, confidence, margin, p, round_to)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"population": n_pop,  # null = infinite
                               "confidence": confidence, "margin": margin, "p": p,
                               "round_to": round_to, "sample_size": n}))
    else:
        click.echo(n)


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help=f"Network file: {MODEL_FILES}.")
@click.option("--method", type=click.Choice(METHODS), required=True,
              help="nvf (paper 004), exact (measured bit flips), activation (paper 000), "
                   "lrp (paper 002, needs the float model of a checkpoint) or random.")
@click.option("--images", type=click.IntRange(min=1), default=200, show_default=True,
              help="First N training images analysed.")
@click.option("--validate", type=click.IntRange(min=1), default=None,
              help="Compare NVF with the exact oracle on K neurons drawn with --seed.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random method and of the validation draw.")
@click.option("--pneu", type=float, default=DEFAULT_PNEU, show_default=True,
              help="Paper 000's pNeu (%) merged from the class-oriented lists (activation).")
@click.option("--dataset", type=click.Choice(DATASETS), default=None, help=_IMAGE_SOURCE)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="CRITICAL.json to write.")
@click.option("--json", "as_json", is_flag=True,
              help="Print neurons, seconds (and the validation figures) as JSON.")
def rank(model_path, method, images, validate, seed, pneu, dataset, data_dir, output,
         as_json):
    """Rank the critical neurons of a quantized network into CRITICAL.json."""
    from .ranking import rank as run_rank
    from .ranking import write_critical

    _check_output(output)
    try:
        document, report = run_rank(model_path, method, images=images, seed=seed,
                                    validate=validate, pneu=pneu, data_dir=data_dir,
                                    dataset=dataset)
        write_critical(output, document)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    report["output"] = output
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"{method}: {report['neurons']} neurons ranked on {images} training images "
               f"in {report['seconds']:.1f} s -> {output}")
    for entry in document["neurons"][:5]:
        click.echo(f"  {entry['layer']}[{entry['index']}]  {entry['score']:.4g}")
    if validate is not None:
        rho = report["spearman"]
        click.echo(f"validation on {validate} neurons: NVF vs exact MAE "
                   f"{report['mae_pp']:.3f} pp, Spearman "
                   f"{'undefined' if rho is None else f'{rho:.3f}'}, evaluations "
                   f"{report['evaluations_nvf']} (NVF) vs {report['evaluations_exact']} (exact)")


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Network file: MODEL.pt (neuroharden train), a quantized MODEL.onnx or "
                   "QNET.npz (neuroharden import); not a hardened one.")
@click.option("--critical", "critical_path", type=click.Path(dir_okay=False), required=True,
              help="Neuron ranking of that model (CRITICAL.json).")
@click.option("--scheme", type=click.Choice(CHECKPOINT_SCHEMES), required=True,
              help="lcu: split + LCU; tmr: triplicate + voter; tmr-prune: paper 000.")
@click.option("--threshold", type=float, default=None,
              help="Protect neurons with score >= T (NVF in %).")
@click.option("--fraction", type=click.FloatRange(0, 100), default=None,
              help="Protect the top P % of the ranking.")
@click.option("--voter", type=click.Choice(["bitwise", "word"]), default=None,
              help="TMR voter: bitwise majority (default) or word (0 if all disagree).")
@click.option("--dataset", type=click.Choice(DATASETS), default=None, help=_IMAGE_SOURCE)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Hardened network file to write (HARDENED.pt).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def harden(model_path, critical_path, scheme, threshold, fraction, voter, dataset, data_dir,
           output, as_json):
    """Harden the critical neurons (LCU splitting, selective TMR, TMR + pruning)."""
    from .harden import harden_checkpoint

    if (threshold is None) == (fraction is None):
        raise click.ClickException("give exactly one of --threshold and --fraction")
    if voter is not None and scheme == "lcu":
        raise click.ClickException("--voter applies to the tmr schemes only")
    if os.path.abspath(output) in (os.path.abspath(model_path),
                                   os.path.abspath(critical_path)):
        raise click.ClickException("-o must not overwrite the model or the ranking")
    try:
        report = harden_checkpoint(model_path, critical_path, scheme=scheme,
                                   threshold=threshold, fraction=fraction, voter=voter,
                                   data_dir=data_dir, dataset=dataset, output=output)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if as_json:
        click.echo(json.dumps(report))
        return
    before, after = report["before"], report["after"]
    click.echo(f"{scheme}: {report['selected_neurons']} selected neurons -> "
               f"{report['protected_channels']} protected channels "
               f"({report['protected_neurons']} neurons), {report['pruned_channels']} "
               f"pruned -> {output}")
    for key in ("neurons", "parameters", "macs", "memory_bytes"):
        click.echo(f"  {key}: {before[key]} -> {after[key]} "
                   f"({100 * (after[key] / before[key] - 1):+.2f} %)")
    click.echo(f"  int8 accuracy: {100 * report['int8_accuracy_before']:.2f} % -> "
               f"{100 * report['int8_accuracy_after']:.2f} % "
               f"({report['changed_predictions']} of {report['images']} predictions changed)")


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint written by `neuroharden train`.")
@click.option("--dataset", type=click.Choice(DATASETS), default=None,
              help="Dataset of fine-tuning and evaluation (default: the checkpoint's).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--epochs", type=click.IntRange(min=0), default=DEFAULT_FINE_TUNE_EPOCHS,
              show_default=True, help="Fine-tuning epochs per iteration.")
@click.option("--iterations", type=click.IntRange(min=1), default=DEFAULT_MAX_ITERATIONS,
              show_default=True,
              help="Most iterations; stops earlier once the int8 accuracy right after an "
                   "adjustment reaches the original float accuracy.")
@click.option("--images", type=click.IntRange(min=1), default=DEFAULT_IMAGES,
              show_default=True, help="First N training images of the relevance analysis.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the fine-tuning batch order.")
@click.option("--bottleneck-ratio", type=click.FloatRange(0, 1, min_open=True),
              default=BOTTLENECK_RATIO, show_default=True,
              help="A hidden layer with fewer neurons than this fraction of the largest "
                   "is a bottleneck.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Optimized checkpoint to write (OPTIMIZED.pt).")
@click.option("--json", "as_json", is_flag=True,
              help="Print accuracies, per-layer changes, iterations, bottlenecks and "
                   "seconds as one JSON object.")
def optimize(model_path, dataset, data_dir, epochs, iterations, images, seed,
             bottleneck_ratio, output, as_json):
    """Equalize feature criticality (paper 002, eq. 6 + fine-tuning) into a new checkpoint."""
    from .optimize import optimize_checkpoint

    _check_output(output)
    if (os.path.exists(model_path) and os.path.exists(output)
            and os.path.samefile(model_path, output)):
        raise click.ClickException(f"{output}: would overwrite the input model")
    try:
        report = optimize_checkpoint(model_path, output, dataset=dataset, data_dir=data_dir,
                                     epochs=epochs, max_iterations=iterations,
                                     images=images, seed=seed,
                                     bottleneck_ratio=bottleneck_ratio)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if as_json:
        click.echo(json.dumps(report))
        return
    fa, ia = report["float_accuracy"], report["int8_accuracy"]
    state = "converged" if report["converged"] else "did not reach the float baseline"
    click.echo(f"{report['model']} on {report['dataset']}: {len(report['iterations'])} "
               f"iteration(s), {state} ({report['seconds']:.1f} s) -> {output}")
    click.echo(f"float accuracy {100 * fa['before']:.2f} % -> {100 * fa['after']:.2f} %, "
               f"int8 accuracy {100 * ia['before']:.2f} % -> {100 * ia['after']:.2f} %")
    click.echo(f"criticality spread (mean SD of eta/mean) "
               f"{report['criticality_spread_before']:.3f} -> "
               f"{report['criticality_spread_after']:.3f}")
    for layer in report["layers"]:
        click.echo(f"  {layer['layer']} (features of {layer['features_of']}): spread "
                   f"{layer['criticality_spread_before']:.3f} -> "
                   f"{layer['criticality_spread_after']:.3f}, weights changed "
                   f"{100 * layer['relative_weight_change']:.1f} %")
    named = [b["layer"] for b in report["bottlenecks"] if b["bottleneck"]]
    click.echo(f"bottleneck layers (< {bottleneck_ratio:g} x the largest hidden layer): "
               f"{', '.join(named) if named else 'none'}")
@click.command("import")
@click.argument("model_path", metavar="MODEL.onnx", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="npz file to write (QNET.npz); its format is golden.export's docstring.")
@click.option("--dataset", type=click.Choice(DATASETS), default=None,
              help="Check the model's input shape against this dataset's images.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the imported layers as JSON.")
def import_onnx(model_path, output, dataset, as_json):
    """Import a quantized ONNX network (QDQ or QOperator) into the integer model.

    Unsupported graphs (AveragePool, residual Adds, grouped convolution, int16, float
    ops between quantized tensors, float-only models) get one line naming the node and
    op, exit status 2 and nothing written.
    """
    from .export import export_intnet
    from .onnx_import import import_onnx as read_onnx

    try:
        record = read_onnx(model_path, dataset=dataset)
        export_intnet(record.intnet, output)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    net = record.intnet
    layers = [{"name": layer.name, "node": node, "kind": layer.kind,
               "weight_shape": list(layer.weight.shape), "relu": layer.relu,
               "pool": layer.pool, "flatten": layer.flatten, "pad_value": layer.pad_value,
               "zero_point": sorted({int(v) for v in torch_values(layer.zero_point)}),
               "out_scale": layer.out_scale}
              for layer, node in zip(net.layers, record.nodes)]
    if as_json:
        click.echo(json.dumps({"model": str(model_path), "output": str(output),
                               "input_shape": list(net.input_shape),
                               "input_scale": net.input_scale,
                               "input_zero_point": net.input_zero_point, "layers": layers}))
        return
    click.echo(f"{len(layers)} integer layers from {model_path} -> {output}")
    for layer in layers:
        click.echo(f"  {layer['name']:6} {layer['kind']:6} {layer['node']}: weights "
                   f"{'x'.join(map(str, layer['weight_shape']))}, relu {layer['relu']}, "
                   f"zero point {layer['zero_point']}")


def torch_values(value):
    """The elements of an int or a tensor, as a list of Python ints."""
    import torch

    return torch.as_tensor(value).reshape(-1).tolist()



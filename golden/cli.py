"""Subcommands of the golden model: each job is its own click command.

Bad input (an unknown model or dataset, a missing or foreign file) is reported as a
one-line :class:`click.ClickException`; the root group turns it into exit status 2.
"""

import json

import click

from .datasets import DATASETS
from .models import MODEL_NAMES


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
              help="Checkpoint written by `neuroharden train`.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--json", "as_json", is_flag=True,
              help="Print float_accuracy, int8_accuracy, images and predictions as JSON.")
def evaluate(model_path, data_dir, as_json):
    """Test accuracy of a checkpoint in float and in the bit-exact int8 model."""
    from .evaluation import evaluate_checkpoint

    try:
        result = evaluate_checkpoint(model_path, data_dir)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{result['model']} on {result['dataset']} ({result['images']} test images)")
    click.echo(f"float accuracy: {100 * result['float_accuracy']:.2f} %")
    click.echo(f"int8 accuracy:  {100 * result['int8_accuracy']:.2f} %")


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint written by `neuroharden train`.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory for calibration (default: the one used for training).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="File to write: QNET.npz (format: golden.export's docstring) or MODEL.onnx.")
@click.option("--format", "file_format", type=click.Choice(["npz", "onnx"]), default="npz",
              show_default=True, help="npz integer network, or a QDQ ONNX model that "
                                      "onnxruntime runs (golden.onnx_export).")
def export(model_path, data_dir, output, file_format):
    """Quantize a checkpoint and write the integer network as a self-contained npz or ONNX."""
    from .export import export_intnet
    from .intmodel import load_intnet

    try:
        intnet = load_intnet(model_path, data_dir)
        if file_format == "onnx":
            from .onnx_export import export_onnx

            export_onnx(intnet, output)
        else:
            export_intnet(intnet, output)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{len(intnet.layers)} integer layers -> {output}")
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


from .cli_campaign import sample_size, campaign  # noqa: F401,E402

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
              help="npz file to write (QNET.npz); its format is golden.export's docstring.")
def export(model_path, data_dir, output):
    """Quantize a checkpoint and write the integer network as a self-contained npz."""
    from .export import export_intnet
    from .intmodel import load_intnet

    try:
        intnet = load_intnet(model_path, data_dir)
        export_intnet(intnet, output)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{len(intnet.layers)} integer layers -> {output}")
from .cli_campaign import sample_size, campaign  # noqa: F401,E402

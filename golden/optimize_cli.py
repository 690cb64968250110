"""``neuroharden optimize``: paper 002's feature resilience optimization of a checkpoint.

Bad input is reported as a one-line :class:`click.ClickException` (exit status 2 through
the root group); nothing is written then.
"""

import json
import os

import click

from .datasets import DATASETS
from .optimize import (BOTTLENECK_RATIO, DEFAULT_FINE_TUNE_EPOCHS, DEFAULT_IMAGES,
                             DEFAULT_MAX_ITERATIONS)


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

    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise click.ClickException(f"{output}: directory {directory} does not exist")
    if os.path.isdir(output):
        raise click.ClickException(f"{output}: is a directory")
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

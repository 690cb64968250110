"""``neuroharden rank``: score every hidden neuron and write CRITICAL.json.

Bad input is reported as a one-line :class:`click.ClickException` (exit status 2 through
the root group).
"""

import json

import click

from .ranking import DEFAULT_PNEU, METHODS


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint written by `neuroharden train`.")
@click.option("--method", type=click.Choice(METHODS), required=True,
              help="nvf (paper 004), exact (measured bit flips), activation (paper 000), "
                   "lrp (paper 002) or random.")
@click.option("--images", type=click.IntRange(min=1), default=200, show_default=True,
              help="First N training images analysed.")
@click.option("--validate", type=click.IntRange(min=1), default=None,
              help="Compare NVF with the exact oracle on K neurons drawn with --seed.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the random method and of the validation draw.")
@click.option("--pneu", type=float, default=DEFAULT_PNEU, show_default=True,
              help="Paper 000's pNeu (%) merged from the class-oriented lists (activation).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="CRITICAL.json to write.")
@click.option("--json", "as_json", is_flag=True,
              help="Print neurons, seconds (and the validation figures) as JSON.")
def rank(model_path, method, images, validate, seed, pneu, data_dir, output, as_json):
    """Rank the critical neurons of a quantized network into CRITICAL.json."""
    import os

    from .ranking import rank as run_rank
    from .ranking import write_critical

    # Refuse an output that cannot be written before the (possibly long) ranking run.
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise click.ClickException(f"{output}: directory {directory} does not exist")
    if os.path.isdir(output):
        raise click.ClickException(f"{output}: is a directory")
    try:
        document, report = run_rank(model_path, method, images=images, seed=seed,
                                    validate=validate, pneu=pneu, data_dir=data_dir)
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

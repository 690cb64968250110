"""``neuroharden sample-size`` and ``neuroharden campaign``.

Bad input is reported as a one-line :class:`click.ClickException` (exit status 2 through
the root group).
"""

import json

import click

from .faults import FAULT_MODELS, TARGETS


def _int_list(text, what):
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.ClickException(f"{what} must be comma-separated integers, got {text!r}")


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
              help="Checkpoint written by `neuroharden train`.")
@click.option("--level", type=click.Choice(["model", "rtl"]), default="model",
              show_default=True,
              help="Injection level (rtl: run by `neuroharden campaign`, sim.rtl_campaign).")
@click.option("--fault", "fault_model", type=click.Choice(FAULT_MODELS), required=True,
              help="Fault model.")
@click.option("--target", type=click.Choice(TARGETS), default="output", show_default=True,
              help="Neuron output (int8), accumulator (int32) or weight (int8).")
@click.option("--bits", type=int, default=1, show_default=True,
              help="Bits per fault for bitflip / stuck0 / stuck1.")
@click.option("--bit-positions", default=None,
              help="Comma-separated bit positions the faults may hit (default: all).")
@click.option("--layers", default=None,
              help="Comma-separated layer names (default: hidden layers; all for weights).")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--margin", type=float, default=0.01, show_default=True)
@click.option("--faults", type=click.IntRange(min=1), default=None,
              help="Explicit number of faults (overrides the Leveugle sizing).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--images", type=click.IntRange(min=1), default=None,
              help="Use only the first N test images (default: the whole test split).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="SQLite results database (created if missing; campaigns resume).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Dask local workers (1 = in-process, no Dask).")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler.")
@click.option("--chunk", type=click.IntRange(min=1), default=128, show_default=True,
              help="Faults per task and per database commit.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def campaign(model_path, level, fault_model, target, bits, bit_positions, layers,
             confidence, margin, faults, seed, images, db_path, workers, scheduler, chunk,
             data_dir, as_json):
    """Statistical fault-injection campaign on the int8 model (resumable, SQLite)."""
    if level == "rtl":
        # golden never imports sim: the `neuroharden campaign` command (sim.rtl_campaign)
        # wraps this one and runs RTL campaigns itself.
        raise click.ClickException("--level rtl runs through `neuroharden campaign` "
                                   "(sim.rtl_campaign), which needs the sim package")
    from .campaign import run_campaign

    positions = _int_list(bit_positions, "--bit-positions")
    layer_list = [t.strip() for t in layers.split(",") if t.strip()] if layers else None
    try:
        summary = run_campaign(
            model_path, fault_model=fault_model, target=target, bits=bits,
            positions=positions, layers=layer_list, confidence=confidence, margin=margin,
            faults=faults, seed=seed, db_path=db_path, images=images, workers=workers,
            scheduler=scheduler, chunk=chunk, level=level, data_dir=data_dir)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if as_json:
        click.echo(json.dumps(summary))
        return
    n = max(1, summary["completed"])
    fps = summary["faults_per_second"]
    click.echo(
        f"campaign {summary['campaign'][:12]}: {summary['completed']}/{summary['faults']} "
        f"faults ({summary['fault_model']} on {summary['target']}, population "
        f"{summary['population']}) on {summary['images']} images\n"
        f"  paper 003: masked {summary['masked']} ({100 * summary['masked'] / n:.2f} %), "
        f"tolerable {summary['tolerable']} ({100 * summary['tolerable'] / n:.2f} %), "
        f"critical {summary['critical_003']} ({100 * summary['critical_003'] / n:.2f} %)\n"
        f"  paper 004: critical faults {summary['critical']} "
        f"({100 * summary['critical_rate']:.2f} %), accuracy loss "
        f"{100 * summary['accuracy_loss']:.3f} points (fault-free "
        f"{100 * summary['fault_free_accuracy']:.2f} %)\n"
        f"  {summary['evaluated_now']} evaluated now"
        + (f", {fps:.1f} faults/s" if fps else ""))

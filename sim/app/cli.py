"""The ``neuroharden`` console command: the one registry of every subcommand.

Each package's subcommands live in its own ``cli.py`` (:mod:`neuroharden.hw.cli`,
:mod:`neuroharden.golden.cli`, :mod:`neuroharden.sim.cli`, :mod:`neuroharden.synth.cli`);
this module defines the application layer's own (``demo`` and the ``experiment`` group)
and the root group, which lists them all in :data:`COMMANDS` and imports a subcommand's
module only when it is invoked, so ``neuroharden generate`` never pays for importing
torch and importing this module stays instant.
"""

import importlib
import json
from pathlib import Path

import click

from .experiments import experiment_modules

__all__ = ["COMMANDS", "LazyGroup", "main", "demo", "experiment"]

#: Subcommand name -> "module:click command" (kept sorted by package).
COMMANDS = {
    "generate": "neuroharden.hw.cli:generate",
    "train": "neuroharden.golden.cli:train",
    "eval": "neuroharden.golden.cli:evaluate",
    "crosscheck": "neuroharden.golden.cli:crosscheck",
    "export": "neuroharden.golden.cli:export",
    "import": "neuroharden.golden.cli:import_onnx",
    "sample-size": "neuroharden.golden.cli:sample_size",
    "rank": "neuroharden.golden.cli:rank",
    "harden": "neuroharden.golden.cli:harden",
    "optimize": "neuroharden.golden.cli:optimize",
    "gemm": "neuroharden.sim.cli:gemm",
    "run-rtl": "neuroharden.sim.cli:run_rtl",
    "sites": "neuroharden.sim.cli:sites",
    "campaign": "neuroharden.sim.cli:campaign",
    "area": "neuroharden.synth.cli:area",
    "prove": "neuroharden.synth.cli:prove",
    "cost": "neuroharden.synth.cli:cost",
    "demo": "neuroharden.sim.app.cli:demo",
    "experiment": "neuroharden.sim.app.cli:experiment",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use.

    Subcommands report bad input by raising :class:`click.ClickException` with a
    one-line message; the group gives every such error exit status 2, the status click
    uses for usage errors, so scripts can tell bad input (2) from a crash (1). Usage
    errors (a bad option value, a missing argument) are shortened to one line too.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            path = error.ctx.command_path if error.ctx else ctx.command_path
            one_line = click.ClickException(f"{error.format_message()} (see '{path} --help')")
            one_line.exit_code = 2
            raise one_line from error
        except click.ClickException as error:
            error.exit_code = 2
            raise

    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuroharden")
def main():
    """neuroharden: generate, verify and harden fault-tolerant int8 DNN accelerators.

    Every job is a subcommand; `neuroharden COMMAND --help` explains each one.
    """


@click.command()
@click.option("-o", "--output", default="report", show_default=True,
              type=click.Path(file_okay=False),
              help="Directory of the report, the intermediate files and the stage cache.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="Run the flow on this network instead of training LeNet-5: a "
                   "checkpoint (MODEL.pt), a quantized .onnx or a QNET.npz.")
@click.option("--dataset", default=None, metavar="NAME",
              help="Images of --model (default: the checkpoint's own; digits for "
                   ".onnx/.npz; mnist5k: 5,000 real MNIST digits).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Directory of the mnist / cifar10 raw files.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the stage records (status, seconds, result) as JSON.")
def demo(output, model_path, dataset, data_dir, as_json):
    """Run the whole flow on LeNet-5 / digits and write OUTPUT/index.html and README.md.

    With --model the flow runs on your network instead (no training; the RTL campaigns
    on its last hidden layer); use a new OUTPUT directory per network.

    Stages (each resumes from OUTPUT/stages/ when rerun): train, quantize, rank (NVF),
    harden (LCU and TMR at NVF >= 20 % and at the top 3.99 % of neurons, the share
    paper 004 protects on LeNet-5 at 20 %), cost, accelerator, rtl-check,
    campaign-model (neuron-output bit flips), campaign-rtl (bit flips in the PE
    registers of fc2's tiles on the RTL accelerator), threshold-sweep, synthesize,
    prove. A stage whose
    building block is not in this version is listed as "not available in this
    version". The exit status is 1 when a stage failed.
    """
    from .demo import DEFAULTS, given_model, run_demo

    if dataset is not None and model_path is None:
        raise click.UsageError("--dataset applies to --model (the default run trains on "
                               "digits)")
    config = DEFAULTS
    if model_path is not None:
        try:
            config = given_model(model_path, dataset=dataset, data_dir=data_dir)
        except ValueError as error:
            raise click.ClickException(str(error).splitlines()[0]) from None
    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.ClickException(f"{output}: {error}") from None
    result = run_demo(out, config=config, say=(lambda line: None) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"report: {out / 'index.html'} and {out / 'README.md'} "
                   f"({result['seconds'] / 60:.1f} min)")
    if any(r["status"] == "failed" for r in result["stages"].values()):
        raise SystemExit(1)


class _Experiments(click.Group):
    """A click group whose subcommands are the experiment modules, imported on use."""

    def list_commands(self, ctx):
        return sorted(experiment_modules())

    def get_command(self, ctx, name):
        module = experiment_modules().get(name)
        if module is None:
            return None
        return importlib.import_module(module).command


@click.group(cls=_Experiments)
def experiment():
    """Reproduce the experiments of the papers (CSV, PNG plots and Markdown tables).

    Each experiment trains and quantizes the networks it needs (cached), writes its
    results to -o DIR (default build/experiments/NAME) and prints where.
    """

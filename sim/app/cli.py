"""The ``neuroharden`` console command.

Each subcommand lives in the package it belongs to; this group only knows where to find
them and imports a subcommand's module when it is invoked, so ``neuroharden generate``
never pays for importing torch and ``--help`` stays instant.
"""

import importlib

import click

#: Subcommand name -> "module:click command" (kept sorted by package).
COMMANDS = {
    "generate": "neuroharden.hw.cli:generate",
    "train": "neuroharden.golden.cli:train",
    "eval": "neuroharden.golden.cli:evaluate",
    "export": "neuroharden.golden.cli:export",
    "sample-size": "neuroharden.golden.cli:sample_size",
    "campaign": "neuroharden.sim.rtl_campaign:campaign",
    "rank": "neuroharden.golden.rank_cli:rank",
    "harden": "neuroharden.golden.harden_cli:harden",
    "optimize": "neuroharden.golden.optimize_cli:optimize",
    "gemm": "neuroharden.sim.gemm:gemm",
    "run-rtl": "neuroharden.sim.run_rtl:run_rtl",
    "sites": "neuroharden.sim.sites:sites",
    "demo": "neuroharden.sim.app.demo:demo",
    "area": "neuroharden.synth.cli:area",
    "prove": "neuroharden.synth.prove:prove",
    "cost": "neuroharden.synth.cost:cost",
    "experiment": "neuroharden.sim.app.experiments:experiment",
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

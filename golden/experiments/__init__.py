"""The papers' experiments: ``neuroharden experiment NAME [-o DIR] [options]``.

Each experiment is a module of this package exposing a click command named
``command``; ``NAME`` is the module name with underscores turned into dashes. Modules
whose name starts with ``_`` and the shared helpers (``common``) are not experiments.
Modules are discovered with :mod:`pkgutil` and imported only when listed or run; they
import torch and matplotlib inside their commands, so ``--help`` stays fast.
"""

import importlib
import pkgutil

import click

__all__ = ["experiment", "experiment_modules"]

_HELPERS = {"common"}


def experiment_modules():
    """Experiment name -> module name, for every experiment module of the package."""
    return {name.replace("_", "-"): name for _, name, is_package in pkgutil.iter_modules(__path__)
            if not is_package and not name.startswith("_") and name not in _HELPERS}


class _Experiments(click.Group):
    """A click group whose subcommands are the experiment modules, imported on use."""

    def list_commands(self, ctx):
        return sorted(experiment_modules())

    def get_command(self, ctx, name):
        module = experiment_modules().get(name)
        if module is None:
            return None
        return importlib.import_module(f"{__name__}.{module}").command


@click.group(cls=_Experiments)
def experiment():
    """Reproduce the experiments of the papers (CSV, PNG plots and Markdown tables).

    Each experiment trains and quantizes the networks it needs (cached), writes its
    results to -o DIR (default build/experiments/NAME) and prints where.
    """

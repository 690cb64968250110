"""The papers' experiments: ``neuroharden experiment NAME [-o DIR] [options]``.

Experiments that need only the golden model live in :mod:`neuroharden.golden.experiments`;
those that also run the RTL (``rtl-vs-model``, ``sa-fi``) live here, in the application
layer, which may import every package. Each is a module exposing a click command named
``command``; ``NAME`` is the module name with underscores turned into dashes. Modules whose
name starts with ``_`` and the shared helpers (``common``) are not experiments. Modules are
discovered with :mod:`pkgutil` and imported only when listed or run; they import torch and
matplotlib inside their commands, so ``--help`` stays fast.
"""

import importlib
import pkgutil

import click

from neuroharden.golden import experiments as golden_experiments

__all__ = ["experiment", "experiment_modules"]

_HELPERS = {"common"}
_PACKAGES = ((golden_experiments.__name__, golden_experiments.__path__), (__name__, __path__))


def experiment_modules():
    """Experiment name -> importable module name, over both experiment packages."""
    found = {}
    for package, path in _PACKAGES:
        for _, name, is_package in pkgutil.iter_modules(path):
            if not is_package and not name.startswith("_") and name not in _HELPERS:
                found[name.replace("_", "-")] = f"{package}.{name}"
    return found


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

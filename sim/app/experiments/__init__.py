"""The papers' experiments: ``neuroharden experiment NAME [-o DIR] [options]``.

Experiments that need only the golden model live in :mod:`neuroharden.golden.experiments`;
those that also run the RTL (``rtl-vs-model``, ``sa-fi``) live here, in the application
layer, which may import every package. Each is a module exposing a click command named
``command``; ``NAME`` is the module name with underscores turned into dashes. Modules whose
name starts with ``_`` and the shared helpers (``common``) are not experiments. Modules are
discovered with :mod:`pkgutil` (:func:`experiment_modules`) and imported by the
``neuroharden experiment`` group (:mod:`neuroharden.sim.app.cli`) only when listed or
run; they import torch and matplotlib inside their commands, so ``--help`` stays fast.
"""

import pkgutil

from neuroharden.golden import experiments as golden_experiments

__all__ = ["experiment_modules"]

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

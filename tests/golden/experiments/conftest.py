"""A per-module experiment cache pre-filled with the session's trained checkpoints.

The experiments train into ``--cache`` under ``{model}-digits-seed{seed}-e{epochs}.pt``;
the session fixture trains the same networks (seed 0, default epochs), so copying them
there spares every experiment test its training.
"""

import shutil

import pytest

from golden.train import DEFAULT_EPOCHS


@pytest.fixture(scope="module")
def cache(trained_model, tmp_path_factory):
    """Factory ``cache(*models) -> pathlib.Path`` of a cache holding those checkpoints."""
    root = tmp_path_factory.mktemp("cache")

    def fill(*models):
        for model in models:
            target = root / f"{model}-digits-seed0-e{DEFAULT_EPOCHS[model]}.pt"
            if not target.exists():
                shutil.copyfile(trained_model(model), target)
        return root

    return fill

"""Fixtures and test ordering shared by the whole suite.

Trained networks: training is deterministic, so each network is trained once per test
session with its default epochs (well under a minute each) and shared across pytest-xdist
workers through a file lock in the session's common temporary directory.
"""

import os
import shutil

import pytest
from filelock import FileLock

from neuroharden.golden.models import save_checkpoint
from neuroharden.golden.train import DEFAULT_EPOCHS, train

#: Assumed duration of a ``slow`` test that states none (its ``seconds`` keyword).
SLOW_SECONDS = 30


def pytest_collection_modifyitems(items):
    """Run the longest tests first.

    ``make test`` runs on two xdist workers, which take tests in collection order. A test
    of several minutes collected last (the accelerator synthesis in tests/synth) would
    leave one worker running it alone at the end; started first, it overlaps the rest of
    the suite on the other worker (longest-processing-time-first scheduling). A ``slow``
    test may state its duration on these cores, ``@pytest.mark.slow(seconds=360)``.
    """
    def expected_seconds(item):
        marker = item.get_closest_marker("slow")
        return 0 if marker is None else marker.kwargs.get("seconds", SLOW_SECONDS)

    items.sort(key=expected_seconds, reverse=True)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory):
    """Factory ``trained_model(name) -> pathlib.Path`` of a checkpoint trained on digits, seed 0."""
    root = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        root = root.parent  # shared by all workers of this session
    cache = {}

    def checkpoint(name):
        if name not in cache:
            path = root / f"{name}-digits-seed0.pt"
            with FileLock(f"{path}.lock"):
                if not path.exists():
                    net, metadata = train(name, seed=0, progress=False)
                    save_checkpoint(net, path, **metadata)
            cache[name] = path
        return cache[name]

    return checkpoint


@pytest.fixture(scope="session")
def mlp7_model(trained_model):
    """Checkpoint path of MLP-7 trained on digits."""
    return trained_model("mlp7")


@pytest.fixture(scope="session")
def lenet5_model(trained_model):
    """Checkpoint path of LeNet-5 trained on digits."""
    return trained_model("lenet5")


@pytest.fixture(scope="session")
def alexnet_model(trained_model):
    """Checkpoint path of the AlexNet-style CNN trained on digits."""
    return trained_model("alexnet")

@pytest.fixture(scope="module")
def cache(trained_model, tmp_path_factory):
    """Experiment cache pre-filled with the session's trained checkpoints.

    The experiments train into ``--cache`` under ``{model}-digits-seed{seed}-e{epochs}.pt``;
    copying the session's networks there spares every experiment test its training.
    Factory ``cache(*models) -> pathlib.Path`` of a cache holding those checkpoints."""
    root = tmp_path_factory.mktemp("cache")

    def fill(*models):
        for model in models:
            target = root / f"{model}-digits-seed0-e{DEFAULT_EPOCHS[model]}.pt"
            if not target.exists():
                shutil.copyfile(trained_model(model), target)
        return root

    return fill

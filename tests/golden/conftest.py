"""Shared trained networks for the golden tests.

Training is deterministic, so each network is trained once per test session with its
default epochs (well under a minute each) and shared across pytest-xdist workers through a
file lock in the session's common temporary directory.
"""

import os

import pytest
from filelock import FileLock

from golden.models import save_checkpoint
from golden.train import train


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

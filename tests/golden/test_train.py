import pytest
import torch

from neuroharden.golden.models import load_checkpoint
from neuroharden.golden.train import train

#: The three networks; AlexNet (about half a minute to train) only in the slow runs.
NETWORKS = ["mlp7", "lenet5", pytest.param("alexnet", marks=pytest.mark.slow)]


def test_training_is_deterministic_for_a_seed():
    a, meta_a = train("lenet5", epochs=1, seed=7, progress=False)
    b, meta_b = train("lenet5", epochs=1, seed=7, progress=False)
    c, _ = train("lenet5", epochs=1, seed=8, progress=False)
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value)
    assert not torch.equal(a.state_dict()["layers.conv1.weight"],
                           c.state_dict()["layers.conv1.weight"])
    assert meta_a["float_accuracy"] == meta_b["float_accuracy"]
    assert meta_a["seed"] == 7 and meta_a["epochs"] == 1 and meta_a["dataset"] == "digits"


def test_training_leaves_the_global_determinism_flag_alone():
    before = torch.are_deterministic_algorithms_enabled()
    train("mlp7", epochs=1, progress=False)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_bad_epochs_are_rejected():
    with pytest.raises(ValueError, match="epochs"):
        train("mlp7", epochs=0, progress=False)


@pytest.mark.parametrize("name", NETWORKS)
def test_default_training_is_fast_and_accurate(trained_model, name):
    _, metadata = load_checkpoint(trained_model(name))
    assert metadata["train_seconds"] < 120
    assert metadata["float_accuracy"] > 0.9

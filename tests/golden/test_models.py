import pytest
import torch

from neuroharden.golden.models import (ARCHITECTURES, CHECKPOINT_FORMAT, MODEL_NAMES, Net, load_checkpoint,
                           protectable_neurons, save_checkpoint)


def test_protectable_neuron_counts_match_paper_004():
    mlp7 = protectable_neurons("mlp7")
    lenet5 = protectable_neurons("lenet5")
    assert list(mlp7.values()) == [1024, 512, 512, 256, 256, 256]
    assert sum(mlp7.values()) == 2816
    assert lenet5 == {"conv1": 6 * 24 * 24, "conv2": 16 * 8 * 8, "fc1": 120, "fc2": 84}
    assert sum(lenet5.values()) == 4684
    assert "fc3" not in protectable_neurons("alexnet")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_networks_give_ten_logits_and_only_the_output_layer_lacks_relu(name):
    net = Net(name)
    assert net(torch.rand(2, *net.input_shape)).shape == (2, 10)
    assert [spec.relu for spec in net.specs] == [True] * (len(net.specs) - 1) + [False]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_alexnet_takes_three_channel_32x32_images():
    assert ARCHITECTURES["alexnet"][0] == (3, 32, 32)


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="unknown model"):
        Net("resnet")


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    torch.manual_seed(3)
    net = Net("lenet5")
    path = tmp_path / "m.pt"
    save_checkpoint(net, path, dataset="digits", seed=3, float_accuracy=0.5)
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT and raw["input_shape"] == [1, 28, 28]
    loaded, metadata = load_checkpoint(path)
    assert metadata["seed"] == 3 and metadata["model"] == "lenet5" and not loaded.training
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind


def test_bad_checkpoints_give_one_line_errors(tmp_path):
    (tmp_path / "text.pt").write_bytes(b"not a checkpoint")
    torch.save({"a": print}, tmp_path / "pickle.pt")  # a global weights_only refuses
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    torch.save({"format": CHECKPOINT_FORMAT, "model": "mlp7",
                "state_dict": {"x": torch.zeros(1)}}, tmp_path / "mismatch.pt")
    good = tmp_path / "good.pt"
    save_checkpoint(Net("mlp7"), good)
    (tmp_path / "truncated.pt").write_bytes(good.read_bytes()[:-200])
    expected = {"missing.pt": "no such file", "text.pt": "not a torch zip",
                "pickle.pt": "refused", "foreign.pt": "not a neuroharden",
                "mismatch.pt": "do not match", "truncated.pt": "not a torch zip"}
    for name, message in expected.items():
        with pytest.raises(ValueError, match=message) as error:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(error.value)

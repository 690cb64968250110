"""Feature resilience optimization (paper 002, eq. 6, Algorithm 1) on a short-trained LeNet-5."""

import pytest
import torch

from neuroharden.golden.datasets import load_dataset
from neuroharden.golden.models import Net, load_checkpoint, save_checkpoint
from neuroharden.golden.optimize import (bottlenecks, criticality_spread, equalization_scales,
                             layer_criticality, optimize, optimize_checkpoint, scale_inputs)
from neuroharden.golden.quantize import CALIBRATION_IMAGES
from neuroharden.golden.train import train


@pytest.fixture(scope="module")
def short_lenet(tmp_path_factory):
    """LeNet-5 after 2 epochs on digits (a second to train) and its dataset."""
    net, metadata = train("lenet5", epochs=2, seed=0, progress=False)
    path = tmp_path_factory.mktemp("optimize") / "lenet5.pt"
    save_checkpoint(net, path, **metadata)
    return path, load_dataset("digits", net.input_shape)


def test_equalization_scales_follow_eq6():
    eta = torch.tensor([1.0, 2.0, 4.0, 0.0])
    scales = equalization_scales(eta)
    # sum(eta) / (C * eta_c) with C = 4; a feature nothing reads keeps its weights.
    expected = torch.tensor([7 / 4, 7 / 8, 7 / 16, 1.0], dtype=torch.float64)
    assert torch.allclose(scales, expected)
    assert torch.allclose(eta[:3] * scales[:3], torch.full((3,), 7 / 4, dtype=torch.float64))


def test_scale_inputs_per_input_feature():
    net = Net("lenet5")
    conv2, fc1 = net.layers["conv2"], net.layers["fc1"]
    w_conv, w_fc = conv2.weight.detach().clone(), fc1.weight.detach().clone()
    scale_inputs(conv2, torch.arange(1, 7, dtype=torch.float64))
    for c in range(6):
        assert torch.allclose(conv2.weight[:, c], w_conv[:, c] * (c + 1))
    # fc1 reads the flattened 16 x 4 x 4 map: channel c owns columns 16c .. 16c + 15.
    scale_inputs(fc1, torch.arange(1, 17, dtype=torch.float64))
    for c in range(16):
        columns = slice(16 * c, 16 * (c + 1))
        assert torch.allclose(fc1.weight[:, columns], w_fc[:, columns] * (c + 1))


def test_criticality_spread():
    assert criticality_spread([torch.ones(5)]) == 0.0
    spread = criticality_spread([torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0])])
    assert spread == pytest.approx(0.25)  # SD of [0.5, 1.5] is 0.5; mean with 0


def test_one_adjustment_equalizes_the_last_features(short_lenet):
    path, data = short_lenet
    net, _ = load_checkpoint(path)
    x_cal, x, y = data.x_train[:CALIBRATION_IMAGES], data.x_train[:64], data.y_train[:64]
    before = layer_criticality(net, 3, x_cal, x, y)
    # fc3's relevance is the label frequency whatever the weights, so eq. 6 makes fc2's
    # criticality equal up to the int8 rounding of the weights.
    scale_inputs(net.layers["fc3"], equalization_scales(before))
    after = layer_criticality(net, 3, x_cal, x, y)
    assert criticality_spread([after]) < 0.05 * criticality_spread([before])
    assert float(after.mean()) == pytest.approx(float(before.mean()), rel=0.05)


def test_optimize_is_deterministic_and_reports(short_lenet):
    path, data = short_lenet
    states = []
    for _ in range(2):
        net, _ = load_checkpoint(path)
        report = optimize(net, data, epochs=1, max_iterations=2, images=32, seed=5,
                          progress=False)
        states.append(net.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert 1 <= len(report["iterations"]) <= 2
    assert report["converged"] == (report["iterations"][-1]["int8_accuracy"]
                                   >= report["baseline_float_accuracy"])
    assert [layer["layer"] for layer in report["layers"]] == ["conv2", "fc1", "fc2", "fc3"]
    assert report["criticality_spread_after"] < report["criticality_spread_before"]


def test_optimize_rejects_bad_parameters(short_lenet):
    path, data = short_lenet
    net, _ = load_checkpoint(path)
    for kwargs in ({"max_iterations": 0}, {"images": 10**6}, {"epochs": -1}):
        with pytest.raises(ValueError):
            optimize(net, data, **kwargs)


def test_optimize_checkpoint_writes_a_loadable_model(short_lenet, tmp_path):
    path, _ = short_lenet
    out = tmp_path / "opt.pt"
    report = optimize_checkpoint(path, out, epochs=0, max_iterations=1, images=16,
                                 progress=False)
    net, metadata = load_checkpoint(out)
    assert metadata["optimize_iterations"] == 1 and len(metadata["optimized_from"]) == 64
    assert metadata["float_accuracy"] == report["float_accuracy"]["after"]
    assert report["model"] == net.name == "lenet5" and report["seconds"] > 0
    # Without fine-tuning only the layers that read hidden features change (eq. 6).
    original, _ = load_checkpoint(path)
    assert torch.equal(net.layers["conv1"].weight, original.layers["conv1"].weight)
    assert torch.equal(net.layers["conv2"].bias, original.layers["conv2"].bias)
    assert not torch.equal(net.layers["conv2"].weight, original.layers["conv2"].weight)


def test_bottlenecks():
    lenet = {b["layer"]: b for b in bottlenecks("lenet5")}
    assert [name for name, b in lenet.items() if b["bottleneck"]] == ["fc1", "fc2"]
    assert lenet["fc2"]["neurons"] == 84 and lenet["conv1"]["ratio_to_largest"] == 1.0
    assert sum(b["share"] for b in lenet.values()) == pytest.approx(1.0)
    assert not any(b["bottleneck"] for b in bottlenecks("mlp7"))
    assert [b["layer"] for b in bottlenecks("mlp7", ratio=0.3) if b["bottleneck"]] == \
        ["fc4", "fc5", "fc6"]
    with pytest.raises(ValueError):
        bottlenecks("lenet5", ratio=0)

"""Leveugle sample sizes, the fault space and sampling."""

import json

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.models import Net, protectable_neurons
from neuroharden.golden.quantize import quantize
from neuroharden.golden.sampling import FaultSpace, leveugle_sample_size, sample_indices, t_quantile
from neuroharden.sim.app.cli import main
from tests.golden.fi_nets import random_net


def test_infinite_population():
    assert leveugle_sample_size(None) == 9604
    assert leveugle_sample_size(float("inf")) == 9604
    assert abs(t_quantile(0.95) - 1.959964) < 1e-6
    assert leveugle_sample_size(None, 0.99, 0.01) == 16588


def test_paper_004_sizes():
    mlp7 = sum(protectable_neurons("mlp7").values())
    lenet5 = sum(protectable_neurons("lenet5").values())
    assert (mlp7, lenet5) == (2816, 4684)
    # The formula, rounded up to the next integer ...
    assert leveugle_sample_size(mlp7 * 8) == 6734
    assert leveugle_sample_size(lenet5 * 8) == 7645  # the number
    # ... and to the next multiple of 50: paper 004's printed numbers.
    assert leveugle_sample_size(mlp7 * 8, round_to=50) == 6750
    assert leveugle_sample_size(lenet5 * 8, round_to=50) == 7650


def test_small_population_and_errors():
    assert leveugle_sample_size(10) == 10
    assert leveugle_sample_size(1) == 1
    for kwargs in (dict(confidence=1.0), dict(margin=0), dict(p=1), dict(round_to=0),
                   dict(population=0)):
        with pytest.raises(ValueError):
            leveugle_sample_size(**{"population": 100, **kwargs})


def test_fault_space_of_lenet5():
    torch.manual_seed(0)
    net = quantize(Net("lenet5"), torch.rand(16, 1, 28, 28))
    space = FaultSpace(net, "bitflip", "output")
    assert len(space) == 4684 * 8
    assert list(space.describe()["layers"]) == ["conv1", "conv2", "fc1", "fc2"]
    assert len(FaultSpace(net, "crash", "output")) == 4684
    assert len(FaultSpace(net, "bitflip", "output", bits=2)) == 4684 * 28
    assert len(FaultSpace(net, "stuck0", "accumulator")) == 4684 * 32
    assert len(FaultSpace(net, "bitflip", "weight")) == sum(
        layer.weight.numel() for layer in net.layers) * 8
    assert len(FaultSpace(net, "bitflip", "output", positions=[7])) == 4684
    first = space.fault(0)
    assert (first.layer, first.index, first.bits) == ("conv1", 0, (0,))
    last = space.fault(len(space) - 1)
    assert (last.layer, last.index, last.bits) == ("fc2", 83, (7,))
    with pytest.raises(ValueError, match="unknown layer"):
        FaultSpace(net, "bitflip", "output", layers=["fc9"])
    with pytest.raises(ValueError, match="bit 8 out of range"):
        FaultSpace(net, "bitflip", "output", positions=[8])
    with pytest.raises(ValueError, match="bits must lie"):
        FaultSpace(net, "bitflip", "output", bits=9)


def test_every_fault_is_valid_and_distinct():
    net, _ = random_net()
    for model in ("bitflip", "byzantine"):
        space = FaultSpace(net, model, "accumulator", seed=4)
        faults = [space.fault(k) for k in range(len(space))]
        for fault in faults:
            fault.validate(net)
        if model == "bitflip":
            assert len(set(faults)) == len(space)
        assert space.fault(17) == FaultSpace(net, model, "accumulator", seed=4).fault(17)


def test_sampling_without_replacement_is_deterministic():
    a = sample_indices(37472, 7645, seed=3)
    assert a == sample_indices(37472, 7645, seed=3)
    assert a != sample_indices(37472, 7645, seed=4)
    assert len(set(a)) == 7645 and min(a) >= 0 and max(a) < 37472
    assert sorted(sample_indices(50, 50, seed=1)) == list(range(50))
    with pytest.raises(ValueError):
        sample_indices(10, 11, seed=0)


def test_sample_size_cli():
    runner = CliRunner()
    result = runner.invoke(main, ["sample-size", "--population", "37472", "--confidence",
                                  "0.95", "--margin", "0.01"])
    assert result.exit_code == 0 and result.output.strip() == "7645"
    result = runner.invoke(main, ["sample-size", "--json"])
    assert json.loads(result.output)["sample_size"] == 9604
    result = runner.invoke(main, ["sample-size", "--population", "22528", "--round-to", "50"])
    assert result.output.strip() == "6750"
    result = runner.invoke(main, ["sample-size", "--population", "many"])
    assert result.exit_code == 2 and "--population" in result.output
    result = runner.invoke(main, ["sample-size", "--confidence", "1.5"])
    assert result.exit_code == 2 and "confidence" in result.output

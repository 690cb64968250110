import pytest
import torch

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.evaluation import int8_predictions
from neuroharden.golden.models import Net
from neuroharden.golden.numerics import requantize
from neuroharden.golden.quantize import SHIFT_LIMIT, fixed_point, quantize

#: The three networks; AlexNet (about half a minute to train) only in the slow runs.
NETWORKS = ["mlp7", "lenet5", pytest.param("alexnet", marks=pytest.mark.slow)]


@pytest.mark.parametrize("scale", [1e-6, 3.1e-4, 0.0123, 0.5, 0.99999, 1.0, 7.3, 1234.5])
def test_fixed_point_is_normalised_and_accurate(scale):
    m, s = fixed_point(scale)
    assert 2**15 <= m < 2**16 and 0 <= s <= SHIFT_LIMIT
    assert abs(m / 2**s - scale) <= scale * 2**-16


def test_fixed_point_edges():
    assert fixed_point(1 - 2**-20) == (2**15, 15)  # rounding carries into bit 16
    m, s = fixed_point(2.0**-70)
    assert s == SHIFT_LIMIT and m == round(2.0**-70 * 2**SHIFT_LIMIT)
    assert fixed_point(2.0**20) == (2**16 - 1, 0)
    assert fixed_point(0.0) == (0, 0)


def test_quantize_follows_the_contract():
    torch.manual_seed(0)
    net = Net("lenet5")
    x = torch.rand(64, 1, 28, 28)
    intnet = quantize(net, x)
    assert intnet.input_scale == pytest.approx(float(x.max()) / 127)
    s_in = intnet.input_scale
    for layer, spec in zip(intnet.layers, net.specs):
        module = net.layers[spec.name]
        w = module.weight.detach().double()
        s_w = w.flatten(1).abs().amax(1) / 127
        assert layer.weight.dtype == torch.int64 and int(layer.weight.abs().max()) == 127
        assert torch.equal(layer.weight.flatten(1).abs().amax(1), torch.full_like(s_w, 127).long())
        expected_bias = torch.round(module.bias.detach().double() / (s_in * s_w)).long()
        assert torch.equal(layer.bias, expected_bias)
        for m, s, scale in zip(layer.multiplier, layer.shift, s_in * s_w / layer.out_scale):
            assert abs(int(m) / 2 ** int(s) - float(scale)) <= float(scale) * 2**-16
        s_in = layer.out_scale
    assert [layer.relu for layer in intnet.layers] == [True] * 4 + [False]
    assert [layer.pool for layer in intnet.layers] == [2, 2, 0, 0, 0]


def test_requantized_outputs_track_the_float_model():
    # One layer on calibration data: int8 output * out_scale ~ float activation.
    torch.manual_seed(1)
    net = Net("mlp7")
    x = torch.rand(32, 1, 28, 28)
    intnet = quantize(net, x)
    acc, y = intnet.layer_step(0, intnet.quantize_input(x))
    with torch.no_grad():
        _, outputs = net(x, record=True)
    layer = intnet.layers[0]
    error = (y.double() * layer.out_scale - outputs[0].double()).abs().max()
    assert float(error) < 2 * layer.out_scale  # half an LSB + input/weight rounding
    assert torch.equal(y, requantize(acc, layer.multiplier, layer.shift, True))


@pytest.mark.parametrize("name", NETWORKS)
def test_int8_accuracy_within_one_point_of_float(trained_model, name):
    intnet, net, metadata, data = quantize_checkpoint(trained_model(name))
    int8 = float((int8_predictions(intnet, data.x_test) == data.y_test).double().mean())
    assert abs(int8 - metadata["float_accuracy"]) <= 0.01


def test_quantization_is_deterministic(lenet5_model):
    a = quantize_checkpoint(lenet5_model)[0]
    b = quantize_checkpoint(lenet5_model)[0]
    assert a.input_scale == b.input_scale
    for la, lb in zip(a.layers, b.layers):
        assert torch.equal(la.weight, lb.weight) and torch.equal(la.multiplier, lb.multiplier)
        assert la.out_scale == lb.out_scale

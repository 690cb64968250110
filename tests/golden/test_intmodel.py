import numpy as np
import pytest
import torch

from neuroharden.golden.checkpoint import load_intnet, quantize_checkpoint
from neuroharden.golden.intmodel import IntLayer, IntNet
from neuroharden.golden.numerics import add_bias, requantize
from tests.golden.numpy_reader import conv


def linear_layer(weight, bias, multiplier, shift, relu=True, **extra):
    o = len(bias)
    return IntLayer(name="fc1", kind="linear", weight=torch.tensor(weight),
                    bias=torch.tensor(bias), multiplier=torch.tensor(multiplier or [1] * o),
                    shift=torch.tensor(shift or [0] * o), relu=relu, stride=1, padding=0,
                    pool=0, flatten=False, out_scale=1.0, **extra)


def test_layer_step_wraps_the_accumulator_at_32_bits():
    layer = linear_layer([[1, -1]], [2**31 - 1], [1], [0], relu=False)
    net = IntNet(layers=[layer], input_scale=1.0, input_shape=(2,))
    acc, y = net.layer_step(0, torch.tensor([[1, 0], [0, 1]]))
    assert acc.tolist() == [[-(2**31)], [2**31 - 2]]
    assert y.tolist() == [[-128], [127]]


def test_zero_points_are_one_per_channel():
    symmetric = linear_layer([[1, 0], [0, 1]], [0, 0], None, None)
    assert symmetric.zero_points.tolist() == [0, 0]
    scalar = linear_layer([[1, 0], [0, 1]], [0, 0], None, None, zero_point=-128)
    assert scalar.zero_points.tolist() == [-128, -128]
    per_channel = linear_layer([[1, 0], [0, 1]], [0, 0], None, None,
                               zero_point=torch.tensor([-128, 5]))
    assert per_channel.zero_points.tolist() == [-128, 5]
    # ReLU clips at the zero point: real value 0.
    net = IntNet(layers=[per_channel], input_scale=1.0, input_shape=(2,))
    assert net.layer_step(0, torch.tensor([[-7, -7], [3, 200]]))[1].tolist() == \
        [[-128, 5], [-125, 127]]


def test_predict_breaks_ties_to_the_lowest_index():
    layer = linear_layer([[1], [2], [2]], [0, 0, 0], None, None, relu=False)
    net = IntNet(layers=[layer], input_scale=1.0, input_shape=(1,))
    assert net.predict(torch.tensor([[3], [0]])).tolist() == [1, 0]


def test_quantize_input_rounds_half_to_even_and_saturates():
    net = IntNet(layers=[], input_scale=0.5, input_shape=(4,))
    x = torch.tensor([[0.25, 0.75, 100.0, -100.0]])
    assert net.quantize_input(x).tolist() == [[0, 2, 127, -128]]


def test_lenet5_layers_are_exact_integer_arithmetic(lenet5_model):
    intnet, _, _, data = quantize_checkpoint(lenet5_model)
    x = intnet.quantize_input(data.x_test[:16])
    for i, layer in enumerate(intnet.layers):
        acc, y = intnet.layer_step(i, x)
        w = layer.weight.numpy()
        if layer.kind == "conv":
            z = conv(x.numpy(), w, layer.stride, layer.padding)
            view = (1, -1, 1, 1)
        else:
            z = x.flatten(1).numpy() @ w.T
            view = (1, -1)
        expected = add_bias(torch.from_numpy(z), layer.bias.view(view))
        assert torch.equal(acc, expected)
        assert torch.equal(y, requantize(acc, layer.multiplier.view(view),
                                         layer.shift.view(view), layer.relu))
        x = intnet.next_input(i, y)


def test_forward_records_and_restarts(lenet5_model):
    intnet = load_intnet(lenet5_model)
    _, _, _, data = quantize_checkpoint(lenet5_model)
    x = intnet.quantize_input(data.x_test[:8])
    logits, records = intnet.forward(x, record=True)
    assert logits.shape == (8, 10) and logits.dtype == torch.int64
    assert [tuple(y.shape[1:]) for _, y in records] == [(6, 24, 24), (16, 8, 8), (120,),
                                                        (84,), (10,)]
    assert int(records[0][1].min()) >= 0 and int(records[0][1].max()) <= 127
    assert torch.equal(records[-1][1], logits)
    middle = intnet.next_input(1, records[1][1])
    assert middle.shape == (8, 256)
    tail, tail_records = intnet.forward(middle, start=2, record=True)
    assert torch.equal(tail, logits) and len(tail_records) == 3
    assert torch.equal(tail_records[0][0], records[2][0])
    assert torch.equal(intnet.predict(x), torch.argmax(logits, 1))


@pytest.mark.parametrize("name, total", [("mlp7", 2816), ("lenet5", 4684)])
def test_neurons_match_the_protectable_counts(trained_model, name, total):
    intnet = load_intnet(trained_model(name))
    assert sum(layer.neurons for layer in intnet.layers[:-1]) == total
    assert intnet.layers[-1].neurons == 10


def test_layer_fields_follow_the_contract(lenet5_model):
    intnet = load_intnet(lenet5_model)
    conv1 = intnet.layers[0]
    assert (conv1.name, conv1.kind, conv1.pool, conv1.flatten) == ("conv1", "conv", 2, False)
    assert conv1.weight.shape == (6, 1, 5, 5) and conv1.weight.dtype == torch.int64
    assert intnet.layers[1].flatten and intnet.input_shape == (1, 28, 28)
    for layer in intnet.layers:
        for field in (layer.bias, layer.multiplier, layer.shift):
            assert field.dtype == torch.int64 and field.shape == (layer.weight.shape[0],)
        assert np.all((layer.multiplier.numpy() >= 0) & (layer.multiplier.numpy() < 2**16))
        assert np.all((layer.shift.numpy() >= 0) & (layer.shift.numpy() <= 63))

"""Small hand-built integer networks and random faults shared by the golden tests."""

import dataclasses
import random

import torch

from neuroharden.golden.faults import FAULT_MODELS, TARGETS, Fault, target_width
from neuroharden.golden.intmodel import IntLayer, IntNet


def linear_layer(name, weight, relu):
    """A linear layer with bias 0, M = 1 and s = 0: each output is its accumulator."""
    O = len(weight)
    # M = 1, s = 0: the neuron output is its accumulator (saturated to int8).
    return IntLayer(name=name, kind="linear", weight=torch.tensor(weight),
                    bias=torch.zeros(O, dtype=torch.int64),
                    multiplier=torch.ones(O, dtype=torch.int64),
                    shift=torch.zeros(O, dtype=torch.int64), relu=relu, stride=1,
                    padding=0, pool=0, flatten=False, out_scale=1.0)


def build_layer(name, kind, weight, x, *, relu=True, stride=1, padding=0, pool=0,
           flatten=False, gen=None):
    """Build a layer whose requantization keeps typical outputs around +-40."""
    O = weight.shape[0]
    bias = torch.randint(-2000, 2000, (O,), generator=gen)
    layer = IntLayer(name=name, kind=kind, weight=weight, bias=bias,
                     multiplier=torch.randint(1 << 15, 1 << 16, (O,), generator=gen),
                     shift=torch.zeros(O, dtype=torch.int64), relu=relu, stride=stride,
                     padding=padding, pool=pool, flatten=flatten, out_scale=0.05)
    probe = IntNet([layer], 0.01, tuple(x.shape[1:]))
    acc, _ = probe.layer_step(0, x)
    if kind == "conv":
        layer.out_hw = tuple(acc.shape[2:])
    spread = float(acc.double().std()) * (1 << 15)
    s = max(1, int(torch.log2(torch.tensor(spread / 40.0)).ceil()))
    layer.shift = torch.full((O,), s, dtype=torch.int64)
    _, y = probe.layer_step(0, x)
    return layer, probe.next_input(0, y)


def random_net(seed=0, images=24, padding=1, stride=1):
    """A LeNet-like IntNet (conv-pool, conv-pool-flatten, fc, fc) and int8 inputs."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 128, (images, 1, 12, 12), generator=gen)
    w = lambda *shape: torch.randint(-127, 128, shape, generator=gen)  # noqa: E731
    layers = []
    h = x
    # conv1: 3x10x10 -> 5x5 after pooling.
    l1, h = build_layer("conv1", "conv", w(3, 1, 3, 3), h, pool=2, gen=gen)
    l2, h = build_layer("conv2", "conv", w(4, 3, 3, 3), h, padding=padding, stride=stride,
                        pool=2, flatten=True, gen=gen)
    l3, h = build_layer("fc1", "linear", w(12, h.shape[1]), h, gen=gen)
    l4, h = build_layer("fc2", "linear", w(10, 12), h, relu=False, gen=gen)
    layers = [l1, l2, l3, l4]
    return IntNet(layers, 0.01, (1, 12, 12)), x


def conv_chain_net(seed=6, images=20):
    """Convolutions without pooling (stride 1 and 2) feeding convolutions, then a pooled
    one, a hidden and an output linear layer."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 128, (images, 2, 11, 11), generator=gen)
    w = lambda *shape: torch.randint(-127, 128, shape, generator=gen)  # noqa: E731
    l1, h = build_layer("conv1", "conv", w(4, 2, 3, 3), x, padding=1, gen=gen)  # 11x11
    l2, h = build_layer("conv2", "conv", w(5, 4, 3, 3), h, stride=2, padding=1,
                        gen=gen)  # 6x6
    l3, h = build_layer("conv3", "conv", w(3, 5, 2, 2), h, pool=2, flatten=True, gen=gen)
    l4, h = build_layer("fc1", "linear", w(7, h.shape[1]), h, gen=gen)
    l5, h = build_layer("fc2", "linear", w(6, 7), h, relu=False, gen=gen)
    return IntNet([l1, l2, l3, l4, l5], 0.01, (2, 11, 11)), x


def random_faults(net, count, seed, targets=TARGETS, models=FAULT_MODELS):
    """``count`` faults of ``net`` drawn with ``seed``: any layer, target and model."""
    rng = random.Random(seed)
    faults = []
    for _ in range(count):
        layer = rng.choice(net.layers)
        target = rng.choice(targets)
        width = target_width(target)
        model = rng.choice(models)
        sites = layer.weight.numel() if target == "weight" else layer.neurons
        bits = (tuple(rng.sample(range(width), rng.choice([1, 1, 2, 3])))
                if model in ("bitflip", "stuck0", "stuck1") else ())
        value = rng.randrange(-(1 << (width - 1)), 1 << (width - 1)) \
            if model == "byzantine" else None
        faults.append(Fault(layer.name, target, rng.randrange(sites), bits, model, value))
    return faults


def offset_net(net, zero_point):
    """``net`` with every hidden output shifted by ``zero_point``, as an import would
    give it: each ReLU layer gets the output zero point, the next layer folds
    ``-zero_point * w`` into its bias and pads with it.

    Same outputs as ``net`` (``y - z`` of the offset net is ``y`` of ``net``) as long as
    no hidden output of ``net`` saturates at 127; the tests check that on their inputs.
    """
    layers = [dataclasses.replace(layer) for layer in net.layers]
    for layer, following in zip(layers, layers[1:]):
        if not layer.relu:
            continue
        O = layer.weight.shape[0]
        layer.zero_point = torch.full((O,), zero_point, dtype=torch.int64)
        columns = following.weight.reshape(following.weight.shape[0], O, -1).sum(-1)
        following.bias = following.bias - zero_point * columns.sum(1)
        following.pad_value = zero_point
    return IntNet(layers, net.input_scale, net.input_shape)

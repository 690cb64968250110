"""Small hand-built integer networks for the fault-injection unit tests."""

import torch

from neuroharden.golden.intmodel import IntLayer, IntNet


def _layer(name, kind, weight, x, *, relu=True, stride=1, padding=0, pool=0,
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
    l1, h = _layer("conv1", "conv", w(3, 1, 3, 3), h, pool=2, gen=gen)  # 3x10x10 -> 5x5
    l2, h = _layer("conv2", "conv", w(4, 3, 3, 3), h, padding=padding, stride=stride,
                   pool=2, flatten=True, gen=gen)
    l3, h = _layer("fc1", "linear", w(12, h.shape[1]), h, gen=gen)
    l4, h = _layer("fc2", "linear", w(10, 12), h, relu=False, gen=gen)
    layers = [l1, l2, l3, l4]
    return IntNet(layers, 0.01, (1, 12, 12)), x

"""Paper 002's LRP (z+ rule), feature relevance and bit-flip criticality."""

import torch

from neuroharden.golden.intmodel import IntNet
from neuroharden.golden.lrp import criticality, lrp_rank, real_weight, relevance
from tests.golden.fi_nets import linear_layer, random_net


def test_conservation_on_a_linear_net():
    gen = torch.Generator().manual_seed(0)
    w1 = torch.randint(0, 20, (6, 5), generator=gen)
    w2 = torch.randint(0, 20, (4, 6), generator=gen)
    w3 = torch.randint(-20, 20, (3, 4), generator=gen)
    net = IntNet([linear_layer("fc1", w1.tolist(), True),
                  linear_layer("fc2", w2.tolist(), True),
                  linear_layer("fc3", w3.tolist(), False)], 1.0, (1, 1, 5))
    for layer in net.layers:
        layer.shift[:] = 6  # keep the outputs unsaturated
    x = torch.randint(1, 20, (7, 1, 1, 5), generator=gen)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    r = relevance(net, x, labels)
    for layer_relevance in r:
        # Positive weights and inputs: no zero denominator, the relevance is conserved.
        assert torch.allclose(layer_relevance.sum(1), torch.ones(7, dtype=torch.float64))
    # z+ rule by hand for the last hidden layer of image 0.
    _, records = net.forward(x, record=True)
    f = records[1][1][0].double()
    z = f * w3[0].clamp(min=0).double()
    assert torch.allclose(r[1][0], z / z.sum())


def test_conservation_through_pooling_and_eq5():
    net, x = random_net(seed=1, images=6)
    labels = torch.arange(6) % 10
    r = relevance(net, x, labels)
    sums = [t.flatten(1).sum(1) for t in r]
    for s in sums:
        assert bool((s <= 1 + 1e-9).all()) and bool((s >= 0).all())
    result = lrp_rank(net, x, labels)
    # Eq. 5 for fc1 (layer 2) by hand: mean |w| of fc2 weighted by fc2's feature relevance.
    rho = r[3].mean(0)
    w = real_weight(net, 3).abs()
    expected = (w * rho.view(-1, 1)).sum(0) / w.shape[0]
    assert torch.allclose(criticality(net, 2, rho), expected)
    assert torch.allclose(result["scores"][2], expected)
    # Conv features are shared by all positions of a map.
    conv = result["scores"][0].view(3, -1)
    assert bool((conv == conv[:, :1]).all())
    assert result["relevance"][0].numel() == net.layers[0].neurons


def test_real_weight_recovers_channel_scales():
    net, _ = random_net(seed=3)
    layer = net.layers[2]
    m = layer.multiplier.double() / 2.0 ** layer.shift.double()
    expected = layer.weight.double() * (m * layer.out_scale / net.layers[1].out_scale).view(-1, 1)
    assert torch.allclose(real_weight(net, 2), expected)

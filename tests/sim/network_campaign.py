"""The tiny network and the campaign call of the RTL network-campaign tests.

A module of its own (not a test file) because the resume test imports it in a separate
Python process, which it then kills mid-campaign.
"""

import dataclasses

import torch

from neuroharden.golden.intmodel import IntNet
from neuroharden.sim.rtl_campaign import run_network_campaign
from tests.golden.fi_nets import build_layer

#: Accelerator size of every campaign of these tests.
ROWS, COLS = 4, 4


def tiny_net(images=4, seed=0, zero_bias=False):
    """A 16 -> 6 -> 4 integer MLP, its int8 inputs and labels (its own top-1 classes,
    the last image's label shifted so that the accuracy is not 1)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 128, (images, 1, 4, 4), generator=gen)
    w = lambda *shape: torch.randint(-127, 128, shape, generator=gen)  # noqa: E731
    l1, h = build_layer("fc1", "linear", w(6, 16), x, gen=gen)
    l2, _ = build_layer("fc2", "linear", w(4, 6), h, relu=False, gen=gen)
    layers = [l1, l2]
    if zero_bias:
        layers = [dataclasses.replace(layer, bias=torch.zeros_like(layer.bias))
                  for layer in layers]
    net = IntNet(layers, 0.01, (1, 4, 4))
    labels = net.predict(x)
    labels[-1] = (labels[-1] + 1) % 4
    return net, x, labels


def campaign(net, x, labels, db, **options):
    """An RTL network campaign of ``net`` on the test accelerator, stored in ``db``."""
    return run_network_campaign(net, x, labels, db_path=str(db), rows=ROWS, cols=COLS,
                                progress=False, **options)

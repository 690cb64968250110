"""Paper 000's activation-magnitude ranking on a net whose activations are its inputs."""

import torch

from neuroharden.golden.activation_rank import activation_rank, mean_activations
from neuroharden.golden.intmodel import IntNet
from tests.golden.fi_nets import linear_layer, offset_net, random_net


def identity_net():
    """Four hidden neurons copying the four inputs (scale 0.5), two classes."""
    hidden = linear_layer("fc1", torch.eye(4, dtype=torch.int64).tolist(), relu=True)
    hidden.out_scale = 0.5
    out = linear_layer("fc2", [[1, 1, 1, 1], [1, 1, 1, 1]], relu=False)
    return IntNet([hidden, out], 1.0, (1, 1, 4))


def test_class_and_network_lists_and_merge():
    net = identity_net()
    # Neuron 0 is moderate everywhere, neuron 3 large on class 1 only.
    x = torch.tensor([[8, 2, 1, 0], [8, 2, 1, 0], [8, 0, 2, 40], [8, 0, 2, 0]])
    x = x.view(4, 1, 1, 4)
    labels = torch.tensor([0, 0, 1, 1])
    network, per_class, layout = mean_activations(net, x, labels)
    assert layout == [(0, 4)]
    assert network.tolist() == [4.0, 0.5, 0.75, 5.0]
    assert per_class.tolist() == [[4.0, 1.0, 0.5, 0.0], [4.0, 0.0, 1.0, 10.0]]
    # pNeu = 25 % of 4 neurons: the top neuron of each class list is updated.
    result = activation_rank(net, x, labels, pneu=25)
    assert result["scores"][0].tolist() == [4.0, 0.5, 0.75, 10.0]
    assert result["network"][0].tolist() == network.tolist()
    # pNeu = 50 %: class 0's second neuron (1) climbs above neuron 2.
    result = activation_rank(net, x, labels, pneu=50)
    assert result["scores"][0].tolist() == [4.0, 1.0, 0.75, 10.0]


def test_scores_measure_the_output_less_its_zero_point():
    net, x = random_net(seed=0, padding=0)
    shifted = offset_net(net, -128)
    labels = torch.arange(len(x)) % 10
    mine, theirs = activation_rank(shifted, x, labels), activation_rank(net, x, labels)
    for key in ("scores", "network"):
        for i in mine[key]:
            assert torch.equal(mine[key][i], theirs[key][i])

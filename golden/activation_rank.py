"""Activation-magnitude criticality ranking of paper 000 (after Ruospo and Sanchez 2021).

A neuron's score is the mean absolute value of its output over a set of images, in real
units (the int8 output less its zero point, ``y - z``, times its layer's ``out_scale``,
so that neurons of different layers compare; paper 000 ranks the float network's
neurons). ``z`` is 0 except in imported asymmetric networks.

* **Class-oriented lists**: for each class ``c``, the score over the images of class
  ``c`` (by label) ranks all neurons; a class without images has no list.
* **Network-oriented list**: the score over all images.
* **Merge with pNeu**: paper 000 "updates the network-oriented score map based on the
  outcomes of the class-oriented analysis: with a given percentage (pNeu), neurons having
  a greater value in the class-oriented lists are updated in the final network criticality
  list". Implemented: the top ``ceil(pNeu% x neurons)`` of every class-oriented list are
  the neurons updated, and an updated neuron's final score is the larger of its
  network-oriented score and its best class-oriented score among the classes whose top
  it is in; every other neuron keeps its network-oriented score. A neuron that matters a
  lot to a single class thus climbs the final list even if its mean over all classes is
  modest. Ties keep the network-oriented score as secondary key.
"""

import math

import torch

from .nvf import hidden_layers

__all__ = ["mean_activations", "activation_rank"]


def mean_activations(net, x, labels, classes=None):
    """Mean |activation| per neuron, over all images and per class.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64) ``[B, C, H, W]``.
    labels : torch.Tensor
        int64 labels ``[B]``.
    classes : int, optional
        Number of classes (default: the width of the output layer).

    Returns
    -------
    (torch.Tensor, torch.Tensor, list of (int, int))
        Network-oriented scores ``[neurons]``, class-oriented scores ``[classes,
        neurons]`` (NaN rows for classes without images) and, per hidden layer, its
        ``(layer index, neurons)`` in the concatenated order.
    """
    classes = net.layers[-1].weight.shape[0] if classes is None else classes
    _, records = net.forward(x, record=True)
    layers = hidden_layers(net)
    act = torch.cat([_real(records[i][1], net.layers[i]).flatten(1).abs()
                     for i in layers], 1)                                  # [B, neurons]
    onehot = torch.nn.functional.one_hot(labels, classes).double()          # [B, classes]
    per_class = onehot.sum(0)
    class_scores = (onehot.T @ act) / per_class.view(-1, 1)
    class_scores[per_class == 0] = float("nan")
    return act.mean(0), class_scores, [(i, net.layers[i].neurons) for i in layers]


def _real(y, layer):
    """Real values of a layer's int8 outputs ``y``: ``(y - z) * out_scale``."""
    zero_point = torch.as_tensor(layer.zero_point, dtype=torch.float64)
    if zero_point.dim():
        zero_point = zero_point.view(1, -1, *([1] * (y.dim() - 2)))
    return (y.double() - zero_point) * layer.out_scale


def activation_rank(net, x, labels, *, pneu=5.0):
    """Paper 000's merged criticality scores (see the module docstring).

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64).
    labels : torch.Tensor
        int64 labels ``[B]``.
    pneu : float
        Percentage of each class-oriented list merged into the final list.

    Returns
    -------
    dict
        ``scores`` and ``network`` (layer index -> float64 ``[neurons]``: merged and
        network-oriented scores) and ``classes`` (float64 ``[classes, all neurons]``).
    """
    network, per_class, layout = mean_activations(net, x, labels)
    total = network.numel()
    top = max(1, math.ceil(pneu / 100 * total))
    merged = network.clone()
    for scores in per_class:
        if bool(torch.isnan(scores).any()):
            continue
        best = torch.topk(scores, top).indices
        merged[best] = torch.maximum(merged[best], scores[best])

    def split(t):
        return dict(zip([i for i, _ in layout], torch.split(t, [n for _, n in layout])))

    return {"scores": split(merged), "network": split(network), "classes": per_class}

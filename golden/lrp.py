"""Layer-wise relevance propagation and bit-flip criticality of paper 002 (eq. 2-5).

* **Eq. 2 (z+ rule).** With ``f`` a layer's input activations and ``w+ = max(0, w)``
  its weights, the relevance ``r_c`` of output ``c`` is shared among the inputs in
  proportion to ``f_k * w+_kc``: ``r_k = sum_c f_k w+_kc r_c / sum_k' f_k' w+_k'c``.
  Biases take no relevance, so every layer conserves the total (an output whose
  denominator is 0 passes none on). It runs on the int8 activations and weights: a
  per-tensor activation scale and a per-output-channel weight scale cancel in the ratio.
  Max-pooling passes each pooled relevance to the window's maximal element (the element
  torch's max-pool gradient selects), flattening just reshapes.
* The initial relevance is 1 at the output of the image's label (paper 002: "the target
  class of the image") and 0 elsewhere, so each layer's relevance sums to 1 per image
  (conservation, minus what zero denominators drop).
* **Eq. 3.** Mean relevance ``r_hat`` of every neuron (the int8 output of a ReLU layer,
  before pooling) over the images.
* **Eq. 4.** Feature-aggregated relevance ``rho_k = sum over positions of r_hat_k`` (a
  linear layer's neurons are their own features).
* **Eq. 5.** Feature bit-flip criticality of feature ``c`` of layer ``l-1``:
  ``eta_c = sum_{k,u,v} |w_kcuv| / (C U V) * rho_k`` over the next layer ``l`` with real
  weights (int8 weight times its channel's scale, recovered from the requantization as
  ``M_k / 2**s_k * s_out / s_in``). A linear layer that follows a flattened conv layer
  sees its weight as ``[O, C, H, W]`` kernels over the pooled map; after a linear layer
  ``U = V = 1``.

A neuron's score in the ranking is ``eta`` of its feature (all positions of a conv
feature map share it, as in the paper); its mean relevance ``r_hat`` breaks the ties.
"""

import torch
import torch.nn.functional as F

from .nvf import hidden_layers

__all__ = ["relevance", "feature_relevance", "real_weight", "criticality", "lrp_rank"]


def _zplus(layer, f, r_out):
    """Eq. 2 for one layer: relevance of the inputs ``f`` from that of the outputs."""
    f = f.double().requires_grad_(True)
    w = layer.weight.double().clamp(min=0)
    if layer.kind == "conv":
        z = F.conv2d(f, w, stride=layer.stride, padding=layer.padding)
        flat_f = f
    else:
        flat_f = f.flatten(1)
        z = flat_f @ w.T
    s = torch.where(z > 0, r_out / torch.where(z > 0, z, torch.ones_like(z)),
                    torch.zeros_like(z))
    # sum_c w+_kc s_c is the gradient of (z . s) with respect to f.
    (c,) = torch.autograd.grad(z, f, grad_outputs=s)
    return (f * c).detach()


def _through_pool(net, i, y, r_next):
    """Relevance of layer ``i``'s outputs ``y`` from that of layer ``i+1``'s input."""
    layer = net.layers[i]
    y = y.double().requires_grad_(True)
    h = F.max_pool2d(y, layer.pool) if layer.pool else y
    if layer.flatten:
        h = h.flatten(1)
    (r,) = torch.autograd.grad(h, y, grad_outputs=r_next.reshape(h.shape))
    return r


def relevance(net, x, labels):
    """Per-image relevance of every layer's outputs (eq. 2), from the label's output.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64) ``[B, C, H, W]``.
    labels : torch.Tensor
        int64 labels ``[B]``.

    Returns
    -------
    list of torch.Tensor
        float64 relevance shaped like each layer's ``y``; the last is the initial one-hot.
    """
    _, records = net.forward(x, record=True)
    ys = [y for _, y in records]
    inputs = [x] + [net.next_input(i, ys[i]) for i in range(len(ys) - 1)]
    last = len(net.layers) - 1
    out = [None] * len(net.layers)
    out[last] = F.one_hot(labels, ys[last].shape[1]).double()
    for i in range(last, 0, -1):
        r_in = _zplus(net.layers[i], inputs[i], out[i])
        out[i - 1] = _through_pool(net, i - 1, ys[i - 1], r_in)
    return out


def feature_relevance(r_hat):
    """Eq. 4: sum a layer's mean relevance ``[O, H, W]`` or ``[O]`` over positions."""
    return r_hat.flatten(1).sum(1) if r_hat.dim() > 1 else r_hat


def real_weight(net, j):
    """Real-valued weights of layer ``j`` (int8 times the per-channel scale)."""
    layer = net.layers[j]
    s_in = net.layers[j - 1].out_scale if j > 0 else net.input_scale
    scale = layer.multiplier.double() / torch.pow(2.0, layer.shift.double())
    scale = scale * layer.out_scale / s_in
    return layer.weight.double() * scale.view(-1, *([1] * (layer.weight.dim() - 1)))


def criticality(net, i, rho_next):
    """Eq. 5: bit-flip criticality of the features of layer ``i`` from layer ``i+1``.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    i : int
        Layer whose features are scored (not the last).
    rho_next : torch.Tensor
        Feature relevance (eq. 4) of layer ``i + 1``, ``[C_next]``.

    Returns
    -------
    torch.Tensor
        float64 ``[features of layer i]``.
    """
    w = real_weight(net, i + 1).abs()
    features = net.layers[i].weight.shape[0]
    # [C_next, features, U, V]: a linear layer after a flattened map sees U x V kernels.
    w = w.reshape(w.shape[0], features, -1)
    return torch.einsum("kcu,k->c", w, rho_next) / (w.shape[0] * w.shape[2])


def lrp_rank(net, x, labels):
    """Paper 002's scores of every hidden neuron (see the module docstring).

    Returns
    -------
    dict
        ``scores`` (eq. 5 of the neuron's feature), ``relevance`` (eq. 3 mean relevance)
        and ``feature`` (eq. 5 per feature): layer index -> float64 tensors.
    """
    r_hat = [r.mean(0) for r in relevance(net, x, labels)]
    scores, mean_rel, features = {}, {}, {}
    for i in hidden_layers(net):
        eta = criticality(net, i, feature_relevance(r_hat[i + 1]))
        per_neuron = net.layers[i].neurons // eta.numel()
        scores[i] = eta.repeat_interleave(per_neuron)
        mean_rel[i] = r_hat[i].flatten()
        features[i] = eta
    return {"scores": scores, "relevance": mean_rel, "feature": features}

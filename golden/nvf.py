"""Neuron Vulnerability Factor (NVF): paper 004's Algorithm 1 on the bit-exact IntNet.

For every hidden neuron (the int8 output ``y`` of a conv or linear layer with ReLU,
before pooling; the output layer is not a neuron here, as in the paper's counts) and
every analysed image:

1. **Gradient filter (lines 3-5).** ``L = sigmoid(S)`` with
   ``S = sum_j (E_ct - E_cj)`` over the ``N`` output scores ``E`` (the int8 logits) and
   ``ct`` the golden top-1 class. The image is analysed for the neuron only when
   ``dL/dy != 0``. Gradients come from a *straight-through float surrogate* of the
   IntNet (:func:`gradients`), in float64: each layer computes
   ``clamp(relu?(acc * M / 2**s), lo, 127)`` from its float input, and its forward value
   is replaced by the exact int8 ``y`` (``y_s + (y - y_s).detach()``); with an output
   zero point ``z`` (imported asymmetric networks) the surrogate is
   ``clamp(relu?(acc * M / 2**s) + z, lo, 127)`` and a conv pads with its input zero
   point, so the gradient is zero exactly where the real value ``y - z`` saturates or
   its ReLU is dead. The forward pass
   therefore reproduces the IntNet bit for bit, and the gradient is that of the real-valued
   requantization at the integer operating point: zero through a dead ReLU, a saturated
   output and a non-maximal element of a max-pool window (torch routes the gradient of a
   tied window to one element). The requantization rounding is ignored by the gradient.
   Since ``sigmoid'(S) > 0``, ``dL/dy != 0`` exactly when ``dS/dy != 0``; the filter tests
   ``dS/dy`` because ``sigmoid'(S)`` underflows to 0 in floating point for confident
   images (``S`` reaches thousands of LSBs), which would reject them all.
2. **Deviation search (lines 6-7).** ``r_upper`` is the smallest positive deviation
   ``delta`` of the neuron's int8 output that changes the top-1 class and ``r_lower``
   the largest negative one (closest to zero), with the faulty value ``y + delta`` kept
   in ``[-128, 127]``. A direction where even the extreme value (127 or -128) keeps the
   class contributes no count. The search is a *bisection* on the faulty value,
   vectorized over every (neuron, image, direction) of a layer at once: each round
   evaluates all open intervals as rows of one batch, run from the faulty layer onward by
   the fast injection engine (:func:`flips`), one engine per image. It assumes the class
   change is monotone in ``|delta|`` (once a deviation flips the class, a larger one in
   the same direction does too); where that
   does not hold it returns *a* flipping deviation at the boundary it brackets, not
   necessarily the smallest. ``search="exhaustive"`` evaluates all 255 candidates instead
   (exact, 255 evaluations per pair; for tests and small nets).
3. **Bit mapping (lines 8-9).** The paper prints ``int(sqrt(r))``; its text says the
   index is the bit whose flip reaches the deviation, a base-2 logarithm. Implemented:
   ``bit_upper = floor(log2(r_upper)) + 1`` and ``bit_lower = floor(log2(|r_lower|))``,
   so ``bit_upper`` lies in 1..8 and ``bit_lower`` in 0..7 (``|r_lower| <= 255``).
4. **Counting and NVF (lines 10-15), as written.** ``vul_pos[bit_upper] += 1``,
   ``vul_neg[bit_lower] += 1``, ``vul = (vul_pos + vul_neg) / 2`` and
   ``NVF = sum_{i=1..8} (1/8 * sum_{j=1..i} vul[j]) / |X|``, i.e. each count at index
   ``j`` weighs ``(9 - j) / 8``; index 0 (only ``|r_lower| = 1``) lies outside the sums
   and weighs nothing. ``|X|`` counts every analysed image, filtered ones included.
   Reported in percent.

Evaluations are counted as the oracle is asked: one per (neuron, image, faulty value)
row submitted to :func:`flips`, whether or not the engine then finds the row masked.
"""

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .faults import Fault
from .injection import InjectionEngine

__all__ = ["hidden_layers", "FaultFree", "gradients", "flips", "deviation_search",
           "bit_positions", "nvf_from_counts", "nvf"]

#: Number of bits of a neuron output.
BITS = 8
_LOW, _HIGH = -128, 127


def hidden_layers(net):
    """Indices of the layers whose outputs are ranked neurons (every ReLU layer)."""
    return [i for i, layer in enumerate(net.layers) if layer.relu]


class FaultFree:
    """The fault-free run of ``net`` on int8 images ``x`` and one injection engine per image.

    Attributes
    ----------
    logits : torch.Tensor
        int8 logits ``[B, classes]``.
    top : torch.Tensor
        Golden top-1 class per image.
    ys : list of torch.Tensor
        int8 neuron outputs of every layer (before pooling), ``[B, ...]``.
    """

    def __init__(self, net, x):
        self.net = net
        self.x = x
        self.logits, records = net.forward(x, record=True)
        self.ys = [y for _, y in records]
        self.top = self.logits.argmax(1)
        self._engines = {}

    def engine(self, b):
        """:class:`golden.injection.InjectionEngine` of image ``b`` alone (built once).

        One engine per image lets each row force its own value on its own image, while
        the engine's incremental, masking-aware evaluation does the work.
        """
        if b not in self._engines:
            self._engines[b] = InjectionEngine(self.net, self.x[b:b + 1])
        return self._engines[b]


def gradients(net, x):
    """``dS/dy`` of every layer's neuron outputs on the straight-through surrogate.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64) ``[B, C, H, W]``.

    Returns
    -------
    list of torch.Tensor
        float64 gradients shaped like each layer's ``y`` (see the module docstring).
    """
    # The input requires grad only so that the first layer's output is in the graph.
    h = x.double().requires_grad_(True)
    outs = []
    for i, layer in enumerate(net.layers):
        with torch.no_grad():
            _, y_int = net.layer_step(i, h.detach().round().to(torch.int64))
        weight = layer.weight.double()
        if layer.kind == "conv" and layer.pad_value and layer.padding:
            z = F.conv2d(F.pad(h, [layer.padding] * 4, value=float(layer.pad_value)), weight,
                         stride=layer.stride)
        elif layer.kind == "conv":
            z = F.conv2d(h, weight, stride=layer.stride, padding=layer.padding)
        else:
            z = h.flatten(1) @ weight.T
        shape = (1, -1) + (1,) * (z.dim() - 2)
        scale = (layer.multiplier.double() / torch.pow(2.0, layer.shift.double())).view(shape)
        y_s = (z + layer.bias.double().view(shape)) * scale
        if isinstance(layer.zero_point, torch.Tensor) or layer.zero_point:
            # The output zero point (imported asymmetric networks) offsets the value and
            # the ReLU floor: the surrogate saturates where y - z does.
            zero_point = torch.as_tensor(layer.zero_point, dtype=torch.float64)
            zero_point = zero_point.view(shape) if zero_point.dim() else zero_point
            low = zero_point if layer.relu else torch.tensor(float(_LOW), dtype=torch.float64)
            y_s = (y_s + zero_point).clamp(low, torch.tensor(float(_HIGH), dtype=torch.float64))
        else:
            y_s = y_s.clamp(0 if layer.relu else _LOW, _HIGH)
        y = y_s + (y_int.double() - y_s).detach()
        y.retain_grad()
        outs.append(y)
        h = F.max_pool2d(y, layer.pool) if layer.pool else y
        if layer.flatten:
            h = h.flatten(1)
    logits = h
    top = logits.detach().argmax(1)
    # S = sum_j (E_ct - E_cj) = N * E_ct - sum_j E_cj, summed over images (independent).
    s = logits.shape[1] * logits.gather(1, top.view(-1, 1)).sum() - logits.sum()
    s.backward()
    return [y.grad.detach() for y in outs]


def flips(ff, i, image, neuron, value):
    """Whether forcing neurons of layer ``i`` to values changes the top-1 class.

    Row ``r`` forces neuron ``neuron[r]`` (flat index in one image's output) of image
    ``image[r]`` to the int8 ``value[r]`` (a Byzantine output fault of
    :mod:`golden.faults`) and runs the layers after ``i`` through the image's
    :class:`golden.injection.InjectionEngine`.

    Parameters
    ----------
    ff : FaultFree
    i : int
        Faulty layer.
    image, neuron, value : torch.Tensor
        int64 ``[R]``.

    Returns
    -------
    torch.Tensor
        bool ``[R]``.
    """
    name = ff.net.layers[i].name
    out = torch.zeros(image.numel(), dtype=torch.bool)
    order = torch.argsort(image, stable=True)
    images, counts = torch.unique_consecutive(image[order], return_counts=True)
    for b, rows in zip(images.tolist(), torch.split(order, counts.tolist())):
        faults = [Fault(name, "output", n, model="byzantine", value=v)
                  for n, v in zip(neuron[rows].tolist(), value[rows].tolist())]
        logits = ff.engine(b).run(faults)[:, 0]                       # [rows, classes]
        out[rows] = logits.argmax(1) != ff.top[b]
    return out


def deviation_search(ff, i, image, neuron, search="bisect"):
    """``r_upper`` and ``r_lower`` of (image, neuron) pairs of layer ``i``.

    Parameters
    ----------
    ff : FaultFree
    i : int
        Layer index.
    image, neuron : torch.Tensor
        int64 ``[P]`` pairs to analyse.
    search : {"bisect", "exhaustive"}
        Bisection under the monotonicity assumption, or every candidate value.

    Returns
    -------
    (torch.Tensor, torch.Tensor, torch.Tensor)
        ``r_upper`` (``0`` where no positive deviation flips the class), ``r_lower``
        (``0`` where no negative one does) and the evaluations used per pair, all
        int64 ``[P]``.
    """
    y0 = ff.ys[i].flatten(1)[image, neuron]
    P = y0.numel()
    if search == "exhaustive":
        return _exhaustive(ff, i, image, neuron, y0)
    if search != "bisect":
        raise ValueError(f"unknown deviation search {search!r} (bisect or exhaustive)")
    # Both directions at once: rows 0..P-1 search upwards, P..2P-1 downwards.
    img, neu, base = image.repeat(2), neuron.repeat(2), y0.repeat(2)
    up = torch.arange(2 * P) < P
    # ``ok`` = a value known not to flip (the fault-free one), ``bad`` = one that flips.
    ok = base.clone()
    bad = torch.where(up, torch.full_like(base, _HIGH), torch.full_like(base, _LOW))
    open_ = bad != ok  # a neuron already at the extreme has no deviation that way
    evaluations = open_.to(torch.int64)
    idx = open_.nonzero(as_tuple=True)[0]
    hit = flips(ff, i, img[idx], neu[idx], bad[idx])
    found = torch.zeros(2 * P, dtype=torch.bool)
    found[idx[hit]] = True
    while True:
        active = (found & ((bad - ok).abs() > 1)).nonzero(as_tuple=True)[0]
        if active.numel() == 0:
            break
        mid = torch.div(ok[active] + bad[active], 2, rounding_mode="floor")
        hit = flips(ff, i, img[active], neu[active], mid)
        evaluations[active] += 1
        bad[active] = torch.where(hit, mid, bad[active])
        ok[active] = torch.where(hit, ok[active], mid)
    r = torch.where(found, bad - base, torch.zeros_like(base))
    return r[:P], r[P:], evaluations[:P] + evaluations[P:]


def _exhaustive(ff, i, image, neuron, y0):
    P = y0.numel()
    values = torch.arange(_LOW, _HIGH + 1)
    V = values.numel()
    grid = values.repeat(P)                                   # [P*V], pair-major
    pair = torch.arange(P).repeat_interleave(V)
    differ = grid != y0[pair]
    hit = torch.zeros(P * V, dtype=torch.bool)
    sel = differ.nonzero(as_tuple=True)[0]
    hit[sel] = flips(ff, i, image[pair[sel]], neuron[pair[sel]], grid[sel])
    delta = (grid - y0[pair]).view(P, V)
    hit = hit.view(P, V)
    big = 1 << 10
    pos = torch.where(hit & (delta > 0), delta, torch.full_like(delta, big)).amin(1)
    neg = torch.where(hit & (delta < 0), delta, torch.full_like(delta, -big)).amax(1)
    return (torch.where(pos < big, pos, 0), torch.where(neg > -big, neg, 0),
            differ.view(P, V).sum(1))


def bit_positions(r_upper, r_lower):
    """Lines 8-9: ``floor(log2(r_upper)) + 1`` and ``floor(log2(|r_lower|))``.

    Zero deviations (no flip in that direction) map to ``-1``.
    """
    def floor_log2(r):
        powers = 1 << torch.arange(BITS + 1)
        return (r.abs().view(-1, 1) >= powers.view(1, -1)).sum(1) - 1

    upper = torch.where(r_upper > 0, floor_log2(r_upper) + 1, -1)
    lower = torch.where(r_lower < 0, floor_log2(r_lower), -1)
    return upper, lower


def nvf_from_counts(vul_pos, vul_neg, images):
    """Lines 14-15: NVF in percent from per-neuron bit counters ``[neurons, 9]``."""
    vul = (vul_pos + vul_neg).double() / 2
    j = torch.arange(BITS + 1, dtype=torch.float64)
    weight = torch.where(j >= 1, (BITS + 1 - j) / BITS, torch.zeros_like(j))
    return 100.0 * (vul * weight).sum(1) / images


def nvf(net, x, *, layers=None, neurons=None, search="bisect", batch=64,
        progress=None):
    """NVF of the hidden neurons of ``net`` over int8 images ``x`` (Algorithm 1).

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64) ``[B, C, H, W]``; the paper uses training images.
    layers : list of int, optional
        Layer indices (default: :func:`hidden_layers`).
    neurons : dict of int to torch.Tensor, optional
        Only these flat neuron indices per layer index (the others get NaN).
    search : {"bisect", "exhaustive"}
        Deviation search (see the module docstring).
    batch : int
        Images per gradient pass and per search batch.
    progress : bool, optional
        tqdm bar over layers and image batches; by default only on a terminal.

    Returns
    -------
    dict
        ``scores``: layer index -> float64 ``[neurons]`` NVF in percent;
        ``evaluations``: layer index -> int64 ``[neurons]`` evaluations per neuron;
        ``analysed``: layer index -> int64 ``[neurons]`` images passing the filter.
    """
    layers = hidden_layers(net) if layers is None else list(layers)
    B = x.shape[0]
    scores, evals, analysed = {}, {}, {}
    counts = {}
    for i in layers:
        n_neu = net.layers[i].neurons
        counts[i] = (torch.zeros(n_neu * (BITS + 1), dtype=torch.int64),
                     torch.zeros(n_neu * (BITS + 1), dtype=torch.int64))
        evals[i] = torch.zeros(n_neu, dtype=torch.int64)
        analysed[i] = torch.zeros(n_neu, dtype=torch.int64)
    starts = range(0, B, batch)
    bar = tqdm(total=len(starts) * len(layers), desc="nvf", unit="step",
               disable=None if progress is None else not progress)
    for a in starts:
        xb = x[a:a + batch]
        ff = FaultFree(net, xb)
        grads = gradients(net, xb)
        for i in layers:
            g = grads[i].flatten(1) != 0                           # [b, neurons]
            if neurons is not None:
                mask = torch.zeros(g.shape[1], dtype=torch.bool)
                mask[neurons[i]] = True
                g &= mask.view(1, -1)
            image, neuron = g.nonzero(as_tuple=True)
            analysed[i] += torch.bincount(neuron, minlength=g.shape[1])
            r_up, r_low, used = deviation_search(ff, i, image, neuron, search)
            evals[i] += torch.bincount(neuron, weights=used.double(),
                                       minlength=g.shape[1]).to(torch.int64)
            bit_up, bit_low = bit_positions(r_up, r_low)
            pos, neg = counts[i]
            k = bit_up >= 0
            pos += torch.bincount(neuron[k] * (BITS + 1) + bit_up[k], minlength=pos.numel())
            k = bit_low >= 0
            neg += torch.bincount(neuron[k] * (BITS + 1) + bit_low[k], minlength=neg.numel())
            bar.update(1)
    bar.close()
    for i in layers:
        pos, neg = counts[i]
        s = nvf_from_counts(pos.view(-1, BITS + 1), neg.view(-1, BITS + 1), B)
        if neurons is not None:
            keep = torch.zeros(s.numel(), dtype=torch.bool)
            keep[neurons[i]] = True
            s = torch.where(keep, s, torch.full_like(s, float("nan")))
        scores[i] = s
    return {"scores": scores, "evaluations": evals, "analysed": analysed}

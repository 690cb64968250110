"""Hardening transforms: neuron splitting for the LCU, selective TMR, pruning.

:func:`harden` turns an :class:`~golden.intmodel.IntNet` and a list of
``(layer name, channel)`` pairs into a :class:`~golden.hardened.HardenedNet`:

* ``"lcu"`` (paper 004, Sec. II-C): each protected neuron becomes two halves with the
  same int8 weights and int32 bias and the shift ``s + 1``; the next layer reads both
  halves with the original weight (its input column is duplicated). The LCU merges the
  pair after every inference of the layer. Refused on a layer without ReLU, whose
  outputs can be negative (the LCU's AND and bit-6 reset assume halves in ``[0, 63]``).
  On a channel with an output zero point ``z`` (imported asymmetric networks: after a
  ReLU quantized to uint8, ``z = -128`` and ``v = y - z`` lies in ``[0, 255]``) the
  pair is *wide*: the halves are requantized with zero point 0, i.e. in ``v`` units,
  saturate at ``INT8_MAX`` and the LCU clears bit 7 instead of bit 6
  (:attr:`~golden.hardened.LayerProtection.wide`). The next layer reads the
  offset-free halves, so its bias, which had ``-z * w`` folded in for that input column
  at import, gets ``+z * w`` back. A conv next layer that pads its input with the zero
  point would have to pad the halves with 0 and the other channels with ``z``; that
  per-channel padding is not supported and such a split is refused.
* ``"tmr"`` (paper 000): each protected neuron becomes three identical copies reduced
  by a bitwise or word majority voter; the next layer reads the voted value once, with
  its original weights. The word voter outputs 0 when no two copies agree, which is
  not the real 0 of a channel with an output zero point: it is refused there.
* ``prune`` (paper 000): channels removed with their weights, bias and the next layer's
  input column (= output forced to its zero point, 0 for symmetric networks: the next
  layer's bias gets ``z * w`` for the deleted column, which the import had folded out).

Conv layers: the unit of protection is an output channel (one filter). The accelerator
computes a filter's whole output feature map with the same weights, so a copy of a
neuron is a copy of its filter and protecting one pixel costs the whole channel.
Rankings score pixels (paper 004's neurons); :func:`to_channels` protects a channel
whenever *any* of its pixels is selected (equivalently, it ranks a channel by the
maximum score of its pixels), so every selected neuron is covered and none is left
unprotected by averaging; it prunes a channel only when *all* its pixels are selected,
so no neuron outside the bottom of the ranking is ever removed. The cost figures count
what is really built (every pixel of a protected channel).

:func:`select_top` / :func:`select_bottom` pick neurons from a ranking (a list of
``(layer, index, score)`` sorted by decreasing score, paper 004's NVF in %).
"""

import dataclasses
import math
import os

import torch

from .campaign import file_sha256
from .checkpoint import original_content, quantize_checkpoint
from .evaluation import int8_predictions
from .hardened import VOTERS, HardenedNet, LayerProtection, is_hardened, save_hardened
from .quantize import SHIFT_LIMIT
from .ranking import load_critical

__all__ = ["SCHEMES", "CHECKPOINT_SCHEMES", "select_top", "select_bottom", "to_channels",
           "harden", "cost", "harden_checkpoint"]

#: Protection schemes of :func:`harden`.
SCHEMES = ("lcu", "tmr")
#: Schemes of :func:`harden_checkpoint`: ``tmr-prune`` is paper 000's TMR with pruning.
CHECKPOINT_SCHEMES = ("lcu", "tmr", "tmr-prune")
_COPIES = {"lcu": 2, "tmr": 3}


def select_top(ranking, *, threshold=None, fraction=None):
    """Neurons selected for protection from a ranking.

    Parameters
    ----------
    ranking : list of (str, int, float)
        ``(layer, neuron index, score)`` sorted by decreasing score.
    threshold : float, optional
        Select every neuron with ``score >= threshold``.
    fraction : float, optional
        Select the first ``round(fraction * len(ranking) / 100)`` neurons (the top
        ``fraction`` %, ties broken by the ranking's order).

    Returns
    -------
    list of (str, int)
    """
    if (threshold is None) == (fraction is None):
        raise ValueError("give exactly one of threshold and fraction")
    if fraction is not None:
        if not 0 <= fraction <= 100:
            raise ValueError(f"fraction must lie in [0, 100] %, got {fraction}")
        return [(layer, index) for layer, index, _ in
                ranking[:math.floor(fraction * len(ranking) / 100 + 0.5)]]
    return [(layer, index) for layer, index, score in ranking if score >= threshold]


def select_bottom(ranking, count):
    """The last ``count`` neurons of a ranking (paper 000's pruning candidates)."""
    return [(layer, index) for layer, index, _ in ranking[len(ranking) - count:]] \
        if count else []


def _layer_index(net, name):
    for i, layer in enumerate(net.layers):
        if layer.name == name:
            return i
    raise ValueError(f"unknown layer {name!r} (the network has "
                     f"{', '.join(layer.name for layer in net.layers)})")


def to_channels(net, neurons, *, whole=False):
    """Map neurons (flat ``[O, H, W]`` / ``[O]`` indices) to ``(layer, channel)`` pairs.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    neurons : iterable of (str, int)
    whole : bool
        Keep a conv channel only if every one of its pixels is listed (pruning);
        otherwise keep it if any is (protection).

    Returns
    -------
    list of (str, int)
        Sorted by layer order, then channel.
    """
    hits = {}
    for name, index in neurons:
        i = _layer_index(net, name)
        layer = net.layers[i]
        if not 0 <= index < layer.neurons:
            raise ValueError(f"neuron {index} out of range: layer {name} has "
                             f"{layer.neurons} neurons")
        per = layer.neurons // layer.weight.shape[0]
        hits.setdefault((i, index // per), set()).add(index)
    out = []
    for (i, channel), pixels in sorted(hits.items()):
        layer = net.layers[i]
        if not whole or len(pixels) == layer.neurons // layer.weight.shape[0]:
            out.append((layer.name, channel))
    return out


def _group(net, pairs, what):
    chosen = [set() for _ in net.layers]
    for name, channel in pairs:
        i = _layer_index(net, name)
        if not 0 <= channel < net.layers[i].weight.shape[0]:
            raise ValueError(f"{what} channel {channel} out of range: layer {name} has "
                             f"{net.layers[i].weight.shape[0]} channels")
        chosen[i].add(int(channel))
    return chosen


def _read_inputs(weight, read_source, channels):
    """Select a layer's input columns: ``read_source`` lists, per input the layer will
    read, which of the previous layer's ``channels`` original channels it carries."""
    O, I = weight.shape[0], weight.shape[1]
    if I % channels:
        raise ValueError(f"cannot map {I} inputs onto {channels} channels")
    shape = weight.shape
    w = weight.reshape(O, channels, -1)[:, read_source]
    return w.reshape(O, -1) if len(shape) == 2 else w.reshape(O, len(read_source), *shape[2:])


def harden(net, scheme, protect, *, prune=(), voter="bitwise", label=None):
    """Build the hardened network.

    Parameters
    ----------
    net : golden.intmodel.IntNet
        The original integer network (not modified).
    scheme : str
        ``"lcu"`` or ``"tmr"`` (see the module docstring).
    protect : iterable of (str, int)
        ``(layer name, output channel)`` to protect (a neuron of a linear layer).
    prune : iterable of (str, int)
        ``(layer name, output channel)`` to remove (hidden layers only).
    voter : str
        ``"bitwise"`` or ``"word"`` (TMR only).
    label : str, optional
        Scheme name recorded in the result (default: ``scheme``).

    Returns
    -------
    HardenedNet

    Raises
    ------
    ValueError
        Unknown scheme, voter, layer or channel; LCU on a layer without ReLU; a channel
        both protected and pruned; pruning the output layer or a whole layer; a shift
        that cannot take the extra bit of a split; the word voter on a channel with an
        output zero point; an LCU split with a zero point before a conv that pads with it.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    if voter not in VOTERS:
        raise ValueError(f"unknown voter {voter!r} (choose from {', '.join(VOTERS)})")
    protected = _group(net, protect, "protected")
    pruned = _group(net, prune, "pruned")
    last = len(net.layers) - 1
    copies = _COPIES[scheme]
    layers, protection = [], []
    read_source, prev_channels, prev_offset = None, None, None
    for i, layer in enumerate(net.layers):
        O = layer.weight.shape[0]
        zero_point = layer.zero_points
        if protected[i] & pruned[i]:
            raise ValueError(f"layer {layer.name}: channels {sorted(protected[i] & pruned[i])} "
                             f"are both protected and pruned")
        if pruned[i] and i == last:
            raise ValueError(f"cannot prune the output layer {layer.name}")
        if len(pruned[i]) == O:
            raise ValueError(f"cannot prune every channel of layer {layer.name}")
        if scheme == "lcu" and protected[i] and not layer.relu:
            raise ValueError(f"LCU refused on layer {layer.name}: its outputs can be negative "
                             f"(no ReLU), and the LCU assumes non-negative halves")
        offset_protected = sorted(c for c in protected[i] if zero_point[c])
        if scheme == "tmr" and voter == "word" and offset_protected:
            raise ValueError(f"word voter refused on layer {layer.name}: its output zero "
                             f"point is not 0, and the word voter outputs 0 when no two "
                             f"copies agree (use the bitwise voter)")
        if scheme == "lcu" and offset_protected and i < last:
            following = net.layers[i + 1]
            if following.kind == "conv" and following.padding and following.pad_value:
                raise ValueError(
                    f"LCU refused on layer {layer.name}: the next conv {following.name} "
                    f"pads its input with the zero point {following.pad_value}, and the "
                    f"offset-free halves would need padding 0 (per-channel padding is not "
                    f"supported)")
        source, split, wide, pairs, triples, read = [], [], [], [], [], []
        for c in range(O):
            if c in pruned[i]:
                continue
            k = copies if c in protected[i] else 1
            first = len(source)
            source += [c] * k
            split += [k == 2] * k
            if k == 2:
                pairs.append([first, first + 1])
                wide.append(bool(zero_point[c]))
                read += [first, first + 1]
            elif k == 3:
                triples.append([first, first + 1, first + 2])
                read.append(first)
            else:
                read.append(first)
        source_t = torch.tensor(source, dtype=torch.int64)
        weight, bias = layer.weight, layer.bias
        if prev_offset is not None and bool(prev_offset.any()):
            # The previous layer's split halves and pruned channels contribute their
            # values without the zero point the import folded into this bias.
            columns = weight.reshape(O, prev_channels, -1).sum(-1)
            bias = bias + columns @ prev_offset
        if read_source is not None:
            weight = _read_inputs(weight, read_source, prev_channels)
        shift = layer.shift[source_t] + torch.tensor(split, dtype=torch.int64)
        if bool((shift > SHIFT_LIMIT).any()):
            raise ValueError(f"layer {layer.name}: a split neuron's shift would exceed "
                             f"{SHIFT_LIMIT}")
        changes = {}
        if isinstance(layer.zero_point, torch.Tensor) or layer.zero_point:
            # Copies keep their channel's zero point; wide halves are requantized
            # offset-free (zero point 0, in units of v = y - z).
            changes["zero_point"] = zero_point[source_t] * ~torch.tensor(split, dtype=torch.bool)
        layers.append(dataclasses.replace(
            layer, weight=weight[source_t].clone(), bias=bias[source_t].clone(),
            multiplier=layer.multiplier[source_t].clone(), shift=shift, **changes))
        read_t = torch.tensor(read, dtype=torch.int64)
        protection.append(LayerProtection(
            source=source_t, lcu=torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2),
            tmr=torch.tensor(triples, dtype=torch.int64).reshape(-1, 3), read=read_t,
            pruned=torch.tensor(sorted(pruned[i]), dtype=torch.int64),
            wide=torch.tensor(wide, dtype=torch.bool)))
        read_source, prev_channels = source_t[read_t], O
        offset = pruned[i] | (protected[i] if scheme == "lcu" else set())
        prev_offset = zero_point * torch.isin(torch.arange(O),
                                              torch.tensor(sorted(offset), dtype=torch.int64))
    return HardenedNet(layers=layers, input_scale=net.input_scale,
                       input_shape=net.input_shape,
                       input_zero_point=net.input_zero_point,
                       protection=protection, scheme=label or scheme, voter=voter)


def cost(net):
    """Size of an integer network (original or hardened), per image.

    Returns
    -------
    dict
        ``neurons`` (output elements of every conv/linear layer, copies included, before
        pooling), ``hidden_neurons`` (the same without the output layer: paper 004's
        count), ``parameters`` (weights + biases), ``macs`` (multiply-accumulates per
        image) and ``memory_bytes`` (int8 weights + int32 biases).
    """
    out = {"neurons": 0, "hidden_neurons": 0, "parameters": 0, "macs": 0,
           "memory_bytes": 0}
    for i, layer in enumerate(net.layers):
        positions = layer.neurons // layer.weight.shape[0]
        out["neurons"] += layer.neurons
        if i < len(net.layers) - 1:
            out["hidden_neurons"] += layer.neurons
        out["parameters"] += layer.weight.numel() + layer.bias.numel()
        out["macs"] += layer.weight.numel() * positions
        out["memory_bytes"] += layer.weight.numel() + 4 * layer.bias.numel()
    return out


def _accuracy(net, x, labels):
    predictions = int8_predictions(net, x)
    return predictions, float((predictions == labels).double().mean())


def harden_checkpoint(model_path, critical_path, *, scheme, threshold=None, fraction=None,
                      voter=None, data_dir=None, dataset=None, output):
    """Protect the critical neurons of a checkpoint, write HARDENED.pt, report the cost.

    Selection: the ranking is a CRITICAL.json of the same model
    (:func:`golden.ranking.load_critical`, sorted by decreasing score); ``threshold``
    protects every neuron whose score (NVF in %) is at least ``threshold``, ``fraction``
    the first ``fraction`` % of the ranked list (ties in the file's order)
    (:func:`select_top`). Conv neurons (pixels) map to whole output channels
    (:func:`to_channels`). ``tmr-prune`` is paper 000's flow: TMR on the selected
    neurons and pruning of as many neurons from the bottom of the ranking (the bottom
    ``fraction`` % with ``fraction``); the output layer is never pruned.

    Parameters
    ----------
    model_path : str or os.PathLike
        Checkpoint written by ``neuroharden train`` (MODEL.pt), a quantized ``.onnx`` or
        a ``QNET.npz`` (:func:`golden.checkpoint.quantize_checkpoint`), not a hardened
        network. An imported network's hardened file records its dataset in place of the
        original checkpoint (:func:`golden.checkpoint.original_content`).
    critical_path : str or os.PathLike
        Neuron ranking of that model (CRITICAL.json).
    scheme : {"lcu", "tmr", "tmr-prune"}
        LCU splitting, selective TMR, or TMR and pruning.
    threshold, fraction : float
        Exactly one: the selection of :func:`select_top`.
    voter : {"bitwise", "word"}, optional
        TMR voter (default bitwise); only for the tmr schemes.
    data_dir : str, optional
        Dataset directory (default: the one used for training).
    dataset : str, optional
        Image source (:func:`golden.checkpoint.quantize_checkpoint`; for a ``.onnx`` or
        ``QNET.npz`` model, default ``digits``).
    output : str or os.PathLike
        Hardened network file to write (:func:`golden.hardened.save_hardened`).

    Returns
    -------
    dict
        The selection (``scheme``, ``voter``, ``threshold``, ``fraction``, ``critical``,
        ``selected_neurons``, ``protected_neurons``, ``protected_channels``,
        ``pruned_channels``, ``pruned_neurons``, as stored in the file), ``model``,
        ``model_sha256``, ``output``, ``layers`` (protected and pruned channels per
        layer), ``before`` and ``after`` (:func:`cost` of the original and hardened
        networks), ``images``, ``int8_accuracy_before``, ``int8_accuracy_after`` (over
        the test split) and ``changed_predictions`` (test images whose prediction
        changed: split neurons round, pruning removes).

    Raises
    ------
    ValueError
        A bad scheme, selection or voter, an output that would overwrite an input, a
        hardened or unreadable model, a ranking of another model, or a layer the scheme
        refuses.
    """
    if scheme not in CHECKPOINT_SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(CHECKPOINT_SCHEMES)}, "
                         f"not {scheme!r}")
    if (threshold is None) == (fraction is None):
        raise ValueError("give exactly one of threshold and fraction")
    if voter is not None and scheme == "lcu":
        raise ValueError("voter applies to the tmr schemes only")
    if os.path.abspath(output) in (os.path.abspath(model_path),
                                   os.path.abspath(critical_path)):
        raise ValueError("output must not overwrite the model or the ranking")
    if is_hardened(model_path):
        raise ValueError(f"{model_path}: is already a hardened network; give the original "
                         f"model checkpoint")
    net, _, metadata, data = quantize_checkpoint(model_path, data_dir, dataset)
    model_sha = file_sha256(model_path)
    ranking = [(n["layer"], n["index"], n["score"])
               for n in load_critical(critical_path, model_path)["neurons"]]
    top = select_top(ranking, threshold=threshold, fraction=fraction)
    protect = to_channels(net, top)
    prune = (to_channels(net, [n for n in select_bottom(ranking, len(top))
                               if n[0] != net.layers[-1].name], whole=True)
             if scheme == "tmr-prune" else [])
    hardened = harden(net, "lcu" if scheme == "lcu" else "tmr", protect, prune=prune,
                      voter=voter or "bitwise", label=scheme)
    before, after = cost(net), cost(hardened)
    x = data.x_test
    pred_before, acc_before = _accuracy(net, x, data.y_test)
    pred_after, acc_after = _accuracy(hardened, x, data.y_test)
    per_layer = {layer.name: {"protected": sorted(c for n, c in protect if n == layer.name),
                              "pruned": sorted(c for n, c in prune if n == layer.name)}
                 for layer in net.layers}
    pixels = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
    selection = {"scheme": scheme, "voter": hardened.voter, "threshold": threshold,
                 "fraction": fraction, "critical": str(critical_path),
                 "selected_neurons": len(top),
                 "protected_neurons": sum(pixels[name] for name, _ in protect),
                 "protected_channels": len(protect), "pruned_channels": len(prune),
                 "pruned_neurons": sum(pixels[name] for name, _ in prune)}
    save_hardened(hardened, output, model_sha256=model_sha,
                  checkpoint=original_content(model_path, metadata),
                  selection=selection)
    return {**selection, "model": str(model_path), "model_sha256": model_sha,
            "output": str(output), "layers": per_layer, "before": before, "after": after,
            "images": len(x), "int8_accuracy_before": acc_before,
            "int8_accuracy_after": acc_after,
            "changed_predictions": int((pred_before != pred_after).sum())}

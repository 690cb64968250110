"""Post-training int8 quantization of a float network to the numeric contract.

* Weights: symmetric int8 per output channel, ``s_w[c] = max|w[c]| / 127``,
  ``q = round(w / s_w)`` in ``[-127, 127]`` (an all-zero channel gets ``s_w = 1``).
* Activations: symmetric int8 per tensor. The input scale and every layer's output scale
  are calibrated on (the first :data:`CALIBRATION_IMAGES` images of) the training split:
  ``s = max|a| / 127`` of the float activation after ReLU (for the output layer, of the
  logits).
* Bias: int32, ``round(b / (s_in * s_w[c]))`` saturated to the int32 range.
* Requantization: per output channel the effective scale ``m = s_in * s_w[c] / s_out``
  becomes an unsigned 16-bit multiplier and a right shift, ``m ~= M / 2**s``
  (:func:`fixed_point`). M is normalised to ``[2**15, 2**16)`` (16 significant bits)
  whenever ``s`` then lies in ``[0, 62]``; a smaller scale keeps ``s = 62`` with a
  denormal M, a scale of ``2**16`` or more saturates to ``M = 2**16 - 1, s = 0``. The
  shift stops at 62, not the contract's 63, so that int64 tensors evaluate the rounding
  term exactly (see :func:`golden.numerics.requantize`).

Rounding is half to even (``torch.round``) for weights, bias and input; M rounds half up.
"""

import math

import torch

from .intmodel import IntLayer, IntNet
from .numerics import MULTIPLIER_WIDTH

__all__ = ["CALIBRATION_IMAGES", "fixed_point", "weight_scales", "quantize"]

#: Training images used to calibrate the activation scales.
CALIBRATION_IMAGES = 2048
#: Largest shift produced (see the module docstring).
SHIFT_LIMIT = 62

_INT32 = (-(1 << 31), (1 << 31) - 1)


def fixed_point(scale):
    """Turn a positive real scale into ``(M, s)`` with ``scale ~= M / 2**s``.

    Parameters
    ----------
    scale : float
        Effective requantization scale ``s_in * s_w / s_out``.

    Returns
    -------
    (int, int)
        Multiplier ``M`` in ``[0, 2**16)`` (normalised to ``[2**15, 2**16)`` where
        possible) and shift ``s`` in ``[0, 62]``.
    """
    if scale <= 0:
        return 0, 0
    fraction, exponent = math.frexp(scale)  # scale = fraction * 2**exponent, fraction in [0.5, 1)
    multiplier = math.floor(fraction * (1 << MULTIPLIER_WIDTH) + 0.5)
    shift = MULTIPLIER_WIDTH - exponent
    if multiplier == 1 << MULTIPLIER_WIDTH:  # rounding carried into bit 16
        multiplier >>= 1
        shift -= 1
    if shift > SHIFT_LIMIT:
        return math.floor(scale * 2.0 ** SHIFT_LIMIT + 0.5), SHIFT_LIMIT
    if shift < 0:
        return (1 << MULTIPLIER_WIDTH) - 1, 0
    return multiplier, shift


def _activation_scale(values):
    peak = float(values.abs().max())
    return peak / 127 if peak > 0 else 1.0


def weight_scales(net):
    """Per-output-channel weight scales ``s_w[c] = max|w[c]| / 127`` of every layer.

    Parameters
    ----------
    net : golden.models.Net

    Returns
    -------
    list of torch.Tensor
        float64 ``[O]`` per layer, in layer order (1 for an all-zero channel).
    """
    scales = []
    for spec in net.specs:
        s_w = net.layers[spec.name].weight.detach().double().flatten(1).abs().amax(1) / 127
        scales.append(torch.where(s_w > 0, s_w, torch.ones_like(s_w)))
    return scales


def quantize(net, x_calibration):
    """Quantize a float network into an :class:`~golden.intmodel.IntNet`.

    Parameters
    ----------
    net : golden.models.Net
        Trained float network.
    x_calibration : torch.Tensor
        float calibration images ``[N, C, H, W]`` (from the training split).

    Returns
    -------
    IntNet
    """
    net.eval()
    with torch.no_grad():
        _, outputs = net(x_calibration, record=True)
    s_in = input_scale = _activation_scale(x_calibration)
    layers = []
    for spec, output, s_w in zip(net.specs, outputs, weight_scales(net)):
        module = net.layers[spec.name]
        weight = module.weight.detach().double()
        q_weight = torch.round(weight / s_w.view(-1, *([1] * (weight.dim() - 1))))
        bias = torch.round(module.bias.detach().double() / (s_in * s_w)).clamp(*_INT32)
        s_out = _activation_scale(output)
        pairs = [fixed_point(s_in * float(s) / s_out) for s in s_w]
        layers.append(IntLayer(
            name=spec.name, kind=spec.kind,
            weight=q_weight.clamp(-127, 127).to(torch.int64), bias=bias.to(torch.int64),
            multiplier=torch.tensor([m for m, _ in pairs], dtype=torch.int64),
            shift=torch.tensor([s for _, s in pairs], dtype=torch.int64),
            relu=spec.relu, stride=spec.stride if spec.kind == "conv" else 1,
            padding=spec.padding if spec.kind == "conv" else 0, pool=spec.pool,
            flatten=spec.flatten, out_scale=s_out,
            out_hw=tuple(output.shape[2:]) if spec.kind == "conv" else ()))
        s_in = s_out
    return IntNet(layers=layers, input_scale=input_scale, input_shape=tuple(net.input_shape))


"""Cross-check of the integer model against PyTorch's own quantized engine.

Every layer of an :class:`~golden.intmodel.IntNet` is rebuilt as a
``torch.ao.nn.quantized.Conv2d`` / ``Linear`` (x86 back end, FBGEMM kernels) from the same
int8 weights with their per-channel scales, the bias ``bias * s_in * s_w`` in float, and
the same input and output scales, then fed the very int8 input the integer model gave that
layer. Both outputs are compared element by element.

Activations use ``quint8`` with zero point 0 (hidden inputs are ReLU outputs or
non-negative images, in [0, 127]); the logits layer uses zero point 128 so that
``q - 128`` is the signed int8 logit. torch saturates at 255, so its ReLU-layer outputs are
clamped to 127 afterwards, which commutes with its monotone rounding. torch requantizes in
float32 (``round(acc * s_in * s_w / s_out)``, round half to even) where the contract uses
the 16-bit fixed-point multiplier and rounds half up, so a few outputs may differ by one LSB.
"""

import warnings
from dataclasses import dataclass

import torch
import torch.ao.nn.quantized as nnq

__all__ = ["LayerAgreement", "crosscheck"]


@dataclass
class LayerAgreement:
    """Agreement of one layer's int8 outputs with torch.ao's.

    Attributes
    ----------
    name : str
        Layer name.
    total : int
        Outputs compared.
    identical : int
        Outputs that are equal.
    max_difference : int
        Largest absolute difference in LSB.
    """

    name: str
    total: int
    identical: int
    max_difference: int

    @property
    def fraction(self):
        """Fraction of identical outputs."""
        return self.identical / self.total


def _torch_layer(layer, s_in, s_w):
    # The int8 weights enter as they are: no float round trip can move them.
    weight = torch._make_per_channel_quantized_tensor(
        layer.weight.to(torch.int8), s_w, torch.zeros_like(layer.multiplier), 0)
    bias = (layer.bias.double() * s_in * s_w).float()
    out_channels, in_features = layer.weight.shape[:2]
    if layer.kind == "conv":
        module = nnq.Conv2d(in_features, out_channels, tuple(layer.weight.shape[2:]),
                            stride=layer.stride, padding=layer.padding)
    else:
        module = nnq.Linear(in_features, out_channels)
    module.set_weight_bias(weight, bias)
    module.scale = layer.out_scale
    module.zero_point = 0 if layer.relu else 128
    return module


def crosscheck(intnet, weight_scales, x_int, engine="x86"):
    """Compare every layer of ``intnet`` with torch.ao's quantized kernels.

    Parameters
    ----------
    intnet : IntNet
        The integer network.
    weight_scales : list of torch.Tensor
        Per-output-channel float weight scales of each layer
        (:func:`golden.quantize.weight_scales` of the float network).
    x_int : torch.Tensor
        int8 input images (int64), e.g. ``intnet.quantize_input(x_test)``.
    engine : str
        ``torch.backends.quantized.engine`` to use (``"x86"`` or ``"fbgemm"``).

    Returns
    -------
    list of LayerAgreement
        One per layer, in order.
    """
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch deprecates its quantized tensors; they are the very engine checked here.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return _compare(intnet, weight_scales, x_int)
        finally:
            torch.backends.quantized.engine = previous


def _compare(intnet, weight_scales, x_int):
    results = []
    x, s_in = x_int, intnet.input_scale
    for i, (layer, s_w) in enumerate(zip(intnet.layers, weight_scales)):
        _, y = intnet.layer_step(i, x)
        module = _torch_layer(layer, s_in, s_w.double())
        feed = x.flatten(1) if layer.kind == "linear" else x
        q_in = torch._make_per_tensor_quantized_tensor(feed.to(torch.uint8), s_in, 0)
        theirs = module(q_in).int_repr().to(torch.int64) - module.zero_point
        if layer.relu:
            theirs = theirs.clamp(max=127)
        difference = (theirs - y).abs()
        results.append(LayerAgreement(layer.name, difference.numel(),
                                      int((difference == 0).sum()), int(difference.max())))
        x, s_in = intnet.next_input(i, y), layer.out_scale
    return results

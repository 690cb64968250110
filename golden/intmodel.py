"""The bit-exact integer model: the golden reference the RTL and fault campaigns match.

An :class:`IntNet` is a chain of :class:`IntLayer`. Layer ``i`` takes int8 activations
``x`` (int64 tensors, batch first), computes the int32 accumulator
``acc = add_bias(conv_or_matmul(x, weight), bias)`` and the neuron output
``y = requantize(acc, multiplier, shift, relu)`` per output channel with the shared
contract of :mod:`golden.numerics`, then max-pools and flattens ``y`` into the input of
layer ``i + 1``. The last layer has no ReLU and gives int8 logits.

The convolutions and matrix products run in float64, which is exact here: every product
and partial sum is an integer far below 2**53 (|acc| <= 128 * 128 * fan-in).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .numerics import add_bias, requantize

__all__ = ["IntLayer", "IntNet"]


@dataclass
class IntLayer:
    """One quantized conv or linear layer and what follows it.

    Attributes
    ----------
    name : str
        ``"conv1"``, ``"fc1"``, ...
    kind : str
        ``"conv"`` or ``"linear"``.
    weight : torch.Tensor
        int64 tensor of int8 values, ``[O, I, kh, kw]`` (conv) or ``[O, I]`` (linear).
    bias : torch.Tensor
        int64 ``[O]`` of int32 values.
    multiplier, shift : torch.Tensor
        int64 ``[O]``: requantization multiplier M in ``[0, 2**16)`` and shift s in
        ``[0, 63]`` per output channel.
    relu : bool
        ReLU in the requantization (every hidden layer).
    stride, padding : int
        Convolution geometry (1 and 0 for linear layers).
    pool : int
        Max-pool kernel = stride applied to the int8 output before the next layer, 0 = none.
    flatten : bool
        Flatten the (pooled) output for the next layer.
    out_scale : float
        Real value of one LSB of the int8 output.
    out_hw : tuple of int
        Spatial size ``(H, W)`` of a conv layer's output before pooling; ``()`` for linear.
    pad_value : int
        Value the convolution pads its int8 input with: the input zero point of an
        imported asymmetric network (ONNX pads a quantized input with its zero point,
        real value 0; the zero point itself is folded into ``bias``), else 0.
    zero_point : int or torch.Tensor
        Output zero point, 0 or int64 ``[O]`` in ``[-128, 127]``: the per-column offset
        of :func:`golden.numerics.requantize` (imported asymmetric networks only).
    """

    name: str
    kind: str
    weight: torch.Tensor
    bias: torch.Tensor
    multiplier: torch.Tensor
    shift: torch.Tensor
    relu: bool
    stride: int
    padding: int
    pool: int
    flatten: bool
    out_scale: float
    out_hw: tuple = ()
    pad_value: int = 0
    zero_point: object = 0

    @property
    def neurons(self):
        """Output elements per image before pooling (``O*H*W`` for conv, ``O`` for linear)."""
        return self.weight.shape[0] * math.prod(self.out_hw)

    @property
    def zero_points(self):
        """The output zero point of every channel, int64 ``[O]`` (zeros when symmetric)."""
        return torch.as_tensor(self.zero_point, dtype=torch.int64).expand(
            self.weight.shape[0]).clone()


def _per_channel(t, ndim):
    # Broadcast a per-output-channel vector against [B, O] or [B, O, H, W].
    return t.view(1, -1, *([1] * (ndim - 2)))


@dataclass
class IntNet:
    """A chain of integer layers with its input quantization.

    Attributes
    ----------
    layers : list of IntLayer
    input_scale : float
        Real value of one LSB of the int8 input.
    input_shape : tuple of int
        ``(C, H, W)`` of one input image.
    input_zero_point : int
        int8 zero point of the input (imported asymmetric networks), else 0.
    """

    layers: list
    input_scale: float
    input_shape: tuple
    input_zero_point: int = 0

    def quantize_input(self, x):
        """Quantize float images ``[B, C, H, W]`` to int8 values (round half to even).

        Returns
        -------
        torch.Tensor
            int64 tensor of values in ``[-128, 127]``, same shape.
        """
        q = torch.round(x.double() / self.input_scale)
        if self.input_zero_point:
            q = q + self.input_zero_point
        return q.clamp(-128, 127).to(torch.int64)

    def layer_step(self, i, x):
        """Run layer ``i`` on int8 input ``x``.

        Parameters
        ----------
        i : int
            Layer index.
        x : torch.Tensor
            int64 int8 values: ``[B, C, H, W]`` for conv; for linear any ``[B, ...]``,
            flattened to ``[B, I]``.

        Returns
        -------
        (torch.Tensor, torch.Tensor)
            ``acc`` (int64 of int32 values, bias added with 32-bit wrap-around) and ``y``
            (int64 of int8 values, requantized), both ``[B, O, H, W]`` or ``[B, O]``.
        """
        layer = self.layers[i]
        weight = layer.weight.double()
        if layer.kind == "conv" and layer.pad_value and layer.padding:
            padded = F.pad(x.double(), [layer.padding] * 4, value=float(layer.pad_value))
            z = F.conv2d(padded, weight, stride=layer.stride)
        elif layer.kind == "conv":
            z = F.conv2d(x.double(), weight, stride=layer.stride, padding=layer.padding)
        else:
            z = x.flatten(1).double() @ weight.T
        ndim = z.dim()
        acc = add_bias(z.round().to(torch.int64), _per_channel(layer.bias, ndim))
        zero_point = layer.zero_point
        if isinstance(zero_point, torch.Tensor):
            zero_point = _per_channel(zero_point, ndim)
        y = requantize(acc, _per_channel(layer.multiplier, ndim),
                       _per_channel(layer.shift, ndim), layer.relu, zero_point=zero_point)
        return acc, y

    def next_input(self, i, y):
        """Apply layer ``i``'s max-pool and flatten to its output ``y``."""
        layer = self.layers[i]
        if layer.pool:
            # Max-pooling small integers through float64 is exact.
            y = F.max_pool2d(y.double(), layer.pool).to(torch.int64)
        return y.flatten(1) if layer.flatten else y

    def forward(self, x, *, start=0, record=False):
        """Run layers ``start`` to the end.

        Parameters
        ----------
        x : torch.Tensor
            int64 int8 input of layer ``start``.
        start : int
            First layer to run.
        record : bool
            Also return ``(acc, y)`` of every layer run.

        Returns
        -------
        torch.Tensor or (torch.Tensor, list of tuple)
            int8 logits ``[B, 10]`` (int64); with ``record``, also ``records`` where
            ``records[i - start] = (acc, y)`` of layer ``i``.
        """
        records = []
        for i in range(start, len(self.layers)):
            acc, y = self.layer_step(i, x)
            if record:
                records.append((acc, y))
            x = self.next_input(i, y)
        return (x, records) if record else x

    def predict(self, x_int):
        """Top-1 classes of int8 inputs (argmax of the int8 logits, ties to the lowest index)."""
        return torch.argmax(self.forward(x_int), dim=1)


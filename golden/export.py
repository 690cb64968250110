"""Self-contained npz export of an integer network (``neuroharden export``).

Format specification, ``format_version`` 1
-----------------------------------------

An uncompressed numpy ``.npz`` archive that ``numpy.load(path, allow_pickle=False)``
reads; every entry is a plain numeric or fixed-width unicode array. ``L`` is the number
of layers, ``i`` a layer index from 0.

=====================  ==========  =========================================================
key                    dtype        meaning
=====================  ==========  =========================================================
``format``             ``<U``       the string ``"neuroharden-qnet"``
``format_version``     int64        scalar, 1
``input_scale``        float64      scalar: real value of one LSB of the int8 input
``input_shape``        int64 [3]    ``(C, H, W)`` of one input image
``names``              ``<U`` [L]   layer names (``conv1``, ``fc1``, ...)
``kinds``              ``<U`` [L]   ``conv`` or ``linear``
``relu``               bool [L]     ReLU in the requantization
``stride``             int64 [L]    conv stride (1 for linear)
``padding``            int64 [L]    conv zero padding on every side (0 for linear)
``pool``               int64 [L]    max-pool kernel = stride after the layer, 0 = none
``flatten``            bool [L]     flatten the (pooled) output for the next layer
``out_scale``          float64 [L]  real value of one LSB of each layer's int8 output
``weight_{i}``         int8         ``[O, I, kh, kw]`` (conv) or ``[O, I]`` (linear)
``bias_{i}``           int32 [O]    bias in accumulator units
``multiplier_{i}``     uint16 [O]   requantization multiplier M
``shift_{i}``          uint8 [O]    requantization shift s (0..63)
=====================  ==========  =========================================================

``format_version`` 2 (networks imported with zero points)
--------------------------------------------------------
Written only when the network has a nonzero zero point (an imported asymmetric ONNX
network), so that a reader of version 1 refuses it rather than ignoring the offsets;
symmetric networks are still written as version 1. Version 2 has every entry above and:

=====================  ==========  =========================================================
``input_zero_point``   int64        scalar: int8 zero point of the input
``pad_value``          int64 [L]    value a conv pads its int8 input with (its zero point)
``zero_point_{i}``     int8 [O]     output zero point, added after the shift and the ReLU
=====================  ==========  =========================================================

and then ``q_in = clip(round_half_even(image / input_scale) + input_zero_point, -128, 127)``,
the convolution pads with ``pad_value`` instead of 0, and ``y = clip(relu?(...) + z, z if
relu else -128, 127)`` with ``z = zero_point_{i}`` (the input zero point of a layer is
already folded into its bias).

Semantics of layer ``i`` on int8 input ``x`` (batch first; a linear layer first flattens
its input to ``[B, I]``): ``acc = wrap32(conv2d(x, weight, stride, padding) + bias)``
(or ``x @ weight.T + bias``), then per output channel
``y = clip(relu?((acc * M + (2**s >> 1)) >> s), 0 if relu else -128, 127)`` with an
arithmetic shift; then ``y`` is max-pooled (kernel = stride = ``pool``) and flattened
as flagged, giving the input of layer ``i + 1``. The input is
``clip(round_half_even(image / input_scale), -128, 127)``; the last layer's ``y`` are the
int8 logits and the prediction is their argmax (ties to the lowest index).
"""


import zipfile
import zlib

import numpy as np
import torch

from .hardened import HardenedNet
from .intmodel import IntLayer, IntNet
from .atomic import atomic_output

__all__ = ["FORMAT", "FORMAT_VERSION", "export_intnet", "import_intnet"]

#: Value of the ``format`` entry.
FORMAT = "neuroharden-qnet"
#: Value of the ``format_version`` entry of a symmetric network.
FORMAT_VERSION = 1
#: Version written for networks with zero points; both are read.
ZERO_POINT_VERSION = 2


def export_intnet(intnet, path):
    """Write ``intnet`` to ``path`` in the npz format above, atomically.

    Parameters
    ----------
    intnet : IntNet
    path : str or os.PathLike

    Raises
    ------
    ValueError
        ``intnet`` is a hardened network: this format has no protection map.
    """
    if isinstance(intnet, HardenedNet):
        raise ValueError("a hardened network cannot be exported: the npz format has no "
                         "protection map (export the original model)")
    layers = intnet.layers
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "input_scale": np.array(intnet.input_scale, dtype=np.float64),
        "input_shape": np.array(intnet.input_shape, dtype=np.int64),
        "names": np.array([layer.name for layer in layers]),
        "kinds": np.array([layer.kind for layer in layers]),
        "relu": np.array([layer.relu for layer in layers], dtype=bool),
        "stride": np.array([layer.stride for layer in layers], dtype=np.int64),
        "padding": np.array([layer.padding for layer in layers], dtype=np.int64),
        "pool": np.array([layer.pool for layer in layers], dtype=np.int64),
        "flatten": np.array([layer.flatten for layer in layers], dtype=bool),
        "out_scale": np.array([layer.out_scale for layer in layers], dtype=np.float64),
    }
    if _has_zero_points(intnet):
        arrays["format_version"] = np.array(ZERO_POINT_VERSION, dtype=np.int64)
        arrays["input_zero_point"] = np.array(intnet.input_zero_point, dtype=np.int64)
        arrays["pad_value"] = np.array([layer.pad_value for layer in layers], dtype=np.int64)
        for i, layer in enumerate(layers):
            arrays[f"zero_point_{i}"] = (torch.as_tensor(layer.zero_point).expand(
                layer.weight.shape[0]).numpy().astype(np.int8))
    for i, layer in enumerate(layers):
        arrays[f"weight_{i}"] = layer.weight.numpy().astype(np.int8)
        arrays[f"bias_{i}"] = layer.bias.numpy().astype(np.int32)
        arrays[f"multiplier_{i}"] = layer.multiplier.numpy().astype(np.uint16)
        arrays[f"shift_{i}"] = layer.shift.numpy().astype(np.uint8)
    with atomic_output(path) as file:
        np.savez(file, **arrays)


def _has_zero_points(intnet):
    return bool(getattr(intnet, "input_zero_point", 0)) or any(
        layer.pad_value or torch.as_tensor(layer.zero_point).any() for layer in intnet.layers)


def import_intnet(path):
    """Read an npz written by :func:`export_intnet` back into an :class:`IntNet`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    IntNet

    Raises
    ------
    ValueError
        Not a readable neuroharden integer network of a supported version.
    """
    try:
        # np.load would also read a .npy file or guess at other bytes: an npz is a zip.
        if not zipfile.is_zipfile(path):
            raise ValueError("not a zip archive")
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"{path}: not a readable npz file "
                         f"({str(error).splitlines()[0] if str(error) else error!r})") from None
    if str(data.get("format", "")) != FORMAT:
        raise ValueError(f"{path}: not a neuroharden integer network")
    try:
        version = int(data["format_version"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: damaged integer network (no readable "
                         f"format_version)") from None
    if version not in (FORMAT_VERSION, ZERO_POINT_VERSION):
        raise ValueError(f"{path}: format_version {version} is not supported (expected "
                         f"{FORMAT_VERSION} or {ZERO_POINT_VERSION})")
    try:
        return _intnet(data)
    except KeyError as error:
        raise ValueError(f"{path}: missing entry {error}") from None
    except (TypeError, ValueError, IndexError, RuntimeError) as error:
        raise ValueError(f"{path}: damaged integer network "
                         f"({str(error).splitlines()[0] if str(error) else error!r})") from None


def _intnet(data):
    zero_points = int(data["format_version"]) == ZERO_POINT_VERSION
    input_shape = tuple(int(v) for v in data["input_shape"])
    layers, shape = [], input_shape
    for i, (name, kind) in enumerate(zip(data["names"], data["kinds"])):
        weight = torch.from_numpy(data[f"weight_{i}"].astype(np.int64))
        stride, padding, pool = (int(data[key][i]) for key in ("stride", "padding", "pool"))
        out_hw = ()
        if kind == "conv":
            out_hw = tuple((size + 2 * padding - k) // stride + 1
                           for size, k in zip(shape[1:], weight.shape[2:]))
            shape = (weight.shape[0], *(size // pool if pool else size for size in out_hw))
        else:
            shape = (weight.shape[0],)
        layers.append(IntLayer(
            name=str(name), kind=str(kind), weight=weight,
            bias=torch.from_numpy(data[f"bias_{i}"].astype(np.int64)),
            multiplier=torch.from_numpy(data[f"multiplier_{i}"].astype(np.int64)),
            shift=torch.from_numpy(data[f"shift_{i}"].astype(np.int64)),
            relu=bool(data["relu"][i]), stride=stride, padding=padding, pool=pool,
            flatten=bool(data["flatten"][i]), out_scale=float(data["out_scale"][i]),
            out_hw=out_hw))
        if zero_points:
            layers[-1].pad_value = int(data["pad_value"][i])
            offsets = torch.from_numpy(data[f"zero_point_{i}"].astype(np.int64))
            layers[-1].zero_point = offsets if offsets.any() else 0
    return IntNet(layers=layers, input_scale=float(data["input_scale"]),
                  input_shape=input_shape,
                  input_zero_point=int(data["input_zero_point"]) if zero_points else 0)

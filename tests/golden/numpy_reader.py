"""A plain-numpy reader of the exported integer network (independent of golden/).

It follows only the format specification of :mod:`golden.export`, so the tests can check
that the file alone reproduces the integer model's predictions.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv(x, weight, stride, padding):
    """Exact int64 convolution of ``x`` ``[B, I, H, W]`` with ``weight`` ``[O, I, kh, kw]``."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = weight.shape[2:]
    windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    # windows: [B, I, H, W, kh, kw]; exact int64 contraction over I, kh, kw.
    return np.einsum("bihwxy,oixy->bohw", windows, weight, optimize=True)


def _maxpool(y, k):
    b, c, h, w = y.shape
    y = y[:, :, :h // k * k, :w // k * k].reshape(b, c, h // k, k, w // k, k)
    return y.max(axis=(3, 5))


def predict(path, images):
    """Top-1 classes of float images ``[N, C, H, W]`` through the npz network at ``path``."""
    with np.load(path, allow_pickle=False) as archive:
        net = {key: archive[key] for key in archive.files}
    assert str(net["format"]) == "neuroharden-qnet" and int(net["format_version"]) == 1
    x = np.clip(np.round(images.astype(np.float64) / float(net["input_scale"])), -128, 127)
    x = x.astype(np.int64)
    for i, kind in enumerate(net["kinds"]):
        weight = net[f"weight_{i}"].astype(np.int64)
        if kind == "conv":
            acc = conv(x, weight, int(net["stride"][i]), int(net["padding"][i]))
            per_channel = (1, -1, 1, 1)
        else:
            acc = x.reshape(len(x), -1) @ weight.T
            per_channel = (1, -1)
        acc = acc + net[f"bias_{i}"].astype(np.int64).reshape(per_channel)
        acc = ((acc + 2**31) & (2**32 - 1)) - 2**31
        m = net[f"multiplier_{i}"].astype(np.int64).reshape(per_channel)
        s = net[f"shift_{i}"].astype(np.int64).reshape(per_channel)
        y = (acc * m + ((1 << s) >> 1)) >> s
        x = np.clip(y, 0 if net["relu"][i] else -128, 127)
        if net["pool"][i]:
            x = _maxpool(x, int(net["pool"][i]))
        if net["flatten"][i]:
            x = x.reshape(len(x), -1)
    return np.argmax(x, axis=1)

"""Small dataset files in the published formats (MNIST IDX, CIFAR-10 binary) for tests."""

import gzip
import struct

import numpy as np


def write_idx(path, magic, array, compress=False):
    """An IDX file (MNIST's format): big-endian magic and dimensions, then uint8 data."""
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", n) for n in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    with (gzip.open if compress else open)(path, "wb") as file:
        file.write(data)


def write_mnist(directory, compress=False, train=5, test=3):
    """The four MNIST files of ``train`` and ``test`` random images into ``directory``."""
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", 0x803,
                  rng.integers(0, 256, (n, 28, 28)), compress)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", 0x801,
                  np.arange(n) % 10, compress)


def write_cifar(path, labels):
    """A CIFAR-10 binary batch of random images with ``labels``; returns its records."""
    rng = np.random.default_rng(1)
    records = np.concatenate([np.array(labels, dtype=np.uint8)[:, None],
                              rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)], axis=1)
    path.write_bytes(records.tobytes())
    return records

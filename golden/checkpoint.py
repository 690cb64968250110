"""Network files read as integer networks, the one loader of every command.

Four kinds of file are accepted wherever a model is (``.onnx`` and ``.npz`` told apart
by their name ending, the two ``.pt`` by their content):

* ``MODEL.pt`` written by ``neuroharden train`` (:func:`golden.models.save_checkpoint`):
  calibrated on its training split and quantized (:func:`golden.quantize.quantize`);
* ``HARDENED.pt`` written by ``neuroharden harden`` (:func:`golden.hardened.save_hardened`):
  holds its integer network and the original file's content, read as it is;
* ``MODEL.onnx``, a quantized ONNX network (:func:`golden.onnx_import.import_onnx`);
* ``QNET.npz`` written by ``neuroharden import`` or ``export``
  (:func:`golden.export.import_intnet`).

A checkpoint records its dataset. An imported network (``.onnx``, ``.npz``) does not:
its images come from the ``dataset`` given (``--dataset``), ``digits`` when none is, and
its input shape must match that dataset's images
(:func:`golden.onnx_import.check_input_shape`). An imported network has no float network
(``None`` in place of it): ``eval`` reports its float accuracy as unavailable; everything
else (every ranking method, LRP included, hardening, campaigns, the RTL) works on the
integer network.

This module sits above :mod:`golden.quantize`, :mod:`golden.hardened`,
:mod:`golden.onnx_import`, :mod:`golden.export` and :mod:`golden.intmodel`, which import
none of it.
"""

import os

import torch

from .datasets import load_dataset
from .export import import_intnet
from .hardened import is_hardened, load_hardened
from .models import Net, load_checkpoint
from .onnx_import import check_input_shape, import_onnx
from .quantize import CALIBRATION_IMAGES, quantize

__all__ = ["IMPORTED_FORMAT", "IMPORTED_SUFFIXES", "DEFAULT_IMPORTED_DATASET",
           "MODEL_FILES", "is_imported", "quantize_checkpoint", "load_hardened_checkpoint",
           "load_intnet", "original_content", "dataset_field"]

#: ``format`` of the record that stands for an imported network's file inside a hardened
#: network (in place of the original checkpoint).
IMPORTED_FORMAT = "neuroharden-imported"
#: File name endings of imported integer networks.
IMPORTED_SUFFIXES = (".onnx", ".npz")
#: Dataset of an imported network when none is given.
DEFAULT_IMPORTED_DATASET = "digits"
#: The accepted files, for help texts.
MODEL_FILES = ("MODEL.pt (neuroharden train), HARDENED.pt (neuroharden harden), a quantized "
               "MODEL.onnx or QNET.npz (neuroharden import)")


def is_imported(model_path):
    """Whether ``model_path`` names an imported network (``.onnx`` or ``.npz``)."""
    return str(model_path).lower().endswith(IMPORTED_SUFFIXES)


def quantize_checkpoint(model_path, data_dir=None, dataset=None):
    """Load any accepted network file as an integer network, with its dataset.

    Parameters
    ----------
    model_path : str or os.PathLike
        Checkpoint written by ``neuroharden train``, a hardened network file, a quantized
        ``.onnx`` or a ``QNET.npz`` (see the module docstring).
    data_dir : str, optional
        Dataset directory; defaults to the one recorded in the checkpoint.
    dataset : str, optional
        Image source: for an imported network, default ``digits``, its input shape
        checked against it; for a checkpoint, instead of the recorded one.

    Returns
    -------
    (IntNet, golden.models.Net or None, dict, golden.datasets.Dataset)
        The integer network, the float network (``None`` for an imported one), the
        metadata (for an imported network ``model`` (the file's stem), ``dataset``,
        ``data_dir``, ``source`` ("onnx" or "npz") and ``format``
        (:data:`IMPORTED_FORMAT`)) and the dataset. A hardened network file is read as
        it is, not re-quantized: :func:`load_hardened_checkpoint`.

    Raises
    ------
    ValueError
        Unreadable or unsupported file, unknown dataset, or an input shape that does
        not match the dataset.
    """
    if is_imported(model_path):
        return _load_imported(model_path, data_dir, dataset)
    if is_hardened(model_path):
        return load_hardened_checkpoint(model_path, data_dir, dataset)
    net, metadata = load_checkpoint(model_path)
    data = load_dataset(dataset or metadata.get("dataset", "digits"), net.input_shape,
                        data_dir if data_dir is not None else metadata.get("data_dir"))
    intnet = quantize(net, data.x_train[:CALIBRATION_IMAGES])
    return intnet, net, metadata, data


def _load_imported(model_path, data_dir, dataset):
    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such file")
    name = dataset or DEFAULT_IMPORTED_DATASET
    if str(model_path).lower().endswith(".onnx"):
        intnet, source = import_onnx(model_path).intnet, "onnx"
    else:
        intnet, source = import_intnet(model_path), "npz"
    try:
        check_input_shape(intnet.input_shape, name)
    except ValueError as error:
        raise ValueError(f"{model_path}: {error}") from None
    metadata = {"format": IMPORTED_FORMAT, "source": source,
                "model": os.path.splitext(os.path.basename(str(model_path)))[0],
                "dataset": name, "data_dir": None if data_dir is None else str(data_dir)}
    return intnet, None, metadata, load_dataset(name, intnet.input_shape, data_dir)


def original_content(model_path, metadata):
    """What a hardened network stores of the file it was made from.

    Parameters
    ----------
    model_path : str or os.PathLike
    metadata : dict
        The metadata :func:`quantize_checkpoint` returned for it.

    Returns
    -------
    dict
        A checkpoint's content (read with ``weights_only=True``), or for an imported
        network its metadata (format :data:`IMPORTED_FORMAT`, source, model, dataset,
        data_dir), so that the hardened file reads back with the same images.
    """
    if metadata.get("format") == IMPORTED_FORMAT:
        return dict(metadata)
    return torch.load(model_path, map_location="cpu", weights_only=True)


def load_hardened_checkpoint(path, data_dir=None, dataset=None):
    """Load a hardened file the way :func:`quantize_checkpoint` loads a model.

    Parameters
    ----------
    path : str or os.PathLike
    data_dir : str, optional
        Dataset directory; defaults to the one recorded at training time.
    dataset : str, optional
        Image source instead of the recorded one.

    Returns
    -------
    (HardenedNet, golden.models.Net or None, dict, golden.datasets.Dataset)
        The hardened integer network, the *original* float network (``None`` when it
        was made from an imported network), the original file's metadata (plus
        ``hardened``: scheme, voter, model_sha256 and the selection) and the dataset.

    Raises
    ------
    ValueError
        Not a hardened network file, or a damaged one.
    """
    net, rest = load_hardened(path)
    checkpoint = rest["checkpoint"]
    float_net = None
    if not (isinstance(checkpoint, dict) and checkpoint.get("format") == IMPORTED_FORMAT):
        try:
            float_net = Net(checkpoint["model"])
            float_net.load_state_dict(checkpoint["state_dict"])
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: damaged original checkpoint inside ({error})") from None
        float_net.eval()
    metadata = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    metadata["hardened"] = {"scheme": net.scheme, "voter": net.voter,
                            "model_sha256": rest["model_sha256"],
                            "selection": rest["selection"]}
    name = dataset or metadata.get("dataset", "digits")
    if float_net is None:
        check_input_shape(net.input_shape, name)
    data = load_dataset(name, net.input_shape,
                        data_dir if data_dir is not None else metadata.get("data_dir"))
    return net, float_net, metadata, data


def load_intnet(model_path, data_dir=None, dataset=None):
    """The integer network of a network file (:func:`quantize_checkpoint`), deterministically.

    A checkpoint is loaded (``weights_only=True``), its float model rebuilt, the
    activation scales calibrated on the training split of its dataset and quantized with
    :func:`golden.quantize.quantize`; the other files are read as they are. Nothing is
    cached.

    Parameters
    ----------
    model_path : str or os.PathLike
        Any file of :func:`quantize_checkpoint`.
    data_dir : str, optional
        Dataset directory; defaults to the one recorded at training time.
    dataset : str, optional
        Image source (:func:`quantize_checkpoint`).

    Returns
    -------
    IntNet

    Raises
    ------
    ValueError
        Unreadable checkpoint or dataset.
    """
    return quantize_checkpoint(model_path, data_dir, dataset)[0]


def dataset_field(model_path, dataset, data):
    """The dataset entry of a campaign's identity: ``{"dataset": name}`` or nothing.

    A checkpoint's images follow from its file (its fingerprint covers them), so its
    campaigns keep the identity they always had; an imported network, or a checkpoint
    given another image source, runs on images its file does not name, and two such
    campaigns on different datasets must not resume each other.

    Parameters
    ----------
    model_path : str or os.PathLike
    dataset : str or None
        The image source asked for.
    data : golden.datasets.Dataset
        The one loaded.

    Returns
    -------
    dict
    """
    return {"dataset": data.name} if dataset is not None or is_imported(model_path) else {}

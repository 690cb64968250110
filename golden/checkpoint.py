"""Network files read as integer networks: a trained checkpoint or a hardened network.

A file written by ``neuroharden train`` (:func:`golden.models.save_checkpoint`) is
calibrated on its training split and quantized (:func:`golden.quantize.quantize`); a
file written by ``neuroharden harden`` (:func:`golden.hardened.save_hardened`) already
holds its integer network and the original checkpoint, and is read as it is. Either
comes with its float network, metadata and dataset, so every command takes both.

This module sits above :mod:`golden.quantize`, :mod:`golden.hardened` and
:mod:`golden.intmodel`, which import none of it.
"""

from .datasets import load_dataset
from .hardened import is_hardened, load_hardened
from .models import Net, load_checkpoint
from .quantize import CALIBRATION_IMAGES, quantize

__all__ = ["quantize_checkpoint", "load_hardened_checkpoint", "load_intnet"]


def quantize_checkpoint(model_path, data_dir=None):
    """Load a checkpoint, calibrate on its training split and quantize it.

    Parameters
    ----------
    model_path : str or os.PathLike
        Checkpoint written by ``neuroharden train``, or a hardened network file.
    data_dir : str, optional
        Dataset directory; defaults to the one recorded in the checkpoint.

    Returns
    -------
    (IntNet, golden.models.Net, dict, golden.datasets.Dataset)
        The integer network, the float network, the checkpoint metadata and the dataset.
        A hardened network file (``neuroharden harden``) is read as it is, not
        re-quantized: :func:`load_hardened_checkpoint`.

    Raises
    ------
    ValueError
        Unreadable checkpoint or dataset.
    """
    if is_hardened(model_path):
        return load_hardened_checkpoint(model_path, data_dir)
    net, metadata = load_checkpoint(model_path)
    data = load_dataset(metadata.get("dataset", "digits"), net.input_shape,
                        data_dir if data_dir is not None else metadata.get("data_dir"))
    intnet = quantize(net, data.x_train[:CALIBRATION_IMAGES])
    return intnet, net, metadata, data


def load_hardened_checkpoint(path, data_dir=None):
    """Load a hardened file the way :func:`quantize_checkpoint` loads a model.

    Parameters
    ----------
    path : str or os.PathLike
    data_dir : str, optional
        Dataset directory; defaults to the one recorded at training time.

    Returns
    -------
    (HardenedNet, golden.models.Net, dict, golden.datasets.Dataset)
        The hardened integer network, the *original* float network, the original
        checkpoint's metadata (plus ``hardened``: scheme, voter, model_sha256 and the
        selection) and the dataset.

    Raises
    ------
    ValueError
        Not a hardened network file, or a damaged one.
    """
    net, rest = load_hardened(path)
    checkpoint = rest["checkpoint"]
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
    data = load_dataset(metadata.get("dataset", "digits"), float_net.input_shape,
                        data_dir if data_dir is not None else metadata.get("data_dir"))
    return net, float_net, metadata, data


def load_intnet(model_path, data_dir=None):
    """The integer network of a checkpoint (:func:`quantize_checkpoint`), deterministically.

    Loads the checkpoint (``weights_only=True``), rebuilds the float model, calibrates
    the activation scales on the training split of its dataset and quantizes it with
    :func:`golden.quantize.quantize`. Nothing is cached.

    Parameters
    ----------
    model_path : str or os.PathLike
        Checkpoint written by ``neuroharden train``.
    data_dir : str, optional
        Dataset directory; defaults to the one recorded at training time.

    Returns
    -------
    IntNet

    Raises
    ------
    ValueError
        Unreadable checkpoint or dataset.
    """
    return quantize_checkpoint(model_path, data_dir)[0]

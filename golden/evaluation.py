"""Test-set accuracy of a checkpoint in float and through the bit-exact int8 model."""

import torch

from .checkpoint import quantize_checkpoint
from .train import accuracy

__all__ = ["EVAL_BATCH", "int8_predictions", "evaluate_checkpoint"]

#: Images per integer forward pass (bounds the float64 convolution buffers).
EVAL_BATCH = 500


def int8_predictions(intnet, x):
    """Top-1 classes of float images ``x`` through the integer network.

    Parameters
    ----------
    intnet : golden.intmodel.IntNet
    x : torch.Tensor
        float images ``[N, C, H, W]``.

    Returns
    -------
    torch.Tensor
        int64 ``[N]`` predicted classes.
    """
    return torch.cat([intnet.predict(intnet.quantize_input(x[i:i + EVAL_BATCH]))
                      for i in range(0, len(x), EVAL_BATCH)])


def evaluate_checkpoint(model_path, data_dir=None, dataset=None):
    """Float and int8 accuracy of a network file on its dataset's test split.

    Parameters
    ----------
    model_path : str or os.PathLike
        Any file of :func:`golden.checkpoint.quantize_checkpoint` (checkpoint, hardened
        network, ``.onnx``, ``QNET.npz``).
    data_dir : str, optional
        Dataset directory; defaults to the one recorded in the checkpoint.
    dataset : str, optional
        Image source (required in effect for an imported network; default ``digits``).

    Returns
    -------
    dict
        ``model``, ``dataset``, ``images`` (test images), ``float_accuracy`` and
        ``int8_accuracy`` (fractions in [0, 1]) and ``predictions`` (int8 top-1 per test
        image, a list of int). ``float_accuracy`` is ``None`` for an imported network:
        only its integer network is known.
    """
    intnet, net, metadata, data = quantize_checkpoint(model_path, data_dir, dataset)
    predictions = int8_predictions(intnet, data.x_test)
    return {
        "model": metadata["model"],
        "dataset": data.name,
        "images": len(data.y_test),
        "float_accuracy": None if net is None else accuracy(net, data.x_test, data.y_test),
        "int8_accuracy": float((predictions == data.y_test).double().mean()),
        "predictions": predictions.tolist(),
    }

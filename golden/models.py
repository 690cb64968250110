"""The three float networks (MLP-7, LeNet-5, an AlexNet-style CNN) and their checkpoints.

Every network is a plain chain of conv / linear layers described by :class:`LayerSpec`;
each layer is followed by its ReLU (every hidden layer has one, the output layer none),
an optional max-pool and an optional flatten. There is no batch norm, so the chain maps
one to one onto the integer model of :mod:`golden.intmodel`. A linear layer flattens its
input itself, so MLP-7 takes images ``[N, 1, 28, 28]`` like LeNet-5.

* ``mlp7``: 784-1024-512-512-256-256-256-10 on 1x28x28 (2,816 protectable neurons).
* ``lenet5``: conv 6@24x24 (5x5), pool 2, conv 16@8x8 (5x5), pool 2, fc 120, fc 84, fc 10
  on 1x28x28 (4,684 protectable neurons, the count of paper 004).
* ``alexnet``: five 3x3 convs (16, 32, 48, 48, 32 channels, padding 1, pool 2 after the
  1st, 2nd and 5th), fc 128, fc 128, fc 10 on 3x32x32. Grey images (digits, MNIST) are
  repeated over the three channels (:func:`golden.datasets.fit_shape`). It is a
  scaled-down AlexNet that trains in well under two minutes on two CPU cores.

A checkpoint is a plain dict of tensors and primitive metadata, readable with
``torch.load(path, weights_only=True)``; see :func:`save_checkpoint`.
"""

import os
import pickle
import zipfile
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from .atomic import atomic_output

__all__ = [
    "LayerSpec", "ARCHITECTURES", "MODEL_NAMES", "Net",
    "protectable_neurons", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT",
]

#: Tag stored in every checkpoint so that a foreign file is recognised.
CHECKPOINT_FORMAT = "neuroharden-model-1"


@dataclass(frozen=True)
class LayerSpec:
    """One conv or linear layer and what follows it.

    Attributes
    ----------
    name : str
        Layer name (``"conv1"``, ``"fc1"``, ...).
    kind : str
        ``"conv"`` or ``"linear"``.
    inputs, outputs : int
        Input and output channels (conv) or features (linear).
    kernel, stride, padding : int
        Square convolution geometry (ignored for linear layers).
    relu : bool
        ReLU after the layer (every hidden layer; not the output layer).
    pool : int
        Max-pool kernel = stride applied after the ReLU, 0 for none.
    flatten : bool
        Flatten the (pooled) output for the next layer.
    """

    name: str
    kind: str
    inputs: int
    outputs: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0
    relu: bool = True
    pool: int = 0
    flatten: bool = False


def _fc(name, inputs, outputs, relu=True):
    return LayerSpec(name, "linear", inputs, outputs, relu=relu)


#: Model name -> (input shape (C, H, W), layer chain).
ARCHITECTURES = {
    "mlp7": ((1, 28, 28), [
        _fc("fc1", 784, 1024), _fc("fc2", 1024, 512), _fc("fc3", 512, 512),
        _fc("fc4", 512, 256), _fc("fc5", 256, 256), _fc("fc6", 256, 256),
        _fc("fc7", 256, 10, relu=False),
    ]),
    "lenet5": ((1, 28, 28), [
        LayerSpec("conv1", "conv", 1, 6, kernel=5, pool=2),
        LayerSpec("conv2", "conv", 6, 16, kernel=5, pool=2, flatten=True),
        _fc("fc1", 256, 120), _fc("fc2", 120, 84), _fc("fc3", 84, 10, relu=False),
    ]),
    "alexnet": ((3, 32, 32), [
        LayerSpec("conv1", "conv", 3, 16, kernel=3, padding=1, pool=2),
        LayerSpec("conv2", "conv", 16, 32, kernel=3, padding=1, pool=2),
        LayerSpec("conv3", "conv", 32, 48, kernel=3, padding=1),
        LayerSpec("conv4", "conv", 48, 48, kernel=3, padding=1),
        LayerSpec("conv5", "conv", 48, 32, kernel=3, padding=1, pool=2, flatten=True),
        _fc("fc1", 512, 128), _fc("fc2", 128, 128), _fc("fc3", 128, 10, relu=False),
    ]),
}

#: Names accepted by :func:`build_model`.
MODEL_NAMES = tuple(ARCHITECTURES)


class Net(nn.Module):
    """A float network built from a chain of :class:`LayerSpec`.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    """

    def __init__(self, name):
        super().__init__()
        if name not in ARCHITECTURES:
            raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODEL_NAMES)})")
        self.name = name
        self.input_shape, self.specs = ARCHITECTURES[name]
        self.layers = nn.ModuleDict({
            spec.name: (nn.Conv2d(spec.inputs, spec.outputs, spec.kernel, spec.stride,
                                  spec.padding)
                        if spec.kind == "conv" else nn.Linear(spec.inputs, spec.outputs))
            for spec in self.specs})

    def forward(self, x, record=False):
        """Run the network on images ``[N, C, H, W]``.

        Parameters
        ----------
        x : torch.Tensor
            float images.
        record : bool
            Also return each layer's output after ReLU and before pooling.

        Returns
        -------
        torch.Tensor or (torch.Tensor, list of torch.Tensor)
            The logits ``[N, 10]``, and with ``record`` the per-layer outputs.
        """
        outputs = []
        for spec in self.specs:
            layer = self.layers[spec.name]
            x = layer(x.flatten(1) if spec.kind == "linear" else x)
            if spec.relu:
                x = F.relu(x)
            outputs.append(x)
            if spec.pool:
                x = F.max_pool2d(x, spec.pool)
            if spec.flatten:
                x = x.flatten(1)
        return (x, outputs) if record else x


def protectable_neurons(name):
    """Protectable neurons per layer: the output elements of every hidden layer.

    The output layer is not counted, nor are pooling results (paper 004's counts).

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.

    Returns
    -------
    dict of str to int
        Layer name -> neurons per image, in layer order.
    """
    net = Net(name)
    with torch.no_grad():
        _, outputs = net(torch.zeros(1, *net.input_shape), record=True)
    return {spec.name: out[0].numel() for spec, out in zip(net.specs, outputs) if spec.relu}


def save_checkpoint(net, path, **metadata):
    """Write a model checkpoint atomically.

    The file holds ``{"format": CHECKPOINT_FORMAT, "model": name, "input_shape": [C, H, W],
    "state_dict": {name: tensor}, **metadata}``; metadata values must be primitives
    (str, int, float, bool, None) so that ``torch.load(..., weights_only=True)`` reads it.

    Parameters
    ----------
    net : Net
        The trained network.
    path : str or os.PathLike
        Destination file.
    **metadata
        Extra primitive fields (dataset, seed, accuracy, ...).
    """
    payload = {"format": CHECKPOINT_FORMAT, "model": net.name,
               "input_shape": list(net.input_shape),
               "state_dict": {k: v.detach().clone() for k, v in net.state_dict().items()},
               **metadata}
    with atomic_output(path) as file:
        torch.save(payload, file)


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint` without unpickling.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    (Net, dict)
        The network in eval mode with its weights, and the checkpoint's metadata
        (everything but ``state_dict``).

    Raises
    ------
    ValueError
        The file is missing, corrupt, or not a neuroharden model checkpoint.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a model checkpoint (not a torch zip archive)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(f"{path}: refused, it holds objects other than tensors "
                         "and plain values") from None
    except Exception as error:
        # torch raises many types for a damaged archive.
        raise ValueError(f"{path}: damaged model checkpoint ({type(error).__name__})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a neuroharden model checkpoint")
    name = payload.get("model")
    if name not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown model {name!r}")
    net = Net(name)
    try:
        net.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError, TypeError) as error:
        raise ValueError(f"{path}: weights do not match model {name}") from error
    net.eval()
    return net, {k: v for k, v in payload.items() if k != "state_dict"}

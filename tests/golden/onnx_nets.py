"""Small PyTorch networks exported to ONNX and quantized by onnxruntime, for the ONNX tests.

The networks are untrained (seeded random weights, a positive bias so that most ReLUs
fire): the tests check arithmetic agreement, not accuracy. Calibration uses the first
images of the digits training split upsampled to 28x28.
"""

import warnings

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from neuroharden.golden.datasets import load_dataset


class SmallCNN(nn.Module):
    """conv(3x3, pad 1) -> ReLU -> maxpool 2 -> conv(3x3, stride 2) -> ReLU -> flatten -> fc -> fc."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2)
        self.fc1 = nn.Linear(8 * 6 * 6, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.flatten(F.relu(self.conv2(x)), 1)
        return self.fc2(F.relu(self.fc1(x)))


class SmallMLP(nn.Module):
    """flatten -> fc -> ReLU -> fc (ONNX Gemm) ."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 48)
        self.fc2 = nn.Linear(48, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


NETS = {"cnn": SmallCNN, "mlp": SmallMLP}


def images(count=64, split="train"):
    """float32 digits images ``[count, 1, 28, 28]``."""
    data = load_dataset("digits", (1, 28, 28))
    return (data.x_train if split == "train" else data.x_test)[:count]


def float_model(name, path, seed=0):
    """Export the seeded network ``name`` to ``path`` (opset 17, dynamic batch)."""
    torch.manual_seed(seed)
    net = NETS[name]().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.bias.add_(0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (images(1),), str(path), input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "n"}},
                          opset_version=17, dynamo=False)
    return net


def _chains(model):
    # Tensor chains a Relu links: its input, its output and what Relu-MaxPool-Flatten pass on.
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    chains = []
    for node in model.graph.node:
        if node.op_type == "Relu":
            chain, tensor = [node.input[0], node.output[0]], node.output[0]
            while len(consumers.get(tensor, [])) == 1 and \
                    consumers[tensor][0].op_type in ("MaxPool", "Flatten", "Reshape"):
                tensor = consumers[tensor][0].output[0]
                chain.append(tensor)
            chains.append(chain)
    return chains


def _shared_scale_overrides(path, x):
    """Symmetric activations: one range per Relu chain, so that the Relu stays exact.

    onnxruntime keeps a Relu as a float op between two quantizations with symmetric
    activations; giving its input and output one range makes both scales equal.
    """
    import onnxruntime as ort

    model = onnx.load(str(path))
    chains = _chains(model)
    names = [t for chain in chains for t in chain]
    for name in names:
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = dict(zip(names, session.run(names, {"x": x.numpy()})))
    overrides = {}
    for chain in chains:
        peak = float(max(np.abs(values[t]).max() for t in chain[1:]))
        for name in chain:
            overrides[name] = [{"rmin": np.float32(-peak), "rmax": np.float32(peak)}]
    return overrides


def quantized_model(name, directory, *, qdq=True, unsigned=True, per_channel=True,
                    symmetric=False, seed=0, calibration=64):
    """Build, export and quantize a network with ``onnxruntime.quantization.quantize_static``.

    Weights are 7-bit (``reduce_range``), as onnxruntime advises for CPUs without
    AVX-VNNI: there its 8-bit x int8 kernels add pairs of products in 16 bits with
    saturation (VPMADDUBSW), so with full-range weights onnxruntime itself departs from
    the exact arithmetic (measured on an AVX2 CPU: up to 45 LSB in a first conv layer with
    uint8 activations, 11 LSB with int8 ones) and would be no reference. The integer
    model is exact either way.

    Returns
    -------
    (pathlib.Path, torch.nn.Module)
        The quantized ``.onnx`` file and the float network.
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    tag = f"{name}-{'qdq' if qdq else 'qop'}-{'u8' if unsigned else 's8'}-" \
          f"{'pc' if per_channel else 'pt'}-{'sym' if symmetric else 'asym'}-{seed}"
    float_path, path = directory / f"{tag}-float.onnx", directory / f"{tag}.onnx"
    net = float_model(name, float_path, seed)
    x = images(calibration)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": x[i:i + 16].numpy()} for i in range(0, len(x), 16)])

        def get_next(self):
            return next(self.batches, None)

    extra = {"ActivationSymmetric": symmetric}
    if symmetric:
        extra["TensorQuantOverrides"] = _shared_scale_overrides(float_path, x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(str(float_path), str(path), Reader(),
                        quant_format=QuantFormat.QDQ if qdq else QuantFormat.QOperator,
                        activation_type=QuantType.QUInt8 if unsigned else QuantType.QInt8,
                        weight_type=QuantType.QInt8, per_channel=per_channel,
                        reduce_range=True, extra_options=extra)
    return path, net


def imported_net(name, directory, **options):
    """:func:`quantized_model` imported into an IntNet (digits shape): ``(IntNet, path)``."""
    from neuroharden.golden.onnx_import import import_onnx

    path, _ = quantized_model(name, directory, **options)
    return import_onnx(path, dataset="digits").intnet, path

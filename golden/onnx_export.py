"""Export an integer network as a QDQ ONNX model (``neuroharden export --format onnx``).

Each layer becomes ``DequantizeLinear(x) -> Conv | Gemm -> [Relu] -> QuantizeLinear``
with its int8 weights behind a ``DequantizeLinear`` and its int32 bias behind another,
the layout onnxruntime fuses into its integer kernels. The contract's fixed-point rescale
``M / 2**s`` is carried exactly by the scales: the output scale is the layer's
``out_scale`` and the weight scale of channel ``c`` is
``s_w[c] = (M[c] / 2**s[c]) * s_out / s_in``, so that ``s_in * s_w[c] / s_out`` is the
contract's multiplier up to float32 rounding. onnxruntime rounds half to even in float32
where the contract rounds half up, so a few values may differ by one LSB.

Zero points: the input zero point of a layer (``pad_value``) is the ``DequantizeLinear``
zero point of its input, and the bias is unfolded back to ``bias + zx * sum(w)``; the
output zero point is the ``QuantizeLinear`` one. Max-pooling and flattening run on the
int8 tensor directly. The graph's one output ``logits`` is the dequantized int8 logits
(tensor ``OUTPUT_INT8`` before it), so the exported file imports back with
:func:`golden.onnx_import.import_onnx`.

Hardened networks (:class:`~golden.hardened.HardenedNet`) are refused: their LCU and TMR
corrections are not exported yet.
"""

import numpy as np
import torch

from .atomic import atomic_output

__all__ = ["OUTPUT", "OUTPUT_INT8", "intnet_to_onnx", "export_onnx"]

#: Names of the graph outputs.
OUTPUT, OUTPUT_INT8 = "logits", "logits_int8"
#: Opset of the written models.
OPSET = 17


def _zero_points(layer):
    return torch.as_tensor(layer.zero_point).expand(layer.weight.shape[0])


def intnet_to_onnx(intnet):
    """Build the QDQ ``onnx.ModelProto`` of an :class:`~golden.intmodel.IntNet`.

    Raises
    ------
    ValueError
        A hardened network, or a layer whose output zero point is not one per tensor
        (ONNX activations have a single zero point).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .hardened import HardenedNet

    if isinstance(intnet, HardenedNet):
        raise ValueError("a hardened network cannot be exported to ONNX yet (its LCU/TMR "
                         "corrections have no ONNX form here); export the original model")
    nodes, initializers = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    s_in = float(intnet.input_scale)
    z_in = int(getattr(intnet, "input_zero_point", 0))
    constant("input_scale", np.float32(s_in))
    constant("input_zero_point", np.int8(z_in))
    nodes.append(helper.make_node("QuantizeLinear", ["x", "input_scale", "input_zero_point"],
                                  ["x_q"], name="quantize_input"))
    current, current_scale, current_zp = "x_q", "input_scale", "input_zero_point"
    current_zp_value = z_in
    for i, layer in enumerate(intnet.layers):
        zero_points = _zero_points(layer)
        if len(set(zero_points.tolist())) != 1:
            raise ValueError(f"layer {layer.name}: per-channel output zero points have no "
                             "ONNX form")
        z_out = int(zero_points[0])
        if int(layer.pad_value) != int(current_zp_value):
            raise ValueError(f"layer {layer.name}: pad value {layer.pad_value} differs from "
                             f"the input zero point {current_zp_value}")
        weight = layer.weight.numpy().astype(np.int64)
        multiplier = layer.multiplier.double().numpy() / 2.0 ** layer.shift.double().numpy()
        s_out = float(layer.out_scale)
        s_w = (multiplier * s_out / s_in).astype(np.float32)
        s_w = np.where(s_w > 0, s_w, np.float32(np.finfo(np.float32).tiny))
        zx = int(layer.pad_value)
        bias = layer.bias.numpy().astype(np.int64) + zx * weight.reshape(len(weight), -1).sum(1)
        p = layer.name
        constant(f"{p}.weight_q", weight.astype(np.int8))
        constant(f"{p}.weight_scale", s_w)
        constant(f"{p}.weight_zero_point", np.zeros(len(weight), np.int8))
        constant(f"{p}.bias_q", bias.astype(np.int32))
        constant(f"{p}.bias_scale", (np.float32(s_in) * s_w).astype(np.float32))
        constant(f"{p}.bias_zero_point", np.zeros(len(weight), np.int32))
        nodes += [
            helper.make_node("DequantizeLinear", [current, current_scale, current_zp],
                             [f"{p}.x"], name=f"{p}.dequantize_input"),
            helper.make_node("DequantizeLinear", [f"{p}.weight_q", f"{p}.weight_scale",
                                                  f"{p}.weight_zero_point"],
                             [f"{p}.weight"], name=f"{p}.dequantize_weight", axis=0),
            helper.make_node("DequantizeLinear", [f"{p}.bias_q", f"{p}.bias_scale",
                                                  f"{p}.bias_zero_point"],
                             [f"{p}.bias"], name=f"{p}.dequantize_bias", axis=0)]
        if layer.kind == "conv":
            nodes.append(helper.make_node(
                "Conv", [f"{p}.x", f"{p}.weight", f"{p}.bias"], [f"{p}.acc"], name=p,
                strides=[layer.stride] * 2, pads=[layer.padding] * 4))
        else:
            nodes.append(helper.make_node("Gemm", [f"{p}.x", f"{p}.weight", f"{p}.bias"],
                                          [f"{p}.acc"], name=p, transB=1))
        before_q = f"{p}.acc"
        if layer.relu:
            nodes.append(helper.make_node("Relu", [before_q], [f"{p}.relu"], name=f"{p}.relu"))
            before_q = f"{p}.relu"
        constant(f"{p}.out_scale", np.float32(s_out))
        constant(f"{p}.out_zero_point", np.int8(z_out))
        nodes.append(helper.make_node("QuantizeLinear", [before_q, f"{p}.out_scale",
                                                         f"{p}.out_zero_point"],
                                      [f"{p}.y"], name=f"{p}.quantize_output"))
        current, current_scale, current_zp = f"{p}.y", f"{p}.out_scale", f"{p}.out_zero_point"
        current_zp_value = z_out
        if layer.pool:
            nodes.append(helper.make_node("MaxPool", [current], [f"{p}.pooled"],
                                          name=f"{p}.pool", kernel_shape=[layer.pool] * 2,
                                          strides=[layer.pool] * 2))
            current = f"{p}.pooled"
        if layer.flatten or (layer.kind == "conv" and i + 1 < len(intnet.layers)
                             and intnet.layers[i + 1].kind == "linear"):
            nodes.append(helper.make_node("Flatten", [current], [f"{p}.flat"],
                                          name=f"{p}.flatten", axis=1))
            current = f"{p}.flat"
        s_in = s_out
    if intnet.layers[0].kind == "linear":
        # The first node quantizes the image; a linear first layer reads it flattened.
        nodes.insert(1, helper.make_node("Flatten", ["x_q"], ["x_q_flat"], name="flatten_input",
                                         axis=1))
        for node in nodes[2:]:
            node.input[:] = ["x_q_flat" if name == "x_q" else name for name in node.input]
    nodes[-1].output[0] = OUTPUT_INT8  # the last layer's int8 output (or its flatten/pool)
    nodes.append(helper.make_node("DequantizeLinear", [OUTPUT_INT8, current_scale, current_zp],
                                  [OUTPUT], name="dequantize_logits"))
    classes = int(intnet.layers[-1].weight.shape[0])
    graph = helper.make_graph(
        nodes, "neuroharden",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *intnet.input_shape])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", classes])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="neuroharden")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export_onnx(intnet, path):
    """Write ``intnet`` as a QDQ ONNX model to ``path``, atomically.

    Raises
    ------
    ValueError
        See :func:`intnet_to_onnx`.
    """
    model = intnet_to_onnx(intnet)
    with atomic_output(path) as file:
        file.write(model.SerializeToString())

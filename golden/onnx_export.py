"""Export an integer network as a QDQ ONNX model (``neuroharden export --format onnx``).

Each layer becomes ``DequantizeLinear(x) -> Conv | Gemm -> [Relu] -> QuantizeLinear``
with its int8 weights behind a ``DequantizeLinear`` and its int32 bias behind another,
the layout onnxruntime fuses into its integer kernels. The contract's fixed-point rescale
``M / 2**s`` is carried exactly by the scales: the output scale is the layer's
``out_scale`` and the weight scale of channel ``c`` is
``s_w[c] = (M[c] / 2**s[c]) * s_out / s_in``, so that ``s_in * s_w[c] / s_out`` is the
contract's multiplier up to float32 rounding. onnxruntime rounds half to even in float32
where the contract rounds half up, so a few values may differ by one LSB.

Zero points: the input zero point of a layer is the ``DequantizeLinear`` zero point of its
input, and the bias is unfolded back to ``bias + sum_j zx[j] * w[:, j]`` over its input
columns ``j`` (``zx * sum(w)`` with one zero point, the layer's ``pad_value``); the
output zero point is the ``QuantizeLinear`` one. Max-pooling and flattening run on the
int8 tensor directly. The graph's output ``logits`` is the dequantized int8 logits
(tensor ``OUTPUT_INT8`` before it), so the exported file of a plain network imports back
with :func:`golden.onnx_import.import_onnx` (opset :data:`OPSET`).

The int8 logits ``OUTPUT_INT8`` are a second graph output, so that a runner reads the
contract's integers without rescaling. It also keeps onnxruntime's QDQ fusions from
rewriting the end of the graph: with ``logits`` the only output, onnxruntime 1.32 on an
AVX2 CPU drops the last ``QuantizeLinear``/``DequantizeLinear`` pair, so the float
logits escape the int8 rounding and saturation (measured up to 11 LSB off on a few % of
the values; ``session.disable_quant_qdq`` made them exact).

Hardened networks
-----------------
A :class:`~golden.hardened.HardenedNet` is exported with its protection unit, in opset
:data:`HARDENED_OPSET` (the bitwise operators), as the same layers plus, per layer, on
the int8 ``QuantizeLinear`` output (standard operators only, every one with an int8
kernel in onnxruntime's CPU provider, so no cast is needed and the logic is exact):

* saturation: ``Min(y, ceiling)`` with an int8 ``[1, O', 1, 1]`` (conv) or ``[1, O']``
  tensor of ``LayerProtection.high`` (63 on the halves of a split neuron), where the
  layer has such halves; on integers this is the contract's ``requantize(..., high)``
  exactly, where a float ``Min`` before the quantization would depend on rounding. The
  halves' shift ``s + 1`` needs no node: their weight scale ``s_w`` is computed from
  the hardened layer's own shift, so they come out of the ``QuantizeLinear`` halved;
* correction (skipped where ``correct`` is the identity): the pair and triple channels
  are picked with ``Gather(axis=1)``; an LCU pair becomes
  ``BitwiseAnd(BitwiseAnd(a, b), mask)`` with ``mask = ~(1 << 6)`` (``-65``) per pair, or
  ``~(1 << 7)`` (``127``) on a wide pair (``numerics.lcu``: int8 wrap-around is the
  kernel's own); a TMR triple becomes ``BitwiseOr`` of the three ``BitwiseAnd`` (bitwise
  voter) or ``Where(Or(a == b, a == c), a, Where(b == c, b, 0))`` (word voter). One
  ``Concat(raw, merged pairs, voted triples)`` and one ``Gather`` with the final index
  then give exactly ``correct(i, y)``, ``LayerProtection.read`` included;
* zero points: the offset-free wide halves of a channel with an output zero point
  (:mod:`golden.harden`) give the layer per-channel output zero points, so their
  ``QuantizeLinear`` (and the next ``DequantizeLinear``, on the columns the next layer
  reads, repeated per pixel after a flatten) is per axis (``axis=1``, 1-D scale and zero
  point). The bias unfolding above is then exact column by column; a conv that pads an
  input with mixed zero points would need per-channel padding and is refused
  (:func:`golden.harden` never builds one).

A hardened file does not import back (:mod:`golden.onnx_import` knows no bitwise
operators): the hardened file itself is the network's source.
"""

import numpy as np
import torch

from .atomic import atomic_output

__all__ = ["OUTPUT", "OUTPUT_INT8", "OPSET", "HARDENED_OPSET", "intnet_to_onnx",
           "export_onnx"]

#: Names of the graph outputs.
OUTPUT, OUTPUT_INT8 = "logits", "logits_int8"
#: Opset of the written models of plain networks.
OPSET = 17
#: Opset of hardened networks (``BitwiseAnd``, ``BitwiseOr``: opset 18).
HARDENED_OPSET = 18
#: The LCU's masks on int8 words: bit 6 cleared, or bit 7 on a wide pair.
_LCU_MASK, _WIDE_LCU_MASK = ~(1 << 6), (1 << 7) - 1


def _zero_points(layer):
    return torch.as_tensor(layer.zero_point).expand(layer.weight.shape[0])


def _check_protection(intnet):
    protection = intnet.protection
    if protection is None or len(protection) != len(intnet.layers):
        raise ValueError("a hardened network needs one protection map per layer "
                         f"({len(intnet.layers)} layers)")
    for layer, p in zip(intnet.layers, protection):
        if len(p.source) != layer.weight.shape[0]:
            raise ValueError(f"layer {layer.name}: protection map of {len(p.source)} "
                             f"channels for {layer.weight.shape[0]} output channels")
    return protection


def intnet_to_onnx(intnet):
    """Build the QDQ ``onnx.ModelProto`` of an :class:`~golden.intmodel.IntNet`.

    A :class:`~golden.hardened.HardenedNet` is exported with its saturation ceilings and
    LCU / TMR corrections (module docstring, "Hardened networks").

    Raises
    ------
    ValueError
        A plain network layer whose output zero point is not one per tensor (ONNX
        activations of the importable form have a single zero point), or whose pad value
        is not its input zero point; a hardened conv layer that pads an input whose
        zero points differ from its pad value (per-channel padding has no ONNX form); a
        hardened network without a protection map per layer.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .hardened import HardenedNet

    hardened = isinstance(intnet, HardenedNet)
    protection = _check_protection(intnet) if hardened else None
    nodes, initializers = [], []

    def constant(name, value):
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, output, name, **attributes):
        nodes.append(helper.make_node(op, inputs, [output], name=name, **attributes))
        return output

    s_in = float(intnet.input_scale)
    z_in = int(getattr(intnet, "input_zero_point", 0))
    constant("input_scale", np.float32(s_in))
    constant("input_zero_point", np.int8(z_in))
    nodes.append(helper.make_node("QuantizeLinear", ["x", "input_scale", "input_zero_point"],
                                  ["x_q"], name="quantize_input"))
    current, current_scale, current_zp = "x_q", "input_scale", "input_zero_point"
    # The zero point of every channel (conv) or feature (linear) of ``current``.
    zps = np.full(int(intnet.input_shape[0]), z_in, np.int64)

    def quantization(p, zps, scale):
        """Scale and zero point names for a ``DequantizeLinear`` of ``current``, and its
        attributes: the producer's scalars if one zero point, else per axis."""
        if len(set(zps.tolist())) == 1 and current_zp is not None:
            return current_scale, current_zp, {}
        if len(set(zps.tolist())) == 1:
            return (constant(f"{p}.input_scale", np.float32(scale)),
                    constant(f"{p}.input_zero_point", np.int8(zps[0])), {})
        return (constant(f"{p}.input_scale", np.full(len(zps), scale, np.float32)),
                constant(f"{p}.input_zero_point", zps.astype(np.int8)), {"axis": 1})

    for i, layer in enumerate(intnet.layers):
        p = layer.name
        zero_points = _zero_points(layer)
        uniform_out = len(set(zero_points.tolist())) == 1
        if not hardened and not uniform_out:
            raise ValueError(f"layer {layer.name}: per-channel output zero points have no "
                             "ONNX form")
        weight = layer.weight.numpy().astype(np.int64)
        columns = weight.reshape(len(weight), weight.shape[1], -1).sum(-1)
        if layer.kind == "linear" and len(zps) != columns.shape[1]:
            if columns.shape[1] % len(zps):
                raise ValueError(f"layer {layer.name}: {columns.shape[1]} inputs do not "
                                 f"flatten from {len(zps)} channels")
            zps = np.repeat(zps, columns.shape[1] // len(zps))
        if not hardened and int(layer.pad_value) != int(zps[0]):
            raise ValueError(f"layer {layer.name}: pad value {layer.pad_value} differs from "
                             f"the input zero point {int(zps[0])}")
        pads = layer.kind == "conv" and layer.padding
        if hardened and pads and bool((zps != int(layer.pad_value)).any()):
            raise ValueError(f"layer {layer.name}: pads with {layer.pad_value} an input whose "
                             f"zero points are {sorted(set(zps.tolist()))} (per-channel "
                             f"padding has no ONNX form)")
        multiplier = layer.multiplier.double().numpy() / 2.0 ** layer.shift.double().numpy()
        s_out = float(layer.out_scale)
        s_w = (multiplier * s_out / s_in).astype(np.float32)
        s_w = np.where(s_w > 0, s_w, np.float32(np.finfo(np.float32).tiny))
        bias = layer.bias.numpy().astype(np.int64) + columns @ zps
        x_scale, x_zp, x_axis = quantization(p, zps, s_in)
        constant(f"{p}.weight_q", weight.astype(np.int8))
        constant(f"{p}.weight_scale", s_w)
        constant(f"{p}.weight_zero_point", np.zeros(len(weight), np.int8))
        constant(f"{p}.bias_q", bias.astype(np.int32))
        constant(f"{p}.bias_scale", (np.float32(s_in) * s_w).astype(np.float32))
        constant(f"{p}.bias_zero_point", np.zeros(len(weight), np.int32))
        nodes += [
            helper.make_node("DequantizeLinear", [current, x_scale, x_zp],
                             [f"{p}.x"], name=f"{p}.dequantize_input", **x_axis),
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
        if uniform_out:
            constant(f"{p}.out_scale", np.float32(s_out))
            constant(f"{p}.out_zero_point", np.int8(zero_points[0]))
            out_axis = {}
        else:
            constant(f"{p}.out_scale", np.full(len(zero_points), s_out, np.float32))
            constant(f"{p}.out_zero_point", zero_points.numpy().astype(np.int8))
            out_axis = {"axis": 1}
        nodes.append(helper.make_node("QuantizeLinear", [before_q, f"{p}.out_scale",
                                                         f"{p}.out_zero_point"],
                                      [f"{p}.y"], name=f"{p}.quantize_output", **out_axis))
        current = f"{p}.y"
        current_scale, current_zp = (f"{p}.out_scale", f"{p}.out_zero_point") if uniform_out \
            else (None, None)
        zps = zero_points.numpy().astype(np.int64)
        if hardened:
            current = _protection_nodes(layer, protection[i], intnet.voter, current,
                                        constant, node)
            zps = zps[protection[i].read.numpy()]
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
        for item in nodes[2:]:
            item.input[:] = ["x_q_flat" if name == "x_q" else name for name in item.input]
    nodes[-1].output[0] = OUTPUT_INT8  # the last layer's int8 output (or its flatten/pool)
    logits_scale, logits_zp, logits_axis = quantization("logits", zps, s_in)
    nodes.append(helper.make_node("DequantizeLinear", [OUTPUT_INT8, logits_scale, logits_zp],
                                  [OUTPUT], name="dequantize_logits", **logits_axis))
    classes = len(zps) if hardened else int(intnet.layers[-1].weight.shape[0])
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", classes]),
               helper.make_tensor_value_info(OUTPUT_INT8, TensorProto.INT8, ["n", classes])]
    graph = helper.make_graph(
        nodes, "neuroharden",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *intnet.input_shape])],
        outputs, initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", HARDENED_OPSET if hardened else OPSET)],
        producer_name="neuroharden")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _protection_nodes(layer, p, voter, current, constant, node):
    """Saturation and correction of one hardened layer on its int8 output ``current``.

    Returns the name of the tensor the next layer reads (``correct(i, y)``); see the
    module docstring, "Hardened networks".
    """
    name = layer.name
    # Per-channel tensors broadcast against [B, C, H, W] (conv) or [B, C] (linear).
    shape = (1, -1, 1, 1) if layer.kind == "conv" else (1, -1)
    if bool((p.high < 127).any()):
        constant(f"{name}.ceiling", p.high.numpy().astype(np.int8).reshape(shape))
        current = node("Min", [current, f"{name}.ceiling"], f"{name}.saturated",
                       f"{name}.saturate")
    if p.identity:
        return current

    def pick(tag, channels):
        index = constant(f"{name}.{tag}_index", channels.numpy().astype(np.int64))
        return node("Gather", [current, index], f"{name}.{tag}", f"{name}.gather_{tag}",
                    axis=1)

    parts, offset, final = [current], len(p.source), p.read.clone()
    if p.lcu.numel():
        a, b = pick("lcu_a", p.lcu[:, 0]), pick("lcu_b", p.lcu[:, 1])
        mask = np.where(p.wide.numpy(), _WIDE_LCU_MASK, _LCU_MASK).astype(np.int8)
        constant(f"{name}.lcu_mask", mask.reshape(shape))
        both = node("BitwiseAnd", [a, b], f"{name}.lcu_and", f"{name}.lcu_and")
        parts.append(node("BitwiseAnd", [both, f"{name}.lcu_mask"], f"{name}.lcu",
                          f"{name}.lcu_reset"))
        for half in (0, 1):
            read = p.lcu_read[:, half] >= 0
            final[p.lcu_read[read, half]] = offset + torch.nonzero(read).reshape(-1)
        offset += len(p.lcu)
    if p.tmr.numel():
        a, b, c = (pick(f"tmr_{k}", p.tmr[:, k]) for k in range(3))
        v = f"{name}.vote"
        if voter == "bitwise":
            ab = node("BitwiseAnd", [a, b], f"{v}_ab", f"{v}_ab")
            ac = node("BitwiseAnd", [a, c], f"{v}_ac", f"{v}_ac")
            bc = node("BitwiseAnd", [b, c], f"{v}_bc", f"{v}_bc")
            either = node("BitwiseOr", [ab, ac], f"{v}_ab_ac", f"{v}_ab_ac")
            parts.append(node("BitwiseOr", [either, bc], v, v))
        elif voter == "word":
            ab = node("Equal", [a, b], f"{v}_ab", f"{v}_ab")
            ac = node("Equal", [a, c], f"{v}_ac", f"{v}_ac")
            bc = node("Equal", [b, c], f"{v}_bc", f"{v}_bc")
            a_wins = node("Or", [ab, ac], f"{v}_a_wins", f"{v}_a_wins")
            zero = constant(f"{v}_zero", np.int8(0))
            b_or_zero = node("Where", [bc, b, zero], f"{v}_b_or_zero", f"{v}_b_or_zero")
            parts.append(node("Where", [a_wins, a, b_or_zero], v, v))
        else:
            raise ValueError(f"unknown voter {voter!r}")
        read = p.tmr_read >= 0
        final[p.tmr_read[read]] = offset + torch.nonzero(read).reshape(-1)
    joined = node("Concat", parts, f"{name}.corrections", f"{name}.concat", axis=1)
    constant(f"{name}.read_index", final.numpy().astype(np.int64))
    return node("Gather", [joined, f"{name}.read_index"], f"{name}.corrected",
                f"{name}.read", axis=1)


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

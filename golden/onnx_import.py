"""Import a quantized ONNX network into the bit-exact integer model.

:func:`import_onnx` reads a ``.onnx`` file (or a loaded ``onnx.ModelProto``) quantized to
8 bits and returns an :class:`~golden.intmodel.IntNet` that computes the same int8
values, together with the names of the ONNX tensors each layer corresponds to
(:class:`OnnxImport`, used by the onnxruntime cross-check).

Accepted graphs
---------------
A single chain from one float input ``[N, C, H, W]`` to one output, in either form that
``onnxruntime.quantization.quantize_static`` writes:

* QDQ: ``QuantizeLinear``/``DequantizeLinear`` pairs around float ``Conv``, ``Gemm`` or
  ``MatMul`` (optionally followed by ``Add`` of a constant bias), with int8 weights
  behind a ``DequantizeLinear`` and an int32 (or float) bias;
* QOperator: ``QLinearConv``, ``QGemm`` (``com.microsoft``) and ``QLinearMatMul``.

Activations are int8 or uint8 (per tensor), weights int8 or uint8 with zero point 0
(per channel or per tensor). After a layer: ``Relu`` or ``Clip`` at 0 (or a ReLU fused
into the output zero point, which saturates at real 0), ``MaxPool`` (kernel = stride, no
padding), ``Flatten`` (axis 1) or ``Reshape`` to 2-D. Between two quantized tensors a
chain of those float ops is accepted when both ends have the same scale and zero point
(it is then exact on the int8 values); anything else raises :class:`ValueError` with one
line naming the node and its op: ``AveragePool``, ``Add`` of two tensors, grouped or
depthwise convolution, asymmetric padding, a float op that rescales between quantized
tensors (onnxruntime keeps the ``Relu`` as such a node with symmetric activations unless
its input and output share one scale), int16 or other types, a float-only model, and a
file that is not a valid ONNX model.

Exact arithmetic
----------------
* uint8 maps to int8 exactly by subtracting 128 from the values and the zero points.
* An input zero point ``zx`` folds into the bias: ``sum((x - zx) w) = sum(x w) - zx sum(w)``;
  the convolution then pads its input with ``zx`` (:attr:`IntLayer.pad_value`), which is
  what ONNX does (a quantized input is padded with its zero point, real value 0).
* The output zero point is the per-column offset of :func:`golden.numerics.requantize`.
* The rescale ``s_in * s_w[c] / s_out`` becomes the contract's 16-bit multiplier and
  shift (:func:`golden.quantize.fixed_point`). onnxruntime requantizes in float32
  rounding half to even, so a few outputs may differ by one LSB (checked by
  :func:`golden.crosscheck.crosscheck_onnx`).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .datasets import DATASETS, NATIVE_SHAPES
from .intmodel import IntLayer, IntNet
from .quantize import fixed_point

__all__ = ["OnnxImport", "import_onnx", "load_onnx", "check_input_shape"]

_INT32 = (-(1 << 31), (1 << 31) - 1)
#: ONNX TensorProto element types of the two accepted 8-bit types.
_INT8, _UINT8, _FLOAT = 3, 2, 1
_PASSTHROUGH = {"Relu", "Clip", "MaxPool", "Flatten", "Reshape"}


@dataclass
class OnnxImport:
    """An imported network and where its values live in the ONNX graph.

    Attributes
    ----------
    intnet : IntNet
    input_name : str
        The float graph input.
    input_tensor : str
        The quantized input (output of the input ``QuantizeLinear``).
    outputs : list of str or None
        Per layer, the 8-bit tensor that holds the layer's output ``y`` before pooling
        (``None`` where the graph has no such tensor, e.g. a ``Relu`` after a ``MaxPool``).
    next_inputs : list of str
        Per layer, the 8-bit tensor the next layer reads (after pooling and flattening);
        for the last layer, the int8 logits.
    unsigned : dict
        Tensor name -> True where the tensor is uint8 (its int8 value is ``q - 128``).
    nodes : list of str
        Per layer, the name of its ONNX node.
    """

    intnet: IntNet
    input_name: str
    input_tensor: str
    outputs: list = field(default_factory=list)
    next_inputs: list = field(default_factory=list)
    unsigned: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)


@dataclass
class _Quantized:
    # An 8-bit tensor: name, scale, int8 zero point, uint8 storage.
    name: str
    scale: float
    zero_point: int
    unsigned: bool


def _one_line(error):
    text = " ".join(str(error).split())
    return text[:300] if text else type(error).__name__


def load_onnx(source):
    """Read and validate an ONNX model.

    Parameters
    ----------
    source : str, os.PathLike or onnx.ModelProto

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    ValueError
        Not a readable, valid ONNX model (a truncated file, another format).
    """
    import onnx

    if isinstance(source, onnx.ModelProto):
        model, where = source, "model"
    else:
        where = str(source)
        try:
            model = onnx.load(where)
        except Exception as error:  # protobuf raises DecodeError, RuntimeWarning, ...
            raise ValueError(f"{where}: not a readable ONNX model ({_one_line(error)})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as error:
        raise ValueError(f"{where}: not a valid ONNX model ({_one_line(error)})") from None
    if not model.graph.node:
        raise ValueError(f"{where}: the ONNX graph has no nodes")
    return model


def check_input_shape(shape, dataset):
    """Check a network's input ``(C, H, W)`` against a dataset's images.

    The channels must be the dataset's and the size its native one (for ``digits`` also
    the 28x28 the built-in networks upsample it to), see
    :data:`golden.datasets.NATIVE_SHAPES`.

    Raises
    ------
    ValueError
        The shapes do not match, or the dataset is unknown.
    """
    if dataset not in NATIVE_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r} (choose from {', '.join(DATASETS)})")
    accepted = NATIVE_SHAPES[dataset]
    if tuple(shape) not in accepted:
        names = " or ".join("x".join(map(str, s)) for s in accepted)
        raise ValueError(f"model input {'x'.join(map(str, shape))} (CxHxW) does not match "
                         f"dataset {dataset} ({names})")


class _Graph:
    """Initializers, producers and consumers of one ONNX graph."""

    def __init__(self, model):
        from onnx import numpy_helper

        graph = model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = []
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                value = next((a for a in node.attribute if a.name == "value"), None)
                if value is None:
                    raise ValueError(f"node {node.name} (Constant): only tensor constants "
                                     "are supported")
                self.constants[node.output[0]] = numpy_helper.to_array(value.t)
            else:
                self.nodes.append(node)
        self.consumers = {}
        self.producer = {}
        for node in self.nodes:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
            for name in node.output:
                self.producer[name] = node
        self.outputs = [o.name for o in graph.output]
        self.output_types = [o.type.tensor_type.elem_type for o in graph.output]
        self.inputs = [i for i in graph.input if i.name not in self.constants]

    def constant(self, name, node, what):
        if name not in self.constants:
            raise ValueError(f"node {node.name} ({node.op_type}): {what} {name!r} is not a "
                             "constant")
        return self.constants[name]

    def next_node(self, tensor):
        """The only consumer of ``tensor``, or None at a graph output."""
        users = self.consumers.get(tensor, [])
        if len(users) > 1:
            node = users[1]
            raise ValueError(f"node {node.name} ({node.op_type}): tensor {tensor!r} feeds "
                             f"{len(users)} nodes (branches and residual Adds are not "
                             "supported)")
        if not users:
            if tensor not in self.outputs:
                raise ValueError(f"tensor {tensor!r} is neither consumed nor a graph output")
            return None
        return users[0]


def _attributes(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _fail(node, message):
    raise ValueError(f"node {node.name} ({node.op_type}): {message}")


def _zero_point(graph, node, name, what):
    """int8 zero point and uint8 flag of a zero-point input (absent = int8... per ONNX uint8)."""
    if not name:
        return 0, True  # ONNX: a missing zero point is uint8 0
    value = graph.constant(name, node, f"{what} zero point")
    if value.dtype == np.uint8:
        return value.astype(np.int64) - 128, True
    if value.dtype == np.int8:
        return value.astype(np.int64), False
    _fail(node, f"{what} is {value.dtype}; only int8 and uint8 are supported")


def _scalar(value, node, what):
    value = np.asarray(value)
    if value.size != 1:
        _fail(node, f"{what} must be per tensor (a scalar), got shape {list(value.shape)}")
    return value.reshape(())


def _activation(graph, node, scale_name, zp_name, tensor):
    scale = float(_scalar(graph.constant(scale_name, node, "scale"), node, "activation scale"))
    zp, unsigned = _zero_point(graph, node, zp_name, "activation")
    if scale <= 0 or not math.isfinite(scale):
        _fail(node, f"activation scale {scale} is not positive")
    return _Quantized(tensor, scale, int(_scalar(zp, node, "activation zero point")), unsigned)


def _weights(graph, node, q_name, scale_name, zp_name, transpose):
    """int8 weights ``[O, ...]`` (``transpose``: stored ``[I, O]``) and float64 scales ``[O]``."""
    q = graph.constant(q_name, node, "weight")
    if q.dtype == np.uint8:
        q = q.astype(np.int64) - 128
    elif q.dtype == np.int8:
        q = q.astype(np.int64)
    else:
        _fail(node, f"weights are {q.dtype}; only int8 and uint8 are supported")
    zp, _ = _zero_point(graph, node, zp_name, "weight")
    if np.any(np.asarray(zp) != 0):
        _fail(node, "asymmetric weights (a nonzero weight zero point) are not supported")
    if transpose:
        q = q.T
    out = q.shape[0]
    scale = np.asarray(graph.constant(scale_name, node, "weight scale"), dtype=np.float64)
    if scale.size == 1:
        scale = np.full(out, float(scale.reshape(())))
    elif scale.reshape(-1).shape != (out,):
        _fail(node, f"weight scales of shape {list(scale.shape)} are neither per tensor nor "
                    "per output channel")
    scale = scale.reshape(-1)
    if np.any(scale <= 0):
        _fail(node, "weight scales must be positive")
    return q, scale


def _dequantized_weights(graph, node, name, out_axis, transpose):
    """Weights given as DequantizeLinear(constant, scale, zero point); ``out_axis`` of the
    stored tensor holds the output channels."""
    dq = graph.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear":
        _fail(node, f"weight {name!r} is float, not the output of a DequantizeLinear "
                    "(a float-only layer)")
    weight = graph.constant(dq.input[0], dq, "weight")
    if np.asarray(graph.constant(dq.input[1], dq, "weight scale")).size > 1:
        axis = _attributes(dq).get("axis", 1) % weight.ndim
        if axis != out_axis:
            _fail(node, f"weights are quantized per channel along axis {axis}, not along "
                        "the output channels")
    return _weights(graph, dq, dq.input[0], dq.input[1],
                    dq.input[2] if len(dq.input) > 2 else "", transpose)


def _bias_acc(graph, node, name, s_acc):
    """Bias in accumulator units (int64 ``[O]``) from a DQ'd int32 or a float constant."""
    dq = graph.producer.get(name)
    if dq is not None and dq.op_type == "DequantizeLinear":
        q = graph.constant(dq.input[0], dq, "bias").astype(np.float64)
        scale = np.asarray(graph.constant(dq.input[1], dq, "bias scale"), dtype=np.float64)
        zp = np.asarray(graph.constants.get(dq.input[2], 0) if len(dq.input) > 2 else 0)
        real = (q - zp) * scale
        ratio = scale / s_acc
        if np.all(np.abs(ratio - 1) < 1e-6) and not np.any(zp):
            return q.astype(np.int64).reshape(-1)
        return np.round(real / s_acc).reshape(-1).astype(np.int64)
    value = graph.constant(name, node, "bias")
    if not np.issubdtype(value.dtype, np.floating):
        _fail(node, f"bias is {value.dtype} without a DequantizeLinear")
    return np.round(value.astype(np.float64) / s_acc).reshape(-1).astype(np.int64)


def _conv_geometry(node, shape, kernel):
    attributes = _attributes(node)
    if attributes.get("group", 1) != 1:
        _fail(node, f"grouped or depthwise convolution (group {attributes['group']}) is not "
                    "supported")
    if any(d != 1 for d in attributes.get("dilations", [1, 1])):
        _fail(node, "dilated convolution is not supported")
    strides = attributes.get("strides", [1, 1])
    if len(set(strides)) != 1:
        _fail(node, f"strides {strides} differ between height and width")
    stride = strides[0]
    auto_pad = attributes.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max((math.ceil(n / stride) - 1) * stride + k - n, 0)
                  for n, k in zip(shape[1:], kernel)]
        if any(t % 2 for t in totals) or len(set(totals)) != 1:
            _fail(node, f"auto_pad {auto_pad} pads asymmetrically, which is not supported")
        pads = [totals[0] // 2] * 4
    else:
        pads = attributes.get("pads", [0, 0, 0, 0]) if auto_pad != "VALID" else [0] * 4
    if len(set(pads)) != 1:
        _fail(node, f"asymmetric padding {pads} is not supported (equal on every side only)")
    padding = pads[0]
    out_hw = tuple((n + 2 * padding - k) // stride + 1 for n, k in zip(shape[1:], kernel))
    if min(out_hw) < 1:
        _fail(node, "the kernel is larger than the padded input")
    return stride, padding, out_hw


class _Importer:
    def __init__(self, model):
        self.graph = _Graph(model)
        self.layers = []
        self.record = OnnxImport(intnet=None, input_name="", input_tensor="")
        self.shape = None
        self.pending_relu_after_pool = False

    # -- the walk ---------------------------------------------------------------------

    def run(self):
        graph = self.graph
        if not any(n.op_type in ("QuantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm")
                   for n in graph.nodes):
            raise ValueError("float-only model: no QuantizeLinear or QLinear* node (quantize "
                             "it first, e.g. with onnxruntime.quantization.quantize_static)")
        if len(graph.inputs) != 1:
            raise ValueError(f"the model has {len(graph.inputs)} inputs; one image input "
                             "is supported")
        # 8-bit outputs beside the float one are the chain's own tensors exposed (an
        # exported network's int8 logits); only the float output ends the chain.
        floats = graph.output_types.count(_FLOAT)
        if floats != 1 or len(graph.outputs) - floats > 1:
            raise ValueError(f"the model has {len(graph.outputs)} outputs; one float "
                             "output (and at most one 8-bit one) is supported")
        value = graph.inputs[0]
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if tensor_type.elem_type != _FLOAT:
            raise ValueError(f"input {value.name!r} is not float32 (element type "
                             f"{tensor_type.elem_type})")
        if len(dims) != 4 or any(d is None or d <= 0 for d in dims[1:]):
            raise ValueError(f"input {value.name!r} has shape {dims}; expected "
                             "[N, C, H, W] with static C, H, W")
        self.shape = tuple(dims[1:])
        self.record.input_name = value.name
        node = graph.next_node(value.name)
        while node is not None and node.op_type in ("Flatten", "Reshape"):
            # Shape-only ops commute with the input quantization.
            self._flatten_shape(node, _attributes(node))
            node = graph.next_node(node.output[0])
        if node is None or node.op_type != "QuantizeLinear":
            if node is None:
                raise ValueError(f"input {value.name!r} is not consumed")
            _fail(node, "a float op before the input is quantized (the first node must be "
                        "the input's QuantizeLinear)")
        current = self._quantize_output(node)
        self.input = current
        self.record.input_tensor = current.name
        while True:
            current = self._step(current)
            if current is None:
                break
        if not self.layers:
            raise ValueError("the model has no Conv, Gemm or MatMul layer")
        self.record.next_inputs[-1] = self.last_tensor
        intnet = IntNet(layers=self.layers, input_scale=self.input.scale,
                        input_shape=tuple(int(d) for d in dims[1:]),
                        input_zero_point=self.input.zero_point)
        self.record.intnet = intnet
        return self.record

    def _quantize_output(self, node):
        """The 8-bit tensor written by a QuantizeLinear node."""
        if len(node.input) < 2:
            _fail(node, "no scale")
        attributes = _attributes(node)
        if "output_dtype" in attributes and attributes["output_dtype"] not in (_INT8, _UINT8):
            _fail(node, f"output type {attributes['output_dtype']} is not int8 or uint8 "
                        "(int16 and other types are not supported)")
        q = _activation(self.graph, node, node.input[1],
                        node.input[2] if len(node.input) > 2 else "", node.output[0])
        self.record.unsigned[q.name] = q.unsigned
        return q

    def _step(self, current):
        """Consume the nodes after the 8-bit tensor ``current``; the next one or None."""
        graph = self.graph
        self.last_tensor = current.name
        node = graph.next_node(current.name)
        if node is None:
            return None
        op = node.op_type
        if op == "DequantizeLinear":
            scale = _activation(graph, node, node.input[1],
                                node.input[2] if len(node.input) > 2 else "", current.name)
            if (scale.scale, scale.zero_point) != (current.scale, current.zero_point):
                _fail(node, "dequantizes with other parameters than its input was quantized with")
            following = graph.next_node(node.output[0])
            if following is None:
                if not self.layers:
                    raise ValueError("the model has no Conv, Gemm or MatMul layer")
                return None
            if following.op_type in ("Conv", "Gemm", "MatMul"):
                return self._float_layer(following, current, node.output[0])
            if following.op_type in _PASSTHROUGH:
                return self._float_chain(following, current)
            _fail(following, self._unsupported(following))
        if op in ("QLinearConv", "QGemm", "QLinearMatMul"):
            return self._qoperator_layer(node, current)
        if op in ("MaxPool", "Flatten", "Reshape"):
            self._apply(node, current)
            out = _Quantized(node.output[0], current.scale, current.zero_point, current.unsigned)
            self.record.unsigned[out.name] = out.unsigned
            return out
        _fail(node, self._unsupported(node))

    def _unsupported(self, node):
        if node.op_type == "Add":
            return "Add of two tensors (a residual) is not supported"
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            return "a second quantization in a row is not supported"
        return "unsupported operator"

    def _float_chain(self, node, current):
        """Relu/Clip/MaxPool/Flatten/Reshape in float between DQ and Q of equal parameters."""
        chain = []
        while node.op_type in _PASSTHROUGH:
            chain.append(node)
            node = self.graph.next_node(node.output[0])
            if node is None:
                _fail(chain[-1], "the graph ends in float after a quantized layer")
        if node.op_type != "QuantizeLinear":
            _fail(node, "a float op between quantized tensors is not supported"
                  if node.op_type not in ("Conv", "Gemm", "MatMul") else
                  "a float layer whose input is not quantized")
        out = self._quantize_output(node)
        if (out.scale, out.zero_point) != (current.scale, current.zero_point):
            _fail(chain[0], f"a float op between quantized tensors that rescales them (scale "
                            f"{current.scale:.6g}, zero point {current.zero_point} -> "
                            f"{out.scale:.6g}, {out.zero_point}) is not exact in int8; "
                            "quantize with the Relu fused (asymmetric activations) or with "
                            "one scale for its input and output")
        for op in chain:
            self._apply(op, current, out.name)
        if any(op.op_type == "MaxPool" for op in chain) and self.record.outputs[-1] == out.name:
            self.record.outputs[-1] = None  # only the pooled output is quantized
        return out

    def _apply(self, node, current, tensor=None):
        """Fold a Relu/Clip/MaxPool/Flatten/Reshape into the previous layer."""
        op = node.op_type
        tensor = tensor or node.output[0]
        attributes = _attributes(node)
        if not self.layers:
            if op in ("Flatten", "Reshape"):
                self._flatten_shape(node, attributes)
                return
            _fail(node, "an activation or pooling before the first layer is not supported")
        layer = self.layers[-1]
        if op == "Relu" or op == "Clip":
            if op == "Clip":
                self._check_clip(node, attributes, current)
            layer.relu = True
            if layer.pool or layer.flatten:
                self.record.outputs[-1] = None
            else:
                self.record.outputs[-1] = tensor
        elif op == "MaxPool":
            if layer.kind != "conv" or layer.pool or layer.flatten:
                _fail(node, "max-pooling is supported once after a convolution")
            kernel = attributes.get("kernel_shape", [])
            strides = attributes.get("strides", [1] * len(kernel))
            if (len(kernel) != 2 or kernel[0] != kernel[1] or list(strides) != list(kernel)
                    or any(attributes.get("pads", [0])) or attributes.get("ceil_mode", 0)
                    or any(d != 1 for d in attributes.get("dilations", [1, 1]))
                    or len([o for o in node.output if o]) != 1):
                _fail(node, f"only a square max-pool with kernel = stride and no padding is "
                            f"supported (kernel {kernel}, strides {strides})")
            layer.pool = kernel[0]
            self.shape = (self.shape[0], *(n // layer.pool for n in self.shape[1:]))
        else:
            self._flatten_shape(node, attributes)
            if layer.kind == "conv":
                layer.flatten = True
        self.record.next_inputs[-1] = tensor

    def _flatten_shape(self, node, attributes):
        size = math.prod(self.shape)
        if node.op_type == "Flatten":
            if attributes.get("axis", 1) != 1:
                _fail(node, f"Flatten axis {attributes.get('axis')} is not supported (axis 1 only)")
        else:
            target = [int(v) for v in np.asarray(self.graph.constant(
                node.input[1], node, "shape")).reshape(-1)]
            if len(target) != 2 or target[0] not in (-1, 0) or target[1] not in (-1, size):
                _fail(node, f"Reshape to {target} is not a flatten to [N, {size}]")
        self.shape = (size,)

    def _check_clip(self, node, attributes, current):
        low = attributes.get("min")
        high = attributes.get("max")
        if len(node.input) > 1 and node.input[1]:
            low = float(self.graph.constant(node.input[1], node, "min"))
        if len(node.input) > 2 and node.input[2]:
            high = float(self.graph.constant(node.input[2], node, "max"))
        top = (127 - current.zero_point) * current.scale
        if low is None or low != 0:
            _fail(node, f"Clip with min {low} is not a ReLU (min 0 only)")
        if high is not None and high < top * (1 - 1e-6):
            _fail(node, f"Clip with max {high} below the quantized range top {top:.6g} is "
                        "not supported")

    # -- layers -----------------------------------------------------------------------

    def _float_layer(self, node, current, x_name):
        """QDQ: Conv/Gemm/MatMul on a DequantizeLinear'd input, up to its QuantizeLinear."""
        graph = self.graph
        op = node.op_type
        if node.input[0] != x_name:
            _fail(node, "the activation must be the first input")
        if op == "Conv":
            weight, s_w = _dequantized_weights(graph, node, node.input[1], 0, False)
        elif op == "Gemm":
            attributes = _attributes(node)
            if attributes.get("transA", 0) or attributes.get("alpha", 1.0) != 1.0 \
                    or attributes.get("beta", 1.0) != 1.0:
                _fail(node, "Gemm with transA or alpha/beta other than 1 is not supported")
            transpose = not attributes.get("transB", 0)
            weight, s_w = _dequantized_weights(graph, node, node.input[1],
                                               1 if transpose else 0, transpose)
        else:
            weight, s_w = _dequantized_weights(graph, node, node.input[1], 1, True)
        s_acc = current.scale * s_w
        bias_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        after = graph.next_node(node.output[0])
        if op == "MatMul" and after is not None and after.op_type == "Add":
            other = [n for n in after.input if n != node.output[0]]
            if len(other) != 1 or (other[0] not in graph.constants
                                   and graph.producer.get(other[0], None) is None):
                _fail(after, "Add of two tensors (a residual) is not supported")
            producer = graph.producer.get(other[0])
            if producer is not None and producer.op_type != "DequantizeLinear":
                _fail(after, "Add of two tensors (a residual) is not supported")
            bias_name, after = other[0], graph.next_node(after.output[0])
        bias = (_bias_acc(graph, node, bias_name, s_acc) if bias_name
                else np.zeros(weight.shape[0], dtype=np.int64))
        relu = False
        while after is not None and after.op_type in ("Relu", "Clip"):
            relu = True
            relu_node = after
            after = graph.next_node(after.output[0])
        if after is None or after.op_type != "QuantizeLinear":
            culprit = after if after is not None else node
            _fail(culprit, "a float op after a quantized layer is not supported (the layer "
                           "output must be quantized)")
        out = self._quantize_output(after)
        if relu and relu_node.op_type == "Clip":
            self._check_clip(relu_node, _attributes(relu_node), out)
        self._add_layer(node, weight, s_w, bias, current, out, relu)
        return out

    def _qoperator_layer(self, node, current):
        graph = self.graph
        op = node.op_type
        inputs = list(node.input) + [""] * 9
        x = _activation(graph, node, inputs[1], inputs[2], inputs[0])
        if (x.scale, x.zero_point) != (current.scale, current.zero_point):
            _fail(node, "input scale or zero point differs from the tensor's quantization")
        if op == "QLinearConv":
            weight, s_w = _weights(graph, node, inputs[3], inputs[4], inputs[5], False)
            y_scale, y_zp, bias_name = inputs[6], inputs[7], inputs[8]
        elif op == "QGemm":
            attributes = _attributes(node)
            if attributes.get("transA", 0) or attributes.get("alpha", 1.0) != 1.0:
                _fail(node, "QGemm with transA or alpha other than 1 is not supported")
            transpose = not attributes.get("transB", 0)
            weight, s_w = _weights(graph, node, inputs[3], inputs[4], inputs[5], transpose)
            bias_name, y_scale, y_zp = inputs[6], inputs[7], inputs[8]
            if not y_scale:
                _fail(node, "QGemm with a float output is not supported")
        else:
            weight, s_w = _weights(graph, node, inputs[3], inputs[4], inputs[5], True)
            y_scale, y_zp, bias_name = inputs[6], inputs[7], ""
        out = _activation(graph, node, y_scale, y_zp, node.output[0])
        self.record.unsigned[out.name] = out.unsigned
        if bias_name:
            bias = graph.constant(bias_name, node, "bias")
            if bias.dtype != np.int32:
                _fail(node, f"bias is {bias.dtype}, expected int32")
            bias = bias.astype(np.int64).reshape(-1)
        else:
            bias = np.zeros(weight.shape[0], dtype=np.int64)
        self._add_layer(node, weight, s_w, bias, current, out, False)
        return out

    def _add_layer(self, node, weight, s_w, bias, current, out, relu):
        kind = "conv" if node.op_type in ("Conv", "QLinearConv") else "linear"
        if kind == "conv":
            if weight.ndim != 4 or len(self.shape) != 3:
                _fail(node, "only 2-D convolutions of [N, C, H, W] tensors are supported")
            stride, padding, out_hw = _conv_geometry(node, self.shape, weight.shape[2:])
            if weight.shape[1] != self.shape[0]:
                _fail(node, f"{weight.shape[1]} input channels for a {self.shape[0]}-channel "
                            "input")
            self.shape = (weight.shape[0], *out_hw)
        else:
            fan_in = math.prod(self.shape)
            if weight.ndim != 2 or weight.shape[1] != fan_in:
                _fail(node, f"weights {list(weight.shape)} do not take the {fan_in} inputs")
            stride, padding, out_hw = 1, 0, ()
            self.shape = (weight.shape[0],)
        if bias.shape != (weight.shape[0],):
            _fail(node, f"bias of shape {list(bias.shape)} for {weight.shape[0]} outputs")
        # acc = sum((x - zx) w) + b = sum(x w) + (b - zx sum(w)), padded with zx.
        folded = bias - current.zero_point * weight.reshape(weight.shape[0], -1).sum(1)
        if folded.min() < _INT32[0] or folded.max() > _INT32[1]:
            _fail(node, "the bias with the input zero point folded in exceeds int32")
        pairs = [fixed_point(current.scale * float(s) / out.scale) for s in s_w]
        zero_point = out.zero_point
        relu = relu or zero_point == -128  # saturating at the zero point is the ReLU
        count = sum(layer.kind == kind for layer in self.layers) + 1
        self.layers.append(IntLayer(
            name=f"{kind if kind == 'conv' else 'fc'}{count}", kind=kind,
            weight=torch.from_numpy(weight.astype(np.int64)),
            bias=torch.from_numpy(folded.astype(np.int64)),
            multiplier=torch.tensor([m for m, _ in pairs], dtype=torch.int64),
            shift=torch.tensor([s for _, s in pairs], dtype=torch.int64),
            relu=relu, stride=stride, padding=padding, pool=0, flatten=False,
            out_scale=out.scale, out_hw=out_hw, pad_value=current.zero_point,
            zero_point=(torch.full((weight.shape[0],), zero_point, dtype=torch.int64)
                        if zero_point else 0)))
        self.record.outputs.append(out.name)
        self.record.next_inputs.append(out.name)
        self.record.nodes.append(node.name)


def import_onnx(source, dataset=None):
    """Read a quantized ONNX network into the integer model.

    Parameters
    ----------
    source : str, os.PathLike or onnx.ModelProto
        The ``.onnx`` file (or model).
    dataset : str, optional
        Check the model's input against this dataset (:func:`check_input_shape`).

    Returns
    -------
    OnnxImport
        ``.intnet`` is the :class:`~golden.intmodel.IntNet`.

    Raises
    ------
    ValueError
        One line naming the node and op of anything unsupported, or why the file is
        not a quantized ONNX network (see the module docstring).
    """
    model = load_onnx(source)
    record = _Importer(model).run()
    if dataset is not None:
        check_input_shape(record.intnet.input_shape, dataset)
    return record

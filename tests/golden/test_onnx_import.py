import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from neuroharden.golden.numerics import requantize
from neuroharden.golden.onnx_import import check_input_shape, import_onnx
from tests.golden.onnx_nets import images, quantized_model

logging.getLogger().setLevel(logging.ERROR)  # onnxruntime's pre-processing advice


def _ort_logits(path, x, record):
    model = onnx.load(str(path))
    name = record.next_inputs[-1]
    element = TensorProto.UINT8 if record.unsigned[name] else TensorProto.INT8
    model.graph.output.append(helper.make_tensor_value_info(name, element, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    q = session.run([name], {"x": x.numpy()})[0].astype(np.int64)
    return torch.from_numpy(q - 128 if record.unsigned[name] else q)


@pytest.mark.parametrize("qdq", [True, False], ids=["qdq", "qoperator"])
@pytest.mark.parametrize("unsigned", [True, False], ids=["uint8", "int8"])
def test_imported_cnn_matches_onnxruntime_logits(tmp_path, qdq, unsigned):
    path, _ = quantized_model("cnn", tmp_path, qdq=qdq, unsigned=unsigned)
    record = import_onnx(path, dataset="digits")
    net = record.intnet
    assert [layer.kind for layer in net.layers] == ["conv", "conv", "linear", "linear"]
    assert [layer.pool for layer in net.layers] == [2, 0, 0, 0]
    assert [layer.flatten for layer in net.layers] == [False, True, False, False]
    assert [layer.relu for layer in net.layers] == [True, True, True, False]
    # Asymmetric activations: a ReLU quantized to [0, 255] is int8 with zero point -128,
    # which is also every hidden layer's input zero point (the conv pad value).
    assert [layer.pad_value for layer in net.layers[1:]] == [-128, -128, -128]
    assert int(net.layers[0].zero_point[0]) == -128 and net.layers[1].padding == 0
    assert (net.layers[0].stride, net.layers[0].padding, net.layers[1].stride) == (1, 1, 2)
    x = images(100, "test")
    theirs, mine = _ort_logits(path, x, record), net.forward(net.quantize_input(x))
    difference = (theirs - mine).abs()
    assert difference.max() <= 1 and (difference == 0).float().mean() > 0.95


def test_zero_point_is_an_offset_after_the_shift_and_default_is_bit_identical():
    acc = torch.tensor([[-300, 5, 1000, 40000]])
    base = requantize(acc, 40000, 16, False)
    assert torch.equal(requantize(acc, 40000, 16, False, zero_point=0), base)
    shifted = requantize(acc, 40000, 16, False, zero_point=-128)
    raw = (acc * 40000 + (1 << 15)) >> 16
    assert torch.equal(shifted, (raw - 128).clamp(-128, 127))
    # ReLU clips at the zero point (real value 0), then the offset saturates at 127.
    relu = requantize(acc, 40000, 16, True, zero_point=torch.tensor([[-128, -128, 100, 0]]))
    assert relu.tolist() == [[-128, -128 + 3, 127, 127]]
    assert requantize(-300, 40000, 16, True, zero_point=5) == 5


def test_input_zero_point_folds_into_the_bias_and_pads_with_it(tmp_path):
    # QDQ uint8 activations: the first layer's input zero point is 0 (uint8 128 is not
    # chosen for images in [0, 1]); the hidden ones are -128 and fold exactly.
    path, _ = quantized_model("cnn", tmp_path, qdq=True, unsigned=True)
    record = import_onnx(path)
    model = onnx.load(str(path))
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    conv2 = record.intnet.layers[1]
    w = weights["conv2.weight_quantized"].astype(np.int64)
    b = weights["conv2.bias_quantized"].astype(np.int64)
    assert conv2.bias.tolist() == (b + 128 * w.reshape(len(w), -1).sum(1)).tolist()


def test_symmetric_per_tensor_and_mlp(tmp_path):
    path, _ = quantized_model("mlp", tmp_path, qdq=True, unsigned=False, symmetric=True,
                              per_channel=False)
    net = import_onnx(path).intnet
    assert [layer.kind for layer in net.layers] == ["linear", "linear"]
    assert net.input_zero_point == 0 and all(layer.zero_point == 0 for layer in net.layers)
    assert net.layers[0].relu and len(set(net.layers[0].multiplier.tolist())) == 1


def _graph_model(nodes, initializers, shape=(1, 1, 4, 4), opset=17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, *shape[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _qdq_layer(op="Conv", extra_nodes=(), group=1, weight_dtype=np.int8, channels=2,
               activation_dtype=np.uint8, pads=(1, 1, 1, 1)):
    init = {"s": np.float32(0.02), "z": activation_dtype(128 if activation_dtype == np.uint8 else 0),
            "ws": np.full(channels, 0.01, np.float32), "wz": np.zeros(channels, weight_dtype),
            "w": np.ones((channels, 1 if group == 1 else 1, 3, 3), weight_dtype),
            "so": np.float32(0.05), "zo": activation_dtype(0)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="qx"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"], name="dqx"),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wf"], name="dqw", axis=0)]
    nodes.append(helper.make_node(op, ["xf", "wf"], ["c"], name="layer", group=group, pads=list(pads))
                 if op == "Conv" else helper.make_node(op, ["xf"], ["c"], name="layer",
                                                       kernel_shape=[2, 2], strides=[2, 2]))
    last = "c"
    for i, (kind, attrs) in enumerate(extra_nodes):
        nodes.append(helper.make_node(kind, [last] + attrs.pop("_inputs", []), [f"e{i}"],
                                      name=f"extra{i}", **attrs))
        last = f"e{i}"
    nodes += [helper.make_node("QuantizeLinear", [last, "so", "zo"], ["yq"], name="qy"),
              helper.make_node("DequantizeLinear", ["yq", "so", "zo"], ["y"], name="dqy")]
    return _graph_model(nodes, init, shape=(1, 1 if group == 1 else channels, 4, 4))


def test_relu_that_rescales_between_quantizations_is_refused():
    # What onnxruntime writes with symmetric activations when the Relu's input and output
    # ranges differ: Q(s1) -> DQ -> Relu -> Q(s2), a double rounding no int8 layer has.
    model = _qdq_layer(extra_nodes=[("QuantizeLinear", {"_inputs": ["s", "z"]}),
                                    ("DequantizeLinear", {"_inputs": ["s", "z"]}),
                                    ("Relu", {})])
    with pytest.raises(ValueError, match=r"^node extra2 \(Relu\): a float op between "
                                         r"quantized tensors that rescales"):
        import_onnx(model)
    # With the scale and zero point of the final QuantizeLinear the Relu is exact.
    same = _qdq_layer(extra_nodes=[("QuantizeLinear", {"_inputs": ["so", "zo"]}),
                                   ("DequantizeLinear", {"_inputs": ["so", "zo"]}),
                                   ("Relu", {})])
    assert import_onnx(same).intnet.layers[0].relu


def test_hand_built_layer_imports_and_pads_with_the_zero_point():
    record = import_onnx(_qdq_layer(extra_nodes=[("Relu", {})], activation_dtype=np.uint8))
    layer = record.intnet.layers[0]
    assert layer.relu and layer.padding == 1 and layer.pad_value == 0
    # Every uint8 value maps to int8 by -128; input zero point 128 -> 0, output 0 -> -128.
    assert int(layer.zero_point[0]) == -128 and record.intnet.input_zero_point == 0
    x = torch.rand(3, 1, 4, 4)
    session = ort.InferenceSession(_qdq_layer(extra_nodes=[("Relu", {})]).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    theirs = np.round(session.run(None, {"x": x.numpy()})[0] / 0.05).astype(np.int64) - 128
    mine = record.intnet.forward(record.intnet.quantize_input(x))
    assert (torch.from_numpy(theirs) - mine).abs().max() <= 1


@pytest.mark.parametrize("model, message", [
    (lambda: _qdq_layer(group=2), r"^node layer \(Conv\): grouped or depthwise"),
    (lambda: _qdq_layer(pads=(0, 0, 1, 1)), r"^node layer \(Conv\): asymmetric padding"),
    (lambda: _qdq_layer(op="AveragePool"), r"^node layer \(AveragePool\): unsupported operator"),
    (lambda: _qdq_layer(extra_nodes=[("Sigmoid", {})]), r"^node extra0 \(Sigmoid\): a float op"),
    (lambda: _qdq_layer(weight_dtype=np.int16), r"\(DequantizeLinear\): weights are int16"),
    (lambda: _qdq_layer(activation_dtype=np.int16), r"\(QuantizeLinear\): activation is int16"),
    (lambda: _qdq_layer(extra_nodes=[("Add", {"_inputs": ["xf"]})]),
     r"feeds 2 nodes|Add of two tensors"),
])
def test_unsupported_graphs_name_the_node_and_op(model, message):
    with pytest.raises(ValueError, match=message) as error:
        import_onnx(model())
    assert "\n" not in str(error.value)


def test_bad_files_and_float_models(tmp_path):
    path, _ = quantized_model("mlp", tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="not a (readable|valid) ONNX model"):
        import_onnx(tmp_path / "cut.onnx")
    (tmp_path / "text.onnx").write_text("hello")
    with pytest.raises(ValueError, match="not a (readable|valid) ONNX model"):
        import_onnx(tmp_path / "text.onnx")
    with pytest.raises(ValueError, match="^float-only model"):
        import_onnx(tmp_path / f"{path.stem}-float.onnx")
    with pytest.raises(ValueError, match=r"model input 1x28x28 .* does not match dataset cifar10"):
        import_onnx(path, dataset="cifar10")
    check_input_shape((1, 28, 28), "mnist5k")
    with pytest.raises(ValueError, match="does not match dataset mnist5k"):
        check_input_shape((1, 8, 8), "mnist5k")

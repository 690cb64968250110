import pytest

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.crosscheck import crosscheck
from neuroharden.golden.quantize import weight_scales

#: The three networks; AlexNet (about half a minute to train) only in the slow runs.
NETWORKS = ["mlp7", "lenet5", pytest.param("alexnet", marks=pytest.mark.slow(seconds=44))]


@pytest.mark.parametrize("name", NETWORKS)
def test_integer_model_agrees_with_torch_ao(trained_model, name):
    intnet, net, _, data = quantize_checkpoint(trained_model(name))
    x = intnet.quantize_input(data.x_test[:200])
    results = crosscheck(intnet, weight_scales(net), x)
    assert [r.name for r in results] == [layer.name for layer in intnet.layers]
    for result in results:
        assert result.fraction >= 0.99, result
        assert result.max_difference <= 1, result


ONNX_CASES = [  # (network, QDQ, uint8, per channel, symmetric)
    ("cnn", True, True, True, False), ("cnn", False, True, False, False),
    ("cnn", True, False, False, True), ("cnn", False, False, True, True),
    ("cnn", True, False, True, False), ("mlp", False, True, True, False),
]


@pytest.mark.parametrize("name, qdq, unsigned, per_channel, symmetric", ONNX_CASES)
def test_onnxruntime_agrees_with_imported_networks(tmp_path, name, qdq, unsigned,
                                                   per_channel, symmetric):
    from neuroharden.golden.crosscheck import crosscheck_onnx
    from tests.golden.onnx_nets import images, quantized_model

    path, _ = quantized_model(name, tmp_path, qdq=qdq, unsigned=unsigned,
                              per_channel=per_channel, symmetric=symmetric)
    results = crosscheck_onnx(path, images(200, "test"))
    assert results[0].name == "input" and results[-1].name == "logits (end to end)"
    for result in results[:-1]:  # each layer fed onnxruntime's own input
        assert result.fraction >= 0.99 and result.max_difference <= 1, result
    assert results[-1].fraction >= 0.95 and results[-1].max_difference <= 2


@pytest.mark.parametrize("name", ["mlp7", "lenet5"])
def test_onnxruntime_agrees_with_the_builtin_networks(trained_model, name):
    from neuroharden.golden.crosscheck import crosscheck_checkpoint

    results = crosscheck_checkpoint(trained_model(name), "onnxruntime", images=100)
    assert [r.name for r in results[1:-1]] == [
        layer.name for layer in quantize_checkpoint(trained_model(name))[0].layers]
    assert results[0].identical == results[0].total  # the same input quantization
    for result in results[1:]:
        assert result.fraction >= 0.99 and result.max_difference <= 1, result


def test_crosscheck_checkpoint_refuses_an_unknown_engine(trained_model):
    from neuroharden.golden.crosscheck import crosscheck_checkpoint

    with pytest.raises(ValueError, match="Engine must be one of torch, onnxruntime"):
        crosscheck_checkpoint(trained_model("mlp7"), "tflite")


def test_saturation_note_names_the_8_bit_weight_layers_on_cpus_without_vnni(
        trained_model, tmp_path, monkeypatch):
    from neuroharden.golden import crosscheck as module
    from neuroharden.golden.checkpoint import quantize_checkpoint
    from neuroharden.golden.onnx_export import export_onnx
    from tests.golden.onnx_nets import quantized_model

    full = tmp_path / "mlp7.onnx"                 # the contract's weights use all 8 bits
    export_onnx(quantize_checkpoint(trained_model("mlp7"))[0], full)
    seven_bit = quantized_model("mlp", tmp_path)[0]   # reduce_range: 7-bit weights
    monkeypatch.setattr(module, "_cpu_has_vnni", lambda: False)
    note = module.onnxruntime_saturation_note(full)
    assert note.startswith("note: 8-bit weights (fc1,") and "reduce_range=True" in note
    assert module.onnxruntime_saturation_note(seven_bit) is None
    monkeypatch.setattr(module, "_cpu_has_vnni", lambda: True)
    assert module.onnxruntime_saturation_note(full) is None

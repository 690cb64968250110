import logging

import numpy as np
import onnxruntime as ort
import pytest
import torch

from neuroharden.golden.crosscheck import crosscheck_onnx
from neuroharden.golden.onnx_export import OUTPUT, export_onnx, intnet_to_onnx
from neuroharden.golden.onnx_import import import_onnx
from neuroharden.golden.checkpoint import quantize_checkpoint
from tests.golden.onnx_nets import images, quantized_model

logging.getLogger().setLevel(logging.ERROR)


def _int8_logits(model, net, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = session.run([OUTPUT], {"x": x.numpy()})[0]
    zero_point = int(torch.as_tensor(net.layers[-1].zero_point).reshape(-1)[0])
    return torch.from_numpy(np.round(logits / np.float32(net.layers[-1].out_scale))
                            .astype(np.int64) + zero_point)


@pytest.mark.parametrize("name", ["mlp7", "lenet5"])
def test_builtin_network_round_trips_through_onnxruntime(trained_model, tmp_path, name):
    net, _, _, data = quantize_checkpoint(trained_model(name))
    path = tmp_path / "net.onnx"
    export_onnx(net, path)
    x = data.x_test[:200]
    model = import_onnx(path).intnet
    for result in crosscheck_onnx(path, x):
        assert result.fraction >= 0.99 and result.max_difference <= 1, result
    mine = net.forward(net.quantize_input(x))
    assert torch.equal(model.forward(model.quantize_input(x)), mine)
    from neuroharden.golden.onnx_import import load_onnx
    difference = (_int8_logits(load_onnx(path), net, x) - mine).abs()
    assert difference.max() <= 1 and (difference == 0).float().mean() >= 0.99


def test_imported_asymmetric_network_exports_back(tmp_path):
    path, _ = quantized_model("cnn", tmp_path, qdq=False, unsigned=True, per_channel=True)
    net = import_onnx(path).intnet
    x = images(200, "test")
    difference = (_int8_logits(intnet_to_onnx(net), net, x) - net.forward(net.quantize_input(x))).abs()
    assert difference.max() <= 1 and (difference == 0).float().mean() >= 0.99


def test_export_cli_onnx_and_hardened_refusal(lenet5_model, tmp_path):
    from click.testing import CliRunner

    from neuroharden.golden.hardened import HardenedNet
    from neuroharden.sim.app.cli import main

    out = tmp_path / "lenet5.onnx"
    result = CliRunner().invoke(main, ["export", "--model", str(lenet5_model), "--format",
                                       "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(import_onnx(out).intnet.layers) == 5
    net = quantize_checkpoint(lenet5_model)[0]
    hardened = HardenedNet(layers=net.layers, input_scale=net.input_scale,
                           input_shape=net.input_shape)
    with pytest.raises(ValueError, match="hardened network cannot be exported to ONNX"):
        intnet_to_onnx(hardened)

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from neuroharden.golden.crosscheck import crosscheck_onnx
from neuroharden.golden.harden import harden
from neuroharden.golden.numerics import INT8_MAX, wrap
from neuroharden.golden.onnx_export import (HARDENED_OPSET, OPSET, OUTPUT, OUTPUT_INT8,
                                            export_onnx, intnet_to_onnx)
from neuroharden.golden.onnx_import import import_onnx
from neuroharden.golden.checkpoint import quantize_checkpoint
from onnx import numpy_helper
from tests.golden.fi_nets import offset_net, random_net
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


def test_export_cli_onnx(lenet5_model, tmp_path):
    from click.testing import CliRunner

    from neuroharden.golden.hardened import HardenedNet
    from neuroharden.sim.app.cli import main

    out = tmp_path / "lenet5.onnx"
    result = CliRunner().invoke(main, ["export", "--model", str(lenet5_model), "--format",
                                       "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert len(import_onnx(out).intnet.layers) == 5
    assert onnx.load(str(out)).opset_import[0].version == OPSET
    net = quantize_checkpoint(lenet5_model)[0]
    hardened = HardenedNet(layers=net.layers, input_scale=net.input_scale,
                           input_shape=net.input_shape)
    with pytest.raises(ValueError, match="needs one protection map per layer"):
        intnet_to_onnx(hardened)


# ---------------------------------------------------------------- hardened networks

#: (scheme, voter) of the hardened exports: every scheme and voter.
HARDENINGS = [("lcu", "bitwise"), ("tmr", "bitwise"), ("tmr", "word"),
              ("tmr-prune", "bitwise")]


def _session(model):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _ort_int8(model, x):
    """The ``logits_int8`` output of a hardened ``model`` on float images ``x``, as int64,
    checked against its ``logits`` output (their dequantization)."""
    logits, int8 = _session(model).run([OUTPUT, OUTPUT_INT8], {"x": x.numpy()})
    dequantize = next(n for n in model.graph.node if n.name == "dequantize_logits")
    scale, zero_point = (numpy_helper.to_array(next(i for i in model.graph.initializer
                                                    if i.name == name))
                         for name in dequantize.input[1:])
    assert np.array_equal(logits, (int8.astype(np.float32) - zero_point) * scale)
    return torch.from_numpy(int8.astype(np.int64))


def _assert_agrees(theirs, mine):
    assert theirs.shape == mine.shape
    difference = (theirs - mine).abs()
    assert int(difference.max()) <= 1 and float((difference == 0).double().mean()) >= 0.99, \
        (int(difference.max()), float((difference == 0).double().mean()))


def _ops(model):
    return [node.op_type for node in model.graph.node]


def _harden(net, scheme, voter="bitwise"):
    """Protect the even channels of every hidden layer (and output channel 0 with TMR);
    tmr-prune also prunes channel 1 of every hidden layer."""
    hidden = net.layers[:-1]
    protect = [(layer.name, c) for layer in hidden for c in range(0, layer.weight.shape[0], 2)]
    if scheme != "lcu":
        protect.append((net.layers[-1].name, 0))
    prune = [(layer.name, 1) for layer in hidden] if scheme == "tmr-prune" else []
    return harden(net, "lcu" if scheme == "lcu" else "tmr", protect, prune=prune,
                  voter=voter, label=scheme)


def _assert_has_correction(model, hardened):
    ops = _ops(model)
    assert model.opset_import[0].version == HARDENED_OPSET
    assert [o.name for o in model.graph.output] == [OUTPUT, OUTPUT_INT8]
    corrected = sum(not p.identity for p in hardened.protection)
    assert ops.count("Concat") == corrected > 0
    if hardened.scheme == "lcu":
        # The halves saturate at 63, except wide ones (at 127, in QuantizeLinear).
        halved = sum(bool((p.high < INT8_MAX).any()) for p in hardened.protection)
        assert ops.count("BitwiseAnd") == 2 * corrected and ops.count("Min") == halved
    elif hardened.voter == "bitwise":
        assert ops.count("BitwiseOr") == 2 * corrected and "Min" not in ops
    else:
        assert ops.count("Equal") == 3 * corrected and ops.count("Where") == 2 * corrected


@pytest.mark.slow(seconds=60)
@pytest.mark.parametrize("name", ["lenet5", "mlp7"])
def test_hardened_trained_networks_run_in_onnxruntime(trained_model, name):
    net, _, _, data = quantize_checkpoint(trained_model(name))
    x = data.x_test[:300]
    for scheme, voter in HARDENINGS:
        hardened = _harden(net, scheme, voter)
        model = intnet_to_onnx(hardened)
        _assert_has_correction(model, hardened)
        _assert_agrees(_ort_int8(model, x), hardened.forward(hardened.quantize_input(x)))


@pytest.fixture(scope="module")
def imported_cnn(tmp_path_factory):
    """An imported asymmetric CNN (uint8 activations: hidden zero points -128)."""
    path, _ = quantized_model("cnn", tmp_path_factory.mktemp("cnn"), qdq=True)
    return import_onnx(path, dataset="digits").intnet, path


@pytest.mark.parametrize("scheme", ["lcu", "lcu-all", "tmr", "tmr-prune"])
def test_hardened_imported_asymmetric_network_runs_in_onnxruntime(imported_cnn, scheme):
    # Wide pairs: offset-free halves (zero point 0) among channels with zero point -128.
    # The word voter is refused on such channels (golden.harden).
    net, _ = imported_cnn
    x = images(300, "test")
    if scheme == "lcu-all":  # every hidden channel split: zero point 0 on the whole layer
        hardened = harden(net, "lcu", [(layer.name, c) for layer in net.layers[:-1]
                                       for c in range(layer.weight.shape[0])])
    else:
        hardened = _harden(net, scheme)
    model = intnet_to_onnx(hardened)
    _assert_has_correction(model, hardened)
    wide = [bool(p.wide.any()) for p in hardened.protection]
    per_axis = [node.name for node in model.graph.node
                if node.name.endswith((".quantize_output", ".dequantize_input"))
                and any(a.name == "axis" for a in node.attribute)]
    if scheme == "lcu":  # mixed zero points: per-axis activations
        assert wide == [True, True, True, False]
        assert per_axis == ["conv1.quantize_output", "conv2.dequantize_input",
                            "conv2.quantize_output", "fc1.dequantize_input",
                            "fc1.quantize_output", "fc2.dequantize_input"]
    elif scheme == "lcu-all":
        assert wide == [True, True, True, False] and per_axis == []
    _assert_agrees(_ort_int8(model, x), hardened.forward(hardened.quantize_input(x)))


def _with_fault(model, hardened, layer, channel, bits):
    """``model`` with ``bits`` ORed into one raw output channel of ``layer``, after its
    saturation and before its correction (where a fault of the accelerator lands)."""
    spec = next(spec for spec in hardened.layers if spec.name == layer)
    faulty = onnx.ModelProto()
    faulty.CopyFrom(model)
    nodes = list(faulty.graph.node)
    raw = next(n for n in nodes if n.name == f"{layer}.concat").input[0]
    position = min(k for k, n in enumerate(nodes) if raw in n.input)
    for n in nodes:
        n.input[:] = [f"{raw}.faulty" if name == raw else name for name in n.input]
    mask = np.zeros(spec.weight.shape[0], np.int64)
    mask[channel] = bits
    shape = (1, -1, 1, 1) if spec.kind == "conv" else (1, -1)
    name = f"{raw}.fault{len(nodes)}"
    faulty.graph.initializer.append(numpy_helper.from_array(
        wrap(mask, 8).astype(np.int8).reshape(shape), name))
    nodes.insert(position, onnx.helper.make_node("BitwiseOr", [raw, name], [f"{raw}.faulty"],
                                                 name=name))
    del faulty.graph.node[:]
    faulty.graph.node.extend(nodes)
    onnx.checker.check_model(faulty)
    return faulty


def _reference_with_fault(hardened, x, layer, *faults, correct=True):
    """``HardenedNet.forward`` with ``faults`` (``(channel, bits)`` ORed into raw outputs
    of ``layer``); ``correct=False``: that layer's output read without its correction
    (what an export without it would compute)."""
    for i, spec in enumerate(hardened.layers):
        _, y = hardened.layer_step(i, x)
        if spec.name == layer:
            y = y.clone()
            for channel, bits in faults:
                y[:, channel] = wrap(y[:, channel] | bits, 8)
            if not correct:
                x = hardened.next_input(i, y[:, hardened.protection[i].read])
                continue
        x = hardened.next_input(i, hardened.correct(i, y))
    return x


@pytest.mark.parametrize("offset", [0, -128], ids=["symmetric", "wide"])
def test_exported_lcu_ands_a_disagreement_between_halves(offset):
    net, x_int = random_net(seed=0, padding=0)
    if offset:
        net = offset_net(net, offset)
    hardened = harden(net, "lcu", [("conv1", 1), ("conv2", 2), ("fc1", 3)])
    assert [bool(p.wide.any()) for p in hardened.protection[:3]] == [bool(offset)] * 3
    x = (x_int.double() * net.input_scale).float()
    model = intnet_to_onnx(hardened)
    clean = _ort_int8(model, x)
    assert torch.equal(clean, hardened.forward(hardened.quantize_input(x)))
    for i, (layer, bit) in enumerate([("conv1", 5), ("conv2", 7), ("fc1", 6)]):
        half = int(hardened.protection[i].lcu[0, 1])
        fault = (half, 1 << bit)
        # The raw fault moves the logits; the exported LCU masks it (a & b drops a 0 -> 1
        # flip of one half, the bit reset a flip of bit 6 / 7), as the contract does.
        assert not torch.equal(_reference_with_fault(hardened, x_int, layer, fault,
                                                     correct=False), clean)
        faulty = _ort_int8(_with_fault(model, hardened, layer, *fault), x)
        assert torch.equal(faulty, clean)
        assert torch.equal(faulty, _reference_with_fault(hardened, x_int, layer, fault))


@pytest.mark.parametrize("voter", ["bitwise", "word"])
def test_exported_voter_masks_one_copy_and_votes_like_the_contract(voter):
    net, x_int = random_net(seed=3, padding=1)
    hardened = harden(net, "tmr", [("conv1", 0), ("conv2", 2), ("fc1", 3), ("fc2", 4)],
                      voter=voter)
    x = (x_int.double() * net.input_scale).float()
    model = intnet_to_onnx(hardened)
    clean = _ort_int8(model, x)
    assert torch.equal(clean, hardened.forward(hardened.quantize_input(x)))
    for i, layer in enumerate(["conv1", "conv2", "fc1", "fc2"]):
        first, second, third = hardened.protection[i].tmr[0].tolist()
        # One corrupted copy (the one an uncorrected read would take) is outvoted.
        assert not torch.equal(_reference_with_fault(hardened, x_int, layer, (first, 1 << 5),
                                                     correct=False), clean)
        assert torch.equal(_ort_int8(_with_fault(model, hardened, layer, first, 1 << 5), x),
                           clean)
        # Two copies corrupted: the vote changes (the word voter gives 0 where no two
        # copies agree), and the export computes the contract's vote.
        faults = [(second, 1 << 5), (third, 1 << 5 if voter == "bitwise" else 1 << 4)]
        expected = _reference_with_fault(hardened, x_int, layer, *faults)
        assert not torch.equal(expected, clean)
        faulty = _with_fault(_with_fault(model, hardened, layer, *faults[0]), hardened,
                             layer, *faults[1])
        assert torch.equal(_ort_int8(faulty, x), expected)


def test_hardened_export_refusals():
    from dataclasses import replace

    net, _ = random_net(seed=0, padding=0)
    hardened = harden(offset_net(net, -128), "lcu", [("conv1", 0)])
    intnet_to_onnx(hardened)  # conv2 does not pad: mixed zero points are exact
    hardened.layers[1] = replace(hardened.layers[1], padding=1)
    with pytest.raises(ValueError, match=r"conv2: pads with -128 an input whose zero points "
                                         r"are \[-128, 0\] \(per-channel padding"):
        intnet_to_onnx(hardened)


def test_hardened_export_through_the_cli(lenet5_model, imported_cnn, tmp_path):
    from click.testing import CliRunner

    from neuroharden.golden.campaign import file_sha256
    from neuroharden.golden.checkpoint import IMPORTED_FORMAT
    from neuroharden.golden.hardened import load_hardened, save_hardened
    from neuroharden.sim.app.cli import main

    def export(source, out):
        return CliRunner().invoke(main, ["export", "--model", str(source), "--format", "onnx",
                                         "-o", str(out)])

    net, _, _, data = quantize_checkpoint(lenet5_model)
    source = tmp_path / "HARDENED.pt"
    save_hardened(_harden(net, "tmr"), source, model_sha256=file_sha256(lenet5_model),
                  checkpoint=torch.load(lenet5_model, weights_only=True),
                  selection={"scheme": "tmr"})
    out = tmp_path / "hardened.onnx"
    result = export(source, out)
    assert result.exit_code == 0, result.output
    hardened = load_hardened(source)[0]
    model = onnx.load(str(out))
    _assert_has_correction(model, hardened)
    x = data.x_test[:200]
    _assert_agrees(_ort_int8(model, x), hardened.forward(hardened.quantize_input(x)))
    # Its export does not import back: the layer-by-layer cross-check refuses it.
    from neuroharden.golden.crosscheck import crosscheck_checkpoint

    with pytest.raises(ValueError, match="no layer-by-layer onnxruntime cross-check"):
        crosscheck_checkpoint(source, "onnxruntime", images=10)
    # A split before a conv that pads: no exact ONNX form, refused in one line, no file.
    from dataclasses import replace

    imported, path = imported_cnn
    refused = harden(imported, "lcu", [("conv1", 0)])
    refused.layers[1] = replace(refused.layers[1], padding=1)
    bad = tmp_path / "BAD.pt"
    save_hardened(refused, bad, model_sha256=file_sha256(path),
                  checkpoint={"format": IMPORTED_FORMAT, "source": "onnx", "model": "cnn",
                              "dataset": "digits", "data_dir": None},
                  selection={"scheme": "lcu"})
    result = export(bad, tmp_path / "bad.onnx")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "per-channel padding has no ONNX form" in result.output
    assert not (tmp_path / "bad.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["BAD.pt", "HARDENED.pt",
                                                          "hardened.onnx"]

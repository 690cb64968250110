"""Network files read as integer networks, and the import order that keeps them acyclic."""

import ast
import pathlib

import pytest
import torch

from neuroharden.golden.checkpoint import (IMPORTED_FORMAT, dataset_field,
                                           load_hardened_checkpoint, load_intnet,
                                           original_content, quantize_checkpoint)
from neuroharden.golden.export import export_intnet
from neuroharden.golden.harden import harden
from neuroharden.golden.hardened import HardenedNet, save_hardened
from neuroharden.golden.intmodel import IntNet

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "golden"


def _hardened_file(path, model_path):
    net = load_intnet(model_path)
    hardened = harden(net, "tmr", [(net.layers[0].name, 1), (net.layers[2].name, 5)])
    save_hardened(hardened, path, model_sha256="cd" * 32,
                  checkpoint=torch.load(model_path, weights_only=True),
                  selection={"fraction": 1.0})
    return hardened


def test_a_checkpoint_is_quantized_on_its_training_split(lenet5_model):
    intnet, float_net, metadata, data = quantize_checkpoint(lenet5_model)
    assert type(intnet) is IntNet and metadata["model"] == "lenet5"
    assert float_net.input_shape == intnet.input_shape == tuple(data.x_test.shape[1:])
    again = load_intnet(lenet5_model)
    assert all(torch.equal(a.weight, b.weight) and torch.equal(a.shift, b.shift)
               for a, b in zip(intnet.layers, again.layers))


def test_a_hardened_file_is_read_as_it_is(lenet5_model, tmp_path):
    path = tmp_path / "h.pt"
    hardened = _hardened_file(path, lenet5_model)
    net, float_net, metadata, data = quantize_checkpoint(path)
    assert isinstance(net, HardenedNet) and net.scheme == "tmr"
    assert metadata["model"] == "lenet5"
    assert metadata["hardened"] == {"scheme": "tmr", "voter": "bitwise",
                                    "model_sha256": "cd" * 32,
                                    "selection": {"fraction": 1.0}}
    x = net.quantize_input(data.x_test[:8])
    assert torch.equal(net.forward(x), hardened.forward(x))
    assert float_net.input_shape == tuple(data.x_test.shape[1:])


def test_a_damaged_original_checkpoint_is_refused(lenet5_model, tmp_path):
    path = tmp_path / "h.pt"
    hardened = _hardened_file(path, lenet5_model)
    save_hardened(hardened, path, model_sha256="cd" * 32, checkpoint={"model": "lenet5"},
                  selection={})
    with pytest.raises(ValueError, match="damaged original checkpoint inside"):
        load_hardened_checkpoint(path)
    with pytest.raises(ValueError, match="is a model checkpoint, not a hardened network"):
        load_hardened_checkpoint(lenet5_model)


@pytest.fixture(scope="module")
def onnx_cnn(tmp_path_factory):
    """A CNN quantized by onnxruntime: QDQ, asymmetric uint8 activations, per-channel weights."""
    from tests.golden.onnx_nets import quantized_model

    return quantized_model("cnn", tmp_path_factory.mktemp("onnx"))[0]


def test_an_onnx_network_is_imported_with_its_dataset(onnx_cnn):
    from neuroharden.golden.onnx_import import import_onnx

    intnet, float_net, metadata, data = quantize_checkpoint(onnx_cnn)
    assert float_net is None and data.name == "digits"
    assert metadata == {"format": IMPORTED_FORMAT, "source": "onnx", "model": onnx_cnn.stem,
                        "dataset": "digits", "data_dir": None}
    direct = import_onnx(onnx_cnn).intnet
    x = intnet.quantize_input(data.x_test[:16])
    assert intnet.input_zero_point == direct.input_zero_point != 0
    assert torch.equal(intnet.forward(x), direct.forward(x))
    assert quantize_checkpoint(onnx_cnn, dataset="mnist5k")[3].name == "mnist5k"


def test_a_qnet_file_reads_as_the_network_it_was_imported_from(onnx_cnn, tmp_path):
    path = tmp_path / "qnet.npz"
    export_intnet(load_intnet(onnx_cnn), path)
    net, float_net, metadata, data = quantize_checkpoint(path)
    assert float_net is None and metadata["source"] == "npz" and metadata["model"] == "qnet"
    x = net.quantize_input(data.x_test[:16])
    assert torch.equal(net.forward(x), load_intnet(onnx_cnn).forward(x))


@pytest.mark.parametrize("dataset, message", [
    ("cifar10", r"qnet.npz: model input 1x28x28 \(CxHxW\) does not match dataset cifar10"),
    ("nope", r"unknown dataset 'nope'")])
def test_an_imported_network_must_match_its_dataset(onnx_cnn, tmp_path, dataset, message):
    path = tmp_path / "qnet.npz"
    export_intnet(load_intnet(onnx_cnn), path)
    for source in (path, onnx_cnn):
        with pytest.raises(ValueError, match=message.replace("qnet.npz", source.name)):
            quantize_checkpoint(source, dataset=dataset)


def test_a_bad_onnx_file_is_one_line(onnx_cnn, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(onnx_cnn.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"^\S*cut.onnx: not a readable ONNX model") as error:
        quantize_checkpoint(cut)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="no such file"):
        quantize_checkpoint(tmp_path / "missing.onnx")


def test_a_network_hardened_from_an_import_keeps_its_dataset(onnx_cnn, tmp_path):
    net, _, metadata, _ = quantize_checkpoint(onnx_cnn, dataset="mnist5k")
    content = original_content(onnx_cnn, metadata)
    assert content == metadata
    hardened = harden(net, "tmr", [(net.layers[2].name, 5)])
    path = tmp_path / "h.pt"
    save_hardened(hardened, path, model_sha256="ab" * 32, checkpoint=content, selection={})
    back, float_net, back_metadata, data = quantize_checkpoint(path)
    assert isinstance(back, HardenedNet) and float_net is None and data.name == "mnist5k"
    assert back_metadata["model"] == onnx_cnn.stem
    assert back_metadata["hardened"]["scheme"] == "tmr"
    x = back.quantize_input(data.x_test[:8])
    assert torch.equal(back.forward(x), hardened.forward(x))


def test_campaigns_name_the_dataset_only_where_the_file_does_not(lenet5_model, onnx_cnn):
    data = quantize_checkpoint(lenet5_model)[3]
    assert dataset_field(lenet5_model, None, data) == {}
    assert dataset_field(lenet5_model, "digits", data) == {"dataset": "digits"}
    assert dataset_field(onnx_cnn, None, data) == {"dataset": "digits"}


def _golden_imports(tree, *, top_level):
    """golden modules a module imports (relative imports), at its top level or inside
    functions."""
    nodes = tree.body if top_level else [n for f in ast.walk(tree)
                                         if isinstance(f, (ast.FunctionDef,
                                                           ast.AsyncFunctionDef))
                                         for n in ast.walk(f)]
    names = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= ({node.module} if node.module else {a.name for a in node.names})
    return names


def test_golden_modules_import_each_other_without_a_cycle():
    graph = {path.stem: _golden_imports(ast.parse(path.read_text()), top_level=True)
             for path in GOLDEN.glob("*.py")}
    done, active = set(), []

    def visit(module):
        if module in active:
            raise AssertionError(f"import cycle: {' -> '.join(active + [module])}")
        if module in done or module not in graph:
            return
        active.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        active.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    # The network modules need no import deferred into a function to load.
    for name in ("intmodel", "quantize", "hardened", "checkpoint"):
        tree = ast.parse((GOLDEN / f"{name}.py").read_text())
        assert not _golden_imports(tree, top_level=False), name

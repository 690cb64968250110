"""Network files read as integer networks, and the import order that keeps them acyclic."""

import ast
import pathlib

import pytest
import torch

from neuroharden.golden.checkpoint import load_hardened_checkpoint, load_intnet, quantize_checkpoint
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

"""`neuroharden run-rtl`: whole networks on the RTL accelerator, bit-exact with golden."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.harden import harden
from neuroharden.golden.hardened import save_hardened
from neuroharden.sim.app.cli import main
from neuroharden.sim.compiler import compile_network
from neuroharden.sim.run_rtl import run_checkpoint, run_program
from neuroharden.golden.export import export_intnet
from tests.golden.fi_nets import random_net
from tests.golden.onnx_nets import imported_net

PROTECT = [("conv1", 0), ("conv2", 1), ("conv2", 2), ("fc1", 3)]


def invoke(*args):
    return CliRunner().invoke(main, ["run-rtl", *map(str, args)])


@pytest.mark.slow
@pytest.mark.parametrize("sim, scheme", [("icarus", "none"), ("icarus", "lcu"),
                                         ("icarus", "tmr"), ("verilator", "lcu"),
                                         ("verilator", "tmr")])
def test_rtl_logits_equal_golden(sim, scheme):
    net, x = random_net(images=3)
    if scheme == "lcu":
        net = harden(net, "lcu", PROTECT)
    elif scheme == "tmr":
        net = harden(net, "tmr", PROTECT + [("fc2", 2)], prune=[("fc1", 5)], voter="word")
    program = compile_network(net, rows=4, cols=5)
    logits, stats = run_program(program, x.numpy(), sim=sim)
    np.testing.assert_array_equal(logits, net.forward(x).numpy())
    assert stats["protect"] == scheme and stats["tiles"] > 0 and stats["cycles"] > 0


def every_fourth_channel(lenet5_model, directory, scheme, layers):
    """HARDENED.pt of LeNet-5 with every fourth channel of ``layers`` (slice of its
    layers) protected by ``scheme``."""
    net, _, _, _ = quantize_checkpoint(lenet5_model)
    hardened = harden(net, scheme, [(layer.name, c) for layer in net.layers[layers]
                                    for c in range(0, layer.weight.shape[0], 4)])
    path = directory / f"{scheme}.pt"
    save_hardened(hardened, path, model_sha256="0" * 64, selection={"scheme": scheme},
                  checkpoint=torch.load(lenet5_model, map_location="cpu", weights_only=True))
    return path


@pytest.fixture(scope="module")
def hardened_lenet5(lenet5_model, tmp_path_factory):  # noqa: F811
    """LeNet-5 with every fourth channel of every layer triplicated."""
    return every_fourth_channel(lenet5_model, tmp_path_factory.mktemp("run-rtl"), "tmr",
                                slice(None))


@pytest.mark.slow(seconds=44)
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_hardened_lenet5_agrees_on_the_rtl(hardened_lenet5, sim):
    result = invoke("--model", hardened_lenet5, "--images", 2, "--rows", 8, "--cols", 6,
                    "--sim", sim, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["agreement"] == 1.0 and summary["disagreeing_images"] == []
    assert (summary["images"], summary["scheme"], summary["protect"]) == (2, "tmr", "tmr")
    assert summary["tiles"] > 0 and summary["cycles"] > 0


@pytest.fixture(scope="module")
def asymmetric_cnn(tmp_path_factory):
    """An onnxruntime QDQ network (uint8 activations, per-channel int8 weights) as the
    ``.onnx`` file and as the ``QNET.npz`` it imports to."""
    directory = tmp_path_factory.mktemp("onnx")
    net, path = imported_net("cnn", directory)
    export_intnet(net, directory / "qnet.npz")
    return path, directory / "qnet.npz"


@pytest.mark.slow(seconds=50)
@pytest.mark.parametrize("sim, form", [("icarus", "onnx"), ("verilator", "npz")])
def test_imported_asymmetric_network_agrees_on_the_rtl(asymmetric_cnn, sim, form):
    """Zero points on every layer and the input zero point as the conv pad value, through
    the per-column zero-point registers of the accelerator."""
    path = asymmetric_cnn[0] if form == "onnx" else asymmetric_cnn[1]
    result = invoke("--model", path, "--images", 2, "--rows", 8, "--cols", 8, "--sim", sim,
                    "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["agreement"] == 1.0 and summary["disagreeing_images"] == []
    assert summary["tiles"] > 100


@pytest.mark.slow
def test_too_few_columns_for_a_triple_is_refused(hardened_lenet5):
    result = invoke("--model", hardened_lenet5, "--cols", 2)
    assert result.exit_code == 2
    assert "fewer than the 3 copies" in result.output


@pytest.mark.parametrize("args, message", [
    (["--model", "nope.pt"], "no such file"),
    (["--model", "nope.pt", "--sim", "modelsim"], "unknown simulator"),
    (["--model", "nope.pt", "--images", 0], "--images"),
    (["--model", "junk.pt"], "not a model checkpoint"),
])
def test_bad_input_is_one_line_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    result = invoke(*args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


@pytest.mark.parametrize("options, match", [
    ({"sim": "modelsim"}, "unknown simulator 'modelsim'"),
    ({"images": 0}, "images must be a positive integer, not 0"),
    ({"images": 2.5}, "images must be a positive integer"),
])
def test_run_checkpoint_refuses_bad_parameters_before_reading(options, match):
    with pytest.raises(ValueError, match=match):
        run_checkpoint("nope.pt", **options)


@pytest.fixture(scope="module")
def lcu_lenet5(lenet5_model, tmp_path_factory):  # noqa: F811
    """LeNet-5 with every fourth channel of every ReLU layer split into an LCU pair."""
    return every_fourth_channel(lenet5_model, tmp_path_factory.mktemp("run-rtl-axi"), "lcu",
                                slice(None, -1))


# Each variant on one simulator (the bus regressions of tests/sim/test_axi_accelerator.py
# run on both): plain on Icarus, LCU-hardened on Verilator.
@pytest.mark.slow(seconds=90)
@pytest.mark.parametrize("sim, hardened", [("icarus", False), ("verilator", True)])
def test_lenet5_through_the_axi_bus_equals_golden(lenet5_model, lcu_lenet5, sim, hardened):
    """Every layer of LeNet-5 (plain and LCU-hardened) through AXI4-Lite and AXI4-Stream
    with cocotbext-axi: the int8 logits equal golden on every image, and a fault-free
    run leaves the error counters at 0 (the copies of every LCU pair agree)."""
    model = lcu_lenet5 if hardened else lenet5_model
    result = invoke("--model", model, "--images", 2, "--rows", 8, "--cols", 8, "--sim", sim,
                    "--bus", "axi", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["agreement"] == 1.0 and summary["disagreeing_images"] == []
    assert summary["bus"] == "axi" and summary["protect"] == ("lcu" if hardened else "none")
    assert summary["error_counters"] == {"lcu_differ": 0, "tmr_differ": 0,
                                         "tmr_no_majority": 0}

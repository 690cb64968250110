"""A network quantized by onnxruntime through every command that takes a model.

The network is QDQ with asymmetric uint8 activations and per-channel int8 weights
(tests/golden/onnx_nets.py). These tests check the plumbing: each command reads the
``.onnx`` (or the ``QNET.npz`` imported from it), runs and writes, and refuses bad input
with one line, exit status 2 and nothing written. The bit-exact agreement of the
asymmetric arithmetic is tested beside the engine and the RTL.
"""

import json

import onnx
import pytest
from click.testing import CliRunner

from neuroharden.golden.campaign import ResultsDB
from neuroharden.sim.app.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """The quantized CNN and MLP (``.onnx``), the MLP imported (``.npz``), a ranking of each."""
    from tests.golden.onnx_nets import quantized_model

    root = tmp_path_factory.mktemp("onnx-flow")
    cnn, mlp = (quantized_model(name, root)[0] for name in ("cnn", "mlp"))
    qnet = root / "mlp.npz"
    ok("import", mlp, "-o", qnet)
    for model in (cnn, mlp):
        ok("rank", "--model", model, "--method", "nvf", "--images", 10,
           "-o", root / f"{model.stem}.json")
    return {"root": root, "cnn": cnn, "mlp": mlp, "qnet": qnet,
            "cnn_critical": root / f"{cnn.stem}.json",
            "mlp_critical": root / f"{mlp.stem}.json"}


def test_eval_reports_int8_accuracy_and_no_float_one(nets):
    for model in (nets["cnn"], nets["qnet"]):
        report = json.loads(ok("eval", "--model", model, "--json"))
        assert report["float_accuracy"] is None and report["dataset"] == "digits"
        assert 0 <= report["int8_accuracy"] <= 1 and len(report["predictions"]) == 360
    text = ok("eval", "--model", nets["cnn"], "--dataset", "mnist5k")
    assert "on mnist5k (1000 test images)" in text
    assert "float accuracy: unavailable" in text


def test_the_onnx_file_and_its_import_are_one_network(nets):
    by_file = [json.loads(ok("eval", "--model", m, "--json"))["predictions"]
               for m in (nets["mlp"], nets["qnet"])]
    assert by_file[0] == by_file[1]


@pytest.mark.parametrize("method", ["exact", "activation", "lrp", "random"])
def test_every_ranking_method_runs_on_an_imported_network(nets, tmp_path, method):
    out = tmp_path / "critical.json"
    report = json.loads(ok("rank", "--model", nets["mlp"], "--method", method,
                           "--images", 5, "-o", out, "--json"))
    assert report["neurons"] == 48
    assert len(json.loads(out.read_text())["neurons"]) == 48


@pytest.mark.parametrize("scheme", ["lcu", "tmr", "tmr-prune"])
def test_harden_writes_a_hardened_network_that_the_other_commands_read(nets, tmp_path,
                                                                       scheme):
    out = tmp_path / "hardened.pt"
    report = json.loads(ok("harden", "--model", nets["cnn"], "--critical",
                           nets["cnn_critical"], "--scheme", scheme, "--fraction", 5,
                           "-o", out, "--json"))
    assert report["protected_channels"] > 0 and out.is_file()
    evaluated = json.loads(ok("eval", "--model", out, "--json"))
    assert evaluated["float_accuracy"] is None
    assert evaluated["int8_accuracy"] == report["int8_accuracy_after"]


def test_cost_of_an_imported_network(nets):
    report = json.loads(ok("cost", "--model", nets["cnn"], "--critical",
                           nets["cnn_critical"], "--fraction", 5, "--no-area", "--json"))
    assert report["model"] == str(nets["cnn"])


def test_export_an_imported_network_back_to_onnx(nets, tmp_path):
    out = tmp_path / "back.onnx"
    ok("export", "--model", nets["qnet"], "--format", "onnx", "-o", out)
    back, original = (json.loads(ok("eval", "--model", m, "--json"))["predictions"]
                      for m in (out, nets["mlp"]))
    assert back == original


def test_model_campaigns_on_the_dataset_given(nets, tmp_path):
    db = tmp_path / "c.sqlite"
    common = ("campaign", "--fault", "bitflip", "--faults", 10, "--images", 20, "--db", db,
              "--json")
    first = json.loads(ok(*common, "--model", nets["cnn"]))
    assert first["completed"] == 10 and first["images"] == 20
    other = json.loads(ok(*common, "--model", nets["cnn"], "--dataset", "mnist5k"))
    assert other["campaign"] != first["campaign"]  # other images, another campaign
    again = json.loads(ok(*common, "--model", nets["cnn"]))
    assert again["campaign"] == first["campaign"]
    json.loads(ok(*common, "--model", nets["qnet"]))
    with ResultsDB(db) as results:
        assert len(results.results(first["campaign"])) == 10


@pytest.mark.slow(seconds=120)
def test_run_rtl_on_an_imported_network(nets):
    report = json.loads(ok("run-rtl", "--model", nets["mlp"], "--images", 2, "--json"))
    assert report["model"] == nets["mlp"].stem and report["scheme"] == "none"
    assert report["images"] == 2 and report["tiles"] > 0


@pytest.mark.slow(seconds=120)
def test_rtl_campaign_on_an_imported_network(nets, tmp_path):
    report = json.loads(ok("campaign", "--model", nets["qnet"], "--level", "rtl",
                           "--fault", "bitflip", "--faults", 2, "--images", 2,
                           "--db", tmp_path / "r.sqlite", "--json"))
    assert report["completed"] == 2 and report["level"] == "rtl"


@pytest.fixture(scope="module")
def bad_files(nets):
    """One bad network per kind of refusal, and the message each must give."""
    from tests.golden.test_onnx_import import _qdq_layer

    root = nets["root"]
    cut = root / "cut.onnx"
    cut.write_bytes(nets["mlp"].read_bytes()[:300])
    pool = root / "avgpool.onnx"
    onnx.save(_qdq_layer(op="AveragePool"), pool)
    return [(["--model", cut], "cut.onnx: not a readable ONNX model"),
            (["--model", pool], "node layer (AveragePool): unsupported operator"),
            (["--model", nets["root"] / f"{nets['mlp'].stem}-float.onnx"],
             "float-only model"),
            (["--model", nets["mlp"], "--dataset", "cifar10"],
             "does not match dataset cifar10"),
            (["--model", nets["qnet"], "--dataset", "cifar10"],
             "does not match dataset cifar10")]


def _commands(nets, out):
    return {"eval": ["eval"],
            "export": ["export", "-o", out / "q.npz"],
            "rank": ["rank", "--method", "nvf", "-o", out / "c.json"],
            "harden": ["harden", "--critical", nets["mlp_critical"], "--scheme", "lcu",
                       "--fraction", 5, "-o", out / "h.pt"],
            "cost": ["cost", "--critical", nets["mlp_critical"], "--fraction", 5,
                     "--no-area"],
            "campaign": ["campaign", "--fault", "bitflip", "--db", out / "c.sqlite"],
            "campaign-rtl": ["campaign", "--level", "rtl", "--fault", "bitflip",
                             "--db", out / "r.sqlite"],
            "run-rtl": ["run-rtl"]}


@pytest.mark.parametrize("command", ["eval", "export", "rank", "harden", "cost", "campaign",
                                     "campaign-rtl", "run-rtl"])
def test_bad_networks_are_one_line_exit_2_nothing_written(nets, bad_files, tmp_path,
                                                          command):
    arguments = _commands(nets, tmp_path)[command]
    for model, message in bad_files:
        result = run(*arguments, *model)
        assert result.exit_code == 2 and message in result.output, (model, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
        assert list(tmp_path.iterdir()) == []

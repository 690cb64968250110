import csv
import json
import sqlite3

import pytest
from click.testing import CliRunner

from neuroharden.golden.experiments import common, fig4
from neuroharden.sim.app.cli import main


@pytest.mark.slow
def test_fig4_small_on_lenet5(cache, tmp_path):
    out = tmp_path / "f4"
    args = ["experiment", "fig4", "--models", "lenet5", "--images", "2", "--thresholds",
            "0.5,20", "--faults", "8", "--test-images", "20",
            "--cache", str(cache("lenet5")), "-o", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "fig4.csv")))
    assert [(r["point"], r["scheme"]) for r in rows] == [
        (p, s) for p in ("0.5", "20", "matched") for s in ("none", "lcu", "tmr")]
    by = {(r["point"], r["scheme"]): r for r in rows}
    for r in rows:
        assert int(r["faults"]) == 8 < int(r["leveugle_faults"])
        n, c = int(r["hidden_neurons"]), int(r["protected_neurons"])
        assert n == 4684 + {"none": 0, "lcu": c, "tmr": 2 * c}[r["scheme"]]
    # 20 % selects nothing on digits: the hardened rows are the unprotected campaign.
    assert by[("20", "lcu")]["critical"] == by[("20", "none")]["critical"]
    assert int(by[("20", "tmr")]["protected_neurons"]) == 0
    # The matched point protects at least the paper's 3.99 % (187 neurons).
    assert int(by[("matched", "lcu")]["selected_neurons"]) == 187
    assert int(by[("matched", "lcu")]["protected_neurons"]) >= 187
    summary = json.loads(result.output)
    assert set(summary["models"]["lenet5"]) == {"dataset", "20", "matched"}
    assert summary["models"]["lenet5"]["dataset"] == "digits"
    assert summary["max_faults"] == 8 and summary["seconds"] > 0
    assert "| 8 of 7,645 |" in (out / "fig4.md").read_text()     # the cap is stated
    # A rerun resumes every campaign from results.sqlite and gives the same table.
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert list(csv.DictReader(open(out / "fig4.csv"))) == rows


@pytest.mark.parametrize("images, thresholds, match", [
    ({}, [1.0], "images of lenet5 must be a positive integer"),
    ({"lenet5": 2}, [120.0], r"thresholds must be at least one number in \[0, 100\]"),
    ({"lenet5": 2}, [], "thresholds"),
])
def test_run_refuses_bad_parameters_before_any_work(tmp_path, images, thresholds, match):
    ctx = common.prepare("fig4", str(tmp_path / "out"), str(tmp_path / "cache"), 0, True)
    network = common.Network("lenet5", "LeNet-5", str(tmp_path / "missing.pt"), True, {})
    with pytest.raises(ValueError, match=match):
        fig4.run(ctx, [network], images=images, thresholds=thresholds)
    assert list((tmp_path / "cache").iterdir()) == []


def test_unknown_network_is_refused_before_training(tmp_path):
    result = CliRunner().invoke(main, ["experiment", "fig4", "--models", "resnet",
                                       "--cache", str(tmp_path / "cache"),
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2 and "unknown 'resnet'" in result.output
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow(seconds=30)
def test_fig4_on_an_onnx_network_and_real_mnist(tmp_path):
    """A user's network (quantized by onnxruntime) on mnist5k: no matched point, since
    the paper has no share for it; every campaign on the dataset given."""
    from tests.golden.onnx_nets import quantized_model

    model = quantized_model("mlp", tmp_path)[0]
    out = tmp_path / "f4"
    args = ["experiment", "fig4", "--model", str(model), "--dataset", "mnist5k",
            "--images", "4", "--thresholds", "0,1", "--faults", "10", "--test-images", "30",
            "--cache", str(tmp_path / "cache"), "-o", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert list(summary["models"]) == [model.stem]
    assert summary["models"][model.stem] == {"dataset": "mnist5k"}
    rows = list(csv.DictReader(open(out / "fig4.csv")))
    assert [(r["point"], r["scheme"]) for r in rows] == [
        (p, s) for p in ("0", "1") for s in ("none", "lcu", "tmr")]
    # Everything protected at NVF >= 0: the LCU doubles and TMR triples the 48 neurons.
    by = {(r["point"], r["scheme"]): r for r in rows}
    assert [int(by[("0", s)]["hidden_neurons"]) for s in ("none", "lcu", "tmr")] == [48, 96, 144]
    assert f"| {model.stem} | 0 % | lcu |" in (out / "fig4.md").read_text()
    with sqlite3.connect(out / "results.sqlite") as db:
        definitions = [json.loads(d) for d, in db.execute("SELECT definition FROM campaigns")]
    assert len(definitions) == 5 and {d.get("dataset") for d in definitions} == {"mnist5k"}

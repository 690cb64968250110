"""Paper 003's stuck-at experiment on a small array, few faults and few images."""

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.outcomes import classify
from neuroharden.sim.app.experiments.sa_fi import PAPER
from neuroharden.sim.app.cli import main
from neuroharden.sim.compiler import compile_network
from neuroharden.sim.stuck_weights import StuckWeightNetwork

ARGS = ["--rows", "4", "--cols", "4", "--images", "12", "--faults", "10"]


def invoke(cache, out, *extra):
    return CliRunner().invoke(main, ["experiment", "sa-fi", *ARGS, *extra, "--cache",
                                     str(cache("lenet5")), "-o", str(out), "--json"])


def test_sa_fi_table_resumes_and_matches_the_model(cache, tmp_path):
    out = tmp_path / "sa"
    result = invoke(cache, out, "--rtl-check", "0")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for width, population in (("8", 2 * 8 * 16), ("16", 2 * 16 * 16)):
        array = summary["arrays"][width]
        assert array["population"] == population and array["faults"] == 10
        assert array["capped"] and array["evaluated_now"] == 10
        assert sum(array["fault_counts"].values()) == 10
        assert sum(array["pair_counts"].values()) == 10 * 12
        assert array["rtl_check"] is None
        assert array["paper"] == PAPER[int(width)]
    table = list(csv.DictReader(open(out / "sa_fi.csv")))
    assert [row["width"] for row in table] == ["8", "16"]
    assert float(table[1]["paper_critical_pct"]) == 23.24
    faults = list(csv.DictReader(open(out / "sa_fi_faults.csv")))
    assert len(faults) == 20
    # Every stored row is the classification of the model's logits for that fault.
    net, _, _, data = quantize_checkpoint(cache("lenet5") / "lenet5-digits-seed0-e60.pt")
    x = net.quantize_input(data.x_test[:12]).numpy()
    program = compile_network(net, rows=4, cols=4)
    for width in (8, 16):
        model = StuckWeightNetwork(program, x, width=width)
        rows = [row for row in faults if row["width"] == str(width)][:3]
        logits = np.stack([model.run(row["site"], int(row["bit"]), row["model"])
                           for row in rows])
        expected = classify(torch.from_numpy(logits), torch.from_numpy(model.logits),
                            data.y_test[:12], net.layers[-1].out_scale)
        for row, want in zip(rows, expected):
            assert row["outcome"] == want["outcome"]
            assert int(row["critical_images"]) == want["critical_images"]
    markdown = (out / "sa_fi.md").read_text()
    assert "| 16-bit | paper 003" in markdown
    assert "253 of 256 (8-bit), capped at 10 by --faults" in markdown
    assert (out / "sa_fi.png").read_bytes()[:4] == b"\x89PNG"
    # A second run finds every fault in results.sqlite.
    again = json.loads(invoke(cache, out, "--rtl-check", "0").output)
    for width in ("8", "16"):
        assert again["arrays"][width]["evaluated_now"] == 0
        assert again["arrays"][width]["pair_counts"] == summary["arrays"][width]["pair_counts"]


def test_sa_fi_refuses_bad_input(cache, tmp_path):
    result = invoke(cache, tmp_path / "bad", "--images", "100000", "--rtl-check", "0")
    assert result.exit_code != 0 and "exceeds" in result.output
    assert not (tmp_path / "bad" / "sa_fi.csv").exists()


@pytest.mark.slow(seconds=50)
def test_sa_fi_rtl_check_on_icarus(cache, tmp_path):
    result = invoke(cache, tmp_path / "rtl", "--rtl-check", "2", "--rtl-images", "1",
                    "--sim", "icarus")
    assert result.exit_code == 0, result.output
    for array in json.loads(result.output)["arrays"].values():
        assert array["rtl_check"]["agreement"] == 1.0
        assert array["rtl_check"]["faults"] == 2



def test_sa_fi_on_an_onnx_network_with_its_dataset(tmp_path):
    """Any network file runs, named in the outputs; its campaigns carry the dataset."""
    from tests.golden.onnx_nets import quantized_model

    model = quantized_model("mlp", tmp_path)[0]
    out = tmp_path / "sa"
    result = CliRunner().invoke(main, [
        "experiment", "sa-fi", "--rows", "4", "--cols", "4", "--images", "6", "--faults",
        "5", "--rtl-check", "0", "--model", str(model), "--dataset", "mnist5k",
        "--cache", str(tmp_path / "cache"), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["model"] == str(model)
    assert all(a["faults"] == 5 for a in summary["arrays"].values())
    assert f"({model.stem}, mnist5k)" in (out / "sa_fi.md").read_text()
    import sqlite3

    with sqlite3.connect(out / "results.sqlite") as db:
        definitions = [json.loads(d) for d, in db.execute("SELECT definition FROM campaigns")]
    assert [d["dataset"] for d in definitions] == ["mnist5k", "mnist5k"]

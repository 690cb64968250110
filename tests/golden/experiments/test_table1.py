import csv
import json

import click
import pytest
from click.testing import CliRunner

from neuroharden.golden.experiments.table1 import (ALEXNET_IMAGES, PAPER_GRID, PAPER_TABLE1, command,
                                       count_at, matched_threshold, parse_images)
from neuroharden.sim.app.cli import main


def test_counts_and_matched_threshold():
    scores = [5.0, 4.0, 4.0, 1.0, 0.0]
    assert [count_at(scores, t) for t in (0, 1, 4, 4.5, 6)] == [5, 4, 3, 1, 0]
    assert matched_threshold(scores, 40) == 4.0
    assert matched_threshold(scores, 1) == 5.0      # at least one neuron


def test_parse_images():
    assert parse_images("200,alexnet=20", ["lenet5", "alexnet"]) == {"lenet5": 200,
                                                                       "alexnet": 20}
    for bad in ("lenet5=10", "x", "0", "resnet=3"):
        with pytest.raises(click.ClickException):
            parse_images(bad, ["lenet5", "mlp7"])


def test_default_images_are_fewer_for_alexnet():
    default = next(p.default for p in command.params if p.name == "images")
    assert parse_images(default, ["mlp7", "lenet5", "alexnet"]) == {
        "mlp7": 200, "lenet5": 200, "alexnet": ALEXNET_IMAGES}
    assert ALEXNET_IMAGES < 200


def test_table1_on_lenet5(cache, tmp_path):
    out = tmp_path / "t1"
    result = CliRunner().invoke(main, ["experiment", "table1", "--models", "lenet5",
                                       "--images", "2", "--thresholds", "0,1,3",
                                       "--cache", str(cache("lenet5")), "-o", str(out),
                                       "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    lenet = summary["models"]["lenet5"]
    assert lenet["neurons"] == 4684 and lenet["counts"]["0"] == 4684
    rows = list(csv.DictReader(open(out / "table1.csv")))
    paper = [r for r in rows if r["grid"] == "paper"]
    assert [int(r["paper_neurons"]) for r in paper] == PAPER_TABLE1["lenet5"]
    assert [float(r["threshold_pct"]) for r in paper] == PAPER_GRID
    counts = [int(r["neurons"]) for r in sorted(rows, key=lambda r: float(r["threshold_pct"]))]
    assert counts == sorted(counts, reverse=True)
    assert {r["threshold_pct"] for r in rows if r["grid"] == "fine"} == {"1.0", "3.0"}
    assert lenet["counts"]["1"] == int(next(r["neurons"] for r in rows
                                            if r["threshold_pct"] == "1.0"))
    assert "| LeNet-5 (digits) | >= 20 % |" in (out / "table1.md").read_text()
    assert (out / "table1.png").read_bytes()[:4] == b"\x89PNG"


def test_table1_on_a_network_file_with_the_dataset_given(tmp_path):
    """An onnxruntime-quantized network beside nothing built in: counted, with no paper
    column and no matched threshold (the paper has no share for it)."""
    from tests.golden.onnx_nets import quantized_model

    model = quantized_model("mlp", tmp_path)[0]
    out = tmp_path / "t1"
    args = ["experiment", "table1", "--model", str(model), "--dataset", "mnist5k",
            "--images", "3", "--cache", str(tmp_path / "cache"), "-o", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)["models"][model.stem]
    assert entry["dataset"] == "mnist5k" and entry["neurons"] == 48
    assert "matched_threshold" not in entry and "paper_neurons" not in entry
    rows = list(csv.DictReader(open(out / "table1.csv")))
    assert {r["model"] for r in rows} == {model.stem}
    assert all(r["paper_neurons"] == "" for r in rows)
    assert f"| {model.stem} (mnist5k) | >= 0 % | 48 |" in (out / "table1.md").read_text()
    # The ranking is cached under the file's fingerprint and the dataset.
    cached = [p.name for p in (tmp_path / "cache").iterdir()]
    assert len(cached) == 1 and cached[0].endswith("-mnist5k-nvf-3img.json")
    # --images may name the file's network; a name that is neither is refused.
    bad = CliRunner().invoke(main, [*args[:-1], "--images", "3,resnet=2"])
    assert bad.exit_code == 2 and "unknown network 'resnet'" in bad.output


@pytest.mark.slow
def test_table1_on_alexnet(tmp_path):
    # One training epoch and one image: the run, not the trained network, is under test.
    out = tmp_path / "t1"
    result = CliRunner().invoke(main, ["experiment", "table1", "--models", "alexnet",
                                       "--images", "1", "--epochs", "1",
                                       "--cache", str(tmp_path / "cache"), "-o", str(out),
                                       "--json"])
    assert result.exit_code == 0, result.output
    alexnet = json.loads(result.output)["models"]["alexnet"]
    # 16x32x32 + 32x16x16 + 48x8x8 x 2 + 32x8x8 conv pixels and 128 + 128 fc neurons.
    assert alexnet["neurons"] == 33024 and alexnet["images"] == 1
    assert alexnet["paper_neurons"] == 103168 and alexnet["matched_neurons"] == 198
    rows = [r for r in csv.DictReader(open(out / "table1.csv")) if r["grid"] == "paper"]
    assert [int(r["paper_neurons"]) for r in rows] == PAPER_TABLE1["alexnet"]
    assert "| AlexNet (digits) | >= 20 % |" in (out / "table1.md").read_text()

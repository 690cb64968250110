import csv
import json

import pytest
from click.testing import CliRunner

from neuroharden.sim.app.experiments.rtl_vs_model import MODEL_CLASSES, RTL_CLASSES
from neuroharden.sim.app.cli import main


def run(cache, out, *extra):
    return CliRunner().invoke(main, [
        "experiment", "rtl-vs-model", "--images", "1", "--faults", "3",
        "--model-faults", "20", "--classes", "w_reg,acc,output,weight", "--rows", "4",
        "--cols", "4", "--sim", "icarus", "--cache", str(cache), "-o", str(out), "--json",
        *extra])


@pytest.mark.slow
def test_rtl_and_model_classes_side_by_side_and_resumed(cache, tmp_path):
    out = tmp_path / "rvm"
    result = run(cache("lenet5"), out)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    classes = summary["classes"]
    assert list(classes) == ["w_reg", "acc", "output", "weight"]
    assert [classes[name]["level"] for name in classes] == ["rtl", "rtl", "model", "model"]
    assert [classes[name]["faults"] for name in classes] == [3, 3, 20, 20]
    for entry in classes.values():
        assert entry["masked"] + entry["tolerable"] + entry["critical_003"] == entry["faults"]
        low, high = entry["critical_rate_ci"]
        assert low <= entry["critical_rate"] <= high
        assert entry["faults_per_second"] > 0
        assert 0 <= entry["changed_images"] <= entry["faults"]
    # A PE accumulator has 4x the bits of a weight register: so has its fault space.
    assert classes["acc"]["population"] == 4 * classes["w_reg"]["population"]
    rows = list(csv.DictReader(open(out / "rtl_vs_model.csv")))
    assert [r["class"] for r in rows] == list(classes)
    assert "RTL: PE weight register" in (out / "rtl_vs_model.md").read_text()
    assert (out / "rtl_vs_model.png").read_bytes()[:4] == b"\x89PNG"

    again = run(cache("lenet5"), out)
    assert again.exit_code == 0, again.output
    resumed = json.loads(again.output.splitlines()[-1])["classes"]
    # Every campaign resumed from results.sqlite: nothing evaluated again, and the rates
    # reported are those of the run that evaluated them (stored beside the results).
    assert {name: entry["faults_per_second"] for name, entry in resumed.items()} == \
        pytest.approx({name: entry["faults_per_second"] for name, entry in classes.items()})
    assert {name: entry["critical"] for name, entry in resumed.items()} == {
        name: entry["critical"] for name, entry in classes.items()}


def test_unknown_class_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["experiment", "rtl-vs-model", "--classes", "w_reg,bogus",
                                       "-o", str(tmp_path / "x")])
    assert result.exit_code != 0
    assert "unknown 'bogus'" in result.output
    assert set(RTL_CLASSES).isdisjoint(MODEL_CLASSES)


def test_model_classes_of_a_network_file(tmp_path):
    """--model takes a file as well as a built-in name; its images are --dataset's."""
    from tests.golden.onnx_nets import quantized_model

    model = quantized_model("mlp", tmp_path)[0]
    result = run(tmp_path / "cache", tmp_path / "rvm", "--model", str(model), "--dataset",
                 "mnist5k", "--classes", "output,weight")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["dataset"] == "mnist5k" and list(summary["classes"]) == ["output", "weight"]
    assert f"{model.stem} (mnist5k), first 1 test images" in \
        (tmp_path / "rvm" / "rtl_vs_model.md").read_text()
    missing = run(tmp_path / "cache", tmp_path / "none", "--model", "resnet",
                  "--classes", "output")
    assert missing.exit_code == 2 and "resnet: no such file" in missing.output

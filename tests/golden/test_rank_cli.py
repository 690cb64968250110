"""``neuroharden rank`` end to end on the trained LeNet-5 (few images)."""

import json

from click.testing import CliRunner

from neuroharden.golden.ranking import load_critical
from neuroharden.sim.app.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_rank_json_and_file(lenet5_model, tmp_path):
    out = tmp_path / "CRITICAL.json"
    result = run("rank", "--model", lenet5_model, "--method", "nvf", "--images", 4,
                 "--validate", 40, "--seed", 3, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("neurons", "seconds", "mae_pp", "spearman", "evaluations_nvf",
                "evaluations_exact"):
        assert key in report
    assert report["neurons"] == 4684
    assert report["evaluations_exact"] == 40 * 8 * 4
    document = load_critical(out, lenet5_model)
    assert document["method"] == "nvf" and document["images"] == 4
    assert len(document["neurons"]) == 4684
    result = run("rank", "--model", lenet5_model, "--method", "activation", "--images", 20,
                 "-o", out)
    assert result.exit_code == 0 and "activation: 4684 neurons" in result.output
    assert load_critical(out, lenet5_model)["parameters"] == {"pneu": 5.0}


def test_bad_input_exit_2_one_line(lenet5_model, tmp_path):
    cases = [
        ("rank", "--model", tmp_path / "missing.pt", "--method", "lrp", "-o", tmp_path / "c"),
        ("rank", "--model", lenet5_model, "--method", "nvf", "--validate", 10**6,
         "--images", 1, "-o", tmp_path / "c"),
        ("rank", "--model", lenet5_model, "--method", "nvf", "--images", 10**6,
         "-o", tmp_path / "c"),
        ("rank", "--model", lenet5_model, "--method", "magic", "-o", tmp_path / "c"),
        ("rank", "--model", lenet5_model, "--method", "activation", "--pneu", 0,
         "-o", tmp_path / "c"),
        ("rank", "--model", lenet5_model, "--method", "nvf", "-o", tmp_path / "no" / "c"),
        ("rank", "--model", lenet5_model, "--method", "nvf", "-o", tmp_path),
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "c").exists()

"""``neuroharden optimize`` end to end on a briefly trained LeNet-5."""

import json

import pytest
from click.testing import CliRunner

from neuroharden.golden.models import load_checkpoint, save_checkpoint
from neuroharden.golden.train import train
from neuroharden.sim.app.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def short_lenet(tmp_path_factory):
    net, metadata = train("lenet5", epochs=2, seed=0, progress=False)
    path = tmp_path_factory.mktemp("optimize_cli") / "lenet5.pt"
    save_checkpoint(net, path, **metadata)
    return path


def test_optimize_json_and_downstream_eval(short_lenet, tmp_path):
    out = tmp_path / "opt.pt"
    result = run("optimize", "--model", short_lenet, "--epochs", 1, "--iterations", 2,
                 "--images", 32, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("float_accuracy", "int8_accuracy"):
        assert set(report[key]) == {"before", "after"}
    assert report["seconds"] > 0 and report["output"] == str(out)
    assert [b["layer"] for b in report["bottlenecks"] if b["bottleneck"]] == ["fc1", "fc2"]
    assert len(report["layers"]) == 4
    load_checkpoint(out)
    evaluated = json.loads(run("eval", "--model", out, "--json").output)
    assert evaluated["int8_accuracy"] == report["int8_accuracy"]["after"]
    text = run("optimize", "--model", short_lenet, "--epochs", 0, "--iterations", 1,
               "--images", 16, "-o", tmp_path / "opt2.pt")
    assert text.exit_code == 0, text.output
    assert "bottleneck layers (< 0.1 x the largest hidden layer): fc1, fc2" in text.output


def test_bad_input_exit_2_one_line(short_lenet, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "out.pt"
    cases = [
        ("--model", tmp_path / "missing.pt", "-o", out),
        ("--model", corrupt, "-o", out),
        ("--model", short_lenet, "--images", 10**6, "-o", out),
        ("--model", short_lenet, "--iterations", 0, "-o", out),
        ("--model", short_lenet, "--dataset", "mnist", "-o", out),
        ("--model", short_lenet, "-o", tmp_path / "no" / "out.pt"),
        ("--model", short_lenet, "-o", tmp_path),
        ("--model", short_lenet, "-o", short_lenet),
    ]
    for args in cases:
        result = run("optimize", *args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.pt"]

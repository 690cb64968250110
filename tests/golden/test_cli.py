import json

import torch
from click.testing import CliRunner

from neuroharden.sim.app.cli import main
from tests.golden.test_datasets import write_mnist


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_train_eval_export_end_to_end(tmp_path):
    model = tmp_path / "lenet5.pt"
    result = run("train", "--model", "lenet5", "--epochs", "2", "--seed", "1", "-o", model)
    assert result.exit_code == 0, result.output
    checkpoint = torch.load(model, weights_only=True)
    assert (checkpoint["model"], checkpoint["seed"], checkpoint["epochs"]) == ("lenet5", 1, 2)
    result = run("eval", "--model", model, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["float_accuracy"] == checkpoint["float_accuracy"]
    assert report["images"] == len(report["predictions"]) == 360
    assert 0 <= report["int8_accuracy"] <= 1
    assert "int8 accuracy" in run("eval", "--model", model).output
    result = run("export", "--model", model, "-o", tmp_path / "q.npz")
    assert result.exit_code == 0 and (tmp_path / "q.npz").is_file()


def test_bad_input_exits_with_status_2(tmp_path):
    (tmp_path / "junk.pt").write_text("junk")
    cases = [
        ("eval", "--model", tmp_path / "missing.pt"),
        ("eval", "--model", tmp_path / "junk.pt"),
        ("export", "--model", tmp_path / "junk.pt", "-o", tmp_path / "q.npz"),
        ("train", "--model", "lenet5", "--dataset", "mnist", "-o", tmp_path / "m.pt"),
        ("train", "--model", "lenet5", "--epochs", "1", "-o", tmp_path / "no" / "m.pt"),
        ("train", "--model", "vgg", "-o", tmp_path / "m.pt"),
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) >= 1
    assert not (tmp_path / "q.npz").exists() and not (tmp_path / "m.pt").exists()


def test_mnist_files_train_and_evaluate_from_another_directory(tmp_path, monkeypatch):
    data = tmp_path / "mnist"
    data.mkdir()
    write_mnist(data, compress=True, train=40, test=20)
    monkeypatch.chdir(tmp_path)
    result = run("train", "--model", "mlp7", "--dataset", "mnist", "--data-dir", "mnist",
                 "--epochs", "1", "-o", "m.pt")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(data)
    report = json.loads(run("eval", "--model", tmp_path / "m.pt", "--json").output)
    assert report["dataset"] == "mnist" and report["images"] == 20

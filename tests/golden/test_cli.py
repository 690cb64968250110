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


def _root_with_import(monkeypatch):
    # The command registry lives in the application layer; register `import` for the test.
    from neuroharden.sim.app import cli

    monkeypatch.setitem(cli.COMMANDS, "import", "neuroharden.golden.cli:import_onnx")
    return cli.main


def test_import_onnx_writes_qnet_and_json(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from neuroharden.golden.export import import_intnet
    from neuroharden.golden.onnx_import import import_onnx
    from tests.golden.onnx_nets import images, quantized_model

    path, _ = quantized_model("cnn", tmp_path)
    out = tmp_path / "qnet.npz"
    result = CliRunner().invoke(_root_with_import(monkeypatch),
                                ["import", str(path), "-o", str(out), "--json",
                                 "--dataset", "mnist5k"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [layer["kind"] for layer in report["layers"]] == ["conv", "conv", "linear", "linear"]
    assert report["layers"][1]["pad_value"] == -128
    back, direct = import_intnet(out), import_onnx(path).intnet
    x = images(50, "test")
    assert torch.equal(back.forward(back.quantize_input(x)), direct.forward(direct.quantize_input(x)))


def test_import_onnx_bad_input_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tests.golden.onnx_nets import quantized_model

    path, _ = quantized_model("mlp", tmp_path)
    (tmp_path / "cut.onnx").write_bytes(path.read_bytes()[:200])
    main = _root_with_import(monkeypatch)
    for arguments, message in [
            (["cut.onnx"], "not a"), ([f"{path.stem}-float.onnx"], "float-only model"),
            ([path.name, "--dataset", "cifar10"], "does not match dataset cifar10")]:
        result = CliRunner().invoke(main, ["import", *[str(tmp_path / arguments[0])],
                                           *arguments[1:], "-o", str(tmp_path / "q.npz")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "q.npz").exists()

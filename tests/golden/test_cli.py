"""The golden package's subcommands (golden/cli.py) end to end: train, eval, export,
rank, harden and optimize (sample-size: tests/golden/test_sampling.py)."""

import json

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.campaign import file_sha256
from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.models import load_checkpoint, save_checkpoint
from neuroharden.golden.ranking import load_critical, make_document, write_critical
from neuroharden.golden.train import train
from neuroharden.sim.app.cli import main
from tests.golden.dataset_files import write_mnist


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


# -- rank

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


def test_rank_bad_input_exit_2_one_line(lenet5_model, tmp_path):
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


# -- harden

@pytest.fixture(scope="module")
def ranked(lenet5_model, tmp_path_factory):
    """LeNet-5 and a stand-in CRITICAL.json (mean int8 activation of each hidden neuron,
    in % of 127), plus one with an output neuron on top and one for another model."""
    net, _, _, data = quantize_checkpoint(lenet5_model)
    _, records = net.forward(net.quantize_input(data.x_train[:200]), record=True)
    neurons = []
    for layer, (_, y) in zip(net.layers, records):
        score = y.flatten(1).double().mean(0) * 100 / 127
        neurons += [{"layer": layer.name, "index": k, "score": float(s)}
                    for k, s in enumerate(score)]
    hidden = sorted((n for n in neurons if n["layer"] != "fc3"), key=lambda n: -n["score"])
    root = tmp_path_factory.mktemp("harden")
    paths = {}
    for name, listed, sha in (("critical", hidden, file_sha256(lenet5_model)),
                              ("with_output", [{"layer": "fc3", "index": 0, "score": 99.0}]
                               + hidden, file_sha256(lenet5_model)),
                              ("foreign", hidden, "0" * 64)):
        paths[name] = root / f"{name}.json"
        write_critical(paths[name], make_document("activation", sha, 200, 0, {}, listed))
    return lenet5_model, paths, root


def _harden(model, critical, out, *extra):
    result = run("harden", "--model", model, "--critical", critical, "-o", out, "--json",
                 *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_lcu_report_identity_and_eval(ranked):
    model, paths, root = ranked
    out = root / "lcu.pt"
    report = _harden(model, paths["critical"], out, "--scheme", "lcu", "--fraction", 20)
    c = report["protected_neurons"]
    assert c >= report["selected_neurons"] > 0
    assert report["after"]["neurons"] == report["before"]["neurons"] + c
    for key in ("parameters", "macs", "memory_bytes"):
        assert report["after"][key] > report["before"][key]
    before = json.loads(run("eval", "--model", model, "--json").output)
    after = json.loads(run("eval", "--model", out, "--json").output)
    assert after["model"] == "lenet5" and after["float_accuracy"] == before["float_accuracy"]
    assert report["int8_accuracy_before"] == before["int8_accuracy"]
    assert report["int8_accuracy_after"] == after["int8_accuracy"]
    changed = sum(a != b for a, b in zip(before["predictions"], after["predictions"]))
    assert report["changed_predictions"] == changed
    result = run("export", "--model", out, "-o", root / "q.npz")
    assert result.exit_code == 2 and "cannot be exported" in result.output
    assert not (root / "q.npz").exists()
    payload = torch.load(out, weights_only=True)
    assert payload["model_sha256"] == file_sha256(model)
    assert payload["selection"]["protected_neurons"] == c


@pytest.mark.parametrize("voter", ["bitwise", "word"])
def test_tmr_report(ranked, voter):
    model, paths, root = ranked
    report = _harden(model, paths["critical"], root / f"tmr-{voter}.pt", "--scheme", "tmr",
                     "--threshold", 10, "--voter", voter)
    c = report["protected_neurons"]
    assert c > 0 and report["voter"] == voter
    assert report["after"]["neurons"] == report["before"]["neurons"] + 2 * c
    assert report["changed_predictions"] == 0
    assert report["int8_accuracy_after"] == report["int8_accuracy_before"]


def test_tmr_prune_report(ranked):
    model, paths, root = ranked
    report = _harden(model, paths["critical"], root / "prune.pt", "--scheme", "tmr-prune",
                     "--fraction", 5)
    pruned = sum(len(v["pruned"]) for v in report["layers"].values())
    assert pruned == report["pruned_channels"] > 0
    assert not report["layers"]["fc3"]["pruned"]
    assert report["after"]["neurons"] == (report["before"]["neurons"]
                                          + 2 * report["protected_neurons"]
                                          - report["pruned_neurons"])


@pytest.mark.parametrize("args, match", [
    (("--scheme", "lcu", "--fraction", 5, "--critical", "with_output"), "LCU refused on layer fc3"),
    (("--scheme", "tmr", "--fraction", 5, "--critical", "foreign"), "ranks another model"),
    (("--scheme", "tmr", "--critical", "critical"), "exactly one"),
    (("--scheme", "tmr", "--fraction", 5, "--threshold", 1, "--critical", "critical"),
     "exactly one"),
    (("--scheme", "lcu", "--fraction", 5, "--voter", "word", "--critical", "critical"),
     "tmr schemes only"),
    (("--scheme", "tmr", "--fraction", 5, "--critical", "model"), "not valid JSON"),
    (("--scheme", "tmr", "--fraction", 5, "--critical", "critical", "--model", "hardened"),
     "already a hardened network"),
])
def test_harden_bad_input_exits_2(ranked, args, match):
    model, paths, root = ranked
    hardened = root / "bad-input-hardened.pt"
    if not hardened.exists():
        _harden(model, paths["critical"], hardened, "--scheme", "tmr", "--fraction", 1)
    names = {**paths, "model": model, "hardened": hardened}
    args = [names.get(a, a) if isinstance(a, str) else a for a in args]
    if "--model" not in args:
        args += ["--model", model]
    out = root / "refused.pt"
    result = run("harden", "-o", out, *args)
    assert result.exit_code == 2, result.output
    assert match in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_output_must_not_overwrite_the_model(ranked):
    model, paths, _ = ranked
    result = run("harden", "--model", model, "--critical", paths["critical"], "--scheme",
                 "tmr", "--fraction", 5, "-o", model)
    assert result.exit_code == 2 and "must not overwrite" in result.output


def test_campaign_on_a_hardened_model_finds_fewer_critical_faults(ranked):
    model, paths, root = ranked
    hardened = root / "campaign-tmr.pt"
    _harden(model, paths["critical"], hardened, "--scheme", "tmr", "--fraction", 20)
    summaries = []
    for path in (model, hardened):
        result = run("campaign", "--model", path, "--fault", "bitflip", "--faults", 300,
                     "--images", 60, "--db", root / "campaign.db", "--json")
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(result.output))
    plain, protected = summaries
    assert plain["campaign"] != protected["campaign"]        # different fingerprints
    assert protected["population"] > plain["population"]     # copies are fault sites too
    assert protected["critical_003"] < plain["critical_003"]
    assert protected["critical"] <= plain["critical"]


# -- optimize

@pytest.fixture(scope="module")
def short_lenet(tmp_path_factory):
    net, metadata = train("lenet5", epochs=2, seed=0, progress=False)
    path = tmp_path_factory.mktemp("optimize") / "lenet5.pt"
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


def test_optimize_bad_input_exit_2_one_line(short_lenet, tmp_path):
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
def test_import_onnx_writes_qnet_and_json(tmp_path):
    import json

    from click.testing import CliRunner

    from neuroharden.golden.export import import_intnet
    from neuroharden.golden.onnx_import import import_onnx
    from tests.golden.onnx_nets import images, quantized_model

    path, _ = quantized_model("cnn", tmp_path)
    out = tmp_path / "qnet.npz"
    result = CliRunner().invoke(main,
                                ["import", str(path), "-o", str(out), "--json",
                                 "--dataset", "mnist5k"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [layer["kind"] for layer in report["layers"]] == ["conv", "conv", "linear", "linear"]
    assert report["layers"][1]["pad_value"] == -128
    back, direct = import_intnet(out), import_onnx(path).intnet
    x = images(50, "test")
    assert torch.equal(back.forward(back.quantize_input(x)), direct.forward(direct.quantize_input(x)))


def test_import_onnx_bad_input_is_one_line_exit_2_nothing_written(tmp_path):
    from click.testing import CliRunner

    from tests.golden.onnx_nets import quantized_model

    path, _ = quantized_model("mlp", tmp_path)
    (tmp_path / "cut.onnx").write_bytes(path.read_bytes()[:200])
    for arguments, message in [
            (["cut.onnx"], "not a"), ([f"{path.stem}-float.onnx"], "float-only model"),
            ([path.name, "--dataset", "cifar10"], "does not match dataset cifar10")]:
        result = CliRunner().invoke(main, ["import", *[str(tmp_path / arguments[0])],
                                           *arguments[1:], "-o", str(tmp_path / "q.npz")])
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "q.npz").exists()


def test_crosscheck_reports_both_engines_and_refuses_torch_on_onnx(trained_model, tmp_path):
    from tests.golden.onnx_nets import quantized_model

    for engine in ("torch", "onnxruntime"):
        result = CliRunner().invoke(main, ["crosscheck", "--model", str(trained_model("mlp7")),
                                           "--engine", engine, "--images", "40", "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["engine"] == engine and report["layers"]["total"] == 40 * 2826
        assert report["layers"]["identical"] >= 0.99 * report["layers"]["total"]
        assert report["layers"]["max_difference"] <= 1
    path, _ = quantized_model("mlp", tmp_path)
    result = CliRunner().invoke(main, ["crosscheck", "--model", str(path), "--images", "40"])
    assert result.exit_code == 0 and "every layer" in result.output, result.output
    result = CliRunner().invoke(main, ["crosscheck", "--model", str(path), "--engine", "torch"])
    assert result.exit_code == 2 and "needs a trained checkpoint" in result.output
    assert len(result.output.strip().splitlines()) == 1

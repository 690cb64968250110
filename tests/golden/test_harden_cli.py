import json

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.campaign import file_sha256
from neuroharden.golden.quantize import quantize_checkpoint
from neuroharden.golden.ranking import make_document, write_critical
from neuroharden.sim.app.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


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
def test_bad_input_exits_2(ranked, args, match):
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

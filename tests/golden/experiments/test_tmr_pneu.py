import csv
import json

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.evaluation import int8_predictions
from neuroharden.golden.harden import cost, harden
from neuroharden.golden.experiments.tmr_pneu import faulty_accuracy, first_copies, sites_for
from neuroharden.sim.app.cli import main


@pytest.fixture(scope="module")
def lenet(lenet5_model):
    net, _, _, data = quantize_checkpoint(lenet5_model)
    return net, net.quantize_input(data.x_test[:60]), data.y_test[:60], data


def test_fault_free_accuracy_matches_the_model(lenet):
    net, x, labels, data = lenet
    expected = float((int8_predictions(net, data.x_test[:60]) == labels).double().mean())
    assert faulty_accuracy(net, x, labels, {}) == expected


def test_crash_sites_map_to_copies_and_skip_pruned(lenet):
    net, x, labels, _ = lenet
    # fc1 (layer 2) neuron 5 triplicated, fc1 neuron 7 and conv2 channel 3 pruned.
    hardened = harden(net, "tmr", [("fc1", 5), ("conv2", 0)],
                      prune=[("fc1", 7), ("conv2", 3)], voter="word")
    copies = first_copies(net, hardened)
    assert first_copies(net, None) is None
    assert int(copies[2][7]) == -1 and int(copies[1][3]) == -1
    per = net.layers[1].neurons // net.layers[1].weight.shape[0]
    sites = sites_for(net, copies, [(2, 5), (2, 7), (2, 8), (1, 3 * per + 2), (1, per + 4)],
                      [0, 0, 0, 0, 0])
    # fc1: neuron 5 has three copies (5, 6, 7), 7 is gone, so 8 is channel 9.
    assert sites[2][0].tolist() == [5, 9]
    # conv2: channel 0 has three copies, so channel 1 is channel 3; channel 3 is pruned.
    assert sites[1][0].tolist() == [3 * per + 4]
    # A crashed copy of a triplicated neuron is outvoted: same accuracy as fault-free;
    # the same neuron crashed in every copy would not be (checked through its logits).
    assert faulty_accuracy(hardened, x, labels, sites_for(net, copies, [(2, 5)], [0])) == \
        faulty_accuracy(hardened, x, labels, {})
    everything = {2: (torch.arange(net.layers[2].neurons),
                      torch.zeros(net.layers[2].neurons, dtype=torch.int64))}
    assert faulty_accuracy(net, x, labels, everything) < 0.5


@pytest.mark.slow
def test_tmr_pneu_small_on_lenet5(cache, tmp_path, lenet):
    net = lenet[0]
    out = tmp_path / "tp"
    result = CliRunner().invoke(main, [
        "experiment", "tmr-pneu", "--models", "lenet5", "--images", "5", "--crash", "1,5",
        "--tmr", "1", "--byzantine", "1,3", "--repeats", "2", "--test-images", "40",
        "--cache", str(cache("lenet5")), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["models"]["lenet5"]
    tmr1 = summary["table2"][0]
    # Crashing exactly the protected top 1 % is masked by the voters.
    assert tmr1["crash_curve"][0] == summary["accuracy"]
    before = cost(net)
    assert tmr1["memory_pct"] == pytest.approx(
        100 * (tmr1["memory_bytes"] / before["memory_bytes"] - 1))
    rows = list(csv.DictReader(open(out / "crash.csv")))
    assert {r["scenario"] for r in rows} == {"critical", "random", "pruned-bottom",
                                             "TMR-1 critical"}
    byz = list(csv.DictReader(open(out / "byzantine.csv")))
    assert [(r["network"], r["faulty_neurons"]) for r in byz] == [
        ("unprotected", "1"), ("TMR-1", "1"), ("unprotected", "3"), ("TMR-1", "3")]
    for name in ("crash.png", "protected.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "Table II" in (out / "tmr_pneu.md").read_text()

"""CRITICAL.json: ordering, round trip, refusal of foreign or malformed files; validation."""

import json
import os

import pytest
import torch

from neuroharden.golden.ranking import (SCHEMA_VERSION, compare_nvf_exact, load_critical,
                            make_document, neuron_list, score_neurons, write_critical)
from tests.golden.fi_nets import random_net


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"any checkpoint bytes")
    return path


def _document(model_file, neurons=None):
    from neuroharden.golden.campaign import file_sha256

    neurons = neurons or [{"layer": "fc1", "index": 3, "score": 2.5},
                          {"layer": "conv1", "index": 0, "score": 1.0}]
    return make_document("nvf", file_sha256(model_file), 10, 0, {"search": "bisect"},
                         neurons)


def test_neuron_list_sorted_with_tiebreak():
    net, _ = random_net(seed=0)
    scores = {0: torch.zeros(net.layers[0].neurons, dtype=torch.float64),
              2: torch.tensor([1.0, 3.0, 3.0] + [0.0] * 9, dtype=torch.float64)}
    scores[0][5] = 3.0
    tiebreak = {2: torch.tensor([0.0, 1.0, 2.0] + [0.0] * 9, dtype=torch.float64)}
    listed = neuron_list(net, scores, tiebreak)
    assert [(e["layer"], e["index"]) for e in listed[:4]] == [
        ("fc1", 2), ("fc1", 1), ("conv1", 5), ("fc1", 0)]
    assert len(listed) == net.layers[0].neurons + 12


def test_round_trip(tmp_path, model_file):
    document = _document(model_file)
    write_critical(tmp_path / "c.json", document)
    assert load_critical(tmp_path / "c.json", model_file) == document
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "c.json").stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "schema version"),
    (lambda d: d.update(schema="other"), "not a neuroharden"),
    (lambda d: d.pop("images"), "missing field"),
    (lambda d: d["neurons"].reverse(), "not sorted"),
    (lambda d: d["neurons"][0].update(score=float("nan")), "finite"),
    (lambda d: d["neurons"][1].update(layer="fc1", index=3, score=1.0), "twice"),
    (lambda d: d["neurons"][0].pop("index"), "exactly layer, index, score"),
    (lambda d: d.update(model_fingerprint="0" * 64), "another model"),
])
def test_refused_files(tmp_path, model_file, change, message):
    document = _document(model_file)
    change(document)
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message) as error:
        load_critical(path, model_file)
    assert "\n" not in str(error.value)


def test_refused_non_json_and_unwritable_bad_document(tmp_path, model_file):
    path = tmp_path / "c.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_critical(path, model_file)
    with pytest.raises(ValueError, match="not sorted"):
        write_critical(path, _document(model_file, [
            {"layer": "a", "index": 0, "score": 0.0}, {"layer": "a", "index": 1, "score": 1.0}]))
    assert path.read_text() == "{not json"


def test_methods_score_every_hidden_neuron_and_compare():
    net, x = random_net(seed=5, images=6)
    labels = torch.arange(6)
    for method in ("nvf", "exact", "activation", "lrp", "random"):
        scores, _, parameters, _ = score_neurons(net, x, labels, method, progress=False)
        assert sorted(scores) == [0, 1, 2]
        assert all(bool(torch.isfinite(s).all()) for s in scores.values())
    report = compare_nvf_exact(net, x, 30, seed=1, progress=False)
    assert report["validated"] == 30 and report["mae_pp"] >= 0
    assert report["evaluations_exact"] == 30 * 8 * 6
    assert report["evaluations_nvf"] > 0
    assert report["spearman"] is None or -1 <= report["spearman"] <= 1
    with pytest.raises(ValueError, match="between 1 and"):
        compare_nvf_exact(net, x, 10**6)

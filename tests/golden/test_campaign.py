"""Campaigns: definitions and ids, the runner, SQLite results, kill -9 and resume, Dask
workers, bad input."""

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.campaign import CampaignDefinition, ResultsDB, run, run_campaign, summary_text
from neuroharden.golden.evaluator import Evaluator
from neuroharden.golden.models import Net, save_checkpoint
from neuroharden.golden.sampling import leveugle_sample_size, sample_indices
from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.injection import InjectionEngine
from neuroharden.sim.app.cli import main
from tests.golden.onnx_nets import imported_net

NEUROHARDEN = os.path.join(os.path.dirname(sys.executable), "neuroharden")
TIMING = ("seconds", "faults_per_second", "evaluated_now", "db")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An (untrained) LeNet-5 checkpoint: the campaign mechanics do not need accuracy."""
    path = tmp_path_factory.mktemp("campaign") / "lenet5.pt"
    torch.manual_seed(0)
    save_checkpoint(Net("lenet5"), path, dataset="digits", data_dir=None, seed=0)
    return str(path)


def _cli(*args):
    return CliRunner().invoke(main, ["campaign", *map(str, args)])


def _rows(db, campaign):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT fault_index, population_index, fault, outcome, critical, "
                            "changed, correct FROM results WHERE campaign = ? "
                            "ORDER BY fault_index", (campaign,)).fetchall()


def _strip(summary):
    return {k: v for k, v in summary.items() if k not in TIMING}


def _definition(**changes):
    fields = {"level": "toy", "faults": 20, "seed": 3, "images": 4, "population": 50,
              "fields": {"model_sha256": "ab" * 32, "sites": ["a", "b"]}}
    return CampaignDefinition(**{**fields, **changes})


def test_a_definition_has_one_id_that_tells_campaigns_apart():
    definition = _definition()
    assert definition.id == _definition().id and len(definition.id) == 32
    assert definition.as_dict() == {"tool": "neuroharden", "level": "toy",
                                    "model_sha256": "ab" * 32, "sites": ["a", "b"],
                                    "faults": 20, "seed": 3, "images": 4, "population": 50}
    others = [_definition(level="rtl"), _definition(faults=21), _definition(seed=4),
              _definition(images=5), _definition(population=51),
              _definition(fields={"model_sha256": "ab" * 32, "sites": ["b", "a"]}),
              _definition(fields={"model_sha256": "cd" * 32, "sites": ["a", "b"]})]
    assert len({definition.id} | {other.id for other in others}) == 1 + len(others)
    assert definition.sample() == sample_indices(50, 20, 3)


@pytest.mark.parametrize("changes, message", [
    ({"faults": 51}, "cannot draw 51 faults from a population of 50"),
    ({"faults": 0}, "cannot draw 0 faults"),
    ({"images": 0}, "Image count must be a positive integer, not 0"),
    ({"level": ""}, "Campaign level must be a non-empty string"),
    ({"fields": {"seed": 1}}, "must not redefine seed"),
    ({"fields": {"net": object()}}, "must be JSON values"),
])
def test_a_bad_definition_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        _definition(**changes)


class Toy(Evaluator):
    """Fault ``p`` has a made-up outcome that depends on ``p`` only; fails on its batch
    number ``fail`` (counted in this object) to stand for a killed run."""

    def __init__(self, fail=None, reverse=False):
        self.fail, self.reverse, self.evaluated = fail, reverse, []

    def fault_free_correct(self):
        return 3

    def batches(self, faults, chunk):
        batches = super().batches(faults, chunk)
        return [sorted(b, reverse=True) for b in batches] if self.reverse else batches

    def evaluate(self, batch):
        if len(self.evaluated) == self.fail:
            raise RuntimeError("killed")
        self.evaluated.append(list(batch))
        return [(p, json.dumps({"p": p}), self.result(p)) for p in batch]

    @staticmethod
    def result(p):
        outcome = ("masked", "tolerable", "critical")[p % 3]
        critical = outcome == "critical" and p % 2 == 0
        return {"outcome": outcome, "critical": critical, "changed": int(critical),
                "masked_images": 4 if outcome == "masked" else 3,
                "tolerable_images": int(outcome == "tolerable"),
                "critical_images": int(outcome == "critical"), "correct": 3 - int(critical)}


def _stored(db, campaign):
    with ResultsDB(db) as stored:
        return stored.results(campaign)


def test_the_runner_stores_the_planned_faults_in_batches(tmp_path):
    definition, toy = _definition(), Toy(reverse=True)
    summary = run(definition, toy, db_path=tmp_path / "r.sqlite", chunk=6, progress=False)
    assert [len(b) for b in toy.evaluated] == [6, 6, 6, 2]
    rows = _stored(tmp_path / "r.sqlite", definition.id)
    # Whatever order a batch comes in, each row is filed under its fault number.
    assert [(r["fault_index"], r["population_index"]) for r in rows] == \
        list(enumerate(definition.sample()))
    assert all(json.loads(r["fault"])["p"] == r["population_index"] for r in rows)
    results = [Toy.result(p) for p in definition.sample()]
    assert summary["campaign"] == definition.id and summary["population"] == 50
    assert summary["completed"] == summary["faults"] == summary["evaluated_now"] == 20
    assert summary["masked"] == sum(r["outcome"] == "masked" for r in results)
    assert summary["critical"] == sum(r["critical"] for r in results)
    assert summary["fault_free_accuracy"] == 0.75
    assert summary["mean_faulty_accuracy"] == sum(r["correct"] for r in results) / 80
    with ResultsDB(tmp_path / "r.sqlite") as stored:
        seconds, faults = stored.evaluation(definition.id)
        assert stored.campaign(definition.id) == (definition.as_dict(), 20, 4, 3)
    assert faults == 20 and seconds > 0
    assert summary["faults_per_second"] == pytest.approx(20 / seconds)
    with pytest.raises(ValueError, match="Chunk must be a positive number of faults"):
        run(definition, Toy(), db_path=tmp_path / "r.sqlite", chunk=0)


def test_an_interrupted_run_keeps_its_committed_batches_and_resumes(tmp_path):
    definition = _definition()
    db = tmp_path / "r.sqlite"
    with pytest.raises(RuntimeError, match="killed"):
        run(definition, Toy(fail=2), db_path=db, chunk=6, progress=False)
    assert len(_stored(db, definition.id)) == 12
    toy = Toy()
    summary = run(definition, toy, db_path=db, chunk=6, progress=False)
    assert summary["evaluated_now"] == 8 and summary["completed"] == 20
    assert sorted(p for b in toy.evaluated for p in b) == sorted(definition.sample()[12:])
    whole = run(definition, Toy(), db_path=tmp_path / "whole.sqlite", chunk=6,
                progress=False)
    assert _stored(db, definition.id) == _stored(tmp_path / "whole.sqlite", definition.id)
    assert {k: v for k, v in summary.items() if k not in TIMING} == \
        {k: v for k, v in whole.items() if k not in TIMING}
    # A complete campaign evaluates nothing and still reports the stored rate.
    again = run(definition, Toy(fail=0), db_path=db, chunk=6, progress=False)
    assert again["evaluated_now"] == 0 and again["faults_per_second"] > 0


def test_summary_text_gives_both_papers_classes():
    summary = {"completed": 8, "faults": 8, "masked": 2, "tolerable": 4, "critical_003": 2,
               "critical": 1, "critical_rate": 0.125, "accuracy_loss": 0.01,
               "fault_free_accuracy": 0.9, "evaluated_now": 8, "faults_per_second": 12.5}
    text = summary_text(summary, "campaign abc: 8/8 faults")
    assert text.splitlines() == [
        "campaign abc: 8/8 faults",
        "  paper 003: masked 2 (25.00 %), tolerable 4 (50.00 %), critical 2 (25.00 %)",
        "  paper 004: critical faults 1 (12.50 %), accuracy loss 1.000 points "
        "(fault-free 90.00 %)",
        "  8 evaluated now, 12.50 faults/s"]
    assert summary_text({**summary, "faults_per_second": None}, "t").endswith("8 evaluated now")


def test_campaign_summary_and_rerun(checkpoint, tmp_path):
    db = tmp_path / "r.sqlite"
    result = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 120, "--images",
                  40, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    for key in ("faults", "completed", "masked", "tolerable", "critical_003", "critical",
                "accuracy_loss", "faults_per_second"):
        assert key in summary
    assert summary["faults"] == summary["completed"] == 120
    assert summary["masked"] + summary["tolerable"] + summary["critical_003"] == 120
    assert summary["critical"] <= summary["critical_003"]
    rows = _rows(db, summary["campaign"])
    assert [r[0] for r in rows] == list(range(120))
    assert len({r[1] for r in rows}) == 120
    # A rerun evaluates nothing and reports the same summary, with the rate of the run
    # that evaluated the faults (stored beside them).
    again = json.loads(_cli("--model", checkpoint, "--fault", "bitflip", "--faults", 120,
                            "--images", 40, "--db", db, "--json").output)
    assert again["evaluated_now"] == 0 and _strip(again) == _strip(summary)
    assert again["faults_per_second"] == pytest.approx(summary["faults_per_second"])
    seconds, evaluated = ResultsDB(db).evaluation(summary["campaign"])
    assert evaluated == 120 and summary["faults_per_second"] == pytest.approx(120 / seconds)
    # A second campaign in the same database.
    other = json.loads(_cli("--model", checkpoint, "--fault", "stuck1", "--target",
                            "accumulator", "--faults", 30, "--images", 40, "--db", db,
                            "--json").output)
    assert other["campaign"] != summary["campaign"] and other["completed"] == 30
    assert len(_rows(db, summary["campaign"])) == 120
    # Human-readable output.
    text = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 120, "--images", 40,
                "--db", db).output
    assert "paper 003" in text and "paper 004" in text


def test_leveugle_sized_campaign_uses_the_population(checkpoint, tmp_path):
    summary = run_campaign(checkpoint, fault_model="crash", layers=["fc1", "fc2"],
                           margin=0.05, images=20, db_path=tmp_path / "c.sqlite")
    assert summary["population"] == 120 + 84
    # Leveugle: 204 / (1 + 0.05**2 * 203 / (1.96**2 / 4)) = 133.5 -> 134
    assert summary["faults"] == leveugle_sample_size(204, margin=0.05) == 134


@pytest.mark.parametrize("model, target", [("stuck0", "weight"), ("byzantine", "output"),
                                           ("bitflip", "accumulator")])
def test_other_fault_models(checkpoint, tmp_path, model, target):
    summary = run_campaign(checkpoint, fault_model=model, target=target, faults=40,
                           images=20, db_path=tmp_path / "m.sqlite", seed=2)
    assert summary["completed"] == 40


@pytest.mark.parametrize("target", ["output", "weight", "accumulator"])
def test_campaign_on_an_imported_asymmetric_network(tmp_path, target):
    """An onnxruntime QDQ network (uint8 activations: zero points on every layer): the
    engine's fault-free logits are the integer model's and the faults do something."""
    _, path = imported_net("cnn", tmp_path)
    net, _, _, data = quantize_checkpoint(path)
    x = net.quantize_input(data.x_test[:40])
    assert torch.equal(InjectionEngine(net, x).logits, net.forward(x))
    summary = run_campaign(str(path), target=target, faults=60, images=40,
                           db_path=tmp_path / "m.sqlite", progress=False)
    assert summary["completed"] == 60 and summary["masked"] < 60
    assert summary["masked"] + summary["tolerable"] + summary["critical_003"] == 60
    accuracy = float((net.predict(x) == data.y_test[:40]).float().mean())
    assert summary["fault_free_accuracy"] == pytest.approx(accuracy)


@pytest.mark.slow
def test_kill_and_resume(checkpoint, tmp_path):
    planned = 600
    args = ["campaign", "--model", checkpoint, "--fault", "bitflip", "--faults", str(planned),
            "--images", "100", "--chunk", "10", "--seed", "5"]
    reference = tmp_path / "reference.sqlite"
    killed = tmp_path / "killed.sqlite"
    full = json.loads(subprocess.run([NEUROHARDEN, *args, "--db", str(reference), "--json"],
                                     capture_output=True, text=True, check=True).stdout)
    proc = subprocess.Popen([NEUROHARDEN, *args, "--db", str(killed), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stored = 0
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        try:
            with sqlite3.connect(killed, timeout=1) as conn:
                stored = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        except sqlite3.Error:
            continue
        if stored >= 20:
            break
    assert proc.poll() is None, "the campaign finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(killed) as conn:
        partial = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 20 <= partial < planned
    resumed = json.loads(subprocess.run([NEUROHARDEN, *args, "--db", str(killed), "--json"],
                                        capture_output=True, text=True, check=True).stdout)
    assert resumed["evaluated_now"] == planned - partial
    assert _strip(resumed) == _strip(full)
    assert _rows(killed, full["campaign"]) == _rows(reference, full["campaign"])


def test_dask_workers_match_in_process(checkpoint, tmp_path):
    local = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 60, "--images", 30,
                 "--chunk", 8, "--db", tmp_path / "a.sqlite", "--json")
    dask = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 60, "--images", 30,
                "--chunk", 8, "--workers", 2, "--db", tmp_path / "b.sqlite", "--json")
    assert dask.exit_code == 0, dask.output
    a, b = json.loads(local.output), json.loads(dask.output)
    assert _strip(a) == _strip(b)
    assert _rows(tmp_path / "a.sqlite", a["campaign"]) == _rows(tmp_path / "b.sqlite",
                                                                b["campaign"])


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_checkpoints(tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(os.urandom(300))
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    db = tmp_path / "db.sqlite"
    for path in (corrupt, foreign, tmp_path / "missing.pt"):
        result = _cli("--model", path, "--fault", "bitflip", "--faults", 5, "--db", db)
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("extra, message", [
    (["--layers", "fc9"], "unknown layer 'fc9'"),
    (["--bit-positions", "8"], "bit 8 out of range"),
    (["--bit-positions", "x"], "--bit-positions"),
    (["--bits", "9"], "bits must lie"),
    (["--faults", "999999"], "population"),
    (["--level", "rtl", "--target", "weight"], "--level model only"),
])
def test_bad_fault_arguments(checkpoint, tmp_path, extra, message):
    result = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 5, "--images", 10,
                  "--db", tmp_path / "db.sqlite", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_foreign_and_corrupt_databases(checkpoint, tmp_path):
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE results (x INTEGER)")
        conn.execute("INSERT INTO results VALUES (1)")
    conn.close()
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not a database at all, just text\n" * 50)
    for path, message in ((foreign, "not a neuroharden results database"),
                          (corrupt, "not a readable SQLite")):
        before = _digest(path)
        result = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 5,
                      "--images", 10, "--db", path)
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert _digest(path) == before
    with pytest.raises(ValueError):
        ResultsDB(tmp_path)


def test_database_without_evaluation_times_is_read_and_gains_them(tmp_path):
    # Databases written before evaluation times were stored have no such table.
    path = tmp_path / "old.sqlite"
    db = ResultsDB(path)
    db.conn.execute("DROP TABLE evaluation")
    db.close()
    db = ResultsDB(path)
    assert db.evaluation("c") == (0.0, 0)
    row = {"outcome": "masked", "critical": False, "changed": 0, "masked_images": 1,
           "tolerable_images": 0, "critical_images": 0, "correct": 1}
    db.add("c", [(0, 0, "{}", row), (1, 1, "{}", row)], seconds=0.5)
    db.add("c", [(2, 2, "{}", row)], seconds=0.25)
    assert db.evaluation("c") == (0.75, 3)
    db.close()

"""Campaigns: definitions and ids, the runner, SQLite results, kill -9 and resume, Dask
workers, bad input."""

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden import campaign as campaign_module
from neuroharden.golden.campaign import (APPLICATION_ID, SCHEMA, CampaignDefinition, ResultsDB, run,
                                        run_campaign, summarize, summary_text)
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


# --- A database that stays usable: interruptions at random moments, other databases ---

def _stored_count(db):
    """Rows in ``results`` (0 while the file or its tables do not exist yet); never
    creates the file."""
    if not os.path.exists(db):
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=rw", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def _torch_loaded(pid):
    """The campaign command is running (it imports torch inside click's main, so a
    SIGINT from then on is a KeyboardInterrupt click handles; one during the
    interpreter's own start-up is Python's business)."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return "libtorch" in maps.read()
    except OSError:
        return False


def _default_sigint():
    # A shell or CI runner may start the test with SIGINT ignored, which the child
    # would inherit (and then never see a KeyboardInterrupt).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow(seconds=150)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, /proc")
def test_campaign_survives_20_interruptions(checkpoint, tmp_path):
    """20 runs in a row, each sent SIGINT, SIGTERM or SIGKILL (in turn) at a random
    moment: during start-up, or after a random number of stored faults (up to a 25th
    of the campaign); then one run to completion. The database ends with exactly the planned
    faults, each once, with the results of an uninterrupted campaign."""
    planned, images, chunk, seed = 1500, 100, 10, 0
    db = tmp_path / "interrupted.sqlite"
    args = [NEUROHARDEN, "campaign", "--level", "model", "--model", checkpoint, "--fault",
            "bitflip", "--faults", str(planned), "--images", str(images), "--chunk",
            str(chunk), "--seed", str(seed), "--workers", "1", "--db", str(db), "--json"]
    rng = random.Random(0)
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    startup = 3.0  # seconds to the first stored batch; measured by the mid-run kills
    runs = []
    for i in range(20):
        sig, early = signals[i % 3], i % 2 == 1
        before = _stored_count(db)
        spawned = time.monotonic()
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True,
                                preexec_fn=_default_sigint)
        deadline = spawned + 120
        if early:  # before the first result (mostly): a random share of the start-up
            at = spawned + rng.uniform(0, 1) * startup
            while time.monotonic() < min(at, deadline) and proc.poll() is None:
                time.sleep(0.01)
            while (sig == signal.SIGINT and not _torch_loaded(proc.pid)
                   and time.monotonic() < deadline and proc.poll() is None):
                time.sleep(0.01)
        else:  # mid-run: after up to half of the missing faults, plus up to a batch
            # Each mid-run kill stores at most a 25th of the campaign (plus the batch
            # in flight), so that all 20 runs end before the last fault.
            target = before + rng.randint(1, planned // 25)
            first = None
            while time.monotonic() < deadline and proc.poll() is None:
                stored = _stored_count(db)
                if first is None and stored > before:
                    first = time.monotonic() - spawned
                if stored >= target:
                    break
                time.sleep(0.01)
            if first is not None:
                startup = first
            time.sleep(rng.uniform(0, 0.05))
        assert proc.poll() is None, (f"run {i} ended before it was interrupted "
                                     f"(rc {proc.returncode}): {proc.communicate()}")
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=120)
        runs.append({"signal": sig.name, "early": early, "seconds":
                     round(time.monotonic() - spawned, 2), "rc": proc.returncode,
                     "before": before, "after": _stored_count(db), "stderr": err})
        if sig == signal.SIGKILL:
            assert proc.returncode == -signal.SIGKILL, runs[-1]
        else:
            # Interrupted, not crashed: a non-zero status and at most one line, no
            # traceback (click's "Aborted!" on SIGINT, SIGTERM's default action).
            assert proc.returncode != 0, runs[-1]
            assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, runs[-1]
    counts = [run["after"] for run in runs]
    # The interruptions really fell mid-run: results were stored, never all of them.
    assert sum(run["after"] > run["before"] for run in runs) >= 5, runs
    assert 0 < counts[-1] < planned and max(counts) < planned, runs
    assert counts == sorted(counts), runs  # nothing committed was ever lost
    final = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    summary = json.loads(final.stdout)
    assert summary["faults"] == summary["completed"] == planned
    assert summary["evaluated_now"] == planned - counts[-1]
    cid = summary["campaign"]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT id FROM campaigns").fetchall() == [(cid,)]
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT fault_index), "
                            "COUNT(DISTINCT population_index), MIN(fault_index), "
                            "MAX(fault_index) FROM results WHERE campaign = ?",
                            (cid,)).fetchone() == (planned, planned, planned, 0,
                                                   planned - 1)
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == planned
        # Every committed batch's time was committed with it, once.
        assert conn.execute("SELECT faults FROM evaluation WHERE campaign = ?",
                            (cid,)).fetchone() == (planned,)
    rows = _rows(db, cid)
    assert [r[1] for r in rows] == sample_indices(summary["population"], planned, seed)
    # The same results as an uninterrupted campaign.
    reference = tmp_path / "reference.sqlite"
    whole = run_campaign(checkpoint, faults=planned, images=images, chunk=chunk, seed=seed,
                         db_path=reference, progress=False)
    assert whole["campaign"] == cid and _strip(whole) == _strip(summary)
    assert _rows(reference, cid) == rows


def test_a_kill_while_creating_the_database_leaves_it_usable(tmp_path, monkeypatch):
    """The process dies after any statement of the database's creation (an uncommitted
    transaction is lost, as after kill -9): the next run opens the file and stores."""
    class Killed(BaseException):
        pass

    real_connect, opened = sqlite3.connect, []

    def dying_connect(after):
        calls = [0]

        class Dying(sqlite3.Connection):
            def _step(self):
                calls[0] += 1
                if calls[0] == after:
                    raise Killed

            def execute(self, *args):
                cursor = super().execute(*args)
                self._step()
                return cursor

            def executemany(self, *args):
                cursor = super().executemany(*args)
                self._step()
                return cursor

            def __exit__(self, kind, *rest):
                result = super().__exit__(kind, *rest)
                if kind is None:
                    self._step()  # after the commit
                return result

        def connect(*args, **kwargs):
            opened.append(real_connect(*args, factory=Dying, **kwargs))
            return opened[-1]
        return connect

    for after in range(1, 100):
        path = tmp_path / f"created-{after}.sqlite"
        monkeypatch.setattr(campaign_module.sqlite3, "connect", dying_connect(after))
        try:
            ResultsDB(path).close()
            finished = True
        except Killed:
            finished = False
        finally:
            monkeypatch.setattr(campaign_module.sqlite3, "connect", real_connect)
            for conn in opened:
                conn.close()  # what is not committed is lost
            opened.clear()
        with ResultsDB(path) as db:
            db.register("c", {"n": after}, 1, 1, 1)
            assert db.campaign("c") == ({"n": after}, 1, 1, 1)
        if finished:
            break
    assert finished and after > 5  # every statement of the creation was a kill point
    # A file an older version left half-made (its application id and an empty meta
    # table committed, the rest lost) is finished, not taken for another tool's.
    half = tmp_path / "half.sqlite"
    with closing(sqlite3.connect(half)) as conn:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    with ResultsDB(half) as db:
        db.register("c", {}, 1, 1, 1)
    with closing(sqlite3.connect(half)) as conn:
        assert dict(conn.execute("SELECT key, value FROM meta")) == {
            "tool": "neuroharden-results", "schema": str(SCHEMA)}


def _refused(checkpoint, path, *message):
    """The campaign CLI refuses ``path``: exit 2, one line holding ``message``, the file
    byte for byte as it was."""
    before = _digest(path)
    result = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 5, "--images",
                  10, "--db", path)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    for part in message:
        assert part in result.output, result.output
    assert _digest(path) == before
    return result.output


def test_database_of_another_campaign_or_newer_schema_is_refused(checkpoint, tmp_path):
    # A newer schema.
    newer = tmp_path / "newer.sqlite"
    ResultsDB(newer).close()
    with closing(sqlite3.connect(newer)) as conn, conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA + 1),))
    _refused(checkpoint, newer, f"schema {SCHEMA + 1}", "not supported")
    # Another tool's SQLite files: another application id with tables of the same
    # names, and our application id with another tool in meta.
    other = tmp_path / "other.sqlite"
    with closing(sqlite3.connect(other)) as conn, conn:
        conn.execute("PRAGMA application_id = 1234")
        for table in ("meta", "campaigns", "results"):
            conn.execute(f"CREATE TABLE {table} (key TEXT, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('tool', 'neuroharden-results')")
    _refused(checkpoint, other, "not a neuroharden results database")
    impostor = tmp_path / "impostor.sqlite"
    ResultsDB(impostor).close()
    with closing(sqlite3.connect(impostor)) as conn, conn:
        conn.execute("UPDATE meta SET value = 'other-tool' WHERE key = 'tool'")
    _refused(checkpoint, impostor, "not a neuroharden results database")
    # A stored campaign id whose definition is another one.
    taken = tmp_path / "taken.sqlite"
    first = _cli("--model", checkpoint, "--fault", "bitflip", "--faults", 5, "--images",
                 10, "--db", taken, "--json")
    assert first.exit_code == 0, first.output
    cid = json.loads(first.output)["campaign"]
    with closing(sqlite3.connect(taken)) as conn, conn:
        definition = json.loads(conn.execute("SELECT definition FROM campaigns").fetchone()[0])
        conn.execute("UPDATE campaigns SET definition = ?",
                     (json.dumps({**definition, "seed": 99}),))
    rows = _rows(taken, cid)
    _refused(checkpoint, taken, cid, "different definition")
    assert _rows(taken, cid) == rows


def test_detection_is_stored_and_summarized_when_every_row_has_it(tmp_path):
    row = {"outcome": "masked", "critical": False, "changed": 0, "masked_images": 1,
           "tolerable_images": 0, "critical_images": 0, "correct": 1}
    changed = {**row, "outcome": "critical", "critical": True, "changed": 1,
               "masked_images": 0, "critical_images": 1, "correct": 0}
    with ResultsDB(tmp_path / "d.sqlite") as db:
        db.add("c", [(0, 0, "{}", {**row, "detected": 0}), (1, 1, "{}", {**row, "detected": 2}),
                     (2, 2, "{}", {**changed, "detected": 1}),
                     (3, 3, "{}", {**changed, "detected": 0})])
        db.add("m", [(0, 0, "{}", row)])
        rows, model_rows = db.results("c"), db.results("m")
    assert [r["detected"] for r in rows] == [0, 2, 1, 0] and model_rows[0]["detected"] is None
    assert summarize(rows, 4, 1, 1)["detection"] == {"masked": 1, "corrected": 1, "due": 1,
                                                      "sdc": 1, "detected": 2}
    assert "detection" not in summarize(model_rows, 1, 1, 1)
    text = summary_text(summarize(rows, 4, 1, 1), "t")
    assert "corrected 1, DUE 1, SDC 1 (2 detected)" in text

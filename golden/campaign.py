"""Resumable statistical fault-injection campaigns on the integer model, stored in SQLite.

A campaign is defined by the model fingerprint (sha256 of the checkpoint file), the
level (``model``), the fault model, target, bits per fault and allowed bit positions,
the layers, the number of faults, the seed and the number of test images. Its id is the
sha256 of that definition (canonical JSON). The fault list is the ``faults`` first draws
without replacement from the fault space (:mod:`golden.sampling`), so it is the same on
every run with the same arguments.

Database (stdlib ``sqlite3``, WAL journal):

* ``meta(key, value)``: ``tool = neuroharden-results``, ``schema = 1``; the file's
  ``application_id`` pragma is :data:`APPLICATION_ID`. A file that is not an SQLite
  database, or an SQLite database of another tool, is refused and left untouched.
* ``campaigns(id PRIMARY KEY, definition, planned, images, fault_free_correct, created)``.
* ``results(campaign, fault_index, population_index, fault, outcome, critical, changed,
  masked_images, tolerable_images, critical_images, correct,
  PRIMARY KEY (campaign, fault_index))``: one row per planned fault, inserted in small
  committed batches as results arrive. A campaign killed at any point (``kill -9``
  included) and restarted with the same arguments evaluates only the missing faults;
  the primary key guarantees nothing is counted twice.

With Dask (``workers > 1`` or a scheduler address) the workers evaluate chunks of faults
(each worker builds its engine once from the scattered network and images) and the
client alone writes the database.
"""

import hashlib
import json
import os
import sqlite3
import time

import torch

from .injection import InjectionEngine
from .sampling import FaultSpace, leveugle_sample_size, sample_indices

__all__ = ["APPLICATION_ID", "ResultsDB", "campaign_definition", "run_campaign",
           "summarize", "file_sha256"]

#: ``PRAGMA application_id`` of a neuroharden results database ("NHFI").
APPLICATION_ID = 0x4E484649
SCHEMA = 1
_TOOL = "neuroharden-results"

_RESULT_COLUMNS = ("outcome", "critical", "changed", "masked_images", "tolerable_images",
                   "critical_images", "correct")


def file_sha256(path):
    """sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ResultsDB:
    """A neuroharden results database (see the module docstring).

    Raises
    ------
    ValueError
        The file is not an SQLite database, is corrupt, or belongs to another tool.
    """

    def __init__(self, path):
        self.path = str(path)
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path}: is a directory, not a results database")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            if exists:
                self._check()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if not exists or not self._tables():
                self._create()
            # Added after schema 1 without changing it: older databases gain the table.
            with self.conn:
                self.conn.execute("CREATE TABLE IF NOT EXISTS evaluation (campaign TEXT "
                                  "PRIMARY KEY, seconds REAL NOT NULL, faults INTEGER "
                                  "NOT NULL)")
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{self.path}: not a readable SQLite results database "
                             f"({error})") from None

    def _tables(self):
        return {r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table'")}

    def _check(self):
        app = self.conn.execute("PRAGMA application_id").fetchone()[0]
        tables = self._tables()
        if app == 0 and not tables:
            return  # an empty SQLite file: ours to initialise
        if app != APPLICATION_ID or not {"meta", "campaigns", "results"} <= tables:
            raise ValueError(f"{self.path}: not a neuroharden results database "
                             f"(another tool's SQLite file); refusing to touch it")
        meta = dict(self.conn.execute("SELECT key, value FROM meta"))
        if meta.get("tool") != _TOOL:
            raise ValueError(f"{self.path}: not a neuroharden results database")
        if meta.get("schema") != str(SCHEMA):
            raise ValueError(f"{self.path}: results schema {meta.get('schema')} is not "
                             f"supported (expected {SCHEMA})")

    def _create(self):
        with self.conn:
            self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta "
                              "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [("tool", _TOOL), ("schema", str(SCHEMA))])
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS campaigns (id TEXT PRIMARY KEY, "
                "definition TEXT NOT NULL, planned INTEGER NOT NULL, images INTEGER NOT NULL, "
                "fault_free_correct INTEGER NOT NULL, created REAL NOT NULL)")
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS results (campaign TEXT NOT NULL, "
                "fault_index INTEGER NOT NULL, population_index INTEGER NOT NULL, "
                "fault TEXT NOT NULL, outcome TEXT NOT NULL, critical INTEGER NOT NULL, "
                "changed INTEGER NOT NULL, masked_images INTEGER NOT NULL, "
                "tolerable_images INTEGER NOT NULL, critical_images INTEGER NOT NULL, "
                "correct INTEGER NOT NULL, PRIMARY KEY (campaign, fault_index)) "
                "WITHOUT ROWID")

    def register(self, campaign_id, definition, planned, images, fault_free_correct):
        """Record a campaign (idempotent); a stored definition must match."""
        text = json.dumps(definition, sort_keys=True)
        row = self.conn.execute("SELECT definition FROM campaigns WHERE id = ?",
                                (campaign_id,)).fetchone()
        if row is not None:
            if json.loads(row[0]) != json.loads(text):
                raise ValueError(f"{self.path}: campaign {campaign_id} is stored with a "
                                 f"different definition")
            return
        with self.conn:
            self.conn.execute("INSERT INTO campaigns VALUES (?, ?, ?, ?, ?, ?)",
                              (campaign_id, text, planned, images, fault_free_correct,
                               time.time()))

    def done(self, campaign_id):
        """Fault indices already stored for a campaign."""
        return {r[0] for r in self.conn.execute(
            "SELECT fault_index FROM results WHERE campaign = ?", (campaign_id,))}

    def add(self, campaign_id, rows, seconds=0.0):
        """Insert ``(fault_index, population_index, fault_json, result_dict)`` rows, committed.

        ``seconds``, the wall time that evaluated them, is added to the campaign's
        evaluation time in the same transaction (:meth:`evaluation`).
        """
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(campaign_id, k, pk, fj, r["outcome"], int(r["critical"]), r["changed"],
                  r["masked_images"], r["tolerable_images"], r["critical_images"],
                  r["correct"]) for k, pk, fj, r in rows])
            if seconds > 0:
                self.conn.execute(
                    "INSERT INTO evaluation VALUES (?, ?, ?) ON CONFLICT(campaign) DO UPDATE "
                    "SET seconds = seconds + excluded.seconds, "
                    "faults = faults + excluded.faults", (campaign_id, seconds, len(rows)))

    def evaluation(self, campaign_id):
        """``(seconds, faults)``: wall time of the runs that evaluated stored faults of a
        campaign and how many they evaluated (``(0.0, 0)`` when none was timed)."""
        row = self.conn.execute("SELECT seconds, faults FROM evaluation WHERE campaign = ?",
                                (campaign_id,)).fetchone()
        return (0.0, 0) if row is None else (row[0], row[1])

    def results(self, campaign_id):
        """All stored rows of a campaign as dicts, by fault index."""
        cur = self.conn.execute(
            "SELECT fault_index, population_index, fault, " + ", ".join(_RESULT_COLUMNS)
            + " FROM results WHERE campaign = ? ORDER BY fault_index", (campaign_id,))
        names = ("fault_index", "population_index", "fault") + _RESULT_COLUMNS
        return [dict(zip(names, row)) for row in cur]

    def campaign(self, campaign_id):
        """``(definition, planned, images, fault_free_correct)`` of a stored campaign."""
        row = self.conn.execute(
            "SELECT definition, planned, images, fault_free_correct FROM campaigns "
            "WHERE id = ?", (campaign_id,)).fetchone()
        if row is None:
            raise ValueError(f"{self.path}: no campaign {campaign_id}")
        return json.loads(row[0]), row[1], row[2], row[3]

    def close(self):
        self.conn.close()


def campaign_definition(model_sha256, *, level, fault_model, target, bits, positions,
                        layers, faults, seed, images, population):
    """The canonical definition of a campaign and its id (sha256 of its JSON)."""
    definition = {"tool": "neuroharden", "level": level, "model_sha256": model_sha256,
                  "fault_model": fault_model, "target": target, "bits": bits,
                  "positions": positions, "layers": layers, "faults": faults,
                  "seed": seed, "images": images, "population": population}
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return definition, hashlib.sha256(text.encode()).hexdigest()[:32]


def summarize(rows, planned, images, fault_free_correct, seconds=None, evaluated=0,
              evaluation=(0.0, 0)):
    """Campaign summary from stored result rows.

    ``accuracy_loss`` is paper 004's: fault-free accuracy minus the mean faulty accuracy
    over the completed faults, as a fraction (x100 for percentage points).
    ``seconds`` and ``evaluated`` describe this run; ``faults_per_second`` is the rate of
    the runs that evaluated the stored faults (``evaluation``, :meth:`ResultsDB.evaluation`),
    so a rerun over a complete database still reports it.
    """
    rate_seconds, rate_faults = evaluation
    n = len(rows)
    counts = {o: sum(r["outcome"] == o for r in rows) for o in ("masked", "tolerable",
                                                               "critical")}
    critical = sum(bool(r["critical"]) for r in rows)
    ff_acc = fault_free_correct / images if images else 0.0
    mean_acc = (sum(r["correct"] for r in rows) / (n * images)) if n and images else ff_acc
    return {"faults": planned, "completed": n, "images": images,
            "masked": counts["masked"], "tolerable": counts["tolerable"],
            "critical_003": counts["critical"], "critical": critical,
            "critical_rate": critical / n if n else 0.0,
            "changed_images": sum(r["changed"] for r in rows),
            "fault_free_accuracy": ff_acc, "mean_faulty_accuracy": mean_acc,
            "accuracy_loss": ff_acc - mean_acc, "evaluated_now": evaluated,
            "seconds": seconds,
            "faults_per_second": (rate_faults / rate_seconds) if rate_seconds and rate_faults
            else None}


# -- evaluation on a Dask worker ----------------------------------------------------

_ENGINES = {}


def _evaluate_on_worker(key, net, x, labels, fault_dicts):
    """Evaluate a chunk of faults with a per-process engine built once per campaign."""
    from .faults import Fault

    torch.set_num_threads(1)
    engine = _ENGINES.get(key)
    if engine is None:
        _ENGINES.clear()
        engine = _ENGINES[key] = InjectionEngine(net, x, labels)
    return engine.evaluate([Fault.from_dict(d) for d in fault_dicts])


def run_campaign(model_path, *, fault_model="bitflip", target="output", bits=1,
                 positions=None, layers=None, confidence=0.95, margin=0.01, faults=None,
                 seed=0, db_path, images=None, workers=1, scheduler=None, chunk=128,
                 progress=None, level="model", data_dir=None):
    """Run (or resume) a model-level campaign and return its summary.

    Parameters
    ----------
    model_path : str
        Checkpoint written by ``neuroharden train``.
    fault_model, target, bits, positions, layers
        Fault space (:class:`golden.sampling.FaultSpace`).
    confidence, margin : float
        Leveugle sizing of the sample when ``faults`` is None.
    faults : int, optional
        Explicit sample size.
    seed : int
        Sampling (and Byzantine value) seed.
    db_path : str
        SQLite results database.
    images : int, optional
        Use the first ``images`` test images (default: the whole test split).
    workers : int
        ``1`` evaluates in-process; more starts a Dask ``LocalCluster``.
    scheduler : str, optional
        Address of a running Dask scheduler (overrides ``workers``).
    chunk : int
        Faults per evaluation chunk (and per database commit).
    progress : bool, optional
        tqdm bar; by default only on a terminal.

    Returns
    -------
    dict
        :func:`summarize`'s summary plus ``campaign``, ``population`` and ``db``.

    Raises
    ------
    ValueError
        Bad checkpoint, fault space, sample size or database, or a ``level`` other than
        ``"model"`` (RTL campaigns are :func:`sim.rtl_campaign.run_rtl_campaign`).
    """
    if level != "model":
        raise ValueError(f"run_campaign runs model-level campaigns, not level {level!r}; "
                         f"RTL campaigns run through `neuroharden campaign --level rtl` "
                         f"(sim.rtl_campaign.run_rtl_campaign)")
    from .quantize import quantize_checkpoint

    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such checkpoint")
    model_sha = file_sha256(model_path)
    net, _, _, data = quantize_checkpoint(model_path, data_dir)
    x_all, y_all = data.x_test, data.y_test
    if images is not None:
        if images < 1:
            raise ValueError(f"images must be at least 1, got {images}")
        x_all, y_all = x_all[:images], y_all[:images]
    x = net.quantize_input(x_all)
    labels = y_all
    space = FaultSpace(net, fault_model, target, bits, layers=layers, seed=seed,
                       positions=positions)
    n = faults if faults is not None else leveugle_sample_size(len(space), confidence,
                                                                 margin)
    if not 1 <= n <= len(space):
        raise ValueError(f"cannot draw {n} faults from a population of {len(space)}")
    described = space.describe()
    definition, cid = campaign_definition(
        model_sha, level=level, fault_model=fault_model, target=target,
        bits=described["bits"], positions=described["positions"],
        layers=list(described["layers"]), faults=n, seed=seed, images=len(x),
        population=len(space))
    db = ResultsDB(db_path)
    try:
        engine = InjectionEngine(net, x, labels)
        db.register(cid, definition, n, len(x), engine.fault_free_correct())
        indices = sample_indices(len(space), n, seed)
        done = db.done(cid)
        todo = [k for k in range(n) if k not in done]
        start = time.perf_counter()
        _evaluate(engine, net, x, labels, space, indices, todo, db, cid, cid + model_sha,
                  workers, scheduler, chunk, progress, n)
        seconds = time.perf_counter() - start
        summary = summarize(db.results(cid), n, len(x), engine.fault_free_correct(),
                            seconds, len(todo), db.evaluation(cid))
    finally:
        db.close()
    summary.update({"campaign": cid, "population": len(space), "db": str(db_path),
                    "fault_model": fault_model, "target": target, "level": level})
    return summary


def _evaluate(engine, net, x, labels, space, indices, todo, db, cid, key, workers,
              scheduler, chunk, progress, planned):
    from tqdm import tqdm

    chunks = [todo[a:a + chunk] for a in range(0, len(todo), chunk)]
    bar = tqdm(total=planned, initial=planned - len(todo), desc="campaign", unit="fault",
               disable=None if progress is None else not progress)

    last = time.perf_counter()

    def store(ks, results):
        nonlocal last
        now = time.perf_counter()
        db.add(cid, [(k, indices[k], space.fault(indices[k]).to_json(), r)
                     for k, r in zip(ks, results)], seconds=now - last)
        last = now
        bar.update(len(ks))

    try:
        if scheduler is None and workers <= 1:
            for ks in chunks:
                store(ks, engine.evaluate([space.fault(indices[k]) for k in ks]))
            return
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        try:
            net_f, x_f, y_f = client.scatter([net, x, labels], broadcast=True)
            futures = {}
            for ks in chunks:
                dicts = [space.fault(indices[k]).to_dict() for k in ks]
                fut = client.submit(_evaluate_on_worker, key, net_f, x_f, y_f, dicts,
                                    pure=False)
                futures[fut] = ks
            for fut in as_completed(futures):
                store(futures[fut], fut.result())
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        bar.close()

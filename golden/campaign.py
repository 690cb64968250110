"""Resumable statistical fault-injection campaigns, stored in SQLite.

Every campaign, whatever it injects into, is run by :func:`run`:

* a :class:`CampaignDefinition` says what the campaign is: its level (``model``,
  ``rtl``, ``sa-fi``, ...), the number of faults drawn, the seed, the test images, the
  size of the fault population and the level's own fields (model fingerprint, fault
  model, sites, ...). Its id is the sha256 of that definition (canonical JSON), so
  campaigns that differ in anything have different ids. The planned faults are the
  ``faults`` first draws without replacement from the population
  (:func:`golden.sampling.sample_indices`), the same on every run;
* an evaluator (:class:`golden.evaluator.Evaluator`) evaluates them: it packs the
  faults into batches and turns a batch into result rows
  (:func:`golden.outcomes.classify`'s classes);
* an executor (:mod:`golden.executor`) evaluates the batches in-process or on Dask
  workers.

:func:`run` registers the campaign, evaluates only the planned faults the database does
not hold yet, commits each batch's rows as it completes, and returns the summary
(:func:`summarize`). The model-level campaign (:func:`run_campaign`, the integer model
and :class:`golden.injection.InjectionEngine`) is defined here; the RTL campaigns
(``sim.rtl_campaign``) and the stuck-at weight experiment (``sim.app.experiments.sa_fi``)
are evaluators of their own, run the same way.

Database (stdlib ``sqlite3``, WAL journal):

* ``meta(key, value)``: ``tool = neuroharden-results``, ``schema = 1``; the file's
  ``application_id`` pragma is :data:`APPLICATION_ID`. A file that is not an SQLite
  database, or an SQLite database of another tool, is refused and left untouched.
* ``campaigns(id PRIMARY KEY, definition, planned, images, fault_free_correct, created)``.
* ``results(campaign, fault_index, population_index, fault, outcome, critical, changed,
  masked_images, tolerable_images, critical_images, correct,
  PRIMARY KEY (campaign, fault_index))``: one row per planned fault, inserted in
  committed batches as results arrive. A campaign killed at any point (``kill -9``
  included) and restarted with the same arguments evaluates only the missing faults;
  the primary key guarantees nothing is counted twice.
* ``evaluation(campaign PRIMARY KEY, seconds, faults)``: the wall time of the batches
  that evaluated the stored faults, committed with them.
"""

import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field

from tqdm import tqdm

from .checkpoint import dataset_field, quantize_checkpoint
from .evaluator import Evaluator
from .executor import make_executor
from .injection import InjectionEngine
from .outcomes import DETECTION_CLASSES, OUTCOMES, detection_class
from .sampling import FaultSpace, leveugle_sample_size, sample_indices

__all__ = ["APPLICATION_ID", "ResultsDB", "CampaignDefinition", "run", "summarize",
           "summary_text", "ModelEvaluator", "run_campaign", "file_sha256"]

#: ``PRAGMA application_id`` of a neuroharden results database ("NHFI").
APPLICATION_ID = 0x4E484649
SCHEMA = 1
#: First bytes of every SQLite 3 database file.
_SQLITE_MAGIC = b"SQLite format 3\x00"
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
        if os.path.isdir(self.path):
            raise ValueError(f"{self.path}: is a directory, not a results database")
        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if exists:
            # SQLite takes a file shorter than its header for an empty database and
            # would write over it: only a real SQLite file is opened.
            with open(self.path, "rb") as file:
                if file.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                    raise ValueError(f"{self.path}: not a readable SQLite results database "
                                     f"(no SQLite header); refusing to touch it")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            if exists:
                self._check()
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            if "campaigns" not in self._tables():
                self._create()
            # Added after schema 1 without changing it: older databases gain the tables.
            with self.conn:
                self.conn.execute("CREATE TABLE IF NOT EXISTS evaluation (campaign TEXT "
                                  "PRIMARY KEY, seconds REAL NOT NULL, faults INTEGER "
                                  "NOT NULL)")
                self.conn.execute("CREATE TABLE IF NOT EXISTS detection (campaign TEXT "
                                  "NOT NULL, fault_index INTEGER NOT NULL, flags INTEGER "
                                  "NOT NULL, PRIMARY KEY (campaign, fault_index)) "
                                  "WITHOUT ROWID")
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
        if app == APPLICATION_ID and not tables & {"campaigns", "results"}:
            # Our own creation, killed before it committed (versions that created the
            # file in several transactions could leave this): nothing stored, ours to
            # finish.
            return
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
        # One transaction (the sqlite3 module would commit the pragma and the first
        # table on their own): a run killed while creating the file leaves an empty
        # SQLite file or a complete database, never a half-made one that the next run
        # would take for another tool's file.
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
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
        evaluation time in the same transaction (:meth:`evaluation`). A result with a
        ``detected`` entry (RTL campaigns: the protection's error flags) stores it in
        the ``detection`` table, in the same transaction.
        """
        with self.conn:
            self.conn.executemany(
                "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(campaign_id, k, pk, fj, r["outcome"], int(r["critical"]), r["changed"],
                  r["masked_images"], r["tolerable_images"], r["critical_images"],
                  r["correct"]) for k, pk, fj, r in rows])
            self.conn.executemany(
                "INSERT OR IGNORE INTO detection VALUES (?, ?, ?)",
                [(campaign_id, k, int(r["detected"])) for k, _, _, r in rows
                 if r.get("detected") is not None])
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
        """All stored rows of a campaign as dicts, by fault index (``detected``: the
        stored error flags, None where the campaign records none)."""
        cur = self.conn.execute(
            "SELECT r.fault_index, r.population_index, r.fault, "
            + ", ".join(f"r.{column}" for column in _RESULT_COLUMNS) + ", d.flags "
            "FROM results r LEFT JOIN detection d ON d.campaign = r.campaign AND "
            "d.fault_index = r.fault_index WHERE r.campaign = ? ORDER BY r.fault_index",
            (campaign_id,))
        names = ("fault_index", "population_index", "fault") + _RESULT_COLUMNS + ("detected",)
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

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


#: Fields every definition has; a level's own fields are the others.
_COMMON_FIELDS = ("tool", "level", "faults", "seed", "images", "population")


@dataclass(frozen=True)
class CampaignDefinition:
    """What a campaign is, and its id.

    Parameters
    ----------
    level : str
        What the faults are injected into: ``"model"``, ``"rtl"``, ``"sa-fi"``, ...
    faults : int
        Faults drawn from the population (the planned faults).
    seed : int
        Sampling seed.
    images : int
        Test images every fault is evaluated on.
    population : int
        Size of the fault population.
    fields : dict
        The level's own fields (JSON values), e.g. the model fingerprint and the fault
        space; everything that tells two campaigns of the level apart.

    Raises
    ------
    ValueError
        A count that is not a positive integer, more faults than the population, a
        field that is not JSON or that shadows a common one.
    """

    level: str
    faults: int
    seed: int
    images: int
    population: int
    fields: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.level, str) or not self.level:
            raise ValueError(f"Campaign level must be a non-empty string, not {self.level!r}")
        for name, what in (("images", "Image count"), ("population", "Population size")):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{what} must be a positive integer, not {value!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"Seed must be an integer, not {self.seed!r}")
        if not (isinstance(self.faults, int) and 1 <= self.faults <= self.population):
            raise ValueError(f"cannot draw {self.faults} faults from a population of "
                             f"{self.population}")
        shadowed = sorted(set(self.fields) & set(_COMMON_FIELDS))
        if shadowed:
            raise ValueError(f"Campaign fields must not redefine {', '.join(shadowed)}")
        try:
            json.dumps(self.fields)
        except TypeError as error:
            raise ValueError(f"Campaign fields must be JSON values ({error})") from None

    def as_dict(self):
        """The definition as stored in the database (``tool``, the common fields and the
        level's own)."""
        return {"tool": "neuroharden", "level": self.level, **self.fields,
                "faults": self.faults, "seed": self.seed, "images": self.images,
                "population": self.population}

    @property
    def id(self):
        """32 hex digits of the sha256 of the canonical JSON of :meth:`as_dict`."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def sample(self):
        """The planned faults: population indices, in draw order (fault number ``k`` is
        ``sample()[k]``)."""
        return sample_indices(self.population, self.faults, self.seed)


def run(definition, evaluator, *, db_path, executor=None, chunk=128, progress=None,
        label="campaign"):
    """Run (or resume) a campaign and return its summary.

    Registers the campaign in the database, draws its planned faults
    (:meth:`CampaignDefinition.sample`), evaluates those not stored yet in batches
    (:meth:`golden.evaluator.Evaluator.batches`) and commits each batch's rows and
    evaluation time as the batch completes.

    Parameters
    ----------
    definition : CampaignDefinition
    evaluator : golden.evaluator.Evaluator
    db_path : str or os.PathLike
        SQLite results database (:class:`ResultsDB`).
    executor : golden.executor.Executor, optional
        Where batches are evaluated (default: in-process).
    chunk : int
        Most faults per batch.
    progress : bool, optional
        tqdm bar; by default only on a terminal.
    label : str
        Name of the progress bar.

    Returns
    -------
    dict
        :func:`summarize`'s summary plus ``campaign`` (the id), ``population`` and
        ``db``.

    Raises
    ------
    ValueError
        A bad chunk, a database that is not a neuroharden one, or a campaign id stored
        with another definition.
    """
    if not (isinstance(chunk, int) and chunk >= 1):
        raise ValueError(f"Chunk must be a positive number of faults, not {chunk!r}")
    cid, planned = definition.id, definition.faults
    correct = evaluator.fault_free_correct()
    with ResultsDB(db_path) as db:
        db.register(cid, definition.as_dict(), planned, definition.images, correct)
        indices = definition.sample()
        number = {p: k for k, p in enumerate(indices)}
        done = db.done(cid)
        todo = [indices[k] for k in range(planned) if k not in done]
        start = time.perf_counter()
        if todo:
            bar = tqdm(total=planned, initial=planned - len(todo), desc=label, unit="fault",
                       disable=None if progress is None else not progress)
            with bar, (executor or make_executor()) as running:
                results = running.map(evaluator, cid, evaluator.batches(todo, chunk))
                last = time.perf_counter()
                for _, rows in results:
                    now = time.perf_counter()
                    db.add(cid, [(number[p], p, fault, result) for p, fault, result in rows],
                           seconds=now - last)
                    last = now
                    bar.update(len(rows))
        seconds = time.perf_counter() - start
        summary = summarize(db.results(cid), planned, definition.images, correct, seconds,
                            len(todo), db.evaluation(cid))
    summary.update({"campaign": cid, "population": definition.population,
                    "db": str(db_path)})
    return summary


def summarize(rows, planned, images, fault_free_correct, seconds=None, evaluated=0,
              evaluation=(0.0, 0)):
    """Campaign summary from stored result rows.

    ``accuracy_loss`` is paper 004's: fault-free accuracy minus the mean faulty accuracy
    over the completed faults, as a fraction (x100 for percentage points).
    ``seconds`` and ``evaluated`` describe this run; ``faults_per_second`` is the rate of
    the runs that evaluated the stored faults (``evaluation``, :meth:`ResultsDB.evaluation`),
    so a rerun over a complete database still reports it. When every row records the
    hardware's detection (RTL campaigns), ``detection`` counts the faults of each
    :data:`golden.outcomes.DETECTION_CLASSES` category (masked, corrected, DUE, SDC) and
    how many were ``detected``.
    """
    rate_seconds, rate_faults = evaluation
    n = len(rows)
    detection = None
    if rows and all(r.get("detected") is not None for r in rows):
        classes = [detection_class(r["outcome"], r["detected"]) for r in rows]
        detection = {name: classes.count(name) for name in DETECTION_CLASSES}
        detection["detected"] = sum(bool(r["detected"]) for r in rows)
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    critical = sum(bool(r["critical"]) for r in rows)
    ff_acc = fault_free_correct / images if images else 0.0
    mean_acc = (sum(r["correct"] for r in rows) / (n * images)) if n and images else ff_acc
    summary = {"faults": planned, "completed": n, "images": images,
            "masked": counts["masked"], "tolerable": counts["tolerable"],
            "critical_003": counts["critical"], "critical": critical,
            "critical_rate": critical / n if n else 0.0,
            "changed_images": sum(r["changed"] for r in rows),
            "fault_free_accuracy": ff_acc, "mean_faulty_accuracy": mean_acc,
            "accuracy_loss": ff_acc - mean_acc, "evaluated_now": evaluated,
            "seconds": seconds,
            "faults_per_second": (rate_faults / rate_seconds) if rate_seconds and rate_faults
            else None}
    if detection is not None:
        summary["detection"] = detection
    return summary


def summary_text(summary, title):
    """A campaign summary as text: ``title``, then paper 003's and paper 004's classes.

    Parameters
    ----------
    summary : dict
        :func:`run`'s summary.
    title : str
        First line (what the campaign is: id, fault space, images).
    """
    n = max(1, summary["completed"])
    fps = summary["faults_per_second"]
    return (
        f"{title}\n"
        f"  paper 003: masked {summary['masked']} ({100 * summary['masked'] / n:.2f} %), "
        f"tolerable {summary['tolerable']} ({100 * summary['tolerable'] / n:.2f} %), "
        f"critical {summary['critical_003']} ({100 * summary['critical_003'] / n:.2f} %)\n"
        f"  paper 004: critical faults {summary['critical']} "
        f"({100 * summary['critical_rate']:.2f} %), accuracy loss "
        f"{100 * summary['accuracy_loss']:.3f} points (fault-free "
        f"{100 * summary['fault_free_accuracy']:.2f} %)\n"
        + (f"  hardware detection: masked {d['masked']}, corrected {d['corrected']}, "
           f"DUE {d['due']}, SDC {d['sdc']} ({d['detected']} detected)\n"
           if (d := summary.get("detection")) else "")
        + f"  {summary['evaluated_now']} evaluated now"
        + (f", {fps:.2f} faults/s" if fps else ""))


class ModelEvaluator(Evaluator):
    """Faults of a model-level fault space evaluated on the integer network.

    Parameters
    ----------
    net : golden.intmodel.IntNet or golden.hardened.HardenedNet
    x : torch.Tensor
        int8 test images (int64 values).
    labels : torch.Tensor
        Their labels.
    space : golden.sampling.FaultSpace
    """

    def __init__(self, net, x, labels, space):
        self.net, self.x, self.labels, self.space = net, x, labels, space
        self._engine = None

    def fault_free_correct(self):
        return int((self.net.predict(self.x) == self.labels).sum())

    def prepare(self):
        """Build the :class:`golden.injection.InjectionEngine` (the fault-free run)."""
        self._engine = InjectionEngine(self.net, self.x, self.labels)

    def evaluate(self, batch):
        faults = [self.space.fault(p) for p in batch]
        return [(p, fault.to_json(), result) for p, fault, result
                in zip(batch, faults, self._engine.evaluate(faults))]


def run_campaign(model_path, *, fault_model="bitflip", target="output", bits=1,
                 positions=None, layers=None, confidence=0.95, margin=0.01, faults=None,
                 seed=0, db_path, images=None, workers=1, scheduler=None, chunk=128,
                 progress=None, level="model", data_dir=None, dataset=None):
    """Run (or resume) a model-level campaign and return its summary.

    Parameters
    ----------
    model_path : str
        Checkpoint written by ``neuroharden train`` (or a hardened network file).
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
        Faults per evaluation batch (and per database commit).
    progress : bool, optional
        tqdm bar; by default only on a terminal.
    data_dir : str, optional
        Dataset directory (default: the one used for training).
    dataset : str, optional
        Image source (:func:`golden.checkpoint.quantize_checkpoint`: an imported
        ``.onnx`` / ``QNET.npz`` network reads ``digits`` unless told); part of the
        campaign's identity when given or when the network is imported.

    Returns
    -------
    dict
        :func:`run`'s summary plus ``fault_model``, ``target`` and ``level``.

    Raises
    ------
    ValueError
        Bad checkpoint, fault space, sample size or database, or a ``level`` other than
        ``"model"`` (RTL campaigns are ``sim.rtl_campaign.run_rtl_campaign``).
    """
    if level != "model":
        raise ValueError(f"run_campaign runs model-level campaigns, not level {level!r}; "
                         f"RTL campaigns run through `neuroharden campaign --level rtl` "
                         f"(sim.rtl_campaign.run_rtl_campaign)")
    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such checkpoint")
    executor = make_executor(workers=workers, scheduler=scheduler)
    model_sha = file_sha256(model_path)
    net, _, _, data = quantize_checkpoint(model_path, data_dir, dataset)
    x_all, y_all = data.x_test, data.y_test
    if images is not None:
        if images < 1:
            raise ValueError(f"images must be at least 1, got {images}")
        x_all, y_all = x_all[:images], y_all[:images]
    x = net.quantize_input(x_all)
    space = FaultSpace(net, fault_model, target, bits, layers=layers, seed=seed,
                       positions=positions)
    n = faults if faults is not None else leveugle_sample_size(len(space), confidence,
                                                                 margin)
    described = space.describe()
    definition = CampaignDefinition(
        level=level, faults=n, seed=seed, images=len(x), population=len(space),
        fields={"model_sha256": model_sha, "fault_model": fault_model, "target": target,
                "bits": described["bits"], "positions": described["positions"],
                "layers": list(described["layers"]),
                **dataset_field(model_path, dataset, data)})
    summary = run(definition, ModelEvaluator(net, x, y_all, space), db_path=db_path,
                  executor=executor, chunk=chunk, progress=progress)
    summary.update({"fault_model": fault_model, "target": target, "level": level})
    return summary

"""Executors: in-process and on Dask workers, the same rows; one preparation per process."""

import json
import os

import pytest

from neuroharden.golden.evaluator import Evaluator
from neuroharden.golden.executor import DaskExecutor, InProcess, make_executor


class Traced(Evaluator):
    """Rows that say which process evaluated them, how often it prepared and how many
    batches the same object evaluated."""

    def __init__(self):
        self.prepared = self.calls = 0

    def fault_free_correct(self):
        return 0

    def prepare(self):
        self.prepared += 1

    def evaluate(self, batch):
        assert self.prepared, "evaluate before prepare"
        self.calls += 1
        trace = json.dumps({"pid": os.getpid(), "prepared": self.prepared,
                            "calls": self.calls})
        return [(p, trace, {"square": p * p}) for p in batch]


BATCHES = [[5, 1], [7], [2, 9, 4], [3], [8, 6], [0]]


def _untraced(results):
    return sorted((tuple(batch), [(p, r) for p, _, r in rows]) for batch, rows in results)


def test_make_executor_chooses_from_the_options():
    assert isinstance(make_executor(), InProcess)
    local = make_executor(workers=3)
    assert isinstance(local, DaskExecutor) and local.workers == 3
    remote = make_executor(workers=3, scheduler="tcp://127.0.0.1:8786")
    assert remote.scheduler == "tcp://127.0.0.1:8786" and remote.workers is None
    for workers in (0, -2, 1.5):
        with pytest.raises(ValueError, match="Worker count must be a positive integer"):
            make_executor(workers=workers)
    with pytest.raises(ValueError, match="either a worker count or a scheduler"):
        DaskExecutor()


def test_in_process_prepares_once_and_keeps_the_order():
    evaluator = Traced()
    with InProcess() as executor:
        results = list(executor.map(evaluator, "c", BATCHES))
    assert [batch for batch, _ in results] == BATCHES
    traces = [json.loads(trace) for _, rows in results for _, trace, _ in rows]
    assert {(t["pid"], t["prepared"]) for t in traces} == {(os.getpid(), 1)}
    assert evaluator.calls == len(BATCHES)
    assert [r["square"] for _, rows in results for _, _, r in rows] == \
        [p * p for batch in BATCHES for p in batch]


def test_dask_workers_give_the_in_process_rows_preparing_once_each():
    with InProcess() as executor:
        local = list(executor.map(Traced(), "c", BATCHES))
    evaluator = Traced()
    with DaskExecutor(workers=2) as executor:
        remote = list(executor.map(evaluator, "c", BATCHES))
    assert _untraced(remote) == _untraced(local)
    traces = [json.loads(trace) for _, rows in remote for _, trace, _ in rows]
    # Each worker prepared one object once and kept it for its next batches.
    assert {t["prepared"] for t in traces} == {1}
    assert max(t["calls"] for t in traces) > 1
    assert os.getpid() not in {t["pid"] for t in traces}
    assert evaluator.prepared == 0  # the client only ships it
    with pytest.raises(RuntimeError, match="inside its `with` block"):
        executor.map(evaluator, "c", BATCHES)

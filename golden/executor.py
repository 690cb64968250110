"""Where a campaign's batches of faults are evaluated: in this process or on Dask workers.

An executor runs an evaluator (:class:`golden.evaluator.Evaluator`) over batches and
yields each batch's rows as it completes; it never touches the results database, so the
process that runs the campaign (:func:`golden.campaign.run`) is its only writer.

* :class:`InProcess` prepares the evaluator once and evaluates the batches in order.
* :class:`DaskExecutor` starts a local cluster of ``workers`` single-threaded worker
  processes, or connects to a running scheduler; the evaluator is scattered to every
  worker once, each worker prepares it once per campaign (:func:`_evaluate_on_worker`)
  and the batches are tasks, collected as they complete.

:func:`make_executor` chooses between them from the ``--workers`` / ``--scheduler``
options every campaign command takes.
"""

import abc
import threading

__all__ = ["Executor", "InProcess", "DaskExecutor", "make_executor"]


class Executor(abc.ABC):
    """Evaluates batches of faults; a context manager holding its resources.

    Use ``with executor: for batch, rows in executor.map(evaluator, key, batches): ...``.
    """

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return None

    @abc.abstractmethod
    def map(self, evaluator, key, batches):
        """Evaluate every batch; an iterator of ``(batch, rows)`` as batches complete.

        Parameters
        ----------
        evaluator : golden.evaluator.Evaluator
        key : str
            Identity of the campaign (its id): a process prepares an evaluator once
            per key.
        batches : list
            Batches of :meth:`golden.evaluator.Evaluator.batches`.

        Returns
        -------
        iterator of (batch, list)
            Each batch with :meth:`golden.evaluator.Evaluator.evaluate`'s rows, in
            completion order. Setting up (preparing, submitting) happens in this call,
            the evaluation as the iterator is consumed.
        """


class InProcess(Executor):
    """Evaluate in this process, batch after batch."""

    def map(self, evaluator, key, batches):
        evaluator.prepare()
        return ((batch, evaluator.evaluate(batch)) for batch in batches)


class DaskExecutor(Executor):
    """Evaluate on Dask workers: a local cluster, or a running scheduler.

    Parameters
    ----------
    workers : int, optional
        Worker processes of a local cluster (one thread each).
    scheduler : str, optional
        Address of a running Dask scheduler (then ``workers`` must be omitted).
    """

    def __init__(self, *, workers=None, scheduler=None):
        if (workers is None) == (scheduler is None):
            raise ValueError("A Dask executor needs either a worker count or a scheduler "
                             "address")
        if workers is not None and not (isinstance(workers, int) and workers >= 1):
            raise ValueError(f"Worker count must be a positive integer, not {workers!r}")
        self.workers, self.scheduler = workers, scheduler
        self._cluster = self._client = None

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.scheduler is None:
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        else:
            self._client = Client(self.scheduler)
        return self

    def __exit__(self, *exc_info):
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._cluster = self._client = None

    def map(self, evaluator, key, batches):
        from distributed import as_completed

        if self._client is None:
            raise RuntimeError("A Dask executor maps inside its `with` block")
        [remote] = self._client.scatter([evaluator], broadcast=True)
        futures = {self._client.submit(_evaluate_on_worker, key, remote, batch,
                                       pure=False): batch for batch in batches}
        return ((futures[future], future.result()) for future in as_completed(futures))


_PREPARED = {}
_PREPARING = threading.Lock()


def _evaluate_on_worker(key, evaluator, batch):
    """Dask task: one batch, with the evaluator prepared once per worker and campaign."""
    import torch

    # Workers run one single-threaded task at a time; more torch threads per worker
    # would only oversubscribe the cores the other workers use.
    torch.set_num_threads(1)
    with _PREPARING:
        prepared = _PREPARED.get(key)
        if prepared is None:
            _PREPARED.clear()
            evaluator.prepare()
            prepared = _PREPARED[key] = evaluator
    return prepared.evaluate(batch)


def make_executor(*, workers=1, scheduler=None):
    """The executor of a campaign's ``workers`` and ``scheduler`` options.

    Parameters
    ----------
    workers : int
        ``1`` evaluates in-process; more starts a Dask ``LocalCluster`` of that many
        workers.
    scheduler : str, optional
        Address of a running Dask scheduler (overrides ``workers``).

    Returns
    -------
    Executor
    """
    if not (isinstance(workers, int) and workers >= 1):
        raise ValueError(f"Worker count must be a positive integer, not {workers!r}")
    if scheduler is not None:
        return DaskExecutor(scheduler=scheduler)
    return InProcess() if workers == 1 else DaskExecutor(workers=workers)

"""The evaluator interface: how a campaign turns its faults into result rows.

:func:`golden.campaign.run` runs every campaign with one: the model-level campaign
(:class:`golden.campaign.ModelEvaluator`), the RTL campaigns
(``sim.rtl_campaign.RTLEvaluator``) and the stuck-at weight experiment
(``sim.app.experiments.sa_fi.StuckAtEvaluator``). Faults are named by their index in the
campaign's fault population. An evaluator is built where the campaign runs, from light,
picklable inputs, since an executor (:mod:`golden.executor`) may send it to Dask
workers; :meth:`Evaluator.prepare` builds its heavy state once in each process that
evaluates.

This module imports only the standard library, so that modules defining an evaluator
stay light to import.
"""

import abc

__all__ = ["Evaluator"]


class Evaluator(abc.ABC):
    """How a campaign evaluates its faults (see the module docstring)."""

    @abc.abstractmethod
    def fault_free_correct(self):
        """Test images the fault-free network classifies correctly."""

    def batches(self, faults, chunk):
        """Pack population indices into batches of at most ``chunk`` faults.

        A batch is what :meth:`evaluate` takes, one task of an executor and one database
        commit; by default consecutive slices of ``faults``.
        """
        return [faults[a:a + chunk] for a in range(0, len(faults), chunk)]

    def prepare(self):
        """Build what :meth:`evaluate` needs, once per process (by default nothing)."""

    @abc.abstractmethod
    def evaluate(self, batch):
        """Evaluate a batch: ``(population_index, fault_json, result)`` per fault.

        ``result`` has :func:`golden.outcomes.classify`'s keys.
        """

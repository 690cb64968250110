"""The evaluator interface's defaults."""

import pytest

from neuroharden.golden.evaluator import Evaluator


class Echo(Evaluator):
    def fault_free_correct(self):
        return 1

    def evaluate(self, batch):
        return [(p, "{}", {}) for p in batch]


def test_default_batches_are_consecutive_slices_of_at_most_chunk():
    faults = [9, 4, 7, 1, 0, 3, 8]
    assert Echo().batches(faults, 3) == [[9, 4, 7], [1, 0, 3], [8]]
    assert Echo().batches(faults, 7) == [faults]
    assert Echo().batches([], 5) == []


def test_an_evaluator_must_evaluate_and_count_the_fault_free_run():
    class Incomplete(Evaluator):
        def fault_free_correct(self):
            return 1

    with pytest.raises(TypeError, match="evaluate"):
        Incomplete()
    echo = Echo()
    assert echo.prepare() is None and echo.evaluate([2]) == [(2, "{}", {})]

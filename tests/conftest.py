"""Test ordering shared by the whole suite."""

#: Assumed duration of a ``slow`` test that states none (its ``seconds`` keyword).
SLOW_SECONDS = 30


def pytest_collection_modifyitems(items):
    """Run the longest tests first.

    ``make test`` runs on two xdist workers, which take tests in collection order. A test
    of several minutes collected last (the accelerator synthesis in tests/synth) would
    leave one worker running it alone at the end; started first, it overlaps the rest of
    the suite on the other worker (longest-processing-time-first scheduling). A ``slow``
    test may state its duration on these cores, ``@pytest.mark.slow(seconds=360)``.
    """
    def expected_seconds(item):
        marker = item.get_closest_marker("slow")
        return 0 if marker is None else marker.kwargs.get("seconds", SLOW_SECONDS)

    items.sort(key=expected_seconds, reverse=True)

"""Shared fixtures of the synth tests: real Yosys runs of small blocks, cached per session."""

import pytest

from neuroharden.synth.cache import Cache


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    """One result cache for the whole session, so each small block is synthesized once."""
    return Cache(tmp_path_factory.mktemp("synth-cache"))


@pytest.fixture(scope="session")
def area_json_keys():
    """Keys every row of ``neuroharden area --json`` carries."""
    return ("design", "target", "cells", "luts", "ffs", "dsps", "fmax_mhz", "overhead_pct",
            "reference")

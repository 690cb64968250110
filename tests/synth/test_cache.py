"""The JSON result cache: keys, atomic writes, disabled caching."""

import pytest

from neuroharden.synth.cache import Cache, key_of


def test_key_depends_on_every_part_and_its_boundaries():
    assert key_of("a", "b") == key_of("a", "b")
    assert key_of("a", "b") != key_of("ab", "")
    assert key_of("v", {"x": 1}) != key_of("v", {"x": 2})


def test_put_get_roundtrip_and_counts(tmp_path):
    cache = Cache(tmp_path / "c")
    assert cache.get("k") is None
    cache.put("k", {"cells": 3})
    assert cache.get("k") == {"cells": 3}
    assert (cache.hits, cache.misses) == (1, 1)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["k.json"]


def test_corrupt_entry_is_a_miss(tmp_path):
    (tmp_path / "k.json").write_text("{not json")
    assert Cache(tmp_path).get("k") is None


def test_interrupted_write_leaves_no_entry(tmp_path):
    class Boom:
        pass
    cache = Cache(tmp_path)
    with pytest.raises(TypeError):
        cache.put("k", {"x": Boom()})      # json.dump fails half-way
    assert list(tmp_path.iterdir()) == []


def test_disabled_cache_stores_nothing():
    cache = Cache(None)
    cache.put("k", 1)
    assert cache.get("k") is None and cache.misses == 1

"""Growth exponent fit and the sweep's outputs."""

import csv
import json

import pytest

from neuroharden.synth import area
from neuroharden.synth.sweep import growth_exponent, sweep, write_outputs


def test_growth_exponent_of_an_exact_power_law():
    pes = [4, 16, 64, 256]
    assert growth_exponent(pes, [10 * n ** 1.1 for n in pes]) == pytest.approx(1.1)
    assert growth_exponent(pes, [5 * n for n in pes]) == pytest.approx(1.0)


def test_growth_exponent_skips_missing_points():
    assert growth_exponent([4, 16, 64], [8, None, 128]) == pytest.approx(1.0)
    assert growth_exponent([4, 16], [8, None]) is None


def _row(design, target, pes, **values):
    row = dict.fromkeys(area.FIELDS)
    row.update(design=design, target=target, pes=pes, status="placed",
               metric=area.primary_metric(target), **values)
    return row


def test_write_outputs(tmp_path):
    rows = [_row("array", "ice40", n, luts=370 * n, cells=450 * n, fmax_mhz=70.0 - n)
            for n in (4, 16)]
    rows += [_row("array", "generic", n, cells=960 * n) for n in (4, 16)]
    paths, fitted = write_outputs(rows, tmp_path / "out")
    assert [p.name for p in paths] == ["sweep.csv", "sweep.json", "sweep.png"]
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with paths[0].open() as file:
        assert len(list(csv.DictReader(file))) == 4
    data = json.loads(paths[1].read_text())
    exponents = {(f["design"], f["target"]): f["exponent"] for f in data["fits"]}
    assert exponents[("array", "ice40")] == pytest.approx(1.0)
    assert not list((tmp_path / "out").glob(".*"))


def test_small_real_sweep(session_cache):
    rows = sweep([1, 2], ["generic"], ["array", "tmr-array"], cache=session_cache)
    assert [(r["design"], r["pes"]) for r in rows] == [
        ("array", 1), ("tmr-array", 1), ("array", 4), ("tmr-array", 4)]
    tmr = [r for r in rows if r["design"] == "tmr-array"]
    assert all(r["overhead_pct"] > 150 for r in tmr)    # three copies plus voters

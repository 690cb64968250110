"""Overhead arithmetic, fit checks and the measurement of designs."""

import json

import pytest
from click.testing import CliRunner

from neuroharden.sim.app.cli import main
from neuroharden.synth import area
from neuroharden.synth.area import (_fit_check, add_overheads, format_table, largest_fitting,
                                    measure, overhead, report, share)
from neuroharden.synth.cache import Cache
from neuroharden.synth.designs import expand
from neuroharden.synth.targets import TARGETS


def _row(design, target="generic", **values):
    row = dict.fromkeys(area.FIELDS)
    row.update(design=design, target=target, status="synthesized",
               metric=area.primary_metric(target), **values)
    return row


def test_overhead_and_share():
    assert overhead(150, 100) == pytest.approx(50.0)
    assert overhead(80.0, 100.0) == pytest.approx(-20.0)
    assert overhead(None, 100) is None and overhead(5, 0) is None
    assert share(7, 986) == pytest.approx(100 * 7 / 986)
    assert share(1, None) is None


def test_add_overheads_per_kind_of_protection():
    rows = add_overheads([
        _row("pe", cells=1000, fmax_mhz=None), _row("array", cells=4000),
        _row("lcu", cells=10), _row("voter", cells=50),
        _row("tmr-pe", cells=3300), _row("tmr-array", cells=12500)])
    by = {row["design"]: row for row in rows}
    assert by["pe"]["overhead_pct"] is None and by["pe"]["reference"] is None
    assert by["lcu"]["reference"] == "pe"
    assert by["lcu"]["overhead_pct"] == pytest.approx(1.0)          # 10 / 1000
    assert by["lcu"]["overhead_array_pct"] == pytest.approx(0.25)   # 10 / 4000
    assert by["voter"]["overhead_pct"] == pytest.approx(5.0)
    assert by["tmr-pe"]["overhead_pct"] == pytest.approx(230.0)     # (3300-1000)/1000
    assert by["tmr-array"]["reference"] == "array"
    assert by["tmr-array"]["overhead_pct"] == pytest.approx(212.5)
    assert by["tmr-array"]["overhead_array_pct"] is None
    table = format_table(rows)
    assert "1.0% of a pe" in table and "+230.0% vs pe" in table


def test_fpga_overhead_uses_luts_and_fmax_change():
    rows = add_overheads([_row("pe", "ice40", luts=400, cells=500, fmax_mhz=70.0),
                          _row("tmr-pe", "ice40", luts=1300, cells=1500, fmax_mhz=63.0)])
    assert rows[1]["metric"] == "luts"
    assert rows[1]["overhead_pct"] == pytest.approx(225.0)
    assert rows[1]["overheads"]["fmax_mhz"] == pytest.approx(-10.0)


def test_expand_adds_references_in_order():
    assert expand(["tmr-array"]) == ["array", "tmr-array"]
    assert expand(["lcu"]) == ["pe", "array", "lcu"]
    assert expand(["accel-tmr"]) == ["accel", "accel-tmr"]
    assert expand(["accel-tmr", "accel-lcu", "pe"]) == ["pe", "accel", "accel-lcu",
                                                        "accel-tmr"]
    with pytest.raises(ValueError, match="unknown design"):
        expand(["bogus"])


def test_fit_check_reports_utilisation_and_io_limit():
    counts = {"luts": 9000, "ffs": 100, "dsps": 0, "port_bits": 100}
    text, fits, io_fits = _fit_check(TARGETS["ice40"], counts)
    assert not fits and io_fits and "lcs 9000/7680" in text
    counts = {"luts": 100, "ffs": 100, "dsps": 200, "port_bits": 400}
    text, fits, io_fits = _fit_check(TARGETS["ecp5"], counts)
    assert not fits and not io_fits and "dsps 200/156" in text


def test_protected_accelerators_are_measured_against_the_unprotected_one():
    rows = add_overheads([
        _row("array", cells=4000), _row("accel", cells=10000, brams=None),
        _row("accel-lcu", cells=10300), _row("accel-tmr", cells=10800)])
    by = {row["design"]: row for row in rows}
    assert by["accel"]["reference"] is None and by["accel"]["overhead_pct"] is None
    assert by["accel-lcu"]["reference"] == "accel"
    assert by["accel-lcu"]["overhead_pct"] == pytest.approx(3.0)    # (10300-10000)/10000
    assert by["accel-tmr"]["overhead_pct"] == pytest.approx(8.0)
    assert by["accel-tmr"]["overhead_array_pct"] is None


def test_accelerator_too_narrow_for_its_protection_is_reported_not_faked(tmp_path):
    row = measure("accel-tmr", "ice40", rows=2, cols=2, cache=Cache(tmp_path))
    assert row["status"] == "not available" and "at least 3" in row["note"]
    assert row["cells"] is None and row["fmax_mhz"] is None
    assert not list(tmp_path.iterdir())   # nothing was synthesized


@pytest.mark.slow(seconds=240)
def test_accelerator_rows_and_their_overheads(session_cache, area_json_keys):
    # 16-bit accumulators synthesize 5x faster than the contract's 32 (the requantizers'
    # multipliers dominate); this one test also checks the JSON of `neuroharden area` on
    # them, which reads the same results from the cache.
    rows = report(["accel-lcu", "accel-tmr"], ["generic"], rows=2, cols=3, k_depth=4,
                  acc_width=16, cache=session_cache)
    assert [row["design"] for row in rows] == ["accel", "accel-lcu", "accel-tmr"]
    by = {row["design"]: row for row in rows}
    for row in rows:
        assert row["status"] == "synthesized"
        assert (row["rows"], row["cols"], row["k_depth"], row["acc_width"]) == (2, 3, 4, 16)
    base = by["accel"]
    for name in ("accel-lcu", "accel-tmr"):
        row = by[name]
        assert row["reference"] == "accel"
        assert row["ffs"] > base["ffs"]   # the loaded protection-group registers
        assert row["overhead_pct"] == pytest.approx(
            100 * (row["cells"] - base["cells"]) / base["cells"])
    # Three 8-bit voters outweigh ABC's restructuring of the rest of the design; three
    # LCUs (an AND and a bit clear each) with their halves-differ flags stay within
    # +-2 % at 2x3.
    assert by["accel-tmr"]["cells"] > base["cells"]
    assert by["accel-tmr"]["transistors"] > base["transistors"]
    assert abs(by["accel-lcu"]["overhead_pct"]) < 2
    assert "accel-tmr" in format_table(rows) and "2x3 K4 A16" in format_table(rows)

    entries = sorted(session_cache.directory.iterdir())
    result = CliRunner().invoke(main, [
        "area", "--rows", "2", "--cols", "3", "--k-depth", "4", "--acc-width", "16", "--designs",
        "accel-lcu,accel-tmr", "--target", "generic", "--json", "--cache-dir",
        str(session_cache.directory)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert [row["design"] for row in printed] == ["accel", "accel-lcu", "accel-tmr"]
    for row in printed:
        for key in (*area_json_keys, "k_depth", "acc_width", "brams"):
            assert key in row
        assert row["k_depth"] == 4 and row["cells"] == by[row["design"]]["cells"]
    assert printed[0]["overhead_pct"] is None
    # Same Verilog and scripts: the command found every result and synthesized nothing.
    assert sorted(session_cache.directory.iterdir()) == entries


def test_combinational_block_has_no_fmax(session_cache):
    row = measure("lcu", "ice40", cache=session_cache)
    assert row["status"] == "combinational" and row["fmax_mhz"] is None
    assert row["luts"] > 0


def test_design_too_big_for_the_device_does_not_fit(session_cache, monkeypatch):
    small = dict(TARGETS["ice40"].capacity, luts=10, ffs=10)
    monkeypatch.setitem(TARGETS, "ice40", type(TARGETS["ice40"])(
        **{**TARGETS["ice40"].__dict__, "capacity": small}))
    row = measure("pe", "ice40", cache=session_cache)
    assert row["status"] == "does not fit" and "/10 (" in row["note"]
    assert row["fmax_mhz"] is None and row["luts"] > 10


def test_cache_hits_on_a_second_call_and_misses_on_a_changed_design(tmp_path,
                                                                    monkeypatch):
    cache = Cache(tmp_path / "cache")
    first = measure("voter", "generic", cache=cache)
    assert (cache.hits, cache.misses) == (0, 1)
    second = measure("voter", "generic", cache=cache)
    assert (cache.hits, cache.misses) == (1, 1)
    assert second == first
    original = area.generate
    monkeypatch.setattr(area, "generate",
                        lambda *a, **k: original(*a, **k) + "\n// changed\n")
    measure("voter", "generic", cache=cache)
    assert (cache.hits, cache.misses) == (1, 2)
    assert not list((tmp_path / "cache").glob(".*.tmp"))   # no half-written entries


def test_scopeinfo_annotations_are_not_counted_as_cells(tmp_path, monkeypatch):
    counts = {"cells": 110, "transistors": 500, "luts": None, "carry": None, "ffs": 8,
              "dsps": None, "port_bits": 20, "by_type": {"$_AND_": 102, "$scopeinfo": 8}}
    monkeypatch.setattr(area.yosys, "synthesize", lambda *a, **k: dict(counts))
    row = measure("tmr-pe", "generic", cache=Cache(tmp_path))
    assert row["cells"] == 102 and row["transistors"] == 500


@pytest.mark.slow(seconds=40)
def test_largest_array_that_fits_stops_at_the_first_that_does_not(session_cache):
    """An N x N array needs N*N multipliers: the UP5K's eight DSPs take 2x2, not 3x3."""
    result = largest_fitting("array", "up5k", [2, 3, 4], cache=session_cache)
    assert result["largest"] == 2 and result["device"] == "iCE40 UP5K sg48"
    assert [(row["rows"], row["fits"]) for row in result["rows"]] == [(2, True), (3, False)]
    assert [row["dsps"] for row in result["rows"]] == [4, 9]
    printed = CliRunner().invoke(main, ["area", "--largest", "--target", "up5k", "--designs",
                                        "array", "--sizes", "2,3,4", "--json", "--cache-dir",
                                        str(session_cache.directory)])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output)[0]["largest"] == 2
    refused = CliRunner().invoke(main, ["area", "--largest", "--designs", "pe", "--target",
                                        "up5k"])
    assert refused.exit_code == 2 and "sized design" in refused.output

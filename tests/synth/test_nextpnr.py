"""Place and route: nextpnr's report parsing and one small real run (PE on iCE40)."""

import json

from neuroharden.synth.area import measure
from neuroharden.synth.nextpnr import parse_report


def test_parse_report_takes_the_slowest_clock_and_used_resources():
    text = json.dumps({"fmax": {"a": {"achieved": 120.5, "constraint": 200},
                                "b": {"achieved": 80.25, "constraint": 200}},
                       "utilization": {"SB_IO": {"used": 3, "available": 206},
                                       "SB_GB": {"used": 0, "available": 8}}})
    report = parse_report(text)
    assert report["fmax_mhz"] == 80.25
    assert report["utilization"] == {"SB_IO": (3, 206)}


def test_parse_report_without_clock():
    assert parse_report(json.dumps({"utilization": {}}))["fmax_mhz"] is None


def test_pe_on_ice40_has_a_positive_fmax(session_cache):
    row = measure("pe", "ice40", cache=session_cache)
    assert row["status"] == "placed", row["note"]
    assert isinstance(row["fmax_mhz"], float) and row["fmax_mhz"] > 0
    assert row["luts"] > 0 and row["ffs"] == 48

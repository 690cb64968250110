"""Formal proofs of the protection units: each property proved, wrong ones refuted."""

import json

import pytest
from click.testing import CliRunner

from neuroharden.sim.app.cli import main
from neuroharden.synth.prove import PROPERTIES, SANITY, run_property

KEYS = {"property", "status", "method", "depth", "seconds", "counterexample"}


@pytest.mark.parametrize("name", list(PROPERTIES))
def test_property_is_proved(name):
    result = run_property(PROPERTIES[name])
    assert result["status"] == "proved", result
    assert result["counterexample"] is None
    assert result["depth"] is None          # every default property is unbounded


def test_lcu_widths_cover_every_width():
    result = run_property(PROPERTIES["lcu-widths"])
    assert result["cases"] == [f"width={w}" for w in range(2, 17)]


def test_fault_masking_covers_each_replica():
    result = run_property(PROPERTIES["tmr-pe-fault-masking"])
    assert result["cases"] == [f"faulty replicas=[{r}]" for r in range(3)]
    assert result["induction_length"] == 1     # the strengthened invariant is 1-inductive


def test_lcu_beyond_range_fails_with_counterexample():
    result = run_property(SANITY["sanity-lcu-127"])
    assert result["status"] == "failed"
    inputs = result["counterexample"]["inputs"]
    v, f = inputs["v"], inputs["f"]
    a, b = (v | f, v) if inputs["swap"] else (v, v | f)
    # The counterexample is real: the LCU's golden function misses v on it.
    from neuroharden.golden.numerics import lcu
    assert lcu(a, b) != v
    assert v >= 64


def test_voter_two_faults_fails_with_counterexample():
    result = run_property(SANITY["sanity-voter-two-faults"])
    assert result["status"] == "failed"
    inputs = result["counterexample"]["inputs"]
    from neuroharden.golden.numerics import vote_bitwise
    copies = [inputs["v"] if i == (0 if inputs["pos"] == 3 else inputs["pos"])
              else (inputs["e"] if i % 2 else inputs["e2"]) for i in range(3)]
    assert vote_bitwise(*copies) != inputs["v"]


def test_tmr_two_faulty_replicas_fails_with_trace():
    result = run_property(SANITY["sanity-tmr-two-replicas"])
    assert result["status"] == "failed"
    trace = result["counterexample"]["trace"]
    assert trace and any(step["inputs"]["fault_en"] for step in trace)
    assert {"a_in", "w_in", "clear", "drain", "acc_in"} <= set(trace[0]["inputs"])
    # The trace shows the corrupted replicas' registers leaving the bare PE's values.
    last = trace[-1]["registers"]
    assert any(last[f"tmr.replica_{r}.{reg}"] != last[f"ref.{reg}"]
               for r in (0, 1) for reg in ("acc", "a_reg", "w_reg")
               if f"tmr.replica_{r}.{reg}" in last and f"ref.{reg}" in last)


def test_cli_json_keys():
    result = CliRunner().invoke(main, ["prove", "--json", "--property", "lcu",
                                       "--property", "voter-bitwise"])
    assert result.exit_code == 0, result.output
    reports = json.loads(result.output)
    assert [r["property"] for r in reports] == ["lcu", "voter-bitwise"]
    for report in reports:
        assert KEYS <= set(report)
        assert report["status"] == "proved"


def test_cli_failed_property_exits_1_with_counterexample():
    result = CliRunner().invoke(main, ["prove", "--property", "sanity-lcu-127"])
    assert result.exit_code == 1
    assert result.output.startswith("failed")
    assert "counterexample" in result.output and "v=" in result.output


def test_cli_unknown_property_is_one_line_exit_2():
    result = CliRunner().invoke(main, ["prove", "--property", "nope"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0]

import csv

import pytest
from click.testing import CliRunner

from neuroharden.golden.experiments.rank_compare import _gaps
from neuroharden.sim.app.cli import main


def test_gap_to_exact_is_per_model_and_fraction():
    rows = [{"model": "m", "method": "exact", "fraction_pct": 5, "critical_pct": 2.0},
            {"model": "m", "method": "nvf", "fraction_pct": 5, "critical_pct": 3.5},
            {"model": "m", "method": "nvf", "fraction_pct": 1, "critical_pct": 3.0},
            {"model": "m", "method": "none", "fraction_pct": 0, "critical_pct": 9.0}]
    for r in rows:
        r["gap_to_exact_pts"] = None
    _gaps(rows)
    assert [r["gap_to_exact_pts"] for r in rows] == [None, 1.5, None, None]


@pytest.mark.slow
def test_rank_compare_small_on_lenet5(cache, tmp_path):
    out = tmp_path / "rc"
    result = CliRunner().invoke(main, [
        "experiment", "rank-compare", "--models", "lenet5", "--methods", "activation,random",
        "--images", "3", "--fractions", "1", "--max-faults", "6", "--test-images", "20",
        "--cache", str(cache("lenet5")), "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out / "rank_compare.csv")))
    assert [(r["method"], r["fraction_pct"]) for r in rows] == [
        ("none", "0"), ("activation", "1.0"), ("random", "1.0")]
    for r in rows[1:]:
        protected = int(r["protected_neurons"])
        assert protected >= 47 and int(r["hidden_neurons"]) == 4684 + protected
        drop = float(rows[0]["critical_pct"]) - float(r["critical_pct"])
        assert float(r["drop_pts"]) == pytest.approx(drop, abs=1e-3)
        if float(r["accuracy_loss_pts"]) > 0:
            factor = float(rows[0]["accuracy_loss_pts"]) / float(r["accuracy_loss_pts"])
            assert float(r["loss_factor"]) == pytest.approx(factor, rel=1e-2, abs=1e-3)
    assert "wrote" in result.output and (out / "rank_compare.png").exists()

"""Network-level cost of LCU and selective TMR (synth/cost.py)."""

from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from neuroharden.hw.contract import tile_cycles
from neuroharden.synth.cli import cost
from neuroharden.synth.cost import (METRICS, array_cycles, correction_area, format_report,
                                    protection_cost)
from tests.golden.fi_nets import random_net


def _linear(outputs, inputs):
    return SimpleNamespace(weight=torch.zeros(outputs, inputs, dtype=torch.int64),
                           neurons=outputs)


def test_array_cycles_count_tiles_per_batch():
    net = SimpleNamespace(layers=[_linear(5, 10)])
    # batch 4 fills one block of rows; 5 channels need two chunks of 4 columns.
    assert array_cycles(net, rows=4, cols=4) == 2 * tile_cycles(4, 4, 10) / 4
    # one image per run still costs whole tiles
    assert array_cycles(net, rows=4, cols=4, batch=1) == 2 * tile_cycles(4, 4, 10)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        array_cycles(net, rows=0, cols=4)


def test_copies_of_a_neuron_are_never_split_across_tiles():
    # Four TMR triples on 4 columns: one triple per tile, not 12 / 4 = 3 tiles.
    protection = SimpleNamespace(lcu=torch.zeros(0, 2, dtype=torch.int64),
                                 tmr=torch.arange(12).reshape(4, 3))
    net = SimpleNamespace(layers=[_linear(12, 10)], protection=[protection])
    assert array_cycles(net, rows=4, cols=4, batch=4) == 4 * tile_cycles(4, 4, 10) / 4
    with pytest.raises(ValueError, match="fewer than the 3 copies"):
        array_cycles(net, rows=4, cols=2)


def _ranking(net):
    """Every hidden neuron scored by a fixed pseudo-random order."""
    gen = torch.Generator().manual_seed(1)
    entries = [(layer.name, k, float(torch.rand(1, generator=gen)) * 10)
               for layer in net.layers[:-1] for k in range(layer.neurons)]
    return sorted(entries, key=lambda e: -e[2])


def test_lcu_adds_one_copy_and_tmr_two():
    net, _ = random_net()
    report = protection_cost(net, _ranking(net), fraction=10, rows=4, cols=4, area=False)
    s, sel = report["schemes"], report["selection"]
    assert sel["protected_neurons"] > 0
    assert s["lcu"]["extra"]["neurons"] == sel["protected_neurons"]
    assert s["tmr"]["extra"]["neurons"] == 2 * sel["protected_neurons"]
    assert report["lcu_over_tmr"]["neurons"] == pytest.approx(0.5)
    for metric in METRICS:
        assert s["none"]["extra"][metric] == 0
        assert s["tmr"][metric] > s["none"][metric]
    assert "correction" not in s["lcu"]
    text = format_report(report)
    assert "top 10 % of the ranking" in text and "0.50" in text


def test_an_empty_selection_costs_nothing():
    net, _ = random_net()
    report = protection_cost(net, _ranking(net), threshold=1e9, rows=4, cols=4, area=False)
    assert report["selection"]["selected_neurons"] == 0
    assert all(report["schemes"]["lcu"]["extra"][m] == 0 for m in METRICS)
    assert all(v is None for v in report["lcu_over_tmr"].values())


def test_bad_arguments():
    net, _ = random_net()
    with pytest.raises(ValueError, match="exactly one"):
        protection_cost(net, _ranking(net), rows=4, cols=4, area=False)
    with pytest.raises(ValueError, match="at least 3"):
        protection_cost(net, _ranking(net), fraction=5, rows=4, cols=2, area=False)


@pytest.mark.slow
def test_correction_area_is_one_unit_per_column(session_cache):
    lcu = correction_area("lcu", rows=2, cols=3, cache=session_cache)
    voter = correction_area("tmr", rows=2, cols=3, cache=session_cache)
    assert lcu["status"] == voter["status"] == "measured"
    assert lcu["units"] == voter["units"] == 3
    assert lcu["area"] == 3 * lcu["unit_area"] and voter["unit"] == "voter"
    assert lcu["area"] < voter["area"]   # an LCU is a few gates, a voter a majority per bit
    assert lcu["area_pct"] == pytest.approx(100 * lcu["area"] / lcu["array_area"])


def test_cli_refuses_two_selections(tmp_path):
    result = CliRunner().invoke(cost, ["--model", str(tmp_path / "m.pt"),
                                       "--critical", str(tmp_path / "c.json"),
                                       "--threshold", "1", "--fraction", "2"])
    assert result.exit_code == 1   # a ClickException (the root group makes it 2)
    assert "exactly one of --threshold and --fraction" in result.output


def test_cli_reports_a_missing_model(tmp_path):
    result = CliRunner().invoke(cost, ["--model", str(tmp_path / "m.pt"),
                                       "--critical", str(tmp_path / "c.json"),
                                       "--fraction", "2", "--no-area"])
    assert result.exit_code == 1 and "m.pt" in result.output
    assert "Traceback" not in result.output

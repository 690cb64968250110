"""RTL campaigns on whole networks (sim.rtl_campaign): store, resume, agreement, hardening.

A tiny MLP (16 -> 6 -> 4) on 4 images keeps every layer one row block, so a campaign
is a handful of tiles, packed into simulator jobs of up to ``chunk`` faults.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from click.testing import CliRunner

from neuroharden.golden.campaign import ResultsDB
from neuroharden.golden.datasets import load_dataset
from neuroharden.golden.faults import Fault
from neuroharden.golden.harden import harden
from neuroharden.golden.injection import InjectionEngine
from neuroharden.golden.outcomes import DETECTION_CLASSES, classify
from neuroharden.hw.contract import ACT_BUF, K_LEN, STATE, WGT_BUF
from neuroharden.sim.app.cli import main
from neuroharden.sim.compiler import compile_network
from neuroharden.sim.rtl_campaign import (GoldenRun, NetworkFaultSpace, _jobs,
                                          run_network_campaign, run_rtl_campaign)
from neuroharden.sim.rtl_faults import RTLFault
from neuroharden.sim.rtl_runner import accelerator_design, run_faults
from tests.golden.onnx_nets import images, imported_net
from tests.sim.network_campaign import COLS, ROWS, campaign, tiny_net

SUMMARY_KEYS = {"faults", "completed", "masked", "tolerable", "critical_003", "critical",
                "accuracy_loss", "faults_per_second"}


def stored_rows(db, campaign_id):
    """The rows a database holds for a campaign."""
    stored = ResultsDB(db)
    try:
        return stored.results(campaign_id)
    finally:
        stored.close()


def test_fault_space_counts_every_layer_tile_site_bit_and_cycle():
    net, x, _ = tiny_net()
    golden = GoldenRun(net, compile_network(net, rows=ROWS, cols=COLS), x.numpy())
    program = golden.program
    _, catalogue = accelerator_design(program.accelerator, sim="icarus")
    space = NetworkFaultSpace(golden, catalogue, "bitflip", sites="array.pe_*.acc")
    bits = ROWS * COLS * 32
    # fc1: K=16, two column chunks; fc2: K=6, one chunk.
    assert len(space) == bits * (2 * (16 + 2 * ROWS + COLS + 2) + (6 + 2 * ROWS + COLS + 2))
    faults = {space.fault(k) for k in range(0, len(space), 997)}
    assert {(f.layer, f.tile) for f in faults} == {("fc1", 0), ("fc1", 1), ("fc2", 0)}
    stuck = NetworkFaultSpace(golden, catalogue, "stuck1", sites="array.pe_*.acc",
                              layers=["fc2"])
    assert len(stuck) == bits and stuck.fault(0).cycle is None
    with pytest.raises(ValueError, match="unknown layer"):
        NetworkFaultSpace(golden, catalogue, "stuck1", layers=["fc9"])
    with pytest.raises(ValueError, match="close matches"):
        NetworkFaultSpace(golden, catalogue, "stuck1", sites="array.pe_0_0.accu")


def test_jobs_pack_the_tiles_faults_up_to_chunk():
    net, x, _ = tiny_net(images=9)  # fc1: 3 row blocks x 2 column chunks
    golden = GoldenRun(net, compile_network(net, rows=ROWS, cols=COLS), x.numpy())
    _, catalogue = accelerator_design(golden.program.accelerator, sim="icarus")
    space = NetworkFaultSpace(golden, catalogue, "stuck0", sites="array.pe_*.acc")
    indices = np.random.default_rng(0).permutation(len(space))[:50]
    todo = [int(p) for k, p in enumerate(indices) if k % 7]
    names = [layer.name for layer in golden.program.layers]
    jobs = _jobs(space, todo, 8, names)
    sizes = [sum(len(ps) for _, _, ps in job) for job in jobs]
    assert sizes[:-1] == [8] * (len(jobs) - 1) and 1 <= sizes[-1] <= 8
    assert sum(sizes) == len(todo)
    flat = [(layer, tile, p) for job in jobs for layer, tile, ps in job for p in ps]
    assert sorted(p for _, _, p in flat) == sorted(todo)
    assert all((space.fault(p).layer, space.fault(p).tile) == (layer, tile)
               for layer, tile, p in flat)
    order = [(names.index(layer), tile) for layer, tile, _ in flat]
    assert order == sorted(order) and len({tile for _, tile in order}) > 3
    # Within a tile the faults keep the order given (the sample's draw order).
    assert all(ps == [p for p in todo if p in ps] for job in jobs for _, _, ps in job)
    # A job holds each of its tiles once.
    assert all(len({(layer, tile) for layer, tile, _ in job}) == len(job) for job in jobs)
    assert _jobs(space, todo, 1, names) == [[(layer, tile, [p])] for layer, tile, p in flat]


@pytest.mark.slow
def test_rows_do_not_depend_on_how_tiles_are_packed_into_jobs(tmp_path):
    net, x, labels = tiny_net()
    # Controller and buffer sites too: their faults leave state behind in a process.
    options = dict(fault_model="stuck1", sites=["array.pe_*.acc", K_LEN, STATE,
                                                f"{ACT_BUF}[*]", f"{WGT_BUF}[*]"],
                   faults=16, seed=4, sim="icarus")
    packed = campaign(net, x, labels, tmp_path / "packed.sqlite", **options)
    apart = campaign(net, x, labels, tmp_path / "apart.sqlite", chunk=5, **options)
    assert packed["completed"] == apart["completed"] == 16
    assert stored_rows(tmp_path / "packed.sqlite", packed["campaign"]) == \
        stored_rows(tmp_path / "apart.sqlite", packed["campaign"])
    assert 0 < packed["masked"] < 16


@pytest.mark.slow
def test_campaign_stores_rows_with_the_model_level_keys(tmp_path):
    net, x, labels = tiny_net()
    db = tmp_path / "results.sqlite"
    summary = campaign(net, x, labels, db, fault_model="stuck1", sites="array.pe_*",
                       faults=12, seed=3, sim="icarus")
    assert SUMMARY_KEYS <= set(summary)
    assert summary["completed"] == summary["faults"] == 12 == summary["evaluated_now"]
    assert summary["masked"] + summary["tolerable"] + summary["critical_003"] == 12
    assert summary["fault_free_accuracy"] == 0.75 and summary["level"] == "rtl"
    stored = ResultsDB(db)
    rows = stored.results(summary["campaign"])
    stored.close()
    assert [r["fault_index"] for r in rows] == list(range(12))
    assert all(RTLFault.from_json(r["fault"]).model == "stuck1" for r in rows)
    again = campaign(net, x, labels, db, fault_model="stuck1", sites="array.pe_*",
                     faults=12, seed=3, sim="icarus")
    assert again["evaluated_now"] == 0 and again["completed"] == 12
    assert summary["faults_per_second"] > 0
    assert again["faults_per_second"] == pytest.approx(summary["faults_per_second"])
    assert {k: again[k] for k in ("masked", "tolerable", "critical_003", "critical")} == \
        {k: summary[k] for k in ("masked", "tolerable", "critical_003", "critical")}


RESUMABLE = textwrap.dedent("""
    import sys
    from tests.sim.network_campaign import campaign, tiny_net
    net, x, labels = tiny_net()
    campaign(net, x, labels, sys.argv[1], fault_model="bitflip", sites="array.pe_*",
             faults=10, seed=7, sim="icarus", chunk=1)
""")


@pytest.mark.slow
def test_killed_campaign_resumes_without_loss_or_duplicates(tmp_path):
    db = tmp_path / "results.sqlite"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = subprocess.Popen([sys.executable, "-c", RESUMABLE, str(db)], cwd=root,
                               env={**os.environ, "PYTHONPATH": root},
                               start_new_session=True)
    stored = 0
    deadline = time.monotonic() + 300
    try:
        while stored < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            if db.exists():
                try:
                    with sqlite3.connect(db) as conn:
                        stored = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:
                    stored = 0
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the campaign and its simulator
        process.wait()
    assert 2 <= stored < 10, stored
    net, x, labels = tiny_net()
    summary = campaign(net, x, labels, db, fault_model="bitflip", sites="array.pe_*",
                       faults=10, seed=7, sim="icarus")
    assert summary["completed"] == 10 and summary["evaluated_now"] <= 10 - stored
    with sqlite3.connect(db) as conn:
        indices = [r[0] for r in conn.execute("SELECT fault_index FROM results")]
        faults = [r[0] for r in conn.execute("SELECT fault FROM results")]
    assert sorted(indices) == list(range(10)) and len(set(faults)) == 10


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_final_accumulator_upset_equals_the_model_level_accumulator_flip(sim):
    # Zero biases: the PE holds the unbiased sum, the golden accumulator the biased one.
    net, x, labels = tiny_net(images=1, zero_bias=True)
    program = compile_network(net, rows=ROWS, cols=COLS)
    golden = GoldenRun(net, program, x.numpy())
    config = program.accelerator
    engine = InjectionEngine(net, x, labels)
    rng = np.random.default_rng(1)
    for i, layer in enumerate(program.layers):
        for t, placement in enumerate(golden.placements[i]):
            n = placement.tile.shape[2]
            final = config.schedule(layer.k).first_drain  # every MAC done
            cells = [(int(c), int(b)) for c, b in zip(rng.integers(0, n, 6),
                                                      rng.integers(0, 32, 6))]
            faults = [RTLFault(f"array.pe_0_{c}.acc", b, "bitflip", final, layer.name, t)
                      for c, b in cells]
            results = run_faults(config, placement.tile, faults, sim=sim,
                                 accumulators=False)
            rtl = classify(golden.faulty_logits(i, t, results.outputs), golden.logits,
                           labels, net.layers[-1].out_scale)
            model = engine.evaluate([Fault(layer.name, "accumulator",
                                           int(placement.columns[c]), (b,))
                                     for c, b in cells])
            assert rtl == model, (layer.name, t, cells)


@pytest.mark.slow
def test_hardened_network_has_fewer_critical_faults(tmp_path):
    net, x, labels = tiny_net()
    protected = harden(net, "tmr", [(layer.name, c) for layer in net.layers
                                    for c in range(layer.weight.shape[0])])
    options = dict(fault_model="bitflip", sites="array.pe_*.acc", faults=24, seed=2,
                   sim="icarus")
    plain = campaign(net, x, labels, tmp_path / "plain.sqlite", **options)
    hardened = run_network_campaign(protected, x, labels, db_path=str(tmp_path / "h.sqlite"),
                                    rows=ROWS, cols=6, progress=False, **options)
    assert hardened["protect"] == "tmr" and hardened["faults"] == plain["faults"]
    assert plain["critical_003"] > 0
    assert hardened["critical_003"] < plain["critical_003"]
    # The hardware's detection: the plain accelerator has nothing to detect with, so
    # every changed fault is silent; the TMR voters flag the faults of one copy.
    for summary in (plain, hardened):
        detection = summary["detection"]
        assert sum(detection[name] for name in DETECTION_CLASSES) == summary["completed"]
        assert detection["due"] + detection["sdc"] == summary["completed"] - summary["masked"]
    assert plain["detection"]["detected"] == 0
    assert plain["detection"]["sdc"] == plain["faults"] - plain["masked"]
    assert hardened["detection"]["detected"] > 0 and hardened["detection"]["corrected"] > 0
    assert hardened["detection"]["sdc"] < plain["detection"]["sdc"]


def invoke(*args):
    return CliRunner().invoke(main, ["campaign", *map(str, args)])


@pytest.mark.parametrize("args, message", [
    (["--model", "m.pt", "--db", "r.sqlite", "--fault", "bitflip", "--sim", "icarus"],
     "--sim needs --level rtl"),
    (["--model", "m.pt", "--db", "r.sqlite", "--fault", "crash", "--level", "rtl"],
     "--level rtl takes --fault"),
    (["--model", "m.pt", "--db", "r.sqlite", "--fault", "bitflip", "--level", "rtl",
      "--target", "weight"], "--level model only"),
    (["--model", "m.pt", "--db", "r.sqlite", "--fault", "bitflip", "--level", "rtl"],
     "no such checkpoint"),
])
def test_bad_rtl_input_is_one_line_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow(seconds=20)
def test_campaign_on_an_imported_asymmetric_network(tmp_path):
    """An onnxruntime QDQ network (zero points on every layer) on its golden run, and the
    accelerator's zero-point registers are live fault sites."""
    net, path = imported_net("cnn", tmp_path)
    options = dict(images=2, rows=8, cols=8, sim="icarus", progress=False)
    summary = run_rtl_campaign(str(path), fault_model="bitflip",
                               sites=["zero_point_*", "array.pe_*.acc"], faults=12, seed=1,
                               db_path=str(tmp_path / "r.sqlite"), **options)
    assert summary["completed"] == summary["faults"] == 12 and summary["sites"] == 8 + 64
    assert summary["masked"] + summary["tolerable"] + summary["critical_003"] == 12
    x = net.quantize_input(images(2, "test"))
    labels = load_dataset("digits", (1, 28, 28)).y_test[:2]
    assert summary["fault_free_accuracy"] == float((net.predict(x) == labels).float().mean())
    # A stuck-at-1 in a zero point's bit offsets its column's outputs in the faulty tile.
    stuck = run_rtl_campaign(str(path), fault_model="stuck1", sites="zero_point_*", faults=6,
                             db_path=str(tmp_path / "z.sqlite"), **options)
    assert stuck["completed"] == 6 and stuck["masked"] < 6


@pytest.mark.slow
def test_cli_rtl_campaign_on_a_checkpoint(mlp7_model, tmp_path):  # noqa: F811
    db = tmp_path / "r.sqlite"
    args = ["--model", mlp7_model, "--level", "rtl", "--sim", "icarus", "--fault", "stuck0",
            "--sites", "array.pe_*.w_reg", "--faults", 3, "--images", 2, "--db", db,
            "--json"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert SUMMARY_KEYS <= set(summary) and summary["completed"] == 3
    assert summary["images"] == 2 and summary["sim"] == "icarus"
    model_level = invoke("--model", mlp7_model, "--fault", "bitflip", "--faults", 5,
                         "--images", 2, "--db", db, "--json")
    assert model_level.exit_code == 0, model_level.output
    assert json.loads(model_level.output)["level"] == "model"


@pytest.mark.slow
def test_dask_workers_store_the_same_rows_as_one_process(tmp_path):
    net, x, labels = tiny_net()
    options = dict(fault_model="stuck0", sites="array.pe_*", faults=8, seed=5,
                   sim="icarus", chunk=3)
    campaign(net, x, labels, tmp_path / "one.sqlite", **options)
    split = campaign(net, x, labels, tmp_path / "dask.sqlite", workers=2, **options)
    assert split["completed"] == 8
    assert stored_rows(tmp_path / "dask.sqlite", split["campaign"]) == \
        stored_rows(tmp_path / "one.sqlite", split["campaign"])

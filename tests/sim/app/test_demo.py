"""The demo's stage runner (sim/app/demo.py) and its report content
(sim/app/demo_report.py)."""

import json
import shutil

import pytest

from neuroharden.sim.app import demo
from neuroharden.sim.app.demo import STAGES, Stage, run_stages
from neuroharden.sim.app.demo_report import HEADLINE_FILE, build_report, headline
from neuroharden.sim.app.report import NOT_AVAILABLE
from tests.sim.app.chromium import check_in_chromium


def _stages(calls, fail=False):
    def first(ctx):
        calls.append("first")
        (ctx.out / "first.txt").write_text("1")
        return {"value": ctx.config["x"]}

    def second(ctx):
        calls.append("second")
        if fail:
            raise RuntimeError("broken\nsecond line")
        return {"double": 2 * ctx.results["first"]["value"]}

    def missing(ctx):
        calls.append("missing")
        raise NotImplementedError("the block is not in this version")

    return [Stage("first", "make a file", first, ("first.txt",), (), ("x",)),
            Stage("missing", "needs a later block", missing),
            Stage("second", "use the first", second, (), ("first",)),
            Stage("after", "needs the missing one", lambda ctx: {}, (), ("missing",))]


def test_stages_run_then_resume_from_their_results(tmp_path):
    calls, lines = [], []
    records = run_stages(_stages(calls), tmp_path, {"x": 3}, say=lines.append,
                         progress=False)
    assert [r["status"] for r in records.values()] == ["done", NOT_AVAILABLE, "done",
                                                       "skipped"]
    assert records["second"]["result"] == {"double": 6}
    assert records["missing"]["reason"] == "the block is not in this version"
    assert "needs missing" in records["after"]["reason"]
    assert calls == ["first", "missing", "second"] and len(lines) == 4
    stored = json.loads((tmp_path / "stages" / "first.json").read_text())
    assert stored["result"] == {"value": 3}
    assert not (tmp_path / "stages" / "missing.json").exists()

    calls.clear()
    records = run_stages(_stages(calls), tmp_path, {"x": 3}, say=lines.append,
                         progress=False)
    # Completed stages come from the cache; the unavailable one is tried again.
    assert [r["status"] for r in records.values()] == ["cached", NOT_AVAILABLE, "cached",
                                                       "skipped"]
    assert calls == ["missing"] and records["second"]["result"] == {"double": 6}


def test_other_settings_or_a_lost_file_redo_a_stage(tmp_path):
    calls = []
    run_stages(_stages(calls), tmp_path, {"x": 3}, say=lambda line: None, progress=False)
    calls.clear()
    records = run_stages(_stages(calls), tmp_path, {"x": 4}, say=lambda line: None,
                         progress=False)
    assert records["second"]["result"] == {"double": 8} and "first" in calls
    calls.clear()
    (tmp_path / "first.txt").unlink()
    run_stages(_stages(calls), tmp_path, {"x": 4}, say=lambda line: None, progress=False)
    assert calls == ["first", "missing"]


def test_a_failing_stage_is_recorded_and_not_cached(tmp_path):
    records = run_stages(_stages([], fail=True), tmp_path, {"x": 1},
                         say=lambda line: None, progress=False)
    assert records["second"]["status"] == "failed"
    assert records["second"]["reason"] == "RuntimeError: broken"
    assert not (tmp_path / "stages" / "second.json").exists()


def test_the_demo_covers_the_issue_steps():
    names = [s.name for s in STAGES]
    assert names[:4] == ["train", "quantize", "rank", "harden"]
    for step in ("cost", "accelerator", "rtl-check", "campaign-model", "campaign-rtl",
                 "synthesize", "prove", "threshold-sweep"):
        assert step in names
    for stage in STAGES:       # a stage only needs stages that run before it
        assert all(names.index(n) < names.index(stage.name) for n in stage.needs)


def test_report_of_a_demo_with_nothing_completed(tmp_path):
    records = {s.name: {"title": s.title, "status": NOT_AVAILABLE, "reason": "later",
                        "result": None, "seconds": 0.0, "writes": []} for s in STAGES}
    paths = build_report(tmp_path, records, demo.DEFAULTS, 1.0)
    assert {p.name for p in paths} == {"README.md", "index.html", HEADLINE_FILE}
    md = (tmp_path / "README.md").read_text()
    assert md.count(f"**{NOT_AVAILABLE}: later**") >= 10
    assert "Not available or not completed: train" in md
    # The headline table keeps its shape, with "-" for every figure.
    table = (tmp_path / HEADLINE_FILE).read_text().split("\n\n")[0].splitlines()
    assert len(table) == 2 + 9
    assert all(line.endswith("| - | - | - |") for line in table[2:]), table
    assert "- Not available or not completed: train, " in (tmp_path / HEADLINE_FILE).read_text()


def _summary(faults, masked, tolerable, critical_003, critical, **extra):
    return {"faults": faults, "completed": faults, "masked": masked,
            "tolerable": tolerable, "critical_003": critical_003, "critical": critical,
            "critical_rate": critical / faults, "accuracy_loss": 0.01, "images": 4,
            "population": 10 ** 6, **extra}


def _rtl_summary(protect, critical, **extra):
    return _summary(300, 300 - 20 - critical, 20, critical, critical, protect=protect,
                    fault_model="bitflip", sites=48, layers=["fc1", "fc2", "fc3"], rows=4,
                    cols=4, sim="verilator", faults_per_second=12.5, wall_seconds=40.0,
                    **extra)


def test_report_renders_the_rtl_campaigns_against_the_model_level(tmp_path):
    records = {s.name: {"title": s.title, "status": NOT_AVAILABLE, "reason": "later",
                        "result": None, "seconds": 0.0, "writes": []} for s in STAGES}
    model = {name: _summary(1000, 500, 300, 200, 100)
             for name in ("none", "lcu-top3.99", "tmr-top3.99")}
    # Significantly fewer critical faults with TMR, a difference within the noise with
    # the LCU.
    rtl = {"none": _rtl_summary("none", 60), "lcu-top3.99": _rtl_summary("lcu", 55),
           "tmr-top3.99": _rtl_summary("tmr", 20)}
    for name, result in (("campaign-model", model), ("campaign-rtl", rtl)):
        records[name].update(status="done", result=result)
    paths = build_report(tmp_path, records, demo.DEFAULTS, 1.0)
    assert tmp_path / "rtl_vs_model_outcomes.png" in paths
    md = (tmp_path / "README.md").read_text()
    section = md.split("## RTL fault campaigns")[1].split("\n## ")[0]
    assert NOT_AVAILABLE not in section
    assert "| TMR, top 3.99 % | tmr | 1,000,000 | 300 | 86.67 % | 6.67 % | 6.67 % | " \
           "6.67 % | 1.000 | 12.50 | 40.0 |" in section
    assert "![Outcome breakdown per network" in section
    line = next(x for x in md.splitlines() if x.startswith("- RTL campaign"))
    assert "unprotected 20.00 %" in line and "TMR, top 3.99 % 6.67 %" in line
    assert "in fc1, fc2, fc3, 4 test images" in line
    assert "masked (paper 003) 73.33 %, 75.00 %, 86.67 %." in line
    assert ("LCU, top 3.99 %: fewer critical faults than unprotected (within the samples' "
            "95 % margin)") in line
    assert "TMR, top 3.99 %: fewer critical faults than unprotected." in line
    profile = tmp_path / "chromium"
    profile.mkdir()
    images = dict(check_in_chromium(tmp_path, profile)["images"])
    assert images["rtl_vs_model_outcomes.png"] > 0, images


def test_rtl_headline_says_when_hardening_finds_no_fewer_critical_faults():
    records = {"campaign-rtl": {"status": "done", "seconds": 1.0, "result": {
        "none": _rtl_summary("none", 0), "tmr-top3.99": _rtl_summary("tmr", 0)}}}
    line = next(x for x in headline(records, demo.DEFAULTS, 1.0)
                if x.startswith("RTL campaign"))
    assert line.endswith("TMR, top 3.99 %: as many critical faults as unprotected.")


@pytest.mark.slow
def test_rtl_campaign_stage_on_a_tiny_configuration(lenet5_model, tmp_path):  # noqa: F811
    def train(ctx):
        shutil.copyfile(lenet5_model, ctx.path("model.pt"))
        return {}

    # The demo's stages up to the RTL campaign, on a checkpoint trained once per session
    # and a campaign of three faults per network in the last layer under Icarus.
    config = {**demo.DEFAULTS, "rank_images": 2, "rtl_campaign_faults": 3,
              "rtl_campaign_images": 1, "rtl_campaign_layers": ["fc3"], "sim": "icarus"}
    names = ("rank", "harden", "campaign-rtl")
    stages = [Stage("train", "copy the checkpoint", train, ("model.pt",)),
              *(s for s in STAGES if s.name in names)]
    records = run_stages(stages, tmp_path, config, say=lambda line: None, progress=False)
    assert [records[n]["status"] for n in names] == ["done"] * 3, records
    rtl = records["campaign-rtl"]["result"]
    assert list(rtl) == ["none", "lcu-top3.99", "tmr-top3.99"]
    assert [x["protect"] for x in rtl.values()] == ["none", "lcu", "tmr"]
    for x in rtl.values():
        assert x["completed"] == 3 and x["images"] == 1 and x["layers"] == ["fc3"]
        assert x["masked"] + x["tolerable"] + x["critical_003"] == 3
    assert (tmp_path / "rtl-campaigns.sqlite").is_file()
    again = run_stages(stages, tmp_path, config, say=lambda line: None, progress=False)
    assert again["campaign-rtl"]["status"] == "cached"
    assert again["campaign-rtl"]["result"] == rtl
    build_report(tmp_path, again, config, 1.0)
    md = (tmp_path / "README.md").read_text()
    assert "| LCU, top 3.99 % | lcu |" in md and "- RTL campaign (3 PE-register" in md


@pytest.mark.slow(seconds=90)
def test_the_demo_on_a_given_onnx_network(tmp_path):
    """``demo --model``: an onnxruntime-quantized CNN (asymmetric uint8 activations, per-
    channel weights) goes through the demo's stages with no training, its images from
    the dataset given, and the RTL agrees with golden on every variant."""
    from tests.golden.onnx_nets import quantized_model

    model = quantized_model("cnn", tmp_path)[0]
    config = {**demo.given_model(model, dataset="mnist5k"), "rank_images": 3,
              "campaign_faults": 12, "fig4_faults": 6, "fig4_test_images": 10,
              "fig4_thresholds": [1.0], "rtl_images": 1, "sim": "icarus"}
    assert config["model"] == model.stem and config["model_suffix"] == ".onnx"
    assert config["dataset"] == "mnist5k" and config["rtl_campaign_layers"] == ["fc1"]
    names = ("train", "quantize", "rank", "harden", "accelerator", "rtl-check", "campaign-model",
             "threshold-sweep")
    stages = [s for s in demo.stages_for(config) if s.name in names]
    out = tmp_path / "demo"
    records = run_stages(stages, out, config, say=lambda line: None, progress=False)
    assert {n: records[n]["status"] for n in names} == dict.fromkeys(names, "done"), records
    assert (out / "model.onnx").read_bytes() == model.read_bytes()
    assert not (out / "model.pt").exists()
    quantized = records["quantize"]["result"]
    assert quantized["float_accuracy"] is None and quantized["images"] == 1000
    for check in records["rtl-check"]["result"].values():
        assert check["agreement"] == 1.0
    campaigns = records["campaign-model"]["result"]
    assert list(campaigns) == ["none", "lcu-top3.99", "tmr-top3.99"]
    assert all(c["completed"] == 12 for c in campaigns.values())
    sweep = records["threshold-sweep"]["result"]["rows"]
    assert {r["point"] for r in sweep} == {"1"}       # no matched point for a user network
    build_report(out, records, config, 1.0)
    md = (out / "README.md").read_text()
    assert md.startswith(f"# neuroharden demo: {model.stem} on mnist5k")
    assert f"none (given file {model})" in md
    # Resumed: every stage cached; another file under the same output reruns from the top.
    again = run_stages(stages, out, config, say=lambda line: None, progress=False)
    assert {r["status"] for r in again.values()} == {"cached"}
    (tmp_path / "other").mkdir()
    other = {**config, **{k: v for k, v in demo.given_model(
        quantized_model("cnn", tmp_path / "other", seed=1)[0], dataset="mnist5k").items()
        if k.startswith("model")}}
    assert demo.stage_key(stages[0], other, {}) != demo.stage_key(stages[0], config, {})


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/missing.onnx"], "missing.onnx: no such file"),
    (["--model", "{tmp}/garbage.onnx"], "garbage.onnx"),
    (["--model", "{tmp}/hardened.pt"], "a hardened network; give the original"),
    (["--dataset", "mnist5k"], "--dataset applies to --model"),
])
def test_demo_refuses_a_bad_model_in_one_line_before_writing(tmp_path, args, message):
    import torch
    from click.testing import CliRunner

    from neuroharden.golden.hardened import HARDENED_FORMAT
    from neuroharden.sim.app.cli import main

    (tmp_path / "garbage.onnx").write_bytes(b"\x08\x07not a model")
    torch.save({"format": HARDENED_FORMAT}, tmp_path / "hardened.pt")
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["demo", "-o", str(out),
                                       *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()

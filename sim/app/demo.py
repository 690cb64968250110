"""``neuroharden demo``: the whole flow on the embedded default, as a report.

The demo is a list of :class:`Stage` s run in order (:data:`STAGES`): train LeNet-5 on
the bundled digits, quantize it, rank every hidden neuron with NVF, harden it with the
LCU and with selective TMR, cost both protections (neurons, MACs, cycles, memory and
correction-hardware area), generate the accelerator, check images on the RTL, run a
model-level and a small RTL fault campaign on each network (unprotected, LCU, TMR),
synthesize, prove, and finally write ``OUTPUT/index.html`` and ``OUTPUT/README.md``
with tables and PNG plots (:mod:`sim.report`).

Thresholds. Paper 004 protects the neurons with NVF >= 20 %, which is 3.99 % of
LeNet-5's neurons on MNIST. On the digits the NVFs are far smaller (the largest is
about 3.8 %), so that threshold selects no neuron: the demo reports it as it is
(``nvf20``: 0 neurons, nothing changes) and also hardens the top 3.99 % of the ranking
(``top3.99``), the portion the paper protects at 20 %. A fraction rather than an NVF
value, because fewer than 3.99 % of the neurons have a non-zero NVF here, so no NVF
value selects exactly that portion.

Resuming. Every stage writes its files atomically and then its result to
``OUTPUT/stages/NAME.json``, keyed by the settings it uses and the keys of the stages it
needs; a rerun skips every stage whose result (with the same key) and files exist, so
an interrupted demo resumes at the stage it was in.
A stage whose building block is not part of this version raises
:class:`NotImplementedError`; it is reported as "not available in this version" (and
retried on the next run), never replaced by made-up figures.
"""

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from neuroharden.golden.atomic import atomic_output

__all__ = ["Stage", "STAGES", "DEFAULTS", "stages_for", "given_model", "stage_key",
           "run_stages", "run_demo"]

#: Settings of the default demo (recorded in every stage result; changing one reruns).
DEFAULTS = {
    "model": "lenet5", "dataset": "digits", "seed": 0,
    "rank_images": 200,
    # Paper 004's threshold, and the portion of LeNet-5's neurons it selects there.
    "paper_threshold": 20.0, "paper_fraction": 3.99,
    # Model-level campaigns: a fixed sample per network (margin about +-3 points at 95 %).
    # Leveugle et al.'s 7,645 faults (95 % / 1 %) per network would take minutes more on
    # 2 cores for the three networks.
    "campaign_faults": 1000,
    # RTL campaigns: bit flips in the PE registers (operand registers and accumulators)
    # of fc2's tiles on the first test images (one tile row), on the rows x cols
    # accelerator with each network's protection unit. fc2 is the smallest layer whose
    # neurons the top 3.99 % mostly protects (77 of its 84 on the digits network); each
    # tile the sample hits costs a simulator start, so the whole network would not fit
    # the demo's time.
    "rtl_campaign_faults": 300, "rtl_campaign_images": 4,
    "rtl_campaign_sites": "array.pe_*", "rtl_campaign_layers": ["fc2"],
    # Array size of the cycle count, the area and the RTL check; test images on the RTL.
    "rows": 4, "cols": 4, "target": "generic", "rtl_images": 2, "sim": "verilator",
    # Blocks synthesized. Neither the spatially triplicated array (not the selective TMR
    # compared here) nor the whole accelerators: each takes minutes on 2 cores;
    # `neuroharden area --designs tmr-array,accel-lcu,accel-tmr` measures them.
    "synth_designs": ["pe", "array", "lcu", "voter", "tmr-pe"],
    # Fig. 4 sweep (accuracy loss, critical faults vs threshold): small campaigns.
    "fig4_thresholds": [0.5, 1.0, 2.0, 3.0], "fig4_faults": 150, "fig4_test_images": 100,
    # NVF thresholds of the cost sweep (0.01: every neuron with a non-zero NVF).
    "sweep_thresholds": [0.01, 0.25, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 20.0],
}

#: The two selections the demo hardens: name -> (threshold, fraction).
SELECTIONS = ("nvf20", "top3.99")
SCHEMES = ("lcu", "tmr")


@dataclass(frozen=True)
class Stage:
    """One step of the demo.

    Attributes
    ----------
    name : str
        Short name (the file ``stages/NAME.json``).
    title : str
        What it does, shown in the progress and the report.
    run : callable
        ``run(context) -> dict`` (JSON-serializable); raises NotImplementedError when its
        building block is not in this version.
    writes : tuple of str
        Files (relative to the output directory) it writes besides its result.
    needs : tuple of str
        Stages whose results it uses.
    settings : tuple of str
        Keys of the settings its result depends on (with its needs' results, the key
        of its cached result).
    """

    name: str
    title: str
    run: object
    writes: tuple = ()
    needs: tuple = ()
    settings: tuple = ()


class Context:
    """What a stage sees: the output directory, the settings, earlier results."""

    def __init__(self, out, config, results):
        self.out, self.config, self.results = Path(out), config, results

    def path(self, name):
        return self.out / name

    @property
    def model(self):
        """The network file of the run: ``model.pt`` (trained), or the given file's copy."""
        return self.path(model_file_name(self.config))

    @property
    def source(self):
        """Keyword arguments naming the images of a given network (none for a trained one,
        whose checkpoint records them)."""
        if self.config.get("model_file") is None:
            return {}
        return {"dataset": self.config["dataset"], "data_dir": self.config.get("data_dir")}


def model_file_name(config):
    """Name of the run's network file in the output directory."""
    return "model" + config.get("model_suffix", ".pt")


def _selection(config, name):
    return ({"threshold": config["paper_threshold"]} if name == "nvf20"
            else {"fraction": config["paper_fraction"]})


def _hardened_name(scheme, selection):
    return f"hardened/{scheme}-{selection}.pt"


# -- stages -------------------------------------------------------------------------


def _take_model(ctx):
    """The network given with ``--model``: copied into the output directory, not trained."""
    import shutil

    from neuroharden.golden.campaign import file_sha256

    source = ctx.config["model_file"]
    with atomic_output(ctx.model) as file, open(source, "rb") as original:
        shutil.copyfileobj(original, file)
    if file_sha256(ctx.model) != ctx.config["model_sha256"]:
        raise ValueError(f"{source}: changed while it was copied")
    return {"float_accuracy": None, "epochs": None, "train_seconds": None,
            "model_file": source}


def _train(ctx):
    from neuroharden.golden.models import save_checkpoint
    from neuroharden.golden.train import train

    net, metadata = train(ctx.config["model"], ctx.config["dataset"], None, None,
                          ctx.config["seed"])
    save_checkpoint(net, ctx.path("model.pt"), **metadata)
    return {"float_accuracy": metadata["float_accuracy"], "epochs": metadata["epochs"],
            "train_seconds": metadata["train_seconds"]}


def _quantize(ctx):
    from neuroharden.golden.evaluation import evaluate_checkpoint
    from neuroharden.golden.export import export_intnet
    from neuroharden.golden.harden import cost
    from neuroharden.golden.checkpoint import load_intnet

    result = evaluate_checkpoint(ctx.model, **ctx.source)
    net = load_intnet(ctx.model, **ctx.source)
    export_intnet(net, ctx.path("qnet.npz"))
    return {"float_accuracy": result["float_accuracy"],
            "int8_accuracy": result["int8_accuracy"], "images": result["images"],
            "layers": [{"name": layer.name, "kind": layer.kind, "neurons": layer.neurons,
                        "weights": layer.weight.numel()} for layer in net.layers],
            "cost": cost(net)}


def _rank(ctx):
    from neuroharden.golden.ranking import rank, write_critical

    document, report = rank(ctx.model, "nvf", images=ctx.config["rank_images"],
                            seed=ctx.config["seed"], **ctx.source)
    write_critical(ctx.path("CRITICAL.json"), document)
    scores = [n["score"] for n in document["neurons"]]
    layers = {}
    for n in document["neurons"]:
        layers.setdefault(n["layer"], []).append(n["score"])
    return {"seconds": report["seconds"], "images": report["images"],
            "neurons": len(scores), "max": max(scores),
            "nonzero": sum(s > 0 for s in scores),
            "at_paper_threshold": sum(s >= ctx.config["paper_threshold"] for s in scores),
            "top": document["neurons"][:10], "scores": scores,
            "per_layer": {name: {"neurons": len(v), "max": max(v),
                                 "nonzero": sum(s > 0 for s in v)}
                          for name, v in layers.items()}}


def _harden(ctx):
    from neuroharden.golden.harden import harden_checkpoint

    ctx.path("hardened").mkdir(exist_ok=True)
    reports = {}
    for selection in SELECTIONS:
        for scheme in SCHEMES:
            report = harden_checkpoint(
                str(ctx.model), str(ctx.path("CRITICAL.json")), scheme=scheme,
                output=str(ctx.path(_hardened_name(scheme, selection))),
                **_selection(ctx.config, selection), **ctx.source)
            reports[f"{scheme}-{selection}"] = {k: v for k, v in report.items()
                                                 if k != "layers"}
    return reports


def _cost(ctx):
    from neuroharden.golden.checkpoint import quantize_checkpoint
    from neuroharden.golden.ranking import load_critical
    from neuroharden.synth.cache import Cache
    from neuroharden.synth.cost import protection_cost

    c = ctx.config
    net = quantize_checkpoint(ctx.model, **ctx.source)[0]
    ranking = [(n["layer"], n["index"], n["score"]) for n in
               load_critical(ctx.path("CRITICAL.json"), ctx.model)["neurons"]]
    cache = Cache(ctx.path("synth-cache"))
    at = {selection: protection_cost(net, ranking, rows=c["rows"], cols=c["cols"],
                                     target=c["target"], cache=cache,
                                     **_selection(c, selection))
          for selection in SELECTIONS}
    sweep = []
    for threshold in c["sweep_thresholds"]:
        report = protection_cost(net, ranking, threshold=threshold, rows=c["rows"],
                                 cols=c["cols"], area=False)
        sweep.append({"threshold": threshold, **report["selection"],
                      **{f"{scheme}_{m}": report["schemes"][scheme][m]
                         for scheme in ("none", *SCHEMES)
                         for m in ("neurons", "macs", "cycles", "memory_bytes")}})
    return {"at": at, "sweep": sweep}


def _accelerator(ctx):
    from neuroharden.hw.verilog import generate
    from neuroharden.sim.compiler import k_depth_of
    from neuroharden.golden.checkpoint import quantize_checkpoint

    c = ctx.config
    k_depth = k_depth_of(quantize_checkpoint(ctx.model, **ctx.source)[0])
    ctx.path("verilog").mkdir(exist_ok=True)
    files = {}
    for protect in SCHEMES:
        path = ctx.path(f"verilog/accelerator_{protect}.v")
        text = generate("accelerator", rows=c["rows"], cols=c["cols"], protect=protect,
                        k_depth=k_depth)
        with atomic_output(path, "w") as file:
            file.write(text)
        files[protect] = {"path": str(path.relative_to(ctx.out)), "bytes": len(text),
                          "lines": text.count("\n")}
    return {"rows": c["rows"], "cols": c["cols"], "k_depth": k_depth, "files": files}


def _rtl_check(ctx):
    from neuroharden.sim.run_rtl import run_checkpoint

    c = ctx.config
    return {name: run_checkpoint(str(model), images=c["rtl_images"], rows=c["rows"],
                                 cols=c["cols"], sim=c["sim"], **ctx.source)
            for name, model in _variants(ctx).items()}


def _variants(ctx):
    """The networks the checks and campaigns compare: unprotected, LCU, TMR."""
    return {"none": ctx.model,
            **{f"{scheme}-top3.99": ctx.path(_hardened_name(scheme, "top3.99"))
               for scheme in SCHEMES}}


def _campaign_model(ctx):
    from neuroharden.golden.campaign import run_campaign

    c = ctx.config
    out = {}
    for name, model in _variants(ctx).items():
        summary = run_campaign(str(model), fault_model="bitflip", target="output",
                               faults=c["campaign_faults"], seed=c["seed"],
                               db_path=str(ctx.path("campaigns.sqlite")), **ctx.source)
        out[name] = {k: v for k, v in summary.items() if k != "db"}
    return out


def _campaign_rtl(ctx):
    from neuroharden.sim.rtl_campaign import run_rtl_campaign

    c = ctx.config
    out = {}
    for name, model in _variants(ctx).items():
        started = time.perf_counter()
        summary = run_rtl_campaign(
            str(model), images=c["rtl_campaign_images"], fault_model="bitflip",
            sites=c["rtl_campaign_sites"], layers=c["rtl_campaign_layers"],
            faults=c["rtl_campaign_faults"], seed=c["seed"],
            db_path=str(ctx.path("rtl-campaigns.sqlite")), rows=c["rows"], cols=c["cols"],
            sim=c["sim"], **ctx.source)
        # Wall time with the simulator build and the compilation, besides the fault loop
        # the summary times.
        out[name] = {**{k: v for k, v in summary.items() if k != "db"},
                     "layers": c["rtl_campaign_layers"],
                     "wall_seconds": time.perf_counter() - started}
    return out


def _threshold_sweep(ctx):
    """Paper 004 Fig. 4 on the demo's model and ranking (`neuroharden experiment fig4`)."""
    import csv
    import shutil

    from neuroharden.golden.experiments import common, fig4
    from neuroharden.golden.models import load_checkpoint

    c = ctx.config
    cache = ctx.path("fig4-cache")
    cache.mkdir(exist_ok=True)
    # as_json: no progress lines on stderr (the demo prints one line per stage).
    experiment = common.prepare("fig4", str(ctx.path("fig4")), str(cache), c["seed"],
                                as_json=True, dataset=c["dataset"],
                                data_dir=c.get("data_dir"))
    # Seeding the experiment's cache (golden.experiments.common) with the demo's own
    # network and ranking skips both: a trained checkpoint under the name the
    # experiment's training gives it (the same deterministic training), a given network
    # as the file it is.
    if c.get("model_file") is None:
        epochs = load_checkpoint(ctx.model)[1]["epochs"]
        model = str(cache / f"{c['model']}-{c['dataset']}-seed{c['seed']}-e{epochs}.pt")
        if not Path(model).exists():
            shutil.copyfile(ctx.model, model)
        network = common.Network(c["model"], common.MODEL_LABELS[c["model"]], model, True,
                                 {})
    else:
        network = common.Network(c["model"], c["model"], str(ctx.model), False, ctx.source)
    ranking = common.ranking_file(experiment, network.path, "nvf", images=c["rank_images"],
                                  source=network.source)
    if not Path(ranking).exists():
        shutil.copyfile(ctx.path("CRITICAL.json"), ranking)
    summary, _ = fig4.run(experiment, [network], images={network.key: c["rank_images"]},
                          thresholds=c["fig4_thresholds"], max_faults=c["fig4_faults"],
                          test_images=c["fig4_test_images"])
    common.write_summary(experiment, summary)
    with open(ctx.path("fig4/fig4.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    return {"rows": rows, "faults": c["fig4_faults"], "test_images": c["fig4_test_images"]}


def _synthesize(ctx):
    from neuroharden.synth.area import report
    from neuroharden.synth.cache import Cache

    c = ctx.config
    rows = report(c["synth_designs"], [c["target"]], rows=c["rows"], cols=c["cols"],
                  cache=Cache(ctx.path("synth-cache")))
    return {"rows": rows}


def _prove(ctx):
    from neuroharden.synth.prove import PROPERTIES, run_property

    return {"properties": [run_property(p) for p in PROPERTIES.values()]}


#: The demo, in order.
STAGES = (
    Stage("train", "train LeNet-5 on the bundled digits", _train, ("model.pt",), (),
          ("model", "dataset", "seed")),
    Stage("quantize", "quantize to the bit-exact int8 model, export", _quantize,
          ("qnet.npz",), ("train",)),
    Stage("rank", "rank every hidden neuron with NVF (paper 004)", _rank,
          ("CRITICAL.json",), ("train",), ("rank_images", "seed", "paper_threshold")),
    Stage("harden", "harden with the LCU and with selective TMR", _harden,
          tuple(_hardened_name(s, n) for n in SELECTIONS for s in SCHEMES), ("rank",),
          ("paper_threshold", "paper_fraction")),
    Stage("cost", "cost of each protection: neurons, MACs, cycles, memory, area", _cost,
          (), ("rank",), ("paper_threshold", "paper_fraction", "rows", "cols", "target",
                          "sweep_thresholds")),
    Stage("accelerator", "generate the accelerator Verilog (LCU and TMR)", _accelerator,
          tuple(f"verilog/accelerator_{s}.v" for s in SCHEMES), ("train",),
          ("rows", "cols")),
    Stage("rtl-check", "run test images through the accelerator RTL, compare with golden",
          _rtl_check, (), ("harden", "accelerator"), ("rtl_images", "rows", "cols", "sim")),
    Stage("campaign-model", "model-level fault campaigns on each variant",
          _campaign_model, ("campaigns.sqlite",), ("harden",), ("campaign_faults", "seed")),
    Stage("campaign-rtl", "RTL fault campaigns (PE-register bit flips) on each variant",
          _campaign_rtl, ("rtl-campaigns.sqlite",), ("harden",),
          ("rtl_campaign_faults", "rtl_campaign_images", "rtl_campaign_sites",
           "rtl_campaign_layers", "rows", "cols", "sim", "seed")),
    Stage("threshold-sweep", "accuracy loss and critical faults vs NVF threshold",
          _threshold_sweep, ("fig4/fig4.csv",), ("rank",),
          ("fig4_thresholds", "fig4_faults", "fig4_test_images", "rank_images")),
    Stage("synthesize", "synthesize the blocks with Yosys", _synthesize, (), (),
          ("rows", "cols", "target", "synth_designs")),
    Stage("prove", "formal proofs of the LCU, the voters and TMR", _prove),
)


def stages_for(config):
    """The demo's stages for ``config``: :data:`STAGES`, with the training replaced by
    taking the network file of :func:`given_model` when there is one."""
    if config.get("model_file") is None:
        return STAGES
    take = Stage("train", f"take the given network ({Path(config['model_file']).name}), "
                          f"images from {config['dataset']}",
                 _take_model, (model_file_name(config),), (),
                 ("model_sha256", "model_suffix", "dataset", "data_dir"))
    return (take, *STAGES[1:])


def given_model(path, *, dataset=None, data_dir=None, config=DEFAULTS):
    """The settings of a demo run on the user's network file ``path`` (``--model``).

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint (``MODEL.pt``), a quantized ``.onnx`` or a ``QNET.npz``; not a
        hardened network (the demo hardens it).
    dataset, data_dir : str, optional
        Image source (:func:`golden.checkpoint.quantize_checkpoint`; default: the
        checkpoint's own, ``digits`` for an imported network).
    config : dict
        The settings it starts from.

    Returns
    -------
    dict
        ``config`` with the network (``model``: its name, ``model_file``,
        ``model_sha256``, ``model_suffix``), its ``dataset`` and ``data_dir``, and the
        RTL campaigns on its last hidden layer (LeNet-5's fc2 in the default run).

    Raises
    ------
    ValueError
        A missing, unreadable, unsupported or hardened file, or images that do not fit.
    """
    from neuroharden.golden.campaign import file_sha256
    from neuroharden.golden.checkpoint import is_imported, quantize_checkpoint
    from neuroharden.golden.hardened import is_hardened

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if is_hardened(path):
        raise ValueError(f"{path}: a hardened network; give the original (the demo "
                         f"hardens it)")
    net, _, metadata, data = quantize_checkpoint(path, data_dir, dataset)
    if len(net.layers) < 2:
        raise ValueError(f"{path}: the demo needs a hidden layer to protect")
    return {**config, "model": metadata.get("model") or path.stem,
            "model_file": str(path.resolve()), "model_sha256": file_sha256(path),
            "model_suffix": path.suffix.lower() if is_imported(path) else ".pt",
            "dataset": data.name, "data_dir": None if data_dir is None else str(data_dir),
            "rtl_campaign_layers": [net.layers[-2].name]}


def stage_key(stage, config, keys):
    """Hash of what a stage result depends on: its settings and the keys of its needs."""
    text = json.dumps({"stage": stage.name,
                       "settings": {k: config.get(k) for k in stage.settings},
                       "needs": [keys[n] for n in stage.needs]},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _load_cached(out, stage, key):
    path = out / "stages" / f"{stage.name}.json"
    if not path.is_file() or not all((out / w).exists() for w in stage.writes):
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored if stored.get("config") == key else None


def run_stages(stages, out, config, *, say=click.echo, progress=None):
    """Run (or resume) stages in order and return one record per stage.

    Parameters
    ----------
    stages : sequence of Stage
    out : str or os.PathLike
        Output directory (created).
    config : dict
        Settings passed to every stage; a stage is redone when its settings or the
        results it needs changed (:func:`stage_key`).
    say : callable
        Receives one line per stage.
    progress : bool, optional
        tqdm bar over the stages (default: only on a terminal).

    Returns
    -------
    dict
        Stage name -> record: ``title``, ``status`` ("done", "cached", ``NOT_AVAILABLE``,
        "failed", "skipped"), ``seconds``, ``result`` (None unless done or cached),
        ``reason`` and ``writes``.
    """
    from tqdm import tqdm

    from .report import NOT_AVAILABLE

    out = Path(out)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    keys = {}
    records = {}
    results = {}
    context = Context(out, config, results)
    bar = tqdm(total=len(stages), unit="stage", file=sys.stderr, leave=False,
               disable=None if progress is None else not progress)
    try:
        for number, stage in enumerate(stages, 1):
            bar.set_description(stage.name)
            record = {"title": stage.title, "writes": list(stage.writes), "reason": "",
                      "result": None, "seconds": 0.0}
            missing = [n for n in stage.needs if n not in results]
            key = None if missing else stage_key(stage, config, keys)
            cached = None if missing else _load_cached(out, stage, key)
            if missing:
                record.update(status="skipped",
                              reason=f"needs {', '.join(missing)}, which did not complete")
            elif cached is not None:
                record.update(status="cached", result=cached["result"],
                              seconds=cached["seconds"])
            else:
                started = time.perf_counter()
                try:
                    result = stage.run(context)
                except NotImplementedError as error:
                    record.update(status=NOT_AVAILABLE, reason=str(error))
                except Exception as error:   # noqa: BLE001 - reported, demo continues
                    record.update(status="failed",
                                  reason=f"{type(error).__name__}: {error}".splitlines()[0])
                else:
                    seconds = time.perf_counter() - started
                    record.update(status="done", result=result, seconds=seconds)
                    with atomic_output(out / "stages" / f"{stage.name}.json", "w") as file:
                        json.dump({"config": key, "seconds": seconds, "result": result},
                                  file)
            if record["result"] is not None:
                results[stage.name] = record["result"]
                keys[stage.name] = key
            records[stage.name] = record
            detail = {"done": f"done in {record['seconds']:.1f} s",
                      "cached": f"cached ({record['seconds']:.1f} s when run)"}.get(
                record["status"], f"{record['status']}: {record['reason']}")
            bar.clear()
            say(f"[{number:2d}/{len(stages)}] {stage.name:15s} {stage.title}: {detail}")
            bar.update(1)
    finally:
        bar.close()
    return records


def run_demo(out, *, config=DEFAULTS, say=click.echo, progress=None):
    """Run (or resume) the demo's :data:`STAGES` into ``out`` and write its report.

    Parameters
    ----------
    out : str or os.PathLike
        Output directory (created): the report (``index.html``, ``README.md``,
        ``headline.md``), the intermediate files and the stage cache.
    config : dict
        Settings (:data:`DEFAULTS`).
    say, progress
        As for :func:`run_stages`.

    Returns
    -------
    dict
        ``seconds`` (wall time), ``stages`` (:func:`run_stages`' records) and ``report``
        (paths of the files :func:`~.demo_report.build_report` wrote, as str).
    """
    from .demo_report import build_report

    out = Path(out)
    started = time.perf_counter()
    records = run_stages(stages_for(config), out, config, say=say, progress=progress)
    seconds = time.perf_counter() - started
    paths = build_report(out, records, config, seconds)
    return {"seconds": seconds, "stages": records, "report": [str(p) for p in paths]}

"""RTL fault-injection campaigns on whole networks (``neuroharden campaign --level rtl``).

Cross-layer injection: the network (``MODEL.pt`` quantized, or ``HARDENED.pt``) is
compiled for the test images used (:mod:`sim.compiler`); every (layer, tile) run of the
compiled program is a place a fault can hit. A fault is injected while the RTL
accelerator computes the tile that holds it (:mod:`sim.rtl_runner`: the tile is loaded
once into a simulator process and every fault of that tile in the job runs against
it); the tile's faulty protected int8 outputs replace its fault-free outputs in the
layer's output (:meth:`sim.compiler.CompiledLayer.gather`), and the rest of the
network runs in the golden integer model (``net.forward(x, start=i + 1)``, which
corrects a hardened network's copies as the accelerator's protection unit does). The
faulty logits are classified with :func:`golden.injection.classify` (paper 003's and
paper 004's classes, accuracy) and stored in the results database of model-level
campaigns (:class:`golden.campaign.ResultsDB`, same summary keys).

Fault space: per layer, the catalogued sites chosen by ``sites`` (a path, a glob or a
list; default every site of the accelerator) x their bits x the injection cycles of a
tile of that layer (:func:`hw.accelerator.tile_cycles`, bitflips) or x 1 (``stuck0`` /
``stuck1``, held for the whole tile), times the layer's tiles
(:class:`sim.rtl_faults.RTLFaultSpace` with ``runs``). The layers' spaces are
concatenated in layer order; the sample is the Leveugle size of the total (or
``faults``) drawn without replacement with :func:`golden.sampling.sample_indices`.

Jobs: faults are grouped by (layer, tile), and the groups, in network order, are
packed into simulator jobs of at most ``chunk`` faults (a group that does not fit the
rest of a job continues in the next one). One job is one simulator process that runs
its tiles in turn (:func:`sim.rtl_runner.run_groups`), so a whole-network campaign,
whose faults spread over hundreds of tiles, pays the simulator's start-up once per job
rather than once per tile.

Resuming: each job's rows are committed when its simulator process returns, keyed by
(campaign, fault number), so a campaign killed at any point (``kill -9`` included) and
rerun with the same arguments runs only the missing faults and stores none twice. With
Dask (``workers > 1`` or a scheduler address) each job is a task
(:func:`sim.rtl_runner.run_chunk`): a worker builds the simulator once and keeps it;
the client classifies and writes the database.
"""

import hashlib
import json
import os
import time
from collections import defaultdict

import click
import numpy as np
import torch

from neuroharden.golden.campaign import ResultsDB, file_sha256, summarize
from neuroharden.golden.injection import classify
from neuroharden.golden.sampling import leveugle_sample_size, sample_indices
from neuroharden.hw.accelerator import tile_cycles
from .compiler import compile_network
from .rtl_faults import RTLFaultSpace
from .rtl_runner import accelerator_design, run_chunk, run_groups
from .runner import DEFAULT_BUILD_ROOT, SIMULATORS
from .sites import resolve
from .tile import reference

__all__ = ["MODELS", "DEFAULT_IMAGES", "NetworkFaultSpace", "GoldenRun",
           "run_network_campaign", "run_rtl_campaign", "campaign"]

#: Fault models of an RTL campaign.
MODELS = ("bitflip", "stuck0", "stuck1")
#: Test images of an RTL campaign when none is given (each image is a tile row or more).
DEFAULT_IMAGES = 8


class GoldenRun:
    """The fault-free run of a compiled network, layer by layer and tile by tile.

    Parameters
    ----------
    net : golden.intmodel.IntNet or golden.hardened.HardenedNet
    program : sim.compiler.Program
        ``net`` compiled.
    x : numpy.ndarray
        int8 input images ``[B, C, H, W]``.

    Attributes
    ----------
    inputs : list of numpy.ndarray
        Input of every layer.
    placements : list of list of sim.compiler.Placement
        Tiles of every layer.
    outputs : list of list of numpy.ndarray
        Fault-free protected outputs of every tile.
    logits : torch.Tensor
        int64 ``[B, classes]``, equal to ``net.forward(x)`` (checked).
    """

    def __init__(self, net, program, x):
        self.net = net
        self.program = program
        self.inputs, self.placements, self.outputs = [], [], []
        h = np.asarray(x, dtype=np.int64)
        for layer in program.layers:
            placements = layer.place(h, program.rows)
            outputs = [reference(p.tile)[1] for p in placements]
            self.inputs.append(h)
            self.placements.append(placements)
            self.outputs.append(outputs)
            h = layer.gather(h, placements, outputs)
        self.logits = torch.from_numpy(h)
        with torch.no_grad():
            if not torch.equal(self.logits, net.forward(torch.from_numpy(np.asarray(x)))):
                raise ValueError("the compiled network differs from the golden model")

    def faulty_logits(self, i, t, tile_outputs):
        """Logits ``[F, B, classes]`` with tile ``t`` of layer ``i`` giving each of
        ``tile_outputs`` (``[F, m, n]``) and the rest of the network fault-free."""
        layer = self.program.layers[i]
        placements, golden = self.placements[i], self.outputs[i]
        out = self.logits.unsqueeze(0).repeat(len(tile_outputs), 1, 1)
        changed = [f for f, y in enumerate(tile_outputs) if not np.array_equal(y, golden[t])]
        if not changed:
            return out
        nexts = []
        for f in changed:
            outputs = list(golden)
            outputs[t] = tile_outputs[f]
            nexts.append(layer.gather(self.inputs[i], placements, outputs))
        h = torch.from_numpy(np.concatenate(nexts))
        if i + 1 < len(self.program.layers):
            with torch.no_grad():
                h = self.net.forward(h, start=i + 1)
        out[changed] = h.reshape(len(changed), *self.logits.shape)
        return out


class NetworkFaultSpace:
    """The RTL fault population of a compiled network (see the module docstring).

    Parameters
    ----------
    golden : GoldenRun
    catalogue : sim.sites.Catalogue
        Sites of the accelerator the program runs on.
    model : {"bitflip", "stuck0", "stuck1"}
    sites : str or list of str, optional
        Paths or globs of :func:`sim.sites.resolve` (default: the whole catalogue).
    layers : list of str, optional
        Layers whose tiles are injected (default: all).
    """

    def __init__(self, golden, catalogue, model, *, sites=None, layers=None):
        if model not in MODELS:
            raise ValueError(f"RTL campaign fault model must be one of {', '.join(MODELS)}, "
                             f"not {model!r}")
        chosen = list(catalogue) if sites is None else resolve(catalogue, sites)
        names = [layer.name for layer in golden.program.layers]
        if layers is not None:
            unknown = [name for name in layers if name not in names]
            if unknown:
                raise ValueError(f"unknown layer(s) {', '.join(unknown)}; the network has "
                                 f"{', '.join(names)}")
        program = golden.program
        self._spaces = []
        for i, layer in enumerate(program.layers):
            if layers is not None and layer.name not in layers:
                continue
            runs = [(layer.name, t) for t in range(len(golden.placements[i]))]
            cycles = (tile_cycles(program.rows, program.cols, layer.k)
                      if model == "bitflip" else None)
            self._spaces.append(RTLFaultSpace(chosen, model, cycles=cycles, runs=runs))
        self._starts = np.cumsum([0] + [len(space) for space in self._spaces])
        self.sites = [site.path for site in chosen]
        self.model = model
        self.layers = [name for name in names if layers is None or name in layers]

    def __len__(self):
        return int(self._starts[-1])

    def fault(self, k):
        """Fault number ``k`` of the population."""
        if not 0 <= k < len(self):
            raise ValueError(f"fault number {k!r} outside the population 0..{len(self) - 1}")
        s = int(np.searchsorted(self._starts, k, side="right")) - 1
        return self._spaces[s].fault(int(k - self._starts[s]))


def _definition(**fields):
    definition = {"tool": "neuroharden", "level": "rtl", **fields}
    text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
    return definition, hashlib.sha256(text.encode()).hexdigest()[:32]


def _program_sha256(program):
    digest = hashlib.sha256()
    for layer in program.layers:
        for array in (layer.weight, layer.bias, layer.multiplier, layer.shift, layer.lcu,
                      layer.tmr, layer.read):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        digest.update(f"{layer.name}{layer.relu}{layer.pool}{layer.vote_mode}".encode())
    return digest.hexdigest()


def run_network_campaign(net, x, labels, *, fault_model="bitflip", sites=None, layers=None,
                         confidence=0.95, margin=0.01, faults=None, seed=0, db_path,
                         rows=8, cols=8, sim="verilator", workers=1, scheduler=None,
                         chunk=128, progress=None, model_sha256=None,
                         build_root=DEFAULT_BUILD_ROOT):
    """Run (or resume) an RTL campaign on an integer network and return its summary.

    Parameters
    ----------
    net : golden.intmodel.IntNet or golden.hardened.HardenedNet
    x : torch.Tensor
        int8 input images ``[B, C, H, W]`` (int64).
    labels : torch.Tensor
        ``[B]`` labels.
    fault_model : {"bitflip", "stuck0", "stuck1"}
    sites : str or list of str, optional
        Site paths or globs (default: every catalogued site).
    layers : list of str, optional
        Layers whose tiles are injected (default: all).
    confidence, margin : float
        Leveugle sizing of the sample when ``faults`` is None.
    faults : int, optional
        Explicit sample size.
    seed : int
    db_path : str
        SQLite results database (:class:`golden.campaign.ResultsDB`).
    rows, cols : int
        Accelerator size (its ``k_depth`` is the network's largest reduction).
    sim : {"verilator", "icarus"}
    workers : int
        ``1`` runs in-process; more starts a Dask ``LocalCluster``.
    scheduler : str, optional
        Address of a running Dask scheduler (overrides ``workers``).
    chunk : int
        Most faults per simulator job (one process, several tiles) and per database
        commit.
    progress : bool, optional
        tqdm bar; by default only on a terminal.
    model_sha256 : str, optional
        Identity of the network in the campaign definition (default: a hash of the
        compiled program).
    build_root : path-like

    Returns
    -------
    dict
        :func:`golden.campaign.summarize`'s summary plus ``campaign``, ``population``,
        ``db``, ``fault_model``, ``level``, ``sim``, ``sites``, ``tiles``, ``rows``,
        ``cols``, ``k_depth`` and ``protect``.

    Raises
    ------
    ValueError
        Bad network, sites, layers, sample size or database.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 fault, got {chunk}")
    program = compile_network(net, rows=rows, cols=cols)
    x_np = np.asarray(x, dtype=np.int64)
    golden = GoldenRun(net, program, x_np)
    config = dict(rows=program.rows, cols=program.cols, k_depth=program.k_depth,
                  protect=program.protect)
    _, catalogue = accelerator_design(config, sim=sim, build_root=build_root)
    space = NetworkFaultSpace(golden, catalogue, fault_model, sites=sites, layers=layers)
    n = faults if faults is not None else leveugle_sample_size(len(space), confidence,
                                                                 margin)
    if not 1 <= n <= len(space):
        raise ValueError(f"cannot draw {n} faults from a population of {len(space)}")
    labels = torch.as_tensor(labels)
    fault_free_correct = int((golden.logits.argmax(1) == labels).sum())
    definition, cid = _definition(
        model_sha256=model_sha256 or _program_sha256(program), fault_model=fault_model,
        sites=sites if sites is None or isinstance(sites, str) else list(sites),
        layers=space.layers, faults=n, seed=seed, images=len(x_np), population=len(space),
        rows=program.rows, cols=program.cols, k_depth=program.k_depth, sim=sim)
    db = ResultsDB(db_path)
    try:
        db.register(cid, definition, n, len(x_np), fault_free_correct)
        indices = sample_indices(len(space), n, seed)
        done = db.done(cid)
        todo = [k for k in range(n) if k not in done]
        start = time.perf_counter()
        _evaluate(golden, net, config, space, indices, todo, labels, db, cid, sim, workers,
                  scheduler, chunk, progress, n, build_root)
        seconds = time.perf_counter() - start
        summary = summarize(db.results(cid), n, len(x_np), fault_free_correct, seconds,
                            len(todo), db.evaluation(cid))
    finally:
        db.close()
    summary.update({"campaign": cid, "population": len(space), "db": str(db_path),
                    "fault_model": fault_model, "target": "rtl", "level": "rtl",
                    "sim": sim, "sites": len(space.sites),
                    "tiles": sum(len(p) for p in golden.placements), "rows": program.rows,
                    "cols": program.cols, "k_depth": program.k_depth,
                    "protect": program.protect})
    return summary


def _jobs(space, indices, todo, chunk, layers):
    """Simulator jobs of at most ``chunk`` faults, each a list of ``(layer, tile,
    [fault numbers])`` groups; tiles in the order of ``layers`` (names) and index."""
    groups = defaultdict(list)
    for k in todo:
        fault = space.fault(indices[k])
        groups[(fault.layer, fault.tile)].append(k)
    jobs, job, size = [], [], 0
    for layer, tile in sorted(groups, key=lambda key: (layers.index(key[0]), key[1])):
        ks = groups[(layer, tile)]
        while ks:
            job.append((layer, tile, ks[:chunk - size]))
            size += len(job[-1][2])
            ks = ks[len(job[-1][2]):]
            if size == chunk:
                jobs.append(job)
                job, size = [], 0
    return jobs + [job] if job else jobs


def _evaluate(golden, net, config, space, indices, todo, labels, db, cid, sim, workers,
              scheduler, chunk, progress, planned, build_root):
    from tqdm import tqdm

    names = [layer.name for layer in golden.program.layers]
    scale = net.layers[-1].out_scale
    jobs = _jobs(space, indices, todo, chunk, names)
    bar = tqdm(total=planned, initial=planned - len(todo), desc="rtl campaign",
               unit="fault", disable=None if progress is None else not progress)

    last = time.perf_counter()

    def store(job, results):
        nonlocal last
        rows = []
        for (layer, tile, ks), result in zip(job, results):
            faulty = golden.faulty_logits(names.index(layer), tile, result.outputs)
            outcomes = classify(faulty, golden.logits, labels, scale)
            rows += [(k, indices[k], f.to_json(), r)
                     for k, f, r in zip(ks, result.faults, outcomes)]
        # One commit per job: a killed campaign loses at most the jobs in flight.
        now = time.perf_counter()
        db.add(cid, rows, seconds=now - last)
        last = now
        bar.update(len(rows))

    def groups(job, encode):
        return [(golden.placements[names.index(layer)][tile].tile,
                 [encode(space.fault(indices[k])) for k in ks]) for layer, tile, ks in job]

    try:
        if scheduler is None and workers <= 1:
            for job in jobs:
                store(job, run_groups(config, groups(job, lambda fault: fault), sim=sim,
                                      accumulators=False, build_root=build_root))
            return
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if scheduler is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        try:
            futures = {client.submit(run_chunk, dict(config),
                                     groups(job, lambda fault: fault.to_dict()), sim=sim,
                                     accumulators=False,
                                     build_root=str(os.path.abspath(build_root)),
                                     pure=False): job
                       for job in jobs}
            for fut in as_completed(futures):
                store(futures[fut], fut.result())
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    finally:
        bar.close()


def run_rtl_campaign(model_path, *, images=DEFAULT_IMAGES, data_dir=None, **options):
    """:func:`run_network_campaign` on a checkpoint's first ``images`` test images.

    Parameters
    ----------
    model_path : str
        ``MODEL.pt`` (quantized as ``neuroharden eval`` does) or ``HARDENED.pt``.
    images : int
        First test images of the model's dataset.
    data_dir : str, optional
        Dataset directory (default: the one used for training).
    **options
        Keyword arguments of :func:`run_network_campaign`.
    """
    from neuroharden.golden.quantize import quantize_checkpoint

    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such checkpoint")
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    net, _, _, data = quantize_checkpoint(model_path, data_dir)
    if images > len(data.x_test):
        raise ValueError(f"--images {images} exceeds the {len(data.x_test)} test images")
    x = net.quantize_input(data.x_test[:images])
    return run_network_campaign(net, x, data.y_test[:images],
                                model_sha256=file_sha256(model_path), **options)


def _extend(command):
    """``neuroharden campaign``: golden's model-level command plus the RTL options."""
    from neuroharden.golden.cli_campaign import campaign as model_campaign

    params = [param for param in model_campaign.params if param.name != "level"]
    params.insert(1, click.Option(
        ["--level"], type=click.Choice(["model", "rtl"]), default="model",
        show_default=True, help="Injection level: the integer model, or the RTL "
        "accelerator (cross-layer: the faulty tile on RTL, the rest in the model)."))
    params += [
        click.Option(["--sim"], type=click.Choice(SIMULATORS), default="verilator",
                     show_default=True, help="Simulator of --level rtl."),
        click.Option(["--sites"], multiple=True, help="--level rtl: site path or glob "
                     "of the accelerator's catalogue (repeatable; default: every site)."),
        click.Option(["--rows"], type=click.IntRange(min=1), default=8, show_default=True,
                     help="--level rtl: accelerator rows."),
        click.Option(["--cols"], type=click.IntRange(min=1), default=8, show_default=True,
                     help="--level rtl: accelerator columns."),
    ]
    command.params = params
    return command


_RTL_ONLY = ("sim", "sites", "rows", "cols")
_MODEL_ONLY = ("target", "bits", "bit_positions")


@_extend
@click.command("campaign")
@click.pass_context
def campaign(ctx, **kwargs):
    """Statistical fault-injection campaign on the int8 model or the RTL accelerator.

    Resumable (SQLite). With --level rtl every fault is injected into the RTL tile that
    holds it while the accelerator computes it; the rest of the network runs in the
    golden integer model. --fault bitflip upsets a bit at a sampled cycle of the tile,
    stuck0 / stuck1 hold it for the whole tile.
    """
    from neuroharden.golden.cli_campaign import campaign as model_campaign

    given = {name for name in kwargs
             if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
    if kwargs["level"] == "model":
        misplaced = sorted(given & set(_RTL_ONLY))
        if misplaced:
            raise click.ClickException(f"--{misplaced[0].replace('_', '-')} needs "
                                       f"--level rtl")
        for name in _RTL_ONLY:
            kwargs.pop(name)
        return ctx.invoke(model_campaign, **kwargs)
    misplaced = sorted(given & set(_MODEL_ONLY))
    if misplaced:
        raise click.ClickException(f"--{misplaced[0].replace('_', '-')} applies to "
                                   f"--level model only")
    if kwargs["fault_model"] not in MODELS:
        raise click.ClickException(f"--level rtl takes --fault {' | '.join(MODELS)}, "
                                   f"not {kwargs['fault_model']}")
    layers = kwargs["layers"]
    try:
        summary = run_rtl_campaign(
            kwargs["model_path"], images=kwargs["images"] or DEFAULT_IMAGES,
            data_dir=kwargs["data_dir"], fault_model=kwargs["fault_model"],
            sites=list(kwargs["sites"]) or None,
            layers=[t.strip() for t in layers.split(",") if t.strip()] if layers else None,
            confidence=kwargs["confidence"], margin=kwargs["margin"],
            faults=kwargs["faults"], seed=kwargs["seed"], db_path=kwargs["db_path"],
            rows=kwargs["rows"], cols=kwargs["cols"], sim=kwargs["sim"],
            workers=kwargs["workers"], scheduler=kwargs["scheduler"],
            chunk=kwargs["chunk"])
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if kwargs["as_json"]:
        click.echo(json.dumps(summary))
        return
    n = max(1, summary["completed"])
    fps = summary["faults_per_second"]
    click.echo(
        f"rtl campaign {summary['campaign'][:12]}: {summary['completed']}/"
        f"{summary['faults']} faults ({summary['fault_model']} in {summary['sites']} "
        f"sites, population {summary['population']}, {summary['tiles']} tiles on a "
        f"{summary['rows']}x{summary['cols']} accelerator, protect {summary['protect']}, "
        f"{summary['sim']}) on {summary['images']} images\n"
        f"  paper 003: masked {summary['masked']} ({100 * summary['masked'] / n:.2f} %), "
        f"tolerable {summary['tolerable']} ({100 * summary['tolerable'] / n:.2f} %), "
        f"critical {summary['critical_003']} ({100 * summary['critical_003'] / n:.2f} %)\n"
        f"  paper 004: critical faults {summary['critical']} "
        f"({100 * summary['critical_rate']:.2f} %), accuracy loss "
        f"{100 * summary['accuracy_loss']:.3f} points (fault-free "
        f"{100 * summary['fault_free_accuracy']:.2f} %)\n"
        f"  {summary['evaluated_now']} evaluated now"
        + (f", {fps:.2f} faults/s" if fps else ""))

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
faulty logits are classified with :func:`golden.outcomes.classify` (paper 003's and
paper 004's classes, accuracy). The campaign is run by golden's campaign runner
(:func:`golden.campaign.run`, the same results database and summary keys as
model-level campaigns) with :class:`RTLEvaluator` as its evaluator.

Fault space: per layer, the catalogued sites chosen by ``sites`` (a path, a glob or a
list; default every site of the accelerator) x their bits x the injection cycles of a
tile of that layer (:func:`hw.contract.tile_cycles`, bitflips) or x 1 (``stuck0`` /
``stuck1``, held for the whole tile), times the layer's tiles
(:class:`sim.rtl_faults.RTLFaultSpace` with ``runs``). The layers' spaces are
concatenated in layer order; the sample is the Leveugle size of the total (or
``faults``) drawn without replacement with :func:`golden.sampling.sample_indices`.

Batches: faults are grouped by (layer, tile), and the groups, in network order, are
packed into simulator jobs of at most ``chunk`` faults (a group that does not fit the
rest of a job continues in the next one). One job is one simulator process that runs
its tiles in turn (:func:`sim.rtl_runner.run_groups`), so a whole-network campaign,
whose faults spread over hundreds of tiles, pays the simulator's start-up once per job
rather than once per tile. A job is a batch of the runner: its rows are committed when
its simulator process returns, so a campaign killed at any point (``kill -9``
included) and rerun with the same arguments runs only the missing faults and stores
none twice. With Dask (``workers > 1`` or a scheduler address) each job is a task
(:mod:`golden.executor`): a worker keeps its simulator build, runs the job and
classifies its faults; the client alone writes the database.
"""

import hashlib
import os
from collections import defaultdict

import numpy as np
import torch

from neuroharden.golden.campaign import CampaignDefinition, file_sha256, run
from neuroharden.golden.checkpoint import dataset_field, quantize_checkpoint
from neuroharden.golden.evaluator import Evaluator
from neuroharden.golden.executor import make_executor
from neuroharden.golden.outcomes import classify
from neuroharden.golden.sampling import leveugle_sample_size
from neuroharden.hw.contract import tile_cycles
from .compiler import compile_network
from .rtl_faults import RTLFaultSpace
from .rtl_runner import accelerator_design, run_groups
from .runner import DEFAULT_BUILD_ROOT, SIMULATORS
from .sites import resolve
from .tile import reference

__all__ = ["MODELS", "DEFAULT_IMAGES", "NetworkFaultSpace", "GoldenRun", "RTLEvaluator",
           "run_network_campaign", "run_rtl_campaign"]

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


def _program_sha256(program):
    digest = hashlib.sha256()
    for layer in program.layers:
        for array in (layer.weight, layer.bias, layer.multiplier, layer.shift, layer.lcu,
                      layer.tmr, layer.read):
            digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        # Zero points only where there are any, so symmetric programs keep their identity.
        if layer.zero_point.any() or layer.pad_value:
            for array in (layer.zero_point, [layer.pad_value]):
                digest.update(np.ascontiguousarray(array, dtype=np.int64).tobytes())
        digest.update(f"{layer.name}{layer.relu}{layer.pool}{layer.vote_mode}".encode())
    return digest.hexdigest()


def run_network_campaign(net, x, labels, *, fault_model="bitflip", sites=None, layers=None,
                         confidence=0.95, margin=0.01, faults=None, seed=0, db_path,
                         rows=8, cols=8, sim="verilator", workers=1, scheduler=None,
                         chunk=128, progress=None, model_sha256=None, identity=None,
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
    identity : dict, optional
        More entries of the campaign definition (the dataset of an imported network,
        :func:`golden.checkpoint.dataset_field`).
    build_root : path-like

    Returns
    -------
    dict
        :func:`golden.campaign.run`'s summary plus ``fault_model``, ``target``,
        ``level``, ``sim``, ``sites``, ``tiles``, ``rows``, ``cols``, ``k_depth`` and
        ``protect``.

    Raises
    ------
    ValueError
        Bad network, sites, layers, sample size or database.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    executor = make_executor(workers=workers, scheduler=scheduler)
    program = compile_network(net, rows=rows, cols=cols)
    x_np = np.asarray(x, dtype=np.int64)
    golden = GoldenRun(net, program, x_np)
    config = program.accelerator
    _, catalogue = accelerator_design(config, sim=sim, build_root=build_root)
    space = NetworkFaultSpace(golden, catalogue, fault_model, sites=sites, layers=layers)
    n = faults if faults is not None else leveugle_sample_size(len(space), confidence,
                                                                 margin)
    definition = CampaignDefinition(
        level="rtl", faults=n, seed=seed, images=len(x_np), population=len(space),
        fields={**(identity or {}), "model_sha256": model_sha256 or _program_sha256(program),
                "fault_model": fault_model,
                "sites": sites if sites is None or isinstance(sites, str) else list(sites),
                "layers": space.layers, "rows": program.rows, "cols": program.cols,
                "k_depth": program.k_depth, "sim": sim})
    evaluator = RTLEvaluator(golden, space, config, torch.as_tensor(labels), sim=sim,
                             build_root=build_root)
    summary = run(definition, evaluator, db_path=db_path, executor=executor, chunk=chunk,
                  progress=progress, label="rtl campaign")
    summary.update({"fault_model": fault_model, "target": "rtl", "level": "rtl",
                    "sim": sim, "sites": len(space.sites),
                    "tiles": sum(len(p) for p in golden.placements), "rows": program.rows,
                    "cols": program.cols, "k_depth": program.k_depth,
                    "protect": program.protect})
    return summary


class RTLEvaluator(Evaluator):
    """Faults of a :class:`NetworkFaultSpace` run on the RTL accelerator, the rest of the
    network in the golden model (:class:`golden.evaluator.Evaluator`).

    A batch is a simulator job (:func:`_jobs`): ``(layer, tile, [population indices])``
    groups, each tile once.

    Parameters
    ----------
    golden : GoldenRun
    space : NetworkFaultSpace
    config : hw.contract.AcceleratorConfig
        The accelerator (:func:`sim.rtl_runner.run_groups`).
    labels : torch.Tensor
        ``[B]`` labels of the images.
    sim : {"verilator", "icarus"}
    build_root : path-like
        Where the simulator build is kept (made absolute: workers may run elsewhere).
    """

    def __init__(self, golden, space, config, labels, *, sim, build_root):
        self.golden, self.space, self.config, self.labels = golden, space, config, labels
        self.sim, self.build_root = sim, os.path.abspath(build_root)
        self._names = [layer.name for layer in golden.program.layers]

    def fault_free_correct(self):
        return int((self.golden.logits.argmax(1) == self.labels).sum())

    def batches(self, faults, chunk):
        return _jobs(self.space, faults, chunk, self._names)

    def evaluate(self, batch):
        golden = self.golden
        groups = [(golden.placements[self._names.index(layer)][tile].tile,
                   [self.space.fault(p) for p in ps]) for layer, tile, ps in batch]
        results = run_groups(self.config, groups, sim=self.sim, accumulators=False,
                             build_root=self.build_root)
        scale = golden.net.layers[-1].out_scale
        rows = []
        for (layer, tile, ps), result in zip(batch, results):
            faulty = golden.faulty_logits(self._names.index(layer), tile, result.outputs)
            outcomes = classify(faulty, golden.logits, self.labels, scale)
            rows += [(p, fault.to_json(), {**outcome, "detected": int(detected)})
                     for p, fault, outcome, detected in zip(ps, result.faults, outcomes,
                                                            result.detected)]
        return rows


def _jobs(space, faults, chunk, layers):
    """Simulator jobs of at most ``chunk`` faults (population indices), each a list of
    ``(layer, tile, [population indices])`` groups; tiles in the order of ``layers``
    (names) and index, each tile's faults in the order given."""
    groups = defaultdict(list)
    for p in faults:
        fault = space.fault(p)
        groups[(fault.layer, fault.tile)].append(p)
    jobs, job, size = [], [], 0
    for layer, tile in sorted(groups, key=lambda key: (layers.index(key[0]), key[1])):
        ps = groups[(layer, tile)]
        while ps:
            job.append((layer, tile, ps[:chunk - size]))
            size += len(job[-1][2])
            ps = ps[len(job[-1][2]):]
            if size == chunk:
                jobs.append(job)
                job, size = [], 0
    return jobs + [job] if job else jobs


def run_rtl_campaign(model_path, *, images=DEFAULT_IMAGES, data_dir=None, dataset=None,
                     **options):
    """:func:`run_network_campaign` on a network file's first ``images`` test images.

    Parameters
    ----------
    model_path : str
        ``MODEL.pt`` (quantized as ``neuroharden eval`` does), ``HARDENED.pt``, a
        quantized ``.onnx`` or a ``QNET.npz``
        (:func:`golden.checkpoint.quantize_checkpoint`).
    images : int
        First test images of the model's dataset.
    data_dir : str, optional
        Dataset directory (default: the one used for training).
    dataset : str, optional
        Image source (default: the checkpoint's; ``digits`` for an imported network).
    **options
        Keyword arguments of :func:`run_network_campaign`.
    """
    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such checkpoint")
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    net, _, _, data = quantize_checkpoint(model_path, data_dir, dataset)
    if images > len(data.x_test):
        raise ValueError(f"--images {images} exceeds the {len(data.x_test)} test images")
    x = net.quantize_input(data.x_test[:images])
    return run_network_campaign(net, x, data.y_test[:images],
                                model_sha256=file_sha256(model_path),
                                identity=dataset_field(model_path, dataset, data), **options)

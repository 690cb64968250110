"""Host side of RTL fault injection: tiles and their faults, one simulator process.

The accelerator (``hw.accelerator``) is generated and built once per configuration
(:func:`sim.runner.build` caches builds on disk; Verilator models are built with
``-O3`` and without the ``forceable`` control file, as
:class:`sim.rtl_faults.Injection` only deposits); :func:`run_groups` hands a list of
(tile, faults) groups to one simulator process running :mod:`sim.tb_rtl_faults`, which
for each group in turn loads the tile once, runs it fault-free, then runs every fault
against the loaded operands and writes the per-fault outputs to an ``.npz`` file (no
pickle) read back here. The simulator's start-up (seconds) is paid once per job, so a
campaign whose faults spread over many tiles packs them into few jobs; the results of
a group do not depend on the groups run before it in the process.
:func:`run_faults` is the one-group job. :func:`run_faults_dask` splits a fault list
over Dask workers; each worker runs :func:`run_chunk`, which builds (or finds) the
simulator in its own process and keeps the build for the next chunk, so a worker owns
a built simulator.

A configuration is an :class:`hw.contract.AcceleratorConfig`. Faults are
:class:`sim.rtl_faults.RTLFault` s of the accelerator's site catalogue (:mod:`sim.sites`);
a bitflip's ``cycle`` counts as ``AcceleratorTB.run``'s ``on_cycle`` does
(:class:`hw.contract.Schedule`: 0 samples ``start``; :func:`hw.contract.tile_cycles`
cycles per tile), a stuck-at fault holds for the whole run.
"""

import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.hw.verilog import generate
from .runner import DEFAULT_BUILD_ROOT, SimulationError, build, run
from .sites import design_catalogue
from .tile import Tile, reference

__all__ = ["DRIVERS", "FaultResults", "save_tile", "load_tile", "accelerator_design",
           "run_groups", "run_faults", "run_chunk", "run_faults_dask"]

#: Fault drivers of :mod:`sim.tb_rtl_faults`: operands loaded once and a free-running
#: simulator, or a reload and a run stepped edge by edge per fault.
DRIVERS = ("fast", "naive")

_TILE_FIELDS = ("activations", "weights", "bias", "multiplier", "shift", "relu",
                "zero_point", "lcu_pairs", "lcu_wide", "tmr_triples")


def save_tile(path, tile):
    """Write a :class:`sim.tile.Tile` to an ``.npz`` file (plain arrays, no pickle)."""
    arrays = {name: np.asarray(getattr(tile, name)) for name in _TILE_FIELDS}
    with open(path, "wb") as file:
        np.savez(file, vote_mode=np.array(tile.vote_mode), **arrays)


def load_tile(path):
    """Read a tile written by :func:`save_tile`."""
    with np.load(path, allow_pickle=False) as data:
        return Tile(vote_mode=str(data["vote_mode"]),
                    **{name: data[name] for name in _TILE_FIELDS})


@lru_cache(maxsize=None)
def _design(config, sim, build_root):
    parameters = config.to_dict()
    verilog = generate("accelerator", **parameters)
    root = Path(build_root)
    root.mkdir(parents=True, exist_ok=True)
    # Faults are deposited, never forced: a Verilator model without forceable
    # registers simulates about twice as fast, and -O3 about 1.7x faster again.
    design = build(verilog, toplevel="accelerator", sim=sim, build_root=root,
                   log=root / f"accelerator-{sim}-build.log", forceable=False,
                   optimize=True)
    return design, design_catalogue("accelerator", **parameters)


def accelerator_design(config, *, sim="verilator", build_root=DEFAULT_BUILD_ROOT):
    """The built accelerator of a configuration and its site catalogue, cached per process.

    Parameters
    ----------
    config : hw.contract.AcceleratorConfig

    Returns
    -------
    design : sim.runner.Build
    catalogue : sim.sites.Catalogue
    """
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"Accelerator configuration must be an AcceleratorConfig, "
                        f"not {type(config).__name__}")
    return _design(config, sim, str(Path(build_root).resolve()))


def _loaded_sites(config, catalogue):
    """The paths of ``catalogue`` (the accelerator's) that only the load port writes:
    the registers and buffer words of the register map with a load-port select, which
    a run never rewrites."""
    loaded = [register for register in config.registers.values() if register.loaded]
    return [site.path for site in catalogue
            if any(register.pattern.match(site.path) for register in loaded)]


@dataclass(frozen=True)
class FaultResults:
    """Per-fault outputs of one tile.

    Attributes
    ----------
    faults : tuple of sim.rtl_faults.RTLFault
    outputs : numpy.ndarray
        int64 ``[F, m, n]``: the protected int8 outputs of every faulty run.
    accumulators : numpy.ndarray or None
        int64 ``[F, m, n]``: the biased accumulators each run drained (None when not
        recorded).
    cycles : numpy.ndarray
        int64 ``[F]``: cycles from ``start`` to ``done``, -1 when ``done`` did not rise
        within the timeout (a hang).
    detected : numpy.ndarray
        int64 ``[F]``: the error flags the protection unit raised in each run, a bit
        mask of :data:`hw.contract.ERROR_FLAGS` (bit ``i`` for flag ``i``; always 0
        without protection).
    expected : numpy.ndarray
        int64 ``[m, n]``: the fault-free outputs (``sim.tile.reference``, which the
        RTL's fault-free run of the same process matched).
    expected_accumulators : numpy.ndarray
        int64 ``[m, n]``: the fault-free biased accumulators.
    seconds : float
        Wall-clock seconds of the fault loop inside the simulator (without start-up,
        loading and the fault-free run); summed over processes for a split run.
    cpu_seconds : float
        CPU seconds of the simulator process in that loop (simulator and Python), the
        figure to compare on a loaded machine.
    """

    faults: tuple
    outputs: np.ndarray
    accumulators: np.ndarray
    cycles: np.ndarray
    detected: np.ndarray
    expected: np.ndarray
    expected_accumulators: np.ndarray
    seconds: float
    cpu_seconds: float

    @property
    def differing(self):
        """int64 ``[F]``: output elements that differ from the fault-free outputs."""
        return (self.outputs != self.expected).sum(axis=(1, 2))

    @property
    def masked(self):
        """bool ``[F]``: the whole tile output equals the fault-free one."""
        return self.differing == 0

    @property
    def hung(self):
        """bool ``[F]``: ``done`` did not rise in time."""
        return self.cycles < 0

    def rows(self):
        """One JSON-ready dict per fault: the fault, ``masked``, ``differing``,
        ``cycles``, ``detected`` and the positions ``[[r, c], ...]`` of the differing outputs."""
        out = []
        for index, fault in enumerate(self.faults):
            diff = np.argwhere(self.outputs[index] != self.expected)
            out.append({**fault.to_dict(), "masked": not len(diff),
                        "differing": len(diff), "cycles": int(self.cycles[index]),
                        "detected": int(self.detected[index]),
                        "positions": diff.tolist()})
        return out


def _concatenate(parts):
    accumulators = [part.accumulators for part in parts]
    return FaultResults(
        faults=tuple(fault for part in parts for fault in part.faults),
        outputs=np.concatenate([part.outputs for part in parts]),
        accumulators=None if any(a is None for a in accumulators)
        else np.concatenate(accumulators),
        cycles=np.concatenate([part.cycles for part in parts]),
        detected=np.concatenate([part.detected for part in parts]),
        expected=parts[0].expected, expected_accumulators=parts[0].expected_accumulators,
        seconds=sum(part.seconds for part in parts),
        cpu_seconds=sum(part.cpu_seconds for part in parts))


def run_groups(config, groups, *, sim="verilator", accumulators=True, driver="fast",
               build_root=DEFAULT_BUILD_ROOT, log=None):
    """Run every group of (tile, faults) in one simulator process, group after group.

    Parameters
    ----------
    config : hw.contract.AcceleratorConfig
        The accelerator.
    groups : sequence of (sim.tile.Tile, sequence of sim.rtl_faults.RTLFault)
        Each tile (it must fit the accelerator) with the faults run against it
        (faults of the accelerator's catalogue; both checked before the simulator
        starts).
    sim : {"verilator", "icarus"}
    accumulators : bool
        Also record the drained accumulators of every fault (costs the drain cycles
        stepped from Python).
    driver : {"fast", "naive"}
        ``"fast"``: operands loaded once per group, free-running runs; ``"naive"``: a
        reload through the load port and an edge-by-edge run per fault (the baseline of
        ``benchmarks/rtl_campaign.py``).
    build_root : path-like
        Where builds are kept.
    log : path-like, optional
        The simulator's output (default: a temporary file, dropped).

    Returns
    -------
    list of FaultResults
        One per group, in order; each equal to :func:`run_faults` on that group alone.

    Raises
    ------
    ValueError
        For no group, an unknown driver, a fault outside the catalogue, or a tile that
        does not fit.
    sim.runner.SimulationError
        When the simulation fails, or the fault-free run of a tile differs from
        :func:`sim.tile.reference`.
    """
    if driver not in DRIVERS:
        raise ValueError(f"Driver must be one of {', '.join(DRIVERS)}, not {driver!r}")
    groups = [(tile, tuple(faults)) for tile, faults in groups]
    if not groups:
        raise ValueError("No tile to run")
    design, catalogue = accelerator_design(config, sim=sim, build_root=build_root)
    for tile, faults in groups:
        for fault in faults:
            fault.validate(catalogue)
        config.check_tile(*tile.shape)
    with tempfile.TemporaryDirectory(prefix="rtl-faults-") as work:
        work = Path(work)
        files = []
        for index, (tile, faults) in enumerate(groups):
            paths = {name: str(work / f"{index}-{name}") for name in
                     ("tile.npz", "faults.json", "results.npz")}
            save_tile(paths["tile.npz"], tile)
            Path(paths["faults.json"]).write_text(
                json.dumps([fault.to_dict() for fault in faults]))
            files.append({"tile": paths["tile.npz"], "faults": paths["faults.json"],
                          "results": paths["results.npz"]})
        # A file, not the environment: a job can hold hundreds of groups.
        (work / "groups.json").write_text(json.dumps(files))
        job = {"accelerator": config.to_dict(), "groups": str(work / "groups.json"),
               "accumulators": bool(accumulators), "driver": driver,
               "persistent": _loaded_sites(config, catalogue),
               "control": [site.path for site in catalogue if site.kind == "control"]}
        run(design, "neuroharden.sim.tb_rtl_faults", config=job, log=log or work / "sim.log",
            test_dir=work)
        results = []
        for group in files:
            with np.load(group["results"], allow_pickle=False) as data:
                results.append({name: data[name] for name in data.files})
    out = []
    for index, ((tile, faults), result) in enumerate(zip(groups, results)):
        expected_acc, expected = reference(tile, config.acc_width)
        where = f" (tile {index} of the job)" if len(groups) > 1 else ""
        if not np.array_equal(result["golden"], expected):
            raise SimulationError(f"The fault-free run on {sim} differs from "
                                  f"sim.tile.reference{where}")
        if not np.array_equal(result["golden_accumulators"], expected_acc):
            raise SimulationError(f"The fault-free accumulators on {sim} differ from "
                                  f"sim.tile.reference{where}")
        out.append(FaultResults(faults=faults, outputs=result["outputs"],
                                accumulators=result["accumulators"] if accumulators
                                else None,
                                cycles=result["cycles"], detected=result["detected"],
                                expected=expected,
                                expected_accumulators=expected_acc,
                                seconds=float(result["seconds"]),
                                cpu_seconds=float(result["cpu_seconds"])))
    return out


def run_faults(config, tile, faults, *, sim="verilator", accumulators=True, driver="fast",
               build_root=DEFAULT_BUILD_ROOT, log=None):
    """Run every fault of ``faults`` against ``tile`` in one simulator process.

    The one-group :func:`run_groups`; parameters, errors and the fast and naive drivers
    as there.

    Returns
    -------
    FaultResults
    """
    return run_groups(config, [(tile, faults)], sim=sim, accumulators=accumulators,
                      driver=driver, build_root=build_root, log=log)[0]


def run_chunk(config, groups, *, sim="verilator", accumulators=True,
              build_root=DEFAULT_BUILD_ROOT):
    """Dask task: :func:`run_groups` on groups whose faults are given as dicts.

    ``groups`` is a list of ``(tile, [RTLFault.to_dict(), ...])``. The build and the
    catalogue are cached in the worker's process, so every chunk a worker runs reuses
    its simulator build.
    """
    from .rtl_faults import RTLFault

    return run_groups(config, [(tile, [RTLFault.from_dict(data) for data in dicts])
                               for tile, dicts in groups],
                      sim=sim, accumulators=accumulators, build_root=build_root)


def run_faults_dask(client, config, tile, faults, *, sim="verilator", accumulators=True,
                    chunks=None, build_root=DEFAULT_BUILD_ROOT):
    """:func:`run_faults` split over the workers of a Dask ``client``.

    Parameters
    ----------
    client : distributed.Client
    chunks : int, optional
        Number of contiguous chunks of the fault list (default: one per worker).
    Other parameters as :func:`run_faults`.

    Returns
    -------
    FaultResults
        In the order of ``faults``; identical to a single-process run.
    """
    faults = tuple(faults)
    if not faults:
        raise ValueError("No faults to run")
    # Build before the workers start, so they find the build instead of racing for it.
    accelerator_design(config, sim=sim, build_root=build_root)
    if chunks is None:
        chunks = max(1, len(client.scheduler_info()["workers"]))
    bounds = np.linspace(0, len(faults), min(chunks, len(faults)) + 1).astype(int)
    futures = [client.submit(run_chunk, config,
                             [(tile, [fault.to_dict() for fault in faults[low:high]])],
                             sim=sim, accumulators=accumulators,
                             build_root=str(Path(build_root).resolve()), pure=False)
               for low, high in zip(bounds[:-1], bounds[1:])]
    return _concatenate([part for parts in client.gather(futures) for part in parts])

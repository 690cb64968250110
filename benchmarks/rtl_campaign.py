"""RTL fault-injection throughput (8x8 accelerator, K=64 tiles; many tiles per job).

Faults are transient bit-flips sampled from the site catalogue's PE registers
(``a_reg``, ``w_reg``, ``acc``) at every cycle of the tile; each fault runs the whole
tile and its full 8x8 output is compared with the fault-free one
(``sim.tile.reference``). Measured in one run:

* the fast runner (``sim.rtl_runner.run_faults``) under Verilator: operands loaded once
  per simulator process, the simulator runs freely between the cycles that matter;
  with and without recording the drained accumulators of every fault;
* the naive driver on the same faults under Verilator: every fault reloads the tile
  through the load port and runs it awaiting every clock cycle from Python (the same
  simulator process, so its start-up is not charged to it); both must agree;
* the fast runner under Icarus;
* the fast runner split over a Dask ``LocalCluster`` of 1 and of 2 worker processes,
  on a larger fault list (wall-clock time of the whole call, one simulator start-up
  per chunk included; each worker has found its build before the clock starts);
* faults spread over many tiles, as in a whole-network campaign: one job
  (``sim.rtl_runner.run_groups``, one simulator process) of ``--tiles`` random tiles
  with ``--faults-per-tile`` faults each, against one process per tile
  (``run_faults`` on the first ``--separate-tiles`` of them); wall clock of the whole
  calls, start-up, loads and fault-free runs included.

Faults per second are counted over the fault loop inside the simulator (no start-up,
loading or fault-free run), per wall-clock second and per CPU second of the simulator
process (the figure to compare on a shared machine), except for Dask (wall clock of
the whole call). The load average at the start and the end is printed with them. The
last line is a JSON object.

    nice -n 10 .venv/bin/python benchmarks/rtl_campaign.py [--faults 4000]
"""

import argparse
import json
import os
import time

import numpy as np

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.hw.pe import registers as pe_registers
from neuroharden.sim.accelerator_tb import random_tile
from neuroharden.sim.rtl_faults import RTLFaultSpace, sample
from neuroharden.sim.rtl_runner import accelerator_design, run_faults, run_faults_dask, run_groups


def rate(results):
    return len(results.faults) / results.seconds


def cpu_rate(results):
    return len(results.faults) / results.cpu_seconds


def warm(config):
    """On a worker: generate, find the build and catalogue once (kept by the process)."""
    accelerator_design(config, sim="verilator")


def dask_seconds(workers, config, tile, faults):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        client.run(warm, config)
        started = time.perf_counter()
        results = run_faults_dask(client, config, tile, faults, sim="verilator",
                                  accumulators=False)
        return time.perf_counter() - started, results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--faults", type=int, default=4000, help="faults of the fast runs")
    parser.add_argument("--naive-faults", type=int, default=300)
    parser.add_argument("--icarus-faults", type=int, default=200)
    parser.add_argument("--dask-faults", type=int, default=8000)
    parser.add_argument("--tiles", type=int, default=100,
                        help="tiles of the many-tile job")
    parser.add_argument("--faults-per-tile", type=int, default=4)
    parser.add_argument("--separate-tiles", type=int, default=5,
                        help="tiles run one process each, for comparison")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start_load = os.getloadavg()[0]
    config = AcceleratorConfig(rows=args.rows, cols=args.cols, k_depth=args.k)
    tile = random_tile(np.random.default_rng(args.seed), args.rows, args.k, args.cols)
    # Builds (cached on disk) and catalogues, not measured.
    for sim in ("verilator", "icarus"):
        _, catalogue = accelerator_design(config, sim=sim)
    # Every PE register (a_reg, w_reg, acc).
    pe_kinds = {register.kind for register in pe_registers().values()}
    sites = [site for site in catalogue if site.kind in pe_kinds]
    cycles = config.schedule(args.k).cycles
    space = RTLFaultSpace(sites, "bitflip", cycles=cycles)
    faults = sample(space, args.faults, args.seed)

    fast = run_faults(config, tile, faults, sim="verilator", accumulators=False)
    fast_acc = run_faults(config, tile, faults, sim="verilator", accumulators=True)
    naive = run_faults(config, tile, faults[:args.naive_faults], sim="verilator",
                       driver="naive")
    icarus = run_faults(config, tile, faults[:args.icarus_faults], sim="icarus",
                        accumulators=False)
    for name, other in (("fast with accumulators", fast_acc), ("naive", naive),
                        ("icarus", icarus)):
        count = len(other.faults)
        if not np.array_equal(other.outputs, fast.outputs[:count]):
            raise SystemExit(f"{name} outputs differ from the fast Verilator runner")
    if not np.array_equal(naive.accumulators, fast_acc.accumulators[:len(naive.faults)]):
        raise SystemExit("naive accumulators differ from the fast Verilator runner")
    dask_faults = sample(space, args.dask_faults, args.seed + 1)
    one, split1 = dask_seconds(1, config, tile, dask_faults)
    two, split2 = dask_seconds(2, config, tile, dask_faults)
    if not np.array_equal(split1.outputs, split2.outputs):
        raise SystemExit("Dask outputs differ between 1 and 2 workers")
    rng = np.random.default_rng(args.seed + 2)
    groups = []
    for index in range(args.tiles):
        k = int(rng.integers(1, args.k + 1))
        tile_space = RTLFaultSpace(sites, "bitflip", cycles=config.schedule(k).cycles)
        groups.append((random_tile(rng, args.rows, k, args.cols),
                       sample(tile_space, args.faults_per_tile, args.seed + 3 + index)))
    started = time.perf_counter()
    job = run_groups(config, groups, sim="verilator", accumulators=False)
    job_seconds = time.perf_counter() - started
    started = time.perf_counter()
    apart = [run_faults(config, tile, faults, sim="verilator", accumulators=False)
             for tile, faults in groups[:args.separate_tiles]]
    apart_seconds = time.perf_counter() - started
    for together, alone in zip(job, apart):
        if not np.array_equal(together.outputs, alone.outputs):
            raise SystemExit("a many-tile job differs from one process per tile")
    job_faults = sum(len(faults) for _, faults in groups)
    apart_faults = sum(len(faults) for _, faults in groups[:args.separate_tiles])

    summary = {
        "array": f"{args.rows}x{args.cols}", "k": args.k, "tile_cycles": cycles,
        "faults": len(faults), "fault_model": "bitflip", "sites": "PE a_reg/w_reg/acc",
        "population": len(space), "masked": int(fast.masked.sum()),
        "hung": int(fast.hung.sum()),
        "load_average": [start_load, os.getloadavg()[0]], "cpus": os.cpu_count(),
        "verilator_fast_faults_per_s": rate(fast),
        "verilator_fast_faults_per_cpu_s": cpu_rate(fast),
        "verilator_fast_with_accumulators_faults_per_cpu_s": cpu_rate(fast_acc),
        "verilator_naive_faults_per_cpu_s": cpu_rate(naive),
        "fast_over_naive_cpu": cpu_rate(fast) / cpu_rate(naive),
        "icarus_fast_faults_per_cpu_s": cpu_rate(icarus),
        "verilator_fast_with_accumulators_faults_per_s": rate(fast_acc),
        "verilator_naive_faults_per_s": rate(naive), "naive_faults": len(naive.faults),
        "naive": "reload the tile through the load port + run awaiting every cycle + "
                 "read port, per fault, in one simulator process",
        "fast_over_naive": rate(fast) / rate(naive),
        "fast_with_accumulators_over_naive": rate(fast_acc) / rate(naive),
        "icarus_fast_faults_per_s": rate(icarus), "icarus_faults": len(icarus.faults),
        "verilator_over_icarus": rate(fast) / rate(icarus),
        "dask_1_worker_seconds": one, "dask_2_workers_seconds": two,
        "dask_faults": len(dask_faults),
        "dask_1_worker_faults_per_s": len(dask_faults) / one,
        "dask_2_workers_faults_per_s": len(dask_faults) / two,
        "dask_speedup_1_to_2": one / two,
        "many_tiles": len(groups), "many_tiles_faults": job_faults,
        "many_tiles_job_seconds": job_seconds,
        "many_tiles_job_faults_per_s": job_faults / job_seconds,
        "many_tiles_job_seconds_per_tile": job_seconds / len(groups),
        "one_process_per_tile_tiles": len(apart),
        "one_process_per_tile_seconds_per_tile": apart_seconds / len(apart),
        "one_process_per_tile_faults_per_s": apart_faults / apart_seconds,
        "many_tiles_job_over_one_process_per_tile":
            (job_faults / job_seconds) / (apart_faults / apart_seconds),
    }
    print(f"{summary['array']} accelerator, K={args.k} ({cycles} cycles per tile), "
          f"{len(faults)} PE bit-flips ({summary['masked']} masked)")
    print(f"  load average {start_load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs;"
          f" faults per wall-clock second / per CPU second")
    for name, results in (("Verilator fast", fast), ("Verilator fast + accs", fast_acc),
                          ("Verilator naive", naive), ("Icarus fast", icarus)):
        print(f"  {name:24s} {rate(results):8.0f} {cpu_rate(results):8.0f}")
    print(f"  fast / naive: {summary['fast_over_naive']:.1f}x wall, "
          f"{summary['fast_over_naive_cpu']:.1f}x CPU")
    print(f"  Dask, {len(dask_faults)} faults, 1 -> 2 workers: {one:.1f} s -> {two:.1f} s "
          f"({summary['dask_speedup_1_to_2']:.2f}x, wall clock with start-up)")
    print(f"  {len(groups)} tiles x {args.faults_per_tile} faults: one job "
          f"{summary['many_tiles_job_faults_per_s']:.1f} faults/s "
          f"({summary['many_tiles_job_seconds_per_tile']:.3f} s per tile), one process "
          f"per tile {summary['one_process_per_tile_faults_per_s']:.2f} faults/s "
          f"({summary['one_process_per_tile_seconds_per_tile']:.1f} s per tile; "
          f"{summary['many_tiles_job_over_one_process_per_tile']:.0f}x, wall clock)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Subcommands of the simulation package: gemm, run-rtl, sites, campaign.

Each command parses its options, calls the library function that does the job
(:func:`sim.gemm.run_gemm`, :func:`sim.run_rtl.run_checkpoint`,
:func:`sim.sites.design_catalogue`, :func:`golden.campaign.run_campaign` and
:func:`sim.rtl_campaign.run_rtl_campaign`) and prints the result. Bad input is reported
as a one-line :class:`click.ClickException` (exit status 2 through the root group).
The libraries, which import torch or elaborate designs, are imported by the commands
that use them, so that ``--help`` stays fast.
"""

import json
import time
from pathlib import Path

import click

from neuroharden.golden.faults import FAULT_MODELS, TARGETS
from neuroharden.hw.verilog import KINDS
from .runner import SIMULATORS

__all__ = ["gemm", "run_rtl", "sites", "campaign"]

#: Files ``--model`` takes (golden.checkpoint reads them; not imported here, it loads
#: torch, and ``--help`` stays fast).
MODEL_FILES = ("MODEL.pt (neuroharden train), HARDENED.pt (neuroharden harden), a quantized "
               "MODEL.onnx or QNET.npz (neuroharden import)")
#: Help of ``--dataset`` (checked by golden.datasets.load_dataset).
IMAGE_SOURCE = ("Image source, a dataset of `neuroharden train --dataset`: for an imported "
                ".onnx / .npz network (default digits; its input shape must match), for a "
                "checkpoint instead of its own.")


def _load_operand(path, name):
    import numpy as np

    from neuroharden.golden.npy import read_npy

    try:
        array = read_npy(path)
    except ValueError as error:
        raise click.ClickException(f"{name}: {error}") from None
    if array.dtype != np.int8:
        raise click.ClickException(f"{name}: expected dtype int8, got {array.dtype} in {path}")
    if array.ndim != 2 or 0 in array.shape:
        raise click.ClickException(
            f"{name}: expected a non-empty 2-D matrix, got shape {array.shape} in {path}")
    return array


def _check_simulator(sim):
    if sim not in SIMULATORS:
        raise click.ClickException(f"unknown simulator {sim!r}; choose one of "
                                   f"{', '.join(SIMULATORS)}")


@click.command()
@click.option("--a", "a_path", required=True, type=click.Path(dir_okay=False),
              help="int8 .npy matrix A (M x K).")
@click.option("--b", "b_path", required=True, type=click.Path(dir_okay=False),
              help="int8 .npy matrix B (K x N).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write the int32 product C = A @ B (.npy).")
@click.option("--rows", default=8, show_default=True, type=int, help="Array rows (tile height).")
@click.option("--cols", default=8, show_default=True, type=int, help="Array columns (tile width).")
@click.option("--sim", default="verilator", show_default=True,
              help=f"Simulator: {' or '.join(SIMULATORS)}.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def gemm(a_path, b_path, output, rows, cols, sim, as_json):
    """Multiply two int8 matrices on the generated RTL systolic array.

    The array (ROWS x COLS processing elements, int8 operands, int32 accumulators) is
    generated, built for the simulator once per configuration (under build/sim/) and
    simulated; A is tiled over its rows, B over its columns, and K streams through
    whole. The int32 product is written to OUTPUT only when the run succeeds.
    """
    import numpy as np

    from neuroharden.golden.atomic import atomic_output
    from .gemm import run_gemm

    _check_simulator(sim)
    for name, value in (("--rows", rows), ("--cols", cols)):
        if value < 1:
            raise click.ClickException(f"{name} must be a positive integer, not {value}")
    a = _load_operand(a_path, "--a")
    b = _load_operand(b_path, "--b")
    if a.shape[1] != b.shape[0]:
        raise click.ClickException(
            f"shape mismatch: A is {a.shape[0]}x{a.shape[1]} but B is {b.shape[0]}x{b.shape[1]}")
    started = time.perf_counter()
    product, stats = run_gemm(a, b, rows=rows, cols=cols, sim=sim)
    cycles = stats["cycles"]
    seconds = time.perf_counter() - started
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(output) as handle:
        np.save(handle, product)
    summary = {"m": a.shape[0], "k": a.shape[1], "n": b.shape[1], "rows": rows, "cols": cols,
               "sim": sim, "cycles": cycles, "seconds": round(seconds, 3), "output": str(output)}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"C = A @ B ({summary['m']}x{summary['k']} @ {summary['k']}x{summary['n']}) "
                   f"on a {rows}x{cols} array under {sim}: {cycles} cycles, "
                   f"{seconds:.1f} s -> {output}")


@click.command("run-rtl")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help=f"Network file: {MODEL_FILES}.")
@click.option("--images", default=8, show_default=True, type=int,
              help="First test images of the model's dataset to run.")
@click.option("--rows", default=8, show_default=True, type=int, help="Array rows.")
@click.option("--cols", default=8, show_default=True, type=int, help="Array columns.")
@click.option("--sim", default="verilator", show_default=True,
              help=f"Simulator: {' or '.join(SIMULATORS)}.")
@click.option("--dataset", metavar="NAME", default=None, help=IMAGE_SOURCE)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--bus", default="port", show_default=True, type=click.Choice(["port", "axi"]),
              help="port: the accelerator's own load / read port; axi: the AXI accelerator "
                   "(generate accelerator-axi) through AXI4-Lite and AXI4-Stream, driven by "
                   "cocotbext-axi, with its error counters reported.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def run_rtl(model_path, images, rows, cols, sim, dataset, data_dir, bus, as_json):
    """Run whole inferences on the RTL accelerator and compare with the golden model.

    Every conv and fc layer runs on a generated ROWS x COLS accelerator (operand buffers
    as deep as the network's largest reduction, the protection unit of a hardened
    network); im2col, padding, pooling and flattening happen on the host. Reports the
    fraction of images whose int8 logits equal the golden model's (agreement), the
    tiles, the simulated cycles and the time taken; with --bus axi, through the AXI
    accelerator's buses, also its error counters (0 on a fault-free run).
    """
    from .run_rtl import run_checkpoint

    _check_simulator(sim)
    if images < 1:
        raise click.ClickException(f"--images must be a positive integer, not {images}")
    try:
        summary = run_checkpoint(model_path, images=images, rows=rows, cols=cols, sim=sim,
                                 data_dir=data_dir, dataset=dataset, bus=bus)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"{summary['model']} (hardening: {summary['scheme']}) on a {rows}x{cols} "
               f"accelerator, k_depth {summary['k_depth']}, under {sim}: {images} images, "
               f"{summary['tiles']} tiles, {summary['cycles']} cycles, "
               f"{summary['sim_seconds']:.1f} s simulated ({summary['seconds']:.1f} s in all)")
    agreeing = images - len(summary["disagreeing_images"])
    click.echo(f"int8 logits identical to golden on {agreeing} of {images} images "
               f"(agreement {summary['agreement']:.4f})")
    if bus == "axi":
        counts = ", ".join(f"{flag} {count}" for flag, count in summary["error_counters"].items())
        click.echo(f"AXI error counters: {counts}")


def _site_table(found):
    rows = [("path", "width", "kind", "module")]
    rows += [(site.path, str(site.width), site.kind, site.module) for site in found]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join("  ".join(cell.ljust(width) if column != 1 else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


@click.command()
@click.option("--kind", "kind", default="array", show_default=True,
              type=click.Choice(list(KINDS)), help="Design to catalogue (as for 'generate').")
@click.option("--rows", default=4, show_default=True, type=int, help="Array rows.")
@click.option("--cols", default=4, show_default=True, type=int, help="Array columns.")
@click.option("--width", default=8, show_default=True, type=int, help="Operand width (8 or 16).")
@click.option("--acc-width", default=32, show_default=True, type=int, help="Accumulator width.")
@click.option("--protect", default="none", show_default=True,
              type=click.Choice(["none", "lcu", "tmr"]),
              help="Protection unit of the accelerator.")
@click.option("--k-depth", default=256, show_default=True, type=int,
              help="Operand buffer depth of the accelerator (largest K).")
@click.option("--sites", "patterns", multiple=True, metavar="GLOB",
              help="Only these paths or globs ('pe_*.acc'); repeatable.")
@click.option("--cycles", type=click.IntRange(min=1), default=None,
              help="Tile length in cycles (the accelerator's is hw.contract.tile_cycles): "
                   "size the transient space as bits x cycles.")
@click.option("--confidence", default=0.95, show_default=True, type=float,
              help="Confidence of the Leveugle sample sizes.")
@click.option("--margin", default=0.01, show_default=True, type=float,
              help="Error margin of the Leveugle sample sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sites(kind, rows, cols, width, acc_width, protect, k_depth, patterns, cycles, confidence,
          margin, as_json):
    """List every injectable register of a generated design and size its fault space.

    The sites are read from the elaborated design (its flip-flops and memories), with
    the hierarchical path cocotb uses from the toplevel handle, the width, the kind
    (pe.a_reg, pe.w_reg, pe.acc, skew, requant, protect, buffer, control) and the
    Verilog module. The summary gives the stuck-at space (bits x 2), the transient
    space (bits x cycles with --cycles), paper 003's weight-input stuck-at space
    (2 x K x M) and their Leveugle sample sizes.
    """
    from neuroharden.golden.sampling import leveugle_sample_size
    from .sites import Catalogue, design_catalogue, resolve

    try:
        found = design_catalogue(kind, rows=rows, cols=cols, width=width, acc_width=acc_width,
                                 protect=protect, k_depth=k_depth)
        chosen = Catalogue(found.toplevel, resolve(found, patterns), found.inputs) \
            if patterns else found
        space = chosen.fault_space(cycles=cycles)
        samples = {name: leveugle_sample_size(space[name], confidence, margin)
                   for name in ("stuck_at", "transient", "paper003_weight_stuck_at")
                   if space.get(name)}
    except (ValueError, TypeError) as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps({
            "design": kind, "toplevel": chosen.toplevel,
            "sites": [site.to_dict() for site in chosen],
            "totals": {"sites": len(chosen), "bits": chosen.bits, "kinds": chosen.totals()},
            "fault_space": space,
            "sample_size": {"confidence": confidence, "margin": margin, **samples},
        }))
        return
    if len(chosen):
        click.echo(_site_table(chosen))
        click.echo()
    for name, total in chosen.totals().items():
        click.echo(f"{name:9s} {total['sites']:6,d} sites {total['bits']:9,d} bits")
    click.echo(f"{chosen.toplevel}: {len(chosen):,d} sites, {chosen.bits:,d} bits")
    click.echo(f"stuck-at faults (bits x 2): {space['stuck_at']:,d}"
               f" (sample {samples['stuck_at']:,d})" if "stuck_at" in samples else
               "stuck-at faults (bits x 2): 0")
    if cycles is None:
        click.echo(f"transient bit-flips: {space['transient_per_cycle']:,d} per cycle "
                   f"(--cycles N sizes a tile)")
    else:
        click.echo(f"transient bit-flips (bits x {cycles} cycles): {space['transient']:,d}"
                   + (f" (sample {samples['transient']:,d})" if "transient" in samples else ""))
    if space["paper003_weight_stuck_at"]:
        click.echo(f"paper 003 weight-input stuck-at (2 x K x M): "
                   f"{space['paper003_weight_stuck_at']:,d} "
                   f"(sample {samples['paper003_weight_stuck_at']:,d})")
    click.echo(f"sample sizes: Leveugle at {confidence:.0%} confidence, "
               f"{margin:.0%} margin")


def _int_list(text, what):
    if text is None:
        return None
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.ClickException(f"{what} must be comma-separated integers, got {text!r}")


#: Options that only one level takes (parameter names).
_RTL_ONLY = ("sim", "sites", "rows", "cols")
_MODEL_ONLY = ("target", "bits", "bit_positions")


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help=f"Network file: {MODEL_FILES}.")
@click.option("--level", type=click.Choice(["model", "rtl"]), default="model",
              show_default=True,
              help="Injection level: the integer model, or the RTL accelerator (cross-layer: "
                   "the faulty tile on RTL, the rest in the model).")
@click.option("--fault", "fault_model", type=click.Choice(FAULT_MODELS), required=True,
              help="Fault model.")
@click.option("--target", type=click.Choice(TARGETS), default="output", show_default=True,
              help="Neuron output (int8), accumulator (int32) or weight (int8).")
@click.option("--bits", type=int, default=1, show_default=True,
              help="Bits per fault for bitflip / stuck0 / stuck1.")
@click.option("--bit-positions", default=None,
              help="Comma-separated bit positions the faults may hit (default: all).")
@click.option("--layers", default=None,
              help="Comma-separated layer names (default: hidden layers; all for weights).")
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--margin", type=float, default=0.01, show_default=True)
@click.option("--faults", type=click.IntRange(min=1), default=None,
              help="Explicit number of faults (overrides the Leveugle sizing).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--images", type=click.IntRange(min=1), default=None,
              help="Use only the first N test images (default: the whole test split).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), required=True,
              help="SQLite results database (created if missing; campaigns resume).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Dask local workers (1 = in-process, no Dask).")
@click.option("--scheduler", default=None, help="Address of a running Dask scheduler.")
@click.option("--chunk", type=click.IntRange(min=1), default=128, show_default=True,
              help="Faults per task and per database commit.")
@click.option("--dataset", metavar="NAME", default=None, help=IMAGE_SOURCE)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--sim", type=click.Choice(SIMULATORS), default="verilator",
              show_default=True, help="Simulator of --level rtl.")
@click.option("--sites", multiple=True, help="--level rtl: site path or glob of the "
              "accelerator's catalogue (repeatable; default: every site).")
@click.option("--rows", type=click.IntRange(min=1), default=8, show_default=True,
              help="--level rtl: accelerator rows.")
@click.option("--cols", type=click.IntRange(min=1), default=8, show_default=True,
              help="--level rtl: accelerator columns.")
@click.pass_context
def campaign(ctx, model_path, level, fault_model, target, bits, bit_positions, layers,
             confidence, margin, faults, seed, images, db_path, workers, scheduler, chunk,
             dataset, data_dir, as_json, sim, sites, rows, cols):
    """Statistical fault-injection campaign on the int8 model or the RTL accelerator.

    Resumable (SQLite). With --level rtl every fault is injected into the RTL tile that
    holds it while the accelerator computes it; the rest of the network runs in the
    golden integer model. --fault bitflip upsets a bit at a sampled cycle of the tile,
    stuck0 / stuck1 hold it for the whole tile.
    """
    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT}
    misplaced = sorted(given & set(_RTL_ONLY if level == "model" else _MODEL_ONLY))
    if misplaced:
        option = "--" + misplaced[0].replace("_", "-")
        raise click.ClickException(f"{option} needs --level rtl" if level == "model"
                                   else f"{option} applies to --level model only")
    if level == "model":
        from neuroharden.golden.campaign import run_campaign as run

        options = dict(target=target, bits=bits, images=images,
                       positions=_int_list(bit_positions, "--bit-positions"))
    else:
        from .rtl_campaign import DEFAULT_IMAGES, MODELS, run_rtl_campaign as run

        if fault_model not in MODELS:
            raise click.ClickException(f"--level rtl takes --fault {' | '.join(MODELS)}, "
                                       f"not {fault_model}")
        options = dict(images=images or DEFAULT_IMAGES, sites=list(sites) or None,
                       rows=rows, cols=cols, sim=sim)
    try:
        summary = run(model_path, fault_model=fault_model,
                      layers=[t.strip() for t in layers.split(",") if t.strip()]
                      if layers else None, confidence=confidence, margin=margin,
                      faults=faults, seed=seed, db_path=db_path, workers=workers,
                      scheduler=scheduler, chunk=chunk, data_dir=data_dir, dataset=dataset,
                      **options)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    if as_json:
        click.echo(json.dumps(summary))
        return
    from neuroharden.golden.campaign import summary_text

    if level == "model":
        title = (f"campaign {summary['campaign'][:12]}: {summary['completed']}/"
                 f"{summary['faults']} faults ({summary['fault_model']} on "
                 f"{summary['target']}, population {summary['population']}) on "
                 f"{summary['images']} images")
    else:
        title = (f"rtl campaign {summary['campaign'][:12]}: {summary['completed']}/"
                 f"{summary['faults']} faults ({summary['fault_model']} in "
                 f"{summary['sites']} sites, population {summary['population']}, "
                 f"{summary['tiles']} tiles on a {summary['rows']}x{summary['cols']} "
                 f"accelerator, protect {summary['protect']}, {summary['sim']}) on "
                 f"{summary['images']} images")
    click.echo(summary_text(summary, title))

"""``neuroharden run-rtl``: whole inferences with every conv / fc layer on the RTL accelerator.

The network (``MODEL.pt`` quantized as ``neuroharden eval`` does, or a hardened
``HARDENED.pt`` as it is) is compiled into tiles for a ``rows`` x ``cols`` accelerator
(:mod:`sim.compiler`); the accelerator is generated with the protection unit the network
needs (none, LCU or TMR) and operand buffers as deep as the network's largest reduction,
built once per configuration (:mod:`sim.runner`), and one simulator process runs every
tile of every layer of every image (:mod:`sim.tb_run_rtl`). The int8 logits are compared
with the golden integer model image by image.
"""

import json
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from neuroharden.hw.verilog import generate
from .compiler import compile_network
from .runner import DEFAULT_BUILD_ROOT, SIMULATORS, build, run

__all__ = ["run_program", "run_rtl"]


def run_program(program, x, *, sim="verilator", build_root=DEFAULT_BUILD_ROOT):
    """Run a compiled network on the RTL accelerator.

    Parameters
    ----------
    program : sim.compiler.Program
    x : numpy.ndarray
        int8 input images ``[B, C, H, W]``.
    sim : str
        ``"verilator"`` or ``"icarus"``.
    build_root : path-like
        Where builds are cached.

    Returns
    -------
    logits : numpy.ndarray
        int64 ``[B, classes]`` read back from the accelerator.
    stats : dict
        ``tiles`` run, ``cycles`` simulated (loads, runs and reads), ``protect`` and
        ``k_depth`` of the accelerator, ``seconds`` of simulation proper (without the
        build and the simulator's start-up).
    """
    protect = program.protect
    geometry = dict(rows=program.rows, cols=program.cols, k_depth=program.k_depth,
                    protect=protect)
    verilog = generate("accelerator", **geometry)
    design = build(verilog, toplevel="accelerator", sim=sim, build_root=build_root,
                   log=Path(build_root) / "run-rtl-build.log")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        program.save(work / "program.npz")
        np.save(work / "images.npy", np.asarray(x, dtype=np.int8))
        config = {**geometry, "program": str(work / "program.npz"),
                  "images": str(work / "images.npy"), "logits": str(work / "logits.npy"),
                  "stats": str(work / "stats.json")}
        run(design, "neuroharden.sim.tb_run_rtl", config=config, log=work / "sim.log")
        logits = np.load(work / "logits.npy", allow_pickle=False)
        stats = json.loads((work / "stats.json").read_text())
    return logits, {**stats, "protect": protect, "k_depth": program.k_depth}


@click.command("run-rtl")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (MODEL.pt) or hardened network (HARDENED.pt).")
@click.option("--images", default=8, show_default=True, type=int,
              help="First test images of the model's dataset to run.")
@click.option("--rows", default=8, show_default=True, type=int, help="Array rows.")
@click.option("--cols", default=8, show_default=True, type=int, help="Array columns.")
@click.option("--sim", default="verilator", show_default=True,
              help=f"Simulator: {' or '.join(SIMULATORS)}.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def run_rtl(model_path, images, rows, cols, sim, data_dir, as_json):
    """Run whole inferences on the RTL accelerator and compare with the golden model.

    Every conv and fc layer runs on a generated ROWS x COLS accelerator (operand buffers
    as deep as the network's largest reduction, the protection unit of a hardened
    network); im2col, padding, pooling and flattening happen on the host. Reports the
    fraction of images whose int8 logits equal the golden model's (agreement), the
    tiles, the simulated cycles and the time taken.
    """
    from neuroharden.golden.quantize import quantize_checkpoint

    if sim not in SIMULATORS:
        raise click.ClickException(f"unknown simulator {sim!r}; choose one of "
                                   f"{', '.join(SIMULATORS)}")
    if images < 1:
        raise click.ClickException(f"--images must be a positive integer, not {images}")
    try:
        net, _, metadata, data = quantize_checkpoint(model_path, data_dir)
        program = compile_network(net, rows=rows, cols=cols)
        protect = program.protect
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    if images > len(data.x_test):
        raise click.ClickException(f"--images {images} exceeds the {len(data.x_test)} test "
                                   f"images of {data.name}")
    x = net.quantize_input(data.x_test[:images])
    golden = net.forward(x).numpy()
    started = time.perf_counter()
    logits, stats = run_program(program, x.numpy(), sim=sim)
    seconds = time.perf_counter() - started
    agree = (logits == golden).all(axis=1)
    scheme = metadata.get("hardened", {}).get("scheme", "none")
    summary = {"model": metadata["model"], "scheme": scheme, "protect": protect,
               "images": images,
               "agreement": float(agree.mean()),
               "disagreeing_images": np.flatnonzero(~agree).tolist(), "rows": rows,
               "cols": cols, "k_depth": stats["k_depth"], "sim": sim, "tiles": stats["tiles"],
               "cycles": stats["cycles"], "seconds": round(seconds, 3),
               "sim_seconds": round(stats["seconds"], 3),
               "seconds_per_image": round(stats["seconds"] / images, 3)}
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"{summary['model']} (hardening: {scheme}) on a {rows}x{cols} accelerator, "
               f"k_depth {summary['k_depth']}, under {sim}: {images} images, "
               f"{summary['tiles']} tiles, {summary['cycles']} cycles, "
               f"{summary['sim_seconds']:.1f} s simulated ({seconds:.1f} s in all)")
    click.echo(f"int8 logits identical to golden on {int(agree.sum())} of {images} images "
               f"(agreement {summary['agreement']:.4f})")

"""``neuroharden gemm``: an int8 matrix product computed on the generated RTL array."""

import json
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from neuroharden.hw.verilog import generate
from .runner import DEFAULT_BUILD_ROOT, SIMULATORS, build, run
from neuroharden.golden.atomic import atomic_output

__all__ = ["run_gemm", "gemm"]


def run_gemm(a, b, *, rows=8, cols=8, sim="verilator", build_root=DEFAULT_BUILD_ROOT):
    """Multiply int8 ``a`` (M x K) by int8 ``b`` (K x N) on a rows x cols RTL array.

    The array is generated, built once per configuration and simulated; the product is
    tiled over M and N and streams any K.

    Returns
    -------
    product : numpy.ndarray
        int32 M x N product (two's complement wrap-around at 32 bits, as the RTL).
    stats : dict
        ``cycles`` simulated and ``seconds`` of simulation proper (without build and
        simulator start-up).
    """
    verilog = generate("array", rows=rows, cols=cols)
    design = build(verilog, toplevel="array", sim=sim, build_root=build_root,
                   log=Path(build_root) / "gemm-build.log")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        np.save(work / "a.npy", a)
        np.save(work / "b.npy", b)
        config = {"a": str(work / "a.npy"), "b": str(work / "b.npy"),
                  "c": str(work / "c.npy"), "stats": str(work / "stats.json"),
                  "rows": rows, "cols": cols, "width": 8, "acc_width": 32}
        run(design, "neuroharden.sim.tb_gemm", config=config, log=work / "sim.log")
        product = np.load(work / "c.npy", allow_pickle=False)
        stats = json.loads((work / "stats.json").read_text())
    return product, stats


def _load_operand(path, name):
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise click.ClickException(f"{name}: no such file: {path}")
    except (ValueError, OSError) as error:
        raise click.ClickException(f"{name}: {path} is not a readable .npy array ({error})")
    if array.dtype != np.int8:
        raise click.ClickException(f"{name}: expected dtype int8, got {array.dtype} in {path}")
    if array.ndim != 2 or 0 in array.shape:
        raise click.ClickException(
            f"{name}: expected a non-empty 2-D matrix, got shape {array.shape} in {path}")
    return array


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
    if sim not in SIMULATORS:
        raise click.ClickException(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
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

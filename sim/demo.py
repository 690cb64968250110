"""``neuroharden demo``: the main job on the embedded default.

At this stage of the project it generates the Verilog of every block and multiplies a
random int8 GEMM on the RTL systolic array, checking the product against numpy.
"""

import json
import time
from pathlib import Path

import click
import numpy as np

from hw.verilog import KINDS, generate
from sim.gemm import run_gemm
from sim.runner import SIMULATORS


def write_verilog(directory):
    """Generate every block with its default parameters into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in KINDS:
        path = directory / f"{kind.replace('-', '_')}.v"
        path.write_text(generate(kind))
        paths[kind] = path
    return paths


@click.command()
@click.option("-o", "--output", default="build", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the generated Verilog (in OUTPUT/verilog/).")
@click.option("--sim", default="verilator", show_default=True, help=f"Simulator: {' or '.join(SIMULATORS)}.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the random GEMM.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def demo(output, sim, seed, as_json):
    """Generate the Verilog of every block and run a random GEMM on the RTL array.

    Writes OUTPUT/verilog/<block>.v for every block that `neuroharden generate` knows,
    then multiplies a random int8 20x50 by 50x12 matrix on an 8x8 array under the
    simulator and compares the int32 product with numpy.
    """
    if sim not in SIMULATORS:
        raise click.ClickException(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    say = (lambda message: None) if as_json else click.echo
    paths = write_verilog(Path(output) / "verilog")
    for kind, path in paths.items():
        say(f"generated {kind:9s} -> {path} ({path.stat().st_size} bytes)")
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (20, 50), dtype=np.int8)
    b = rng.integers(-128, 128, (50, 12), dtype=np.int8)
    say(f"building the 8x8 array for {sim} and multiplying 20x50 @ 50x12 ...")
    started = time.perf_counter()
    product, stats = run_gemm(a, b, rows=8, cols=8, sim=sim)
    seconds = time.perf_counter() - started
    reference = a.astype(np.int64) @ b.astype(np.int64)
    mismatches = int(np.count_nonzero(product != reference))
    summary = {"verilog": {kind: str(path) for kind, path in paths.items()}, "sim": sim,
               "cycles": stats["cycles"], "seconds": round(seconds, 2),
               "elements": int(reference.size), "mismatches": mismatches}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        verdict = "matches numpy" if mismatches == 0 else f"DIFFERS from numpy in {mismatches} elements"
        click.echo(f"RTL product ({reference.size} int32 elements, {stats['cycles']} cycles, "
                   f"{seconds:.1f} s with build): {verdict}")
    if mismatches:
        raise SystemExit(1)

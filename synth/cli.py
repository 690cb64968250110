"""Subcommands of the synthesis package: area, prove, cost.

Each command parses its options, calls the library function that does the job
(:func:`synth.area.report` and :func:`synth.sweep.sweep`, :func:`synth.prove.run_property`,
:func:`synth.cost.protection_cost`) and prints the result. Bad input is reported as a
one-line :class:`click.ClickException` (exit status 2 through the root group).
"""

import json
import sys

import click

from .designs import DEFAULT_K_DEPTH, DESIGNS
from .targets import TARGETS

__all__ = ["area", "prove", "cost"]

_ALL_DESIGNS = list(DESIGNS)
_DESIGN_HELP = "\n".join(f"  {name:10s} {design.description}"
                         for name, design in DESIGNS.items())


def _progress(total, enabled):
    """A tqdm bar on a terminal (stderr), else a no-op; returns (callback, close)."""
    if not enabled or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm
    bar = tqdm(total=total, unit="design", file=sys.stderr, leave=False)
    state = {"started": False}

    def step(label):
        if state["started"]:
            bar.update(1)
        state["started"] = True
        bar.set_description(label)

    return step, bar.close


def _split(text, option):
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise click.ClickException(f"{option} needs at least one value")
    return items


def _sizes(text):
    sizes = []
    for item in _split(text, "--sizes"):
        try:
            value = int(item)
        except ValueError:
            raise click.ClickException(f"--sizes must be integers, not {item!r}") from None
        if value < 1:
            raise click.ClickException(f"--sizes must be positive, not {value}")
        sizes.append(value)
    return sizes


@click.command(help=f"""Synthesize the blocks and report area, Fmax and protection overheads.

\b
Designs (--designs, comma-separated; references are added as needed):
{_DESIGN_HELP}

\b
Targets: generic (Yosys gates, cells and `stat -tech cmos` transistors), ice40 (iCE40
HX8K: LUT4/carry/FF, nextpnr-ice40 Fmax), ecp5 (LFE5U-85F: LUT4/FF/MULT18X18D,
nextpnr-ecp5 Fmax). A design that exceeds the device is reported as "does not fit"
with its utilisation; combinational blocks (LCU, voter) have no Fmax.

Overheads: the LCU and the voter in % of one PE and of the rows x cols array (their
own area); the TMR PE / TMR array as growth over the PE / the array; accel-lcu /
accel-tmr as growth over the unprotected accelerator of the same size and --k-depth.
The metric is cells (generic) or LUT4s (FPGA).

The accelerators' buffers are included: flip-flops in the generic flow (their area
grows with --k-depth), block RAM (BRAMs column) or logic on the FPGAs.

With --sweep, the array and the TMR array (or the one of them named by --designs)
are measured at each of --sizes (N x N),
and CSV, JSON and a PNG plot of area and Fmax vs size, with the log-log growth
exponent of area in the number of PEs, are written to -o DIR.

Results are cached in --cache-dir by a hash of the Verilog, the script and the tool
versions, so a repeated run takes seconds.""")
@click.option("--rows", default=4, show_default=True, type=int, help="Array rows.")
@click.option("--cols", default=4, show_default=True, type=int, help="Array columns.")
@click.option("--k-depth", default=DEFAULT_K_DEPTH, show_default=True, type=int,
              help="Operand-buffer depth (largest K) of the accelerators.")
@click.option("--acc-width", default=32, show_default=True, type=int,
              help="Accumulator width (32 is the numeric contract's; smaller synthesizes "
                   "faster, e.g. for a quick relative comparison).")
@click.option("--target", "targets", multiple=True, type=click.Choice(list(TARGETS)),
              help="Target (repeatable). Default: generic; with --sweep: all three.")
@click.option("--designs", default=",".join(_ALL_DESIGNS), show_default=True,
              help="Comma-separated designs to report.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects.")
@click.option("--no-pnr", is_flag=True, help="Skip place and route (no Fmax).")
@click.option("--sweep", is_flag=True, help="Sweep the array over --sizes instead.")
@click.option("--largest", is_flag=True,
              help="Instead: for each sized design of --designs, the largest N x N array of "
                   "--sizes whose logic, DSPs and block RAMs fit each --target device "
                   "(synthesis only; pins are not counted, a wrapped accelerator's bus "
                   "reaches an SoC on the same chip).")
@click.option("--sizes", default="2,4,8,16", show_default=True,
              help="Array sizes N (N x N) of the sweep.")
@click.option("-o", "--output", default="build/synth-sweep", show_default=True,
              type=click.Path(file_okay=False), help="Directory of the sweep outputs.")
@click.option("--cache-dir", default="build/synth-cache", show_default=True,
              type=click.Path(file_okay=False), help="Result cache directory.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache.")
@click.option("--pnr-timeout", default=1800, show_default=True, type=int,
              help="Seconds one nextpnr run may take (status 'timeout' after).")
def area(rows, cols, k_depth, acc_width, targets, designs, as_json, no_pnr, sweep, largest,
         sizes, output, cache_dir, no_cache, pnr_timeout):
    from . import area as area_module
    from . import sweep as sweep_module
    from .cache import Cache
    from .designs import expand

    for name, value in (("--rows", rows), ("--cols", cols), ("--k-depth", k_depth),
                        ("--acc-width", acc_width)):
        if value < 1:
            raise click.ClickException(f"{name} must be a positive integer, not {value}")
    if pnr_timeout < 1:
        raise click.ClickException(f"--pnr-timeout must be positive, not {pnr_timeout}")
    cache = Cache(None if no_cache else cache_dir)

    if sweep:
        size_list = _sizes(sizes)
        target_list = list(targets) or list(sweep_module.DEFAULT_TARGETS)
        design_list = list(sweep_module.DEFAULT_DESIGNS)
        source = click.get_current_context().get_parameter_source("designs")
        if source is not click.core.ParameterSource.DEFAULT:
            design_list = _split(designs, "--designs")
            for name in design_list:
                if name not in sweep_module.DEFAULT_DESIGNS:
                    raise click.ClickException(
                        f"--sweep measures {' and '.join(sweep_module.DEFAULT_DESIGNS)}, "
                        f"not {name!r}")
        total = len(size_list) * len(target_list) * len(design_list)
        step, close = _progress(total, not as_json)
        try:
            result = sweep_module.sweep(size_list, target_list, design_list,
                                        place=not no_pnr,
                                        cache=cache, progress=step, pnr_timeout=pnr_timeout)
        except (ValueError, TypeError) as error:
            raise click.ClickException(str(error)) from error
        finally:
            close()
        try:
            paths, fitted = sweep_module.write_outputs(result, output)
        except OSError as error:
            raise click.ClickException(f"Cannot write {output}: {error}") from error
        if as_json:
            click.echo(json.dumps({"rows": result, "fits": fitted}, indent=1))
            return
        click.echo(area_module.format_table(result))
        click.echo("")
        for fit in fitted:
            exponent = "-" if fit["exponent"] is None else f"{fit['exponent']:.3f}"
            click.echo(f"growth exponent of {fit['metric']} vs PEs: {fit['design']} on "
                       f"{fit['target']}: {exponent} (sizes in PEs: {fit['sizes']})")
        for path in paths:
            click.echo(f"wrote {path}")
        return

    if largest:
        _largest(_split(designs, "--designs"), list(targets) or ["up5k"], _sizes(sizes),
                 k_depth, cache, as_json)
        return

    try:
        names = expand(_split(designs, "--designs"))
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    target_list = list(targets) or ["generic"]
    step, close = _progress(len(names) * len(target_list), not as_json)
    try:
        result = area_module.report(names, target_list, rows=rows, cols=cols,
                                    k_depth=k_depth, acc_width=acc_width, place=not no_pnr,
                                    cache=cache, progress=step, pnr_timeout=pnr_timeout)
    except (ValueError, TypeError) as error:
        raise click.ClickException(str(error)) from error
    finally:
        close()
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        click.echo(area_module.format_table(result))


def _largest(names, target_list, size_list, k_depth, cache, as_json):
    """``area --largest``: the largest array of each design that fits each target."""
    from . import area as area_module

    step, close = _progress(len(names) * len(target_list), not as_json)
    results = []
    try:
        for name in names:
            for target in target_list:
                if step is not None:
                    step(f"{name} on {target}")
                results.append(area_module.largest_fitting(name, target, size_list,
                                                           k_depth=k_depth, cache=cache))
    except (ValueError, TypeError, KeyError) as error:
        raise click.ClickException(str(error).strip("'\"")) from error
    finally:
        close()
    if as_json:
        click.echo(json.dumps(results, indent=1))
        return
    for result in results:
        size = result["largest"]
        tried = "; ".join(f"{row['rows']}x{row['cols']}: {row['note']}" for row in result["rows"])
        click.echo(f"{result['design']} on {result['device']}: largest array "
                   f"{f'{size}x{size}' if size else 'none'} ({tried})")


def _counterexample_lines(counterexample):
    if "error" in counterexample:
        return f"  {counterexample['case']}: {counterexample['error']}"
    lines = [f"  counterexample ({counterexample['case']}):"]
    if "inputs" in counterexample:
        lines.append("    " + ", ".join(f"{k}={v}" for k, v in counterexample["inputs"].items()))
    else:
        for step in counterexample["trace"]:
            values = ", ".join(f"{k}={v}" for k, v in step["inputs"].items())
            lines.append(f"    cycle {step['step']}: {values}")
            if step["registers"]:
                values = ", ".join(f"{k}={v}" for k, v in step["registers"].items())
                lines.append(f"      registers (unsigned): {values}")
    return "\n".join(lines)


def _known_properties():
    from .prove import PROPERTIES, SANITY

    return {**PROPERTIES, **SANITY}


def _property_names(ctx, param, value):
    known = _known_properties()
    for name in value:
        if name not in known:
            raise click.ClickException(
                f"Unknown property {name!r}; choose from {', '.join(known)}")
    return value


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.option("--property", "names", multiple=True, callback=_property_names,
              metavar="NAME", help="Prove only this property (repeatable). The "
              "sanity-* properties are wrong on purpose and must fail.")
def prove(as_json, names):
    """Formally prove the protection units (LCU, voter, TMR PE) with Yosys' SAT solver.

    Default properties: lcu, lcu-widths, voter-bitwise, voter-word,
    tmr-pe-equivalence, tmr-pe-fault-masking. Exit status 1 if any property fails.
    """
    from .prove import PROPERTIES, run_property

    known = _known_properties()
    selected = [known[name] for name in dict.fromkeys(names)] or list(PROPERTIES.values())
    results = []
    for prop in selected:
        result = run_property(prop)
        results.append(result)
        if not as_json:
            depth = "unbounded" if result["depth"] is None else f"depth {result['depth']}"
            click.echo(f"{result['status']:7} {prop.name}: {prop.description} "
                       f"[{prop.method}; {depth}; {result['seconds']:.2f} s]")
            if result["counterexample"] is not None:
                click.echo(_counterexample_lines(result["counterexample"]))
    if as_json:
        click.echo(json.dumps(results, indent=2))
    if any(result["status"] != "proved" for result in results):
        sys.exit(1)


@click.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False), required=True,
              help="Network file: MODEL.pt (neuroharden train), a quantized MODEL.onnx or "
                   "QNET.npz (neuroharden import); not a hardened one.")
@click.option("--critical", "critical_path", type=click.Path(dir_okay=False), required=True,
              help="Neuron ranking of that model (CRITICAL.json).")
@click.option("--threshold", type=float, default=None,
              help="Protect neurons with score >= T (NVF in %).")
@click.option("--fraction", type=click.FloatRange(0, 100), default=None,
              help="Protect the top P % of the ranking.")
@click.option("--rows", default=8, show_default=True, type=int, help="Array rows.")
@click.option("--cols", default=8, show_default=True, type=int, help="Array columns.")
@click.option("--target", default="generic", show_default=True,
              type=click.Choice(["generic", "ice40", "ecp5"]),
              help="Synthesis target of the correction-hardware area.")
@click.option("--no-area", is_flag=True, help="Skip synthesis (execution cost only).")
@click.option("--cache-dir", default="build/synth-cache", show_default=True,
              type=click.Path(file_okay=False), help="Synthesis result cache directory.")
@click.option("--dataset", metavar="NAME", default=None,
              help="Image source, a dataset of `neuroharden train --dataset`, that an "
                   "imported .onnx / .npz network's input shape must match (default "
                   "digits).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Dataset directory (default: the one used for training).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def cost(model_path, critical_path, threshold, fraction, rows, cols, target, no_area,
         cache_dir, dataset, data_dir, as_json):
    """Cost of LCU and of selective TMR at one selection: neurons, MACs, cycles, memory, area.

    Hardens the model both ways (nothing is written), counts the execution cost per
    image on a ROWS x COLS array and synthesizes one correction unit per array column
    (LCUs or voters) next to the array, then reports each extra cost and LCU's extra
    cost divided by TMR's (paper 004 claims one half).
    """
    from neuroharden.golden.checkpoint import quantize_checkpoint
    from neuroharden.golden.ranking import load_critical
    from .cache import Cache
    from .cost import format_report, protection_cost

    if (threshold is None) == (fraction is None):
        raise click.ClickException("give exactly one of --threshold and --fraction")
    try:
        net, _, _, _ = quantize_checkpoint(model_path, data_dir, dataset)
        if hasattr(net, "protection"):
            raise ValueError(f"{model_path}: is a hardened network; give the original "
                             f"model checkpoint")
        ranking = [(n["layer"], n["index"], n["score"])
                   for n in load_critical(critical_path, model_path)["neurons"]]
        report = protection_cost(net, ranking, threshold=threshold, fraction=fraction,
                                 rows=rows, cols=cols, target=target, area=not no_area,
                                 cache=Cache(cache_dir))
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error).splitlines()[0]) from None
    report.update(model=str(model_path), critical=str(critical_path))
    click.echo(json.dumps(report) if as_json else format_report(report))

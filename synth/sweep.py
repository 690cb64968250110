"""Area and Fmax of the array (and its TMR version) over array sizes, with the growth
exponent of area in the number of PEs (least-squares fit on a log-log scale)."""

import csv
import json
import math
from pathlib import Path

from neuroharden.golden.atomic import atomic_output
from .area import FIELDS, add_overheads, measure, primary_metric

__all__ = ["DEFAULT_SIZES", "DEFAULT_TARGETS", "DEFAULT_DESIGNS", "sweep", "growth_exponent",
           "fits", "write_outputs"]

DEFAULT_SIZES = (2, 4, 8, 16)
DEFAULT_TARGETS = ("generic", "ice40", "ecp5")
DEFAULT_DESIGNS = ("array", "tmr-array")


def growth_exponent(pes, values):
    """Slope b of the least-squares fit log(value) = a + b log(pes).

    Points with a missing or non-positive value are left out; None with fewer than two
    distinct sizes left.
    """
    points = [(math.log(n), math.log(v)) for n, v in zip(pes, values)
              if v is not None and v > 0 and n > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx


def sweep(sizes=DEFAULT_SIZES, targets=DEFAULT_TARGETS, designs=DEFAULT_DESIGNS, *,
          place=True, cache=None, progress=None, pnr_timeout=1800):
    """Measure ``designs`` at ``size`` x ``size`` for each size and target.

    Returns the rows of :func:`synth.area.measure` with a ``pes`` column and the
    TMR overhead against the array of the same size (when ``array`` is swept too).
    """
    rows = []
    for target in targets:
        for size in sizes:
            group = []
            for name in designs:
                if progress is not None:
                    progress(f"{name} {size}x{size} on {target}")
                row = measure(name, target, rows=size, cols=size, place=place, cache=cache,
                              pnr_timeout=pnr_timeout)
                group.append(row)
            add_overheads(group)
            for row in group:
                row["pes"] = size * size
            rows.extend(group)
    return rows


def fits(rows):
    """Growth exponent of each (design, target): area metric and cells vs PEs."""
    result = []
    keys = sorted({(row["design"], row["target"]) for row in rows})
    for design, target in keys:
        points = [row for row in rows if row["design"] == design and row["target"] == target]
        metric = primary_metric(target)
        result.append({
            "design": design, "target": target, "metric": metric,
            "exponent": growth_exponent([r["pes"] for r in points],
                                        [r[metric] for r in points]),
            "cells_exponent": growth_exponent([r["pes"] for r in points],
                                              [r["cells"] for r in points]),
            "sizes": [r["pes"] for r in points if r[metric] is not None]})
    return result


def _atomic_write(path, write):
    with atomic_output(path, "w", newline="") as file:
        write(file)


def _plot(rows, fitted, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    exponents = {(f["design"], f["target"]): f["exponent"] for f in fitted}
    figure, (area_axes, fmax_axes) = plt.subplots(1, 2, figsize=(11, 4.5))
    for (design, target), exponent in exponents.items():
        points = [r for r in rows if r["design"] == design and r["target"] == target]
        metric = primary_metric(target)
        xs = [r["pes"] for r in points if r[metric] is not None]
        ys = [r[metric] for r in points if r[metric] is not None]
        if xs:
            label = f"{design} {target} ({metric})"
            if exponent is not None:
                label += f", ~PEs^{exponent:.2f}"
            area_axes.plot(xs, ys, marker="o", label=label)
        fx = [r["pes"] for r in points if r["fmax_mhz"] is not None]
        fy = [r["fmax_mhz"] for r in points if r["fmax_mhz"] is not None]
        if fx:
            fmax_axes.plot(fx, fy, marker="o", label=f"{design} {target}")
    area_axes.set(xscale="log", yscale="log", xlabel="processing elements (rows x cols)",
                  ylabel="cells (generic) / LUT4s (FPGA)", title="Area vs array size")
    fmax_axes.set(xscale="log", xlabel="processing elements (rows x cols)",
                  ylabel="Fmax (MHz, nextpnr)", title="Fmax vs array size (placed only)")
    if not fmax_axes.lines:
        fmax_axes.text(0.5, 0.5, "no design placed (generic target, or none fits)",
                       ha="center", va="center", transform=fmax_axes.transAxes)
    ticks = sorted({r["pes"] for r in rows})
    for axes in (area_axes, fmax_axes):
        axes.set_xticks(ticks, [str(t) for t in ticks])
        axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes.grid(True, which="both", alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7)
    figure.tight_layout()
    try:
        with atomic_output(path) as file:
            figure.savefig(file, dpi=120, format="png")
    finally:
        plt.close(figure)


def write_outputs(rows, directory):
    """Write ``sweep.csv``, ``sweep.json`` (rows and fits) and ``sweep.png``.

    Returns the paths written and the fits.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fitted = fits(rows)
    columns = ("pes",) + FIELDS
    csv_path = directory / "sweep.csv"

    def write_csv(file):
        writer = csv.DictWriter(file, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})

    _atomic_write(csv_path, write_csv)
    json_path = directory / "sweep.json"
    _atomic_write(json_path, lambda file: json.dump({"rows": rows, "fits": fitted}, file,
                                                     indent=1))
    png_path = directory / "sweep.png"
    _plot(rows, fitted, png_path)
    return [csv_path, json_path, png_path], fitted

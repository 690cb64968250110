"""The full cost of a protection for a network at an NVF threshold: execution and area.

Paper 004 claims that splitting critical neurons for the LCU costs half the overhead of
selective TMR. :func:`protection_cost` checks that claim for one network, one ranking
and one selection (``threshold`` or ``fraction``, as ``neuroharden harden``) on both
sides of an accelerator:

* **Execution** (per image): neurons, parameters, MACs and weight memory of the original
  and of both hardened networks (:func:`golden.harden.cost`), and the clock cycles the
  array spends on them (:func:`array_cycles`).
* **Area**: the correction hardware next to a ``rows`` x ``cols`` array. The
  accelerator's protection unit holds one correction unit per array column (an LCU, or
  a voter for TMR, each merging that column with its partners), so its area is ``cols``
  times the synthesized area of one LCU or one voter (:func:`synth.area.measure`), given
  in % of the synthesized array. This sums measured blocks; it is not a synthesis of the
  whole accelerator (``neuroharden area --designs accel,accel-lcu,accel-tmr`` is).

For each metric the report gives the extra cost of LCU and of TMR over the unprotected
network and their ratio: paper 004's claim is a ratio of 0.5. Neurons give exactly 0.5
by construction (one extra copy instead of two); MACs and memory do not, because the
next layer reads *both* halves of a split neuron (its fan-in doubles) but only one voted
copy of a triple; the correction hardware is far below half, because an LCU is much
smaller than a voter.

Cycle model (:func:`array_cycles`): each conv / linear layer is a matrix product
``[M, K] @ [K, N]`` as the network compiler lowers it (im2col rows image-major, output
channels as columns). ``M`` is ``batch`` images (default: ``rows``, so the linear layers
fill the array's rows) times the output pixels, cut into blocks of ``rows``; the ``N``
channels are packed in order into chunks of at most ``cols`` columns, never cutting the
copies of one protected neuron (:func:`hw.contract.row_blocks` and
:func:`hw.contract.column_chunks`, the cut the compiler makes); ``K`` is never split.
Every tile costs :func:`hw.contract.tile_cycles` (``start``, clear, ``K`` streaming
cycles, flush, drain, write back), whatever its fill. Host-side work (im2col, pooling)
and operand loading are not counted.
"""

from neuroharden.hw.contract import column_chunks, row_blocks, tile_cycles

__all__ = ["METRICS", "array_cycles", "correction_area", "selection",
           "protection_cost", "format_report"]

#: Execution metrics compared, in report order.
METRICS = ("neurons", "macs", "cycles", "memory_bytes", "parameters")
#: Correction unit of each scheme, as named in :data:`synth.designs.DESIGNS`.
_UNIT = {"lcu": "lcu", "tmr": "voter"}


def _groups(net, i):
    """The channels of each protected neuron of layer ``i`` (LCU pairs, TMR triples)."""
    protection = getattr(net, "protection", None)
    if protection is None:
        return []
    return [*protection[i].lcu.tolist(), *protection[i].tmr.tolist()]


def array_cycles(net, *, rows, cols, batch=None):
    """Clock cycles per image of an (original or hardened) integer network on the array.

    Parameters
    ----------
    net : golden.intmodel.IntNet or golden.hardened.HardenedNet
    rows, cols : int
        Array size.
    batch : int, optional
        Images per run (default ``rows``); the result is divided by it.

    Returns
    -------
    float
        Cycles per image (see the module docstring for the model).
    """
    for name, value in (("rows", rows), ("cols", cols)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    batch = rows if batch is None else batch
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, not {batch!r}")
    total = 0
    for i, layer in enumerate(net.layers):
        k = layer.weight[0].numel()
        m = batch * (layer.neurons // layer.weight.shape[0])
        chunks = column_chunks(layer.weight.shape[0], _groups(net, i), cols)
        tiles = len(row_blocks(m, rows)) * len(chunks)
        total += tiles * tile_cycles(rows, cols, k)
    return total / batch


def correction_area(scheme, *, rows, cols, target="generic", cache=None):
    """Area of the correction hardware of ``scheme`` next to a rows x cols array.

    Returns
    -------
    dict
        ``unit`` (design name), ``units`` (= ``cols``), ``unit_area``, ``area`` (units x
        unit area), ``array_area``, ``area_pct`` (in % of the array), ``metric`` (cells
        or LUTs, :func:`synth.area.primary_metric`) and ``status`` ("measured", or the
        synthesis status that prevented it).
    """
    from .area import measure, primary_metric, share

    metric = primary_metric(target)
    unit = _UNIT[scheme]
    unit_row = measure(unit, target, place=False, cache=cache)
    array_row = measure("array", target, rows=rows, cols=cols, place=False, cache=cache)
    unit_area, array_area = unit_row[metric], array_row[metric]
    if unit_area is None or array_area is None:
        bad = unit_row if unit_area is None else array_row
        return {"unit": unit, "units": cols, "unit_area": unit_area, "area": None,
                "array_area": array_area, "area_pct": None, "metric": metric,
                "status": f"{bad['design']}: {bad['status']}"}
    area = cols * unit_area
    return {"unit": unit, "units": cols, "unit_area": unit_area, "area": area,
            "array_area": array_area, "area_pct": share(area, array_area),
            "metric": metric, "status": "measured"}


def selection(net, ranking, *, threshold=None, fraction=None):
    """The channels protected for a selection, as ``neuroharden harden`` chooses them.

    Returns
    -------
    (list of (str, int), dict)
        ``(layer, channel)`` pairs and a summary: ``selected_neurons``,
        ``protected_channels``, ``protected_neurons``, ``threshold``, ``fraction``.
    """
    from neuroharden.golden.harden import select_top, to_channels

    top = select_top(ranking, threshold=threshold, fraction=fraction)
    protect = to_channels(net, top)
    pixels = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
    return protect, {"threshold": threshold, "fraction": fraction,
                     "selected_neurons": len(top), "protected_channels": len(protect),
                     "protected_neurons": sum(pixels[name] for name, _ in protect)}


def _ratio(numerator, denominator):
    return None if numerator is None or not denominator else numerator / denominator


def protection_cost(net, ranking, *, threshold=None, fraction=None, rows=8, cols=8,
                    target="generic", area=True, cache=None, voter="bitwise"):
    """Execution and area cost of LCU and of TMR protecting one selection of neurons.

    Parameters
    ----------
    net : golden.intmodel.IntNet
        The original integer network.
    ranking : list of (str, int, float)
        ``(layer, index, score)`` by decreasing score (a CRITICAL.json's neurons).
    threshold, fraction : float
        Exactly one: the selection of :func:`golden.harden.select_top`.
    rows, cols : int
        Array size for the cycle count and the area (``cols`` >= 3, TMR's group).
    target : str
        Synthesis target of the area (:data:`synth.targets.TARGETS`).
    area : bool
        Synthesize the correction units and the array (cached); False leaves the area
        out.
    cache : synth.cache.Cache, optional
        Synthesis result cache (default: the default cache directory).
    voter : str
        TMR voter mode.

    Returns
    -------
    dict
        ``selection`` (:func:`selection`), ``rows``, ``cols``, ``target``, ``schemes``:
        ``none``, ``lcu`` and ``tmr``, each with :data:`METRICS`, ``extra`` (over
        ``none``, per metric) and, for the protected schemes, ``correction`` (area or
        None); and ``lcu_over_tmr``: per metric and for ``correction_area``, LCU's extra
        cost divided by TMR's (paper 004 claims 0.5; None when TMR adds nothing).

    Raises
    ------
    ValueError
        A bad selection, array size, or a layer the LCU refuses (no ReLU).
    """
    from neuroharden.golden.harden import cost as network_cost
    from neuroharden.golden.harden import harden
    from .cache import Cache

    if not isinstance(cols, int) or cols < 3:
        raise ValueError(f"cols must be an integer of at least 3 (a TMR triple), not {cols!r}")
    protect, summary = selection(net, ranking, threshold=threshold, fraction=fraction)
    nets = {"none": net, "lcu": harden(net, "lcu", protect),
            "tmr": harden(net, "tmr", protect, voter=voter)}
    schemes = {}
    for scheme, hardened in nets.items():
        figures = {k: v for k, v in network_cost(hardened).items() if k in METRICS}
        figures["cycles"] = array_cycles(hardened, rows=rows, cols=cols)
        schemes[scheme] = {m: figures[m] for m in METRICS}
    for scheme, figures in schemes.items():
        figures["extra"] = {m: figures[m] - schemes["none"][m] for m in METRICS}
    if area:
        cache = Cache() if cache is None else cache
        for scheme in ("lcu", "tmr"):
            schemes[scheme]["correction"] = correction_area(scheme, rows=rows, cols=cols,
                                                            target=target, cache=cache)
    ratio = {m: _ratio(schemes["lcu"]["extra"][m], schemes["tmr"]["extra"][m])
             for m in METRICS}
    if area:
        ratio["correction_area"] = _ratio(schemes["lcu"]["correction"]["area"],
                                          schemes["tmr"]["correction"]["area"])
    return {"selection": summary, "rows": rows, "cols": cols, "target": target,
            "voter": voter, "schemes": schemes, "lcu_over_tmr": ratio}


def _number(value):
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def format_report(report):
    """A readable table of :func:`protection_cost`'s result."""
    s = report["selection"]
    chosen = (f"NVF >= {s['threshold']:g} %" if s["threshold"] is not None
              else f"top {s['fraction']:g} % of the ranking")
    lines = [f"{chosen}: {s['selected_neurons']} neurons selected -> "
             f"{s['protected_channels']} channels protected ({s['protected_neurons']} neurons)",
             f"array {report['rows']}x{report['cols']}; cycles per image "
             f"(batch of {report['rows']})", ""]
    schemes = report["schemes"]
    header = ("metric", "none", "LCU", "TMR", "LCU extra", "TMR extra", "LCU/TMR extra")
    body = []
    for m in METRICS:
        ratio = report["lcu_over_tmr"][m]
        body.append((m, _number(schemes["none"][m]), _number(schemes["lcu"][m]),
                     _number(schemes["tmr"][m]), _number(schemes["lcu"]["extra"][m]),
                     _number(schemes["tmr"]["extra"][m]),
                     "-" if ratio is None else f"{ratio:.2f}"))
    if "correction" in schemes["lcu"]:
        lcu, tmr = schemes["lcu"]["correction"], schemes["tmr"]["correction"]
        ratio = report["lcu_over_tmr"]["correction_area"]
        body.append((f"correction {lcu['metric']} ({report['target']})", "0",
                     _number(lcu["area"]), _number(tmr["area"]), _number(lcu["area"]),
                     _number(tmr["area"]), "-" if ratio is None else f"{ratio:.2f}"))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    for r in [header, *body]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    lines.insert(4, "  ".join("-" * w for w in widths))
    if "correction" in schemes["lcu"]:
        for scheme in ("lcu", "tmr"):
            c = schemes[scheme]["correction"]
            pct = "-" if c["area_pct"] is None else f"{c['area_pct']:.2f} %"
            lines.append(f"{scheme}: {c['units']} x {c['unit']} = {_number(c['area'])} "
                         f"{c['metric']}, {pct} of the array ({c['status']})")
    return "\n".join(lines)

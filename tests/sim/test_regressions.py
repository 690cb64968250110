"""cocotb regressions of every hardware block, each under Icarus and Verilator.

One simulator process per (block configuration, simulator) runs every test of the
block's cocotb module; builds are reused across runs through sim.runner's cache.
"""

import ast
import importlib.util
from pathlib import Path
from xml.etree import ElementTree

import pytest

from neuroharden.hw.verilog import generate
from neuroharden.sim.runner import SIMULATORS, SimulationError, build, run

# (kind, generation parameters, cocotb module)
REGRESSIONS = [
    ("pe", dict(width=8, acc_width=16), "neuroharden.sim.tb_pe"),
    ("pe", dict(width=16, acc_width=32), "neuroharden.sim.tb_pe"),
    ("array", dict(rows=3, cols=5), "neuroharden.sim.tb_array"),
    ("array", dict(rows=4, cols=2), "neuroharden.sim.tb_array"),
    ("requant", dict(acc_width=32), "neuroharden.sim.tb_requant"),
    ("lcu", dict(width=8), "neuroharden.sim.tb_lcu"),
    ("voter", dict(width=8, mode="bitwise"), "neuroharden.sim.tb_voter"),
    ("voter", dict(width=8, mode="word"), "neuroharden.sim.tb_voter"),
    ("tmr-pe", dict(width=8, acc_width=32), "neuroharden.sim.tb_tmr"),
    ("tmr-array", dict(rows=2, cols=3), "neuroharden.sim.tb_tmr"),
]

DEFAULTS = dict(rows=4, cols=4, width=8, acc_width=32, mode="bitwise")


def regression_id(case):
    kind, params, _ = case
    return kind + "-" + "-".join(f"{key}{value}" for key, value in params.items())


def cocotb_tests(module):
    """Names of the ``@cocotb.test()`` coroutines of a cocotb module, read from its source."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())

    def is_test(decorator):
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        return ast.unparse(target) == "cocotb.test"

    return [node.name for node in tree.body if isinstance(node, ast.AsyncFunctionDef)
            and any(is_test(d) for d in node.decorator_list)]


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("case", REGRESSIONS, ids=regression_id)
def test_block(case, sim, tmp_path):
    kind, params, module = case
    config = {**DEFAULTS, **params, "kind": kind.replace("-", "_")}
    verilog = generate(kind, **{key: config[key] for key in DEFAULTS})
    design = build(verilog, toplevel=config["kind"], sim=sim, log=tmp_path / "build.log")
    # run() raises SimulationError when a test fails; what it returns says all ran.
    tests, _ = run(design, module, config=config, log=tmp_path / "sim.log")
    assert tests == len(cocotb_tests(module)) > 0


@pytest.mark.slow(seconds=15)
def test_a_failing_regression_is_reported(tmp_path):
    # A word-mode voter checked against the bitwise reference. The modes agree when at
    # most one copy differs and on 1, 2, 4 (no bit in two copies: both give 0), so only
    # the random triples of matches_the_reference fail.
    verilog = generate("voter", width=8, mode="word")
    design = build(verilog, toplevel="voter", sim="icarus", log=tmp_path / "build.log")
    config = {**DEFAULTS, "mode": "bitwise", "kind": "voter"}
    with pytest.raises(SimulationError, match=r"neuroharden\.sim\.tb_voter on icarus"):
        run(design, "neuroharden.sim.tb_voter", config=config, log=tmp_path / "sim.log",
            test_dir=tmp_path)
    cases = list(ElementTree.parse(tmp_path / "tb_voter.results.xml").getroot()
                 .iter("testcase"))
    assert [case.get("name") for case in cases] == cocotb_tests("neuroharden.sim.tb_voter")
    assert [case.get("name") for case in cases
            if case.find("failure") is not None] == ["matches_the_reference"]

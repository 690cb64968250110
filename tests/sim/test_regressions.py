"""cocotb regressions of every hardware block, each under Icarus and Verilator.

One simulator process per (block configuration, simulator) runs every test of the
block's cocotb module; builds are reused across runs through sim.runner's cache.
"""

import pytest

from neuroharden.hw.verilog import generate
from neuroharden.sim.runner import SIMULATORS, build, run

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


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("case", REGRESSIONS, ids=regression_id)
def test_block(case, sim, tmp_path):
    kind, params, module = case
    config = {**DEFAULTS, **params, "kind": kind.replace("-", "_")}
    verilog = generate(kind, **{key: config[key] for key in DEFAULTS})
    design = build(verilog, toplevel=config["kind"], sim=sim, log=tmp_path / "build.log")
    tests, failed = run(design, module, config=config, log=tmp_path / "sim.log")
    assert tests > 0 and failed == 0

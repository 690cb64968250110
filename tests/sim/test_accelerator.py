"""cocotb regression of the accelerator under Icarus and Verilator (sim.tb_accelerator):
random tiles against sim.tile.reference, reruns without reloading, and single-copy
faults corrected by the LCU / masked by the TMR voters."""

import pytest

from neuroharden.hw.verilog import generate
from neuroharden.sim.runner import build, run

CONFIGS = [
    dict(rows=3, cols=4, k_depth=12, protect="none"),
    dict(rows=3, cols=4, k_depth=12, protect="lcu"),
    dict(rows=3, cols=4, k_depth=12, protect="tmr"),
]


def run_config(config, sim, tmp_path):
    config = {**config, "width": 8, "acc_width": 32}
    verilog = generate("accelerator", rows=config["rows"], cols=config["cols"],
                       protect=config["protect"], k_depth=config["k_depth"])
    design = build(verilog, toplevel="accelerator", sim=sim, log=tmp_path / "build.log")
    return run(design, "neuroharden.sim.tb_accelerator", config=config, log=tmp_path / "sim.log")


# Icarus builds the LCU configuration and runs it in about 7 s: the quick check.
# Verilator's build takes over a minute, so every Verilator run is marked slow.
CASES = [pytest.param(config, sim, id=f"{config['protect']}-{sim}",
                      marks=[] if (sim, config["protect"]) == ("icarus", "lcu")
                      else [pytest.mark.slow])
         for sim in ("icarus", "verilator") for config in CONFIGS]


@pytest.mark.parametrize("config, sim", CASES)
def test_accelerator(config, sim, tmp_path):
    tests, failed = run_config(config, sim, tmp_path)
    assert tests == 3 and failed == 0

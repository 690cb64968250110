"""cocotb regression of the accelerator under Icarus and Verilator (sim.tb_accelerator):
random tiles against sim.tile.reference, reruns without reloading, and single-copy
faults corrected by the LCU / masked by the TMR voters."""

import pytest

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.hw.verilog import generate
from neuroharden.sim.runner import build, run

CONFIGS = [AcceleratorConfig(rows=3, cols=4, k_depth=12, protect=protect)
           for protect in ("none", "lcu", "tmr")]


def run_config(config, sim, tmp_path):
    verilog = generate("accelerator", **config.to_dict())
    design = build(verilog, toplevel="accelerator", sim=sim, log=tmp_path / "build.log")
    return run(design, "neuroharden.sim.tb_accelerator",
               config={"accelerator": config.to_dict()}, log=tmp_path / "sim.log")


# Icarus builds the LCU configuration and runs it in about 7 s: the quick check.
# Verilator's build takes over a minute, so every Verilator run is marked slow.
CASES = [pytest.param(config, sim, id=f"{config.protect}-{sim}",
                      marks=[] if (sim, config.protect) == ("icarus", "lcu")
                      else [pytest.mark.slow])
         for sim in ("icarus", "verilator") for config in CONFIGS]


@pytest.mark.parametrize("config, sim", CASES)
def test_accelerator(config, sim, tmp_path):
    tests, failed = run_config(config, sim, tmp_path)
    assert tests == 3 and failed == 0

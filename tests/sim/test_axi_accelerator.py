"""cocotbext-axi regression of the AXI accelerator under Icarus and Verilator
(sim.tb_axi_accelerator): random tiles under backpressure, the register map, the done
interrupt and the error counters, for each protection."""

import pytest

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.hw.verilog import generate
from neuroharden.sim.runner import build, run

CONFIGS = [AcceleratorConfig(rows=3, cols=4, k_depth=12, protect=protect)
           for protect in ("none", "lcu", "tmr")]


def run_config(config, sim, tmp_path):
    verilog = generate("accelerator-axi", **config.to_dict())
    design = build(verilog, toplevel="accelerator_axi", sim=sim, log=tmp_path / "build.log")
    return run(design, "neuroharden.sim.tb_axi_accelerator",
               config={"accelerator": config.to_dict()}, log=tmp_path / "sim.log")


# Icarus on the TMR build is the quick check (all three counters); the rest is slow.
CASES = [pytest.param(config, sim, id=f"{config.protect}-{sim}",
                      marks=[] if (sim, config.protect) == ("icarus", "tmr")
                      else [pytest.mark.slow])
         for sim in ("icarus", "verilator") for config in CONFIGS]


@pytest.mark.parametrize("config, sim", CASES)
def test_axi_accelerator(config, sim, tmp_path):
    tests, failed = run_config(config, sim, tmp_path)
    assert tests == 4 and failed == 0, (tmp_path / "sim.log").read_text()[-4000:]

"""cocotb regression of the accelerator under Icarus and Verilator (sim.tb_accelerator):
random tiles against sim.tile.reference, reruns without reloading, and single-copy
faults corrected by the LCU / masked by the TMR voters."""

import pytest

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.hw.verilog import generate
from neuroharden.sim.runner import build, run

CONFIGS = [AcceleratorConfig(rows=3, cols=4, k_depth=12, protect=protect)
           for protect in ("none", "lcu", "tmr")]


def run_config(config, sim, tmp_path, kind="accelerator", module="tb_accelerator"):
    """Run the cocotb module ``sim.<module>`` on a build of block ``kind`` with
    ``config``; returns ``(tests, failed)``."""
    verilog = generate(kind, **config.to_dict())
    design = build(verilog, toplevel=kind.replace("-", "_"), sim=sim,
                   log=tmp_path / "build.log")
    return run(design, f"neuroharden.sim.{module}",
               config={"accelerator": config.to_dict()}, log=tmp_path / "sim.log")


def cases(quick):
    """Every (config, sim), all slow but the ``quick`` protection on Icarus: Verilator's
    builds take a minute each."""
    return [pytest.param(config, sim, id=f"{config.protect}-{sim}",
                         marks=[] if (sim, config.protect) == ("icarus", quick)
                         else [pytest.mark.slow])
            for sim in ("icarus", "verilator") for config in CONFIGS]


# Icarus builds the LCU configuration and runs it in about 7 s: the quick check.
CASES = cases("lcu")


@pytest.mark.parametrize("config, sim", CASES)
def test_accelerator(config, sim, tmp_path):
    tests, failed = run_config(config, sim, tmp_path)
    assert tests == 3 and failed == 0

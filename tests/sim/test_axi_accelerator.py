"""cocotbext-axi regression of the AXI accelerator under Icarus and Verilator
(sim.tb_axi_accelerator): random tiles under backpressure, the register map, the done
interrupt and the error counters, for each protection."""

import pytest

from tests.sim.test_accelerator import cases, run_config

# Icarus on the TMR build is the quick check (all three counters); the rest is slow.
CASES = cases("tmr")


@pytest.mark.parametrize("config, sim", CASES)
def test_axi_accelerator(config, sim, tmp_path):
    tests, failed = run_config(config, sim, tmp_path, kind="accelerator-axi",
                               module="tb_axi_accelerator")
    assert tests == 4 and failed == 0, (tmp_path / "sim.log").read_text()[-4000:]

"""Yosys runs and the parsing of `stat -json` (on real runs of small blocks)."""

import json

import pytest

from neuroharden.hw.verilog import generate
from neuroharden.synth.targets import TARGETS
from neuroharden.synth.yosys import YosysError, parse_stat, run_yosys, stat_counts, synthesize


@pytest.fixture(scope="module")
def generic_lcu():
    return synthesize(TARGETS["generic"], generate("lcu"), top="lcu")


def test_generic_lcu_counts_cells_and_transistors(generic_lcu):
    assert generic_lcu["cells"] == sum(generic_lcu["by_type"].values()) > 0
    assert generic_lcu["transistors"] > 0
    assert generic_lcu["transistors_partial"] is False   # every cell has a CMOS price
    assert generic_lcu["ffs"] == 0                       # combinational
    assert generic_lcu["luts"] is None and generic_lcu["dsps"] is None
    assert generic_lcu["port_bits"] == 8 + 8 + 1 + 8     # a, b, wide, y


def test_generic_pe_counts_its_flip_flops():
    result = synthesize(TARGETS["generic"], generate("pe"), top="pe")
    assert result["ffs"] == 8 + 8 + 32                   # a_reg, w_reg, acc
    assert result["transistors"] > result["cells"]


def test_ice40_voter_maps_to_luts():
    result = synthesize(TARGETS["ice40"], generate("voter", width=8, mode="bitwise"),
                        top="voter")
    assert result["luts"] == result["by_type"]["SB_LUT4"] >= 8   # one majority per bit
    assert result["ffs"] == 0 and result["dsps"] == 0


def test_ecp5_pe_uses_one_multiplier():
    result = synthesize(TARGETS["ecp5"], generate("pe"), top="pe")
    assert result["dsps"] == 1
    assert result["ffs"] == 48
    assert result["luts"] >= 2 * result["carry"]


def test_tmr_keeps_three_replicas():
    """Without the keep, opt_merge folds the identical replicas back into one PE."""
    result = synthesize(TARGETS["generic"], generate("tmr-pe"), top="tmr_pe")
    assert result["ffs"] == 3 * 48


def test_parse_stat_design_section_and_partial_estimate():
    text = json.dumps({"modules": {"\\top": {"num_cells": 3, "num_port_bits": 5,
                                             "num_cells_by_type": {"$_AND_": 3}}},
                       "design": {"num_cells": 3, "num_port_bits": 9,
                                  "num_cells_by_type": {"$_AND_": 3},
                                  "estimated_num_transistors": "18+"}})
    stat = parse_stat(text, "top")
    assert stat["cells"] == 3 and stat["by_type"] == {"$_AND_": 3}
    assert stat["transistors"] == 18 and stat["transistors_partial"] is True
    assert stat["port_bits"] == 5      # the top module's ports, not the hierarchy's sum


def test_parse_stat_single_module_without_design_section():
    text = json.dumps({"modules": {"\\m": {"num_cells": 2, "num_cells_by_type": {}}}})
    assert parse_stat(text)["cells"] == 2


def test_stat_counts_per_target():
    by_type = {"SB_LUT4": 10, "SB_CARRY": 4, "SB_DFFSR": 3, "SB_DFF": 1, "SB_MAC16": 2}
    counts = stat_counts("ice40", {"cells": 20, "by_type": by_type})
    assert counts == {"cells": 20, "luts": 10, "carry": 4, "ffs": 4, "dsps": 2}
    by_type = {"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 5, "MULT18X18D": 1}
    counts = stat_counts("ecp5", {"cells": 19, "by_type": by_type})
    assert counts == {"cells": 19, "luts": 16, "carry": 3, "ffs": 5, "dsps": 1}
    with pytest.raises(ValueError):
        stat_counts("xilinx", {"cells": 0, "by_type": {}})


def test_yosys_error_is_one_line(tmp_path):
    with pytest.raises(YosysError, match="Yosys failed"):
        run_yosys("read_verilog no_such_file.v\n", workdir=tmp_path)


def test_ecp5_netlist_has_no_multiply_driven_bit(tmp_path):
    """Regression: without opt_clean before opt_dff, two flip-flops drove one result bit
    of the 4x4 array and nextpnr-ecp5 refused the netlist."""
    synthesize(TARGETS["ecp5"], generate("array", rows=4, cols=4), top="array",
               workdir=tmp_path)
    module = json.loads((tmp_path / "netlist.json").read_text())["modules"]["array"]
    drivers = {}
    for name, cell in module["cells"].items():
        for port, direction in cell["port_directions"].items():
            if direction == "output":
                for bit in cell["connections"][port]:
                    if isinstance(bit, int):
                        assert bit not in drivers, f"bit {bit}: {drivers[bit]} and {name}"
                        drivers[bit] = name

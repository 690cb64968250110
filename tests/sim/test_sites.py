"""The RTL fault-site catalogue: register sets, Verilog names, resolution, the command."""

import fnmatch
import json
import re

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from click.testing import CliRunner

from neuroharden.hw.contract import (ACT_BUF, ARRAY, BIAS, DONE, GROUP, K_LEN, MULTIPLIER,
                                     OUT_BUF, OUT_ROW, RELU, SHIFT, STATE, STEP, WGT_BUF,
                                     WORD_VOTE, Y, ZERO_POINT)
from neuroharden.hw.pe import A_REG, ACC, W_REG
from neuroharden.hw.systolic_array import A_SKEW, PE_NAME, W_SKEW
from neuroharden.hw.verilog import KINDS, generate
from neuroharden.sim.runner import SIMULATORS, build, control_file_text, run
from neuroharden.sim.cli import sites
from neuroharden.sim.sites import Catalogue, UnknownSiteError, catalogue, design_catalogue, resolve


def array_registers(rows, cols, width, acc_width):
    """path -> (width, kind) of a plain array, written out from its documented structure
    (the names from their declarations in hw)."""
    expected = {}
    for r in range(rows):
        for c in range(cols):
            pe = PE_NAME.format(r, c)
            expected[f"{pe}.{A_REG}"] = (width, "pe.a_reg")
            expected[f"{pe}.{W_REG}"] = (width, "pe.w_reg")
            expected[f"{pe}.{ACC}"] = (acc_width, "pe.acc")
    for r in range(rows):
        for i in range(r):
            expected[A_SKEW.format(r, i)] = (width, "skew")
    for c in range(cols):
        for i in range(c):
            expected[W_SKEW.format(c, i)] = (width, "skew")
    return expected


def as_dict(found):
    return {site.path: (site.width, site.kind) for site in found}


@pytest.mark.parametrize("width, acc_width", [(8, 32), (16, 40)])
def test_array_catalogue_lists_exactly_its_registers(width, acc_width):
    found = design_catalogue("array", rows=2, cols=3, width=width, acc_width=acc_width)
    expected = array_registers(2, 3, width, acc_width)
    assert as_dict(found) == expected
    assert len(found) == 2 * 3 * 3 + 1 + 3
    assert found.bits == 6 * (2 * width + acc_width) + 4 * width
    assert {site.module for site in found if site.path.startswith("pe_1_2.")} == {"array.pe_1_2"}
    assert found.inputs == ("a_in", "w_in", "clear", "drain")


def test_tmr_array_triples_the_array():
    found = design_catalogue("tmr-array", rows=2, cols=3)
    one = array_registers(2, 3, 8, 32)
    assert as_dict(found) == {f"replica_{i}.{path}": entry
                              for i in range(3) for path, entry in one.items()}
    assert found.bits == 3 * design_catalogue("array", rows=2, cols=3).bits


def test_pe_and_combinational_blocks():
    assert as_dict(design_catalogue("pe", acc_width=24)) == {
        A_REG: (8, "pe.a_reg"), W_REG: (8, "pe.w_reg"), ACC: (24, "pe.acc")}
    assert len(design_catalogue("tmr-pe")) == 9
    for kind in ("requant", "lcu", "voter"):
        assert len(design_catalogue(kind)) == 0


def accelerator_registers(rows, cols, protect, k_depth):
    """path -> (width, kind) of the accelerator, written out from its documented interface."""
    expected = {f"{ARRAY}.{path}": entry
                for path, entry in array_registers(rows, cols, 8, 32).items()}
    for c in range(cols):
        expected |= {BIAS.format(c): (32, "requant"), MULTIPLIER.format(c): (16, "requant"),
                     SHIFT.format(c): (6, "requant"), RELU.format(c): (1, "requant"),
                     ZERO_POINT.format(c): (8, "requant"), Y.format(c): (8, "requant")}
    # enable + the other copies' column indices (2 bits each for 3 columns), + wide (LCU).
    group_bits = {"none": 0, "lcu": 1 + 2 + 1, "tmr": 1 + 2 + 2}[protect]
    if group_bits:
        expected |= {GROUP.format(c): (group_bits, "protect") for c in range(cols)}
    if protect == "tmr":
        expected[WORD_VOTE] = (1, "protect")
    # Signal(range(n)) is (n - 1).bit_length() bits wide; six controller states.
    expected |= {STATE: (3, "control"), DONE: (1, "control"),
                 STEP: ((max(k_depth, rows + cols) - 1).bit_length(), "control"),
                 OUT_ROW: ((rows - 1).bit_length(), "control"),
                 K_LEN: (k_depth.bit_length(), "control")}
    expected |= {f"{ACT_BUF}[{k}]": (8 * rows, "buffer") for k in range(k_depth)}
    expected |= {f"{WGT_BUF}[{k}]": (8 * cols, "buffer") for k in range(k_depth)}
    expected |= {f"{OUT_BUF}[{r}]": (8 * cols, "buffer") for r in range(rows)}
    return expected


@pytest.mark.parametrize("protect", ["none", "lcu", "tmr"])
def test_accelerator_catalogue(protect):
    found = design_catalogue("accelerator", rows=2, cols=3, protect=protect, k_depth=8)
    assert as_dict(found) == accelerator_registers(2, 3, protect, 8)


def verilog_modules(text):
    """Verilog module name -> body, for Amaranth's output."""
    modules = {}
    for match in re.finditer(r"^module \\?(\S+?)\s*\((.*?)^endmodule", text, re.M | re.S):
        modules[match[1]] = match[2]
    return modules


@pytest.mark.parametrize("kind, parameters", [
    ("array", dict(rows=3, cols=2)), ("tmr-pe", {}), ("tmr-array", dict(rows=2, cols=2)),
    ("accelerator", dict(rows=2, cols=3, protect="tmr", k_depth=4)),
])
def test_every_path_is_a_clocked_reg_of_its_verilog_module(kind, parameters):
    found = design_catalogue(kind, **parameters)
    modules = verilog_modules(generate(kind, **parameters))
    for site in found:
        body = modules[site.module]
        name = re.sub(r"\[\d+\]$", "", site.path.rsplit(".", 1)[-1])
        vector = rf"\[{site.width - 1}:0\] " if site.width > 1 else ""
        assert re.search(rf"^  reg {vector}{re.escape(name)}\b", body, re.M), site
        assert re.search(rf"^\s+{re.escape(name)}(\[[^\]]+\])? <= ", body, re.M), site
    # Each module's declared registers with an initial value are all catalogued.
    for module, body in modules.items():
        declared = set(re.findall(r"^  reg (?:\[\d+:0\] )?(\w+) = ", body, re.M))
        listed = {site.path.rsplit(".", 1)[-1] for site in found if site.module == module}
        assert declared <= listed, (module, declared - listed)


class Buffered(wiring.Component):
    """A memory and a counter, to check that memories are catalogued word by word."""

    def __init__(self):
        super().__init__({"addr": In(2), "data": In(8), "we": In(1), "q": Out(8)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.words = words = Memory(shape=8, depth=3, init=[])
        write, read = words.write_port(), words.read_port(domain="comb")
        count = Signal(5, name="count")
        m.d.sync += count.eq(count + 1)
        m.d.comb += [write.addr.eq(self.addr), write.data.eq(self.data), write.en.eq(self.we),
                     read.addr.eq(self.addr), self.q.eq(read.data)]
        return m


def test_memories_are_catalogued_word_by_word():
    found = catalogue(Buffered(), toplevel="buffered")
    assert as_dict(found) == {"count": (5, "control"), "words[0]": (8, "buffer"),
                              "words[1]": (8, "buffer"), "words[2]": (8, "buffer")}


@pytest.fixture(scope="module")
def array_sites():
    return design_catalogue("array", rows=2, cols=3)


def test_resolve_paths_and_globs(array_sites):
    assert [s.path for s in resolve(array_sites, "pe_0_1.acc")] == ["pe_0_1.acc"]
    accs = resolve(array_sites, "pe_*.acc")
    assert [s.path for s in accs] == [f"pe_{r}_{c}.acc" for r in range(2) for c in range(3)]
    assert len(resolve(array_sites, "*")) == len(array_sites)
    both = resolve(array_sites, ["pe_1_?.w_reg", "pe_1_2.*", "pe_1_2.w_reg"])
    assert [s.path for s in both] == ["pe_1_0.w_reg", "pe_1_1.w_reg", "pe_1_2.a_reg",
                                      "pe_1_2.acc", "pe_1_2.w_reg"]


def test_unknown_path_names_close_matches(array_sites):
    with pytest.raises(UnknownSiteError, match=r"'pe_0_1\.ac'.*close matches: pe_0_1\.acc"):
        resolve(array_sites, "pe_0_1.ac")
    with pytest.raises(UnknownSiteError, match=r"matches 'pe_9_\*\.acc'.*pe_\d_\d\.acc"):
        resolve(array_sites, "pe_9_*.acc")
    with pytest.raises(UnknownSiteError):
        array_sites["a_skew_0_0"]
    tmr = design_catalogue("tmr-array", rows=2, cols=3)
    with pytest.raises(UnknownSiteError, match=r"replica_0\.pe_0_0\.acc"):
        resolve(tmr, "pe_0_0.acc")


def test_brackets_are_literal_in_globs():
    found = catalogue(Buffered(), toplevel="buffered")
    assert [s.path for s in resolve(found, "words[1]")] == ["words[1]"]
    assert [s.path for s in resolve(found, "words[*]")] == ["words[0]", "words[1]", "words[2]"]
    with pytest.raises(UnknownSiteError):
        resolve(found, "words[3]")


def test_fault_space_sizes(array_sites):
    space = array_sites.fault_space(cycles=20)
    bits = 6 * (8 + 8 + 32) + 4 * 8
    assert space == {"bits": bits, "stuck_at": 2 * bits, "transient_per_cycle": bits,
                     "cycles": 20, "transient": 20 * bits,
                     "paper003_weight_stuck_at": 2 * 8 * 6}
    assert array_sites.totals()["pe.acc"] == {"sites": 6, "bits": 192}


def test_catalogue_refuses_duplicate_paths(array_sites):
    with pytest.raises(ValueError, match="Duplicate"):
        Catalogue("x", [array_sites.sites[0], array_sites.sites[0]])


def forceable_patterns():
    return re.findall(r'^forceable .*-var "([^"]+)"', control_file_text(), re.M)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_register_is_forceable_under_verilator(kind):
    parameters = dict(rows=2, cols=3, k_depth=4)
    if kind == "accelerator":
        parameters["protect"] = "tmr"
    patterns = forceable_patterns()
    for site in design_catalogue(kind, **parameters):
        if site.kind != "buffer":
            name = site.path.rsplit(".", 1)[-1]
            assert any(fnmatch.fnmatchcase(name, p) for p in patterns), site


def test_command_table_and_json():
    runner = CliRunner()
    result = runner.invoke(sites, ["--kind", "array", "--rows", "2", "--cols", "3",
                                   "--cycles", "20"])
    assert result.exit_code == 0, result.output
    assert "pe_1_2.acc" in result.output and "array.pe_1_2" in result.output
    assert "stuck-at faults (bits x 2): 640" in result.output
    assert "(bits x 20 cycles): 6,400" in result.output
    assert "(2 x K x M): 96" in result.output
    result = runner.invoke(sites, ["--kind", "tmr-array", "--rows", "2", "--cols", "3",
                                   "--sites", "replica_1.pe_*.w_reg", "--json"])
    report = json.loads(result.output)
    assert [s["path"] for s in report["sites"]] == [
        f"replica_1.pe_{r}_{c}.w_reg" for r in range(2) for c in range(3)]
    assert set(report["sites"][0]) == {"path", "width", "kind", "module"}
    assert report["totals"]["bits"] == 48
    assert report["fault_space"]["paper003_weight_stuck_at"] == 96
    assert report["sample_size"]["stuck_at"] == 96


def test_command_refuses_an_unknown_site():
    result = CliRunner().invoke(sites, ["--kind", "array", "--sites", "pe_0_0.acx"])
    assert result.exit_code != 0
    assert "close matches: pe_0_0.acc" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("kind, parameters", [
    ("tmr-array", dict(rows=2, cols=3)),
    ("accelerator", dict(rows=2, cols=3, protect="tmr", k_depth=4)),
])
def test_catalogued_sites_deposit_and_force_on_the_simulator(kind, parameters, sim, tmp_path):
    found = design_catalogue(kind, **parameters)
    config = {"sites": [[s.path, s.width, s.kind] for s in found], "inputs": list(found.inputs)}
    design = build(generate(kind, **parameters), toplevel=found.toplevel, sim=sim,
                   log=tmp_path / "build.log")
    tests, failed = run(design, "neuroharden.sim.tb_sites", config=config,
                        testcase="every_site_deposits_forces_and_releases",
                        log=tmp_path / "sim.log")
    assert (tests, failed) == (1, 0)

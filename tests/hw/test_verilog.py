"""Verilog generation and the ``neuroharden generate`` command."""

import re

import pytest
from click.testing import CliRunner

from neuroharden.hw.contract import AcceleratorConfig
from neuroharden.hw.verilog import KINDS, generate
from neuroharden.sim.app.cli import main

SMALL = {"rows": 2, "cols": 2}


def module_names(verilog):
    return re.findall(r"^module ([^\s(]+)", verilog, flags=re.MULTILINE)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_its_top_module_and_is_deterministic(kind):
    text = generate(kind, **SMALL)
    assert module_names(text)[0] == kind.replace("-", "_")
    assert "src =" not in text
    assert generate(kind, **SMALL) == text


def test_fault_site_names_survive_in_the_verilog():
    array = generate("array", rows=2, cols=2)
    assert "module \\array.pe_1_1 " in array
    assert re.search(r"^\s*reg \[7:0\] a_skew_1_0\b", array, flags=re.MULTILINE)
    assert re.search(r"^\s*reg \[7:0\] w_skew_1_0\b", array, flags=re.MULTILINE)
    tmr = generate("tmr-pe")
    assert [name for name in module_names(tmr)] == [
        "tmr_pe", "\\tmr_pe.replica_0", "\\tmr_pe.replica_1", "\\tmr_pe.replica_2",
        "\\tmr_pe.vote_a_out", "\\tmr_pe.vote_acc_out", "\\tmr_pe.vote_w_out"]
    for name, width in [("a_reg", 7), ("w_reg", 7), ("acc", 31)]:
        assert len(re.findall(rf"^\s*reg \[{width}:0\] {name} = ", tmr, flags=re.MULTILINE)) == 3


@pytest.mark.parametrize("protect", ["none", "lcu", "tmr"])
def test_accelerator_is_deterministic_and_keeps_its_fault_site_names(protect):
    text = generate("accelerator", rows=2, cols=3, protect=protect, k_depth=8)
    assert generate("accelerator", rows=2, cols=3, protect=protect, k_depth=8) == text
    modules = module_names(text)
    assert modules[0] == "accelerator"
    for module in ["array", "array.pe_1_2", "requant_0", "requant_2"]:
        assert f"\\accelerator.{module}" in modules
    assert ("\\accelerator.protect" in modules) == (protect != "none")
    declared = AcceleratorConfig(rows=2, cols=3, protect=protect, k_depth=8).registers
    # Every register of the map, as its column 2 for a family, and its memories.
    assert len(declared) == {"none": 14, "lcu": 15, "tmr": 16}[protect]
    for register in declared.values():
        if register.memory:
            words = register.depth - 1
            pattern = rf"^\s*reg \[\d+:0\] {register.name} \[{words}:0\];"
        else:
            pattern = rf"^\s*reg (\[\d+:0\] )?{register.path(*[2] * register.indices)} = "
        assert re.search(pattern, text, flags=re.MULTILINE), register.name
    assert generate("accelerator", rows=2, cols=3, protect=protect, k_depth=9) != text


@pytest.mark.parametrize("kind, kwargs, match", [
    ("fpga", {}, "Block kind"),
    ("array", {"rows": 0}, "Row count"),
    ("tmr-array", {"cols": 0}, "Column count"),
    ("pe", {"width": 12}, "Operand width"),
    ("tmr-pe", {"acc_width": 8}, "Accumulator width"),
    ("requant", {"acc_width": 64}, "Accumulator width"),
    ("voter", {"mode": "maybe"}, "mode"),
    ("accelerator", {"protect": "ecc"}, "Protection"),
    ("accelerator", {"cols": 2, "protect": "tmr"}, "at least 3"),
    ("accelerator", {"k_depth": 0}, "k_depth"),
])
def test_bad_parameters_raise_value_error(kind, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(kind, **kwargs)


def test_cli_writes_the_file_atomically(tmp_path):
    output = tmp_path / "deep" / "dir" / "array.v"
    result = CliRunner().invoke(main, ["generate", "array", "-o", str(output),
                                       "--rows", "2", "--cols", "3"])
    assert result.exit_code == 0, result.output
    assert output.read_text() == generate("array", rows=2, cols=3)
    assert [path.name for path in output.parent.iterdir()] == ["array.v"]


def test_cli_generates_the_accelerator(tmp_path):
    output = tmp_path / "accelerator.v"
    result = CliRunner().invoke(main, ["generate", "accelerator", "-o", str(output), "--rows",
                                       "2", "--cols", "3", "--protect", "tmr", "--k-depth", "8"])
    assert result.exit_code == 0, result.output
    assert output.read_text() == generate("accelerator", rows=2, cols=3, protect="tmr",
                                          k_depth=8)


def test_cli_help_explains_kinds_and_options():
    result = CliRunner().invoke(main, ["generate", "--help"])
    assert result.exit_code == 0
    for word in [*KINDS, "--rows", "--cols", "--width", "--acc-width", "--mode", "--protect",
                 "--k-depth"]:
        assert word in result.output


@pytest.mark.parametrize("arguments", [
    ["fpga"],
    ["array", "--rows", "0"],
    ["pe", "--width", "12"],
    ["voter", "--mode", "maybe"],
    ["requant", "--acc-width", "abc"],
    ["accelerator", "--protect", "ecc"],
    ["accelerator", "--protect", "tmr", "--cols", "2"],
    ["accelerator", "--k-depth", "0"],
])
def test_cli_bad_input_exits_with_status_2_and_writes_nothing(tmp_path, arguments):
    output = tmp_path / "out.v"
    result = CliRunner().invoke(main, ["generate", *arguments, "-o", str(output)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []


def test_generate_writes_the_axi_accelerator_and_its_register_map(tmp_path):
    from click.testing import CliRunner

    from neuroharden.hw.csr import register_map_markdown
    from neuroharden.sim.app.cli import main

    verilog, regmap = tmp_path / "axi.v", tmp_path / "map.md"
    result = CliRunner().invoke(main, ["generate", "accelerator-axi", "-o", str(verilog),
                                       "--rows", "2", "--cols", "3", "--protect", "tmr",
                                       "--k-depth", "8", "--register-map", str(regmap)])
    assert result.exit_code == 0, result.output
    assert "module accelerator_axi(" in verilog.read_text()
    assert regmap.read_text() == register_map_markdown()
    refused = CliRunner().invoke(main, ["generate", "pe", "-o", str(tmp_path / "pe.v"),
                                        "--register-map", str(tmp_path / "x.md")])
    assert refused.exit_code == 2 and not (tmp_path / "pe.v").exists()
    # A register map that cannot be written leaves no Verilog behind either.
    (tmp_path / "file").write_text("")
    unwritable = CliRunner().invoke(main, ["generate", "accelerator-axi", "-o",
                                           str(tmp_path / "new.v"), "--register-map",
                                           str(tmp_path / "file" / "map.md")])
    assert unwritable.exit_code == 2 and len(unwritable.output.strip().splitlines()) == 1
    assert not (tmp_path / "new.v").exists()

# amaranth: UnusedElaboratable=no
"""Register declarations, and every block's register map against its elaborated design."""

import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from neuroharden.hw import axi_accelerator, pe, systolic_array
from neuroharden.hw.accelerator import Accelerator
from neuroharden.hw.contract import PROTECT, AcceleratorConfig, State
from neuroharden.hw.pe import PE
from neuroharden.hw.registers import KINDS, Register, template_regex
from neuroharden.hw.systolic_array import SystolicArray
from neuroharden.hw.verilog import KINDS as BLOCK_KINDS, build
from neuroharden.sim.sites import catalogue


def test_a_register_family_names_its_members():
    bias = Register("bias_{}", "requant", signed(32), select="bias")
    assert (bias.width, bias.loaded, bias.memory, bias.indices) == (32, True, False, 1)
    assert bias.path(3) == "bias_3" and bias.glob == "bias_*"
    assert bias.pattern.match("bias_12") and not bias.pattern.match("bias_x")
    assert not bias.pattern.match("bias_1_2") and not bias.pattern.match("my_bias_1")
    assert bias.signal(2).name == "bias_2" and bias.signal(2).shape() == signed(32)
    skew = Register("a_skew_{}_{}", "skew", signed(8))
    assert skew.path(2, 0) == "a_skew_2_0" and skew.glob == "a_skew_*_*"
    assert skew.pattern.match("a_skew_2_0").groups() == ("2", "0")
    with pytest.raises(ValueError, match="takes 2 index"):
        skew.path(1)


def test_widths_come_from_the_shapes():
    assert Register("k_len", "control", range(257)).width == 9
    assert Register("state", "control", State).width == 3
    assert Register("done_reg", "control", 1).width == 1
    assert Register("out_row", "control", range(1)).width == 0
    layout = data.StructLayout({"enable": 1, "first": 2, "second": 2})
    assert Register("group_{}", "protect", layout).width == 5


def test_a_memory_is_named_by_its_words():
    buffer = Register("act_buf", "buffer", data.ArrayLayout(signed(8), 4), select="act",
                      depth=16)
    assert (buffer.width, buffer.memory, buffer.loaded, buffer.indices) == (32, True, True, 1)
    assert buffer.path(5) == "act_buf[5]" and buffer.glob == "act_buf"
    assert buffer.pattern.match("act_buf[15]") and not buffer.pattern.match("act_buf")
    with pytest.raises(ValueError, match="is a memory"):
        buffer.signal()


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="kind must be one of"):
        Register("x", "datapath", 1)
    with pytest.raises(ValueError, match="non-empty"):
        Register("", "control", 1)
    with pytest.raises(TypeError):
        Register("x", "control", "wide")
    assert template_regex("pe_{}_{}.acc").match("pe_1_22.acc").groups() == ("1", "22")


def own_registers(component, toplevel):
    """path -> width of every register and memory word of the component's own module,
    as the netlist has them (sim.sites reads them from the elaborated design)."""
    return {site.path: site.width for site in catalogue(component, toplevel=toplevel)
            if site.module == toplevel}


def match_map(found, declared):
    """Check that every register found is declared once, with its width, and return
    name -> the paths of each declaration."""
    members = {name: [] for name in declared}
    for path, width in found.items():
        owners = [register for register in declared.values() if register.pattern.match(path)]
        assert len(owners) == 1, (path, [register.name for register in owners])
        assert owners[0].width == width, (path, owners[0].width, width)
        members[owners[0].name].append(path)
    for name, register in declared.items():
        if register.width == 0:
            assert not members[name], name  # a zero-width register is no register
        elif register.memory:
            assert len(members[name]) == register.depth, name
        else:
            assert members[name], f"{name} is declared but not in the design"
    return members


@pytest.mark.parametrize("width, acc_width", [(8, 32), (16, 40), (8, 16)])
def test_pe_map_is_the_design(width, acc_width):
    match_map(own_registers(PE(width=width, acc_width=acc_width), "pe"),
              pe.registers(width=width, acc_width=acc_width))


@pytest.mark.parametrize("rows, cols, width", [(3, 2, 8), (2, 4, 16)])
def test_array_map_is_the_design(rows, cols, width):
    array = SystolicArray(rows=rows, cols=cols, width=width)
    members = match_map(own_registers(array, "array"), systolic_array.registers(width=width))
    # Row r and column c have r and c skew stages.
    assert len(members[systolic_array.A_SKEW]) == sum(range(rows))
    assert len(members[systolic_array.W_SKEW]) == sum(range(cols))


@pytest.mark.parametrize("protect", PROTECT)
@pytest.mark.parametrize("rows, cols, k_depth, width, acc_width", [
    (2, 3, 8, 8, 32), (1, 4, 5, 8, 16), (3, 5, 16, 16, 40)])
def test_accelerator_map_is_the_design(protect, rows, cols, k_depth, width, acc_width):
    config = AcceleratorConfig(rows=rows, cols=cols, k_depth=k_depth, width=width,
                               acc_width=acc_width, protect=protect)
    dut = Accelerator(**config.to_dict())
    assert dut.registers.keys() == config.registers.keys()
    members = match_map(own_registers(dut, "accelerator"), config.registers)
    for name, register in config.registers.items():
        if not register.memory and register.width:
            # A family has one register per column.
            assert len(members[name]) == (cols if register.indices else 1), name
    loaded = {register.select for register in config.registers.values() if register.loaded}
    assert loaded == ({"act", "wgt", "bias", "multiplier", "shift", "relu", "zero_point", "k"}
                      | ({"group"} if protect != "none" else set())
                      | ({"word_vote"} if protect == "tmr" else set()))


@pytest.mark.parametrize("kind", list(BLOCK_KINDS))
def test_every_register_of_every_block_is_declared(kind):
    declared = [*pe.registers().values(), *systolic_array.registers().values()]
    for protect in PROTECT:
        config = AcceleratorConfig(rows=2, cols=3, k_depth=4, protect=protect)
        declared += [*config.registers.values(), *axi_accelerator.registers(config).values()]
    parameters = dict(rows=2, cols=3, k_depth=4, protect="tmr" if kind.startswith("accelerator")
                      else "none")
    for site in catalogue(build(kind, **parameters), toplevel=kind.replace("-", "_")):
        name = site.path.rsplit(".", 1)[-1]
        assert any(register.pattern.match(name) for register in declared), site
        assert site.kind in KINDS


@pytest.mark.parametrize("protect", PROTECT)
def test_axi_accelerator_map_is_the_design(protect):
    config = AcceleratorConfig(rows=2, cols=3, k_depth=5, protect=protect)
    dut = axi_accelerator.AXIAccelerator(**config.to_dict())
    declared = axi_accelerator.registers(config)
    sites = catalogue(dut, toplevel="accelerator_axi")
    own = {site.path.split("[")[0] for site in sites if not site.path.startswith("core.")}
    # vote is a constant without TMR; every other declared register is in the design.
    assert own == set(declared) - ({"csr_vote"} if protect != "tmr" else set())

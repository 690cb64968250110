"""RTL faults: validation, serialization, fault spaces, sampling, and injection on the RTL."""

import math
import sqlite3

import pytest

from neuroharden.hw.verilog import generate
from neuroharden.sim.rtl_faults import ROW_FIELDS, RTLFault, RTLFaultSpace, paper003_space, sample
from neuroharden.sim.runner import SIMULATORS, build, run
from neuroharden.sim.sites import Catalogue, UnknownSiteError, design_catalogue


@pytest.fixture(scope="module")
def array_sites():
    return design_catalogue("array", rows=2, cols=3)


def test_fault_fields_are_checked():
    assert RTLFault("pe_0_0.acc", 3, "bitflip", cycle=5).cycle == 5
    assert RTLFault("pe_0_0.acc", 3, "stuck1").cycle is None
    with pytest.raises(ValueError, match="needs an injection cycle"):
        RTLFault("pe_0_0.acc", 3, "bitflip")
    with pytest.raises(ValueError, match="takes no cycle"):
        RTLFault("pe_0_0.acc", 3, "stuck0", cycle=2)
    with pytest.raises(ValueError, match="model must be one of"):
        RTLFault("pe_0_0.acc", 3, "crash")
    with pytest.raises(ValueError, match="non-negative"):
        RTLFault("pe_0_0.acc", -1, "stuck0")
    with pytest.raises(ValueError, match="non-negative"):
        RTLFault("pe_0_0.acc", 1, "stuck0", tile=-2)
    with pytest.raises(ValueError, match="non-empty path"):
        RTLFault("", 1, "stuck0")


def test_validate_against_the_catalogue(array_sites):
    assert RTLFault("pe_1_2.acc", 31, "stuck0").validate(array_sites).width == 32
    with pytest.raises(ValueError, match="out of range for the 8-bit register pe_1_2.w_reg"):
        RTLFault("pe_1_2.w_reg", 8, "stuck0").validate(array_sites)
    with pytest.raises(UnknownSiteError, match="close matches: pe_1_2.acc"):
        RTLFault("pe_1_2.accu", 0, "stuck0").validate(array_sites)


@pytest.mark.parametrize("fault", [
    RTLFault("pe_0_1.acc", 31, "bitflip", cycle=17),
    RTLFault("replica_2.a_skew_1_0", 0, "stuck1", layer="conv1", tile=12),
    RTLFault("act_buf[3]", 9, "stuck0"),
])
def test_serialization_round_trips(fault):
    assert RTLFault.from_dict(fault.to_dict()) == fault
    assert RTLFault.from_json(fault.to_json()) == fault
    assert RTLFault.from_row(fault.to_row()) == fault
    with sqlite3.connect(":memory:") as db:
        db.execute(f"create table faults ({', '.join(ROW_FIELDS)})")
        db.execute(f"insert into faults values ({', '.join('?' * len(ROW_FIELDS))})",
                   fault.to_row())
        assert RTLFault.from_row(db.execute("select * from faults").fetchone()) == fault


def test_deserialization_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown RTL fault field"):
        RTLFault.from_dict({"site": "acc", "bit": 0, "value": 3})
    with pytest.raises(ValueError, match="missing 'bit'"):
        RTLFault.from_dict({"site": "acc"})
    with pytest.raises(ValueError, match="not an RTL fault"):
        RTLFault.from_json("{")
    with pytest.raises(ValueError, match="6 fields"):
        RTLFault.from_row(("acc", 0, "stuck0"))


def test_spaces_enumerate_every_fault_once(array_sites):
    chosen = [array_sites["pe_0_0.w_reg"], array_sites["a_skew_1_0"], array_sites["pe_1_1.acc"]]
    bits = 8 + 8 + 32
    flips = RTLFaultSpace(chosen, "bitflip", cycles=5)
    assert len(flips) == bits * 5
    expected = {RTLFault(site.path, bit, "bitflip", cycle=t)
                for site in chosen for bit in range(site.width) for t in range(5)}
    assert {flips.fault(k) for k in range(len(flips))} == expected
    stuck = RTLFaultSpace(chosen, "stuck-at", runs=[("fc1", 0), ("fc1", 1), ("fc2", 0)])
    assert len(stuck) == bits * 2 * 3
    expected = {RTLFault(site.path, bit, model, layer=layer, tile=tile)
                for layer, tile in [("fc1", 0), ("fc1", 1), ("fc2", 0)]
                for site in chosen for bit in range(site.width)
                for model in ("stuck0", "stuck1")}
    assert {stuck.fault(k) for k in range(len(stuck))} == expected
    assert len(RTLFaultSpace(chosen, "stuck1")) == bits
    some_cycles = RTLFaultSpace(chosen, "bitflip", cycles=[3, 9, 3])
    assert len(some_cycles) == bits * 2
    assert {f.cycle for f in map(some_cycles.fault, range(len(some_cycles)))} == {3, 9}


def test_space_arguments_are_checked(array_sites):
    sites = list(array_sites)
    with pytest.raises(ValueError, match="needs its injection cycles"):
        RTLFaultSpace(sites, "bitflip")
    with pytest.raises(ValueError, match="takes no cycles"):
        RTLFaultSpace(sites, "stuck-at", cycles=4)
    with pytest.raises(ValueError, match="positive number of cycles"):
        RTLFaultSpace(sites, "bitflip", cycles=0)
    with pytest.raises(ValueError, match="at least one site"):
        RTLFaultSpace([], "stuck0")
    with pytest.raises(ValueError, match="model must be one of"):
        RTLFaultSpace(sites, "crash")
    space = RTLFaultSpace(sites, "stuck0")
    with pytest.raises(ValueError, match="outside the population"):
        space.fault(len(space))


def leveugle(population, t, margin=0.01, p=0.5):
    """Leveugle et al. (DATE 2009), written out here independently of golden.sampling."""
    return math.ceil(population / (1 + margin ** 2 * (population - 1) / (t * t * p * (1 - p))))


def test_sample_sizes(array_sites):
    stuck = RTLFaultSpace(array_sites, "stuck-at")
    assert len(stuck) == 2 * 320
    assert stuck.sample_size() == leveugle(640, 1.959964) == 601
    flips = RTLFaultSpace(array_sites, "bitflip", cycles=20)
    assert flips.sample_size() == leveugle(6400, 1.959964)
    # Paper 003, eq. 1: 2 x K x M over the weight inputs; its campaign used 99 % / 1 %.
    paper = paper003_space(design_catalogue("array", rows=8, cols=8))
    assert len(paper) == 2 * 8 * 64
    assert paper.sample_size(confidence=0.99) == leveugle(1024, 2.575829)
    assert len(paper003_space(design_catalogue("array", rows=4, cols=4, width=16,
                                               acc_width=40))) == 2 * 16 * 16
    with pytest.raises(ValueError, match="no PE weight registers"):
        paper003_space(Catalogue("lcu", []))


def test_sampling_is_deterministic_and_without_replacement(array_sites):
    space = RTLFaultSpace(array_sites, "bitflip", cycles=12)
    first, again = sample(space, 500, seed=7), sample(space, 500, seed=7)
    assert first == again and len(set(first)) == 500
    assert sample(space, 500, seed=8) != first
    assert all(f.validate(array_sites) for f in first)
    small = RTLFaultSpace([array_sites["pe_0_0.w_reg"]], "stuck-at")
    assert set(sample(small, len(small), seed=1)) == {small.fault(k) for k in range(16)}
    with pytest.raises(ValueError):
        sample(small, 17, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
def test_injection_matches_references_on_the_rtl(sim, tmp_path):
    parameters = dict(rows=2, cols=3)
    design = build(generate("array", **parameters), toplevel="array", sim=sim,
                   log=tmp_path / "build.log")
    tests, failed = run(design, "neuroharden.sim.tb_sites", config={**parameters, "kind": "array"},
                        testcase=["stuck_weight_bit_matches_reference",
                                  "flipped_accumulator_bit_matches_reference"],
                        log=tmp_path / "sim.log")
    assert (tests, failed) == (2, 0)

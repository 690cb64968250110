"""The accelerator's contract: configuration, cycle schedule, tile packing (hw/contract.py).

The register map is checked against the elaborated design in test_registers.py, the
schedule against the RTL by the accelerator regressions (tests/sim/test_accelerator.py,
test_rtl_runner.py), which drain, inject and count cycles by it.
"""

import json

import pytest

from neuroharden.hw.contract import (AcceleratorConfig, Schedule, column_chunks, pack,
                                     pe_site, row_blocks, tile_cycles, unpack)
from neuroharden.hw.pe import ACC


def test_config_defaults_and_json_round_trip():
    config = AcceleratorConfig(rows=3, cols=4)
    assert config.to_dict() == {"rows": 3, "cols": 4, "width": 8, "acc_width": 32,
                                "protect": "none", "k_depth": 256}
    tmr = AcceleratorConfig(rows=2, cols=3, width=16, acc_width=40, protect="tmr", k_depth=9)
    assert AcceleratorConfig.from_dict(json.loads(json.dumps(tmr.to_dict()))) == tmr
    assert AcceleratorConfig.from_dict({"rows": 3, "cols": 4}) == config
    assert len({config, AcceleratorConfig(rows=3, cols=4), tmr}) == 2
    with pytest.raises(ValueError, match="Unknown accelerator parameter.*depth"):
        AcceleratorConfig.from_dict({"rows": 3, "cols": 4, "depth": 8})
    with pytest.raises(TypeError, match="must be a dict"):
        AcceleratorConfig.from_dict([3, 4])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"rows": 0, "cols": 2}, ValueError, "Row count must be a positive integer, not 0"),
    ({"rows": 2, "cols": 0}, ValueError, "Column count"),
    ({"rows": True, "cols": 2}, TypeError, "Row count"),
    ({"rows": 2, "cols": 2, "k_depth": 0}, ValueError, "k_depth"),
    ({"rows": 2, "cols": 2, "protect": "ecc"}, ValueError, "Protection must be one of"),
    ({"rows": 2, "cols": 1, "protect": "lcu"}, ValueError, "at least 2 for 'lcu'"),
    ({"rows": 2, "cols": 2, "protect": "tmr"}, ValueError, "at least 3 for 'tmr'"),
    ({"rows": 2, "cols": 2, "width": 4}, ValueError, "Operand width"),
    ({"rows": 2, "cols": 2, "acc_width": 49}, ValueError, "Accumulator width"),
    ({"rows": 2, "cols": 2, "width": 16, "acc_width": 24}, ValueError, "Accumulator width"),
])
def test_config_is_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        AcceleratorConfig(**kwargs)


def test_schedule_of_an_8x8_tile():
    schedule = AcceleratorConfig(rows=8, cols=8, k_depth=64).schedule(64)
    assert (schedule.START, schedule.CLEAR) == (0, 1)
    assert schedule.stream == range(2, 66)
    assert schedule.flush == range(66, 81)
    assert schedule.drain == range(81, 89)
    assert (schedule.first_drain, schedule.write, schedule.cycles) == (81, 89, 90)
    assert tile_cycles(8, 8, 64) == 90
    # The bottom row drains first; y_{c} holds a row the cycle after its drain.
    assert [schedule.drained_row(cycle) for cycle in schedule.drain] == list(range(7, -1, -1))
    assert [schedule.drain_cycle(row) for row in (7, 0)] == [81, 88]
    assert [schedule.output_cycle(row) for row in (7, 0)] == [82, 89]
    with pytest.raises(ValueError, match="not a drain cycle"):
        schedule.drained_row(80)


@pytest.mark.parametrize("rows, cols, k", [(1, 1, 1), (3, 4, 12), (2, 5, 7)])
def test_schedule_phases_tile_the_run(rows, cols, k):
    schedule = Schedule(rows=rows, cols=cols, k=k)
    phases = [schedule.stream, schedule.flush, schedule.drain]
    assert schedule.stream.start == schedule.CLEAR + 1
    assert [len(phase) for phase in phases] == [k, rows + cols - 1, rows]
    assert all(a.stop == b.start for a, b in zip(phases, phases[1:]))
    assert schedule.write == schedule.drain.stop
    assert schedule.cycles == tile_cycles(rows, cols, k) == k + 2 * rows + cols + 2
    with pytest.raises(ValueError, match="Reduction length"):
        Schedule(rows=rows, cols=cols, k=0)


def test_load_writes_of_a_protected_tile():
    config = AcceleratorConfig(rows=2, cols=3, k_depth=4, protect="tmr")
    writes = config.load_writes(activations=[[1, -1], [2, 3]], weights=[[1, 2, 3], [-4, 5, 6]],
                                bias=[-1, 0, 7], multiplier=[1, 2, 3], shift=[0, 1, 2],
                                relu=[True, False, True], tmr_triples=[[0, 1, 2]],
                                word_vote=True)
    assert writes == [
        (0, 0, 0x0201), (0, 1, 0x03FF),                        # A columns, row r in byte r
        (1, 0, 0x030201), (1, 1, 0x0605FC),                    # B rows
        (2, 0, 0xFFFFFFFF), (2, 1, 0), (2, 2, 7),              # bias, two's complement
        (3, 0, 1), (3, 1, 2), (3, 2, 3), (4, 0, 0), (4, 1, 1), (4, 2, 2),
        (5, 0, 1), (5, 1, 0), (5, 2, 1),
        (9, 0, 0), (9, 1, 0), (9, 2, 0),                       # zero points: 0 by default
        # enable | first << 1 | second << 3 (2-bit column indices)
        (6, 0, 1 | 1 << 1 | 2 << 3), (6, 1, 1 | 0 << 1 | 2 << 3), (6, 2, 1 | 0 << 1 | 1 << 3),
        (7, 0, 2), (8, 0, 1)]


def test_load_writes_pad_a_small_tile_with_zeros():
    config = AcceleratorConfig(rows=2, cols=3, k_depth=4)
    writes = config.load_writes(activations=[[-2]], weights=[[5]], bias=[9], multiplier=[4],
                                shift=[3], relu=[True], zero_point=[-128])
    assert writes == [(0, 0, 0xFE), (1, 0, 5), (2, 0, 9), (2, 1, 0), (2, 2, 0), (3, 0, 4),
                      (3, 1, 0), (3, 2, 0), (4, 0, 3), (4, 1, 0), (4, 2, 0), (5, 0, 1),
                      (5, 1, 0), (5, 2, 0), (9, 0, 0xFFFFFF80), (9, 1, 0), (9, 2, 0),
                      (7, 0, 1)]
    lcu = AcceleratorConfig(rows=2, cols=3, k_depth=4, protect="lcu")
    writes = lcu.load_writes(activations=[[1]], weights=[[1, 1]], bias=[0, 0],
                             multiplier=[1, 1], shift=[0, 0], relu=[1, 1], lcu_pairs=[[1, 0]])
    assert writes[-4:] == [(6, 0, 1 | 1 << 1), (6, 1, 1 | 0 << 1), (6, 2, 0), (7, 0, 1)]


def test_load_writes_refuse_what_the_build_cannot_run():
    config = AcceleratorConfig(rows=2, cols=3, k_depth=4, protect="lcu")
    one = dict(bias=[0], multiplier=[0], shift=[0], relu=[0])
    with pytest.raises(ValueError, match="m=3, k=1, n=1 does not fit a 2x3 accelerator"):
        config.load_writes(activations=[[1], [1], [1]], weights=[[1]], **one)
    with pytest.raises(ValueError, match="k=5.*k_depth=4"):
        config.load_writes(activations=[[1] * 5], weights=[[1]] * 5, **one)
    with pytest.raises(ValueError, match="TMR triples but the accelerator's protection is 'lcu'"):
        config.load_writes(activations=[[1]], weights=[[1]], tmr_triples=[[0, 1, 2]], **one)
    with pytest.raises(ValueError, match="LCU pairs"):
        AcceleratorConfig(rows=2, cols=3).load_writes(activations=[[1]], weights=[[1]],
                                                      lcu_pairs=[[0, 1]], **one)


def test_pack_and_unpack():
    assert pack([1, -1, -128], 8) == 0x80FF01
    assert unpack(0x80FF01, 3, 8) == [1, -1, -128]
    assert unpack(pack([-3, 32767, -32768], 16), 3, 16) == [-3, 32767, -32768]
    assert unpack(0xFFFF_FFFF, 1, 32) == [-1]


def test_row_blocks():
    assert row_blocks(7, 3) == (slice(0, 3), slice(3, 6), slice(6, 7))
    assert row_blocks(2, 8) == (slice(0, 2),)


def test_column_chunks_never_split_the_copies_of_a_neuron():
    assert column_chunks(8, [], 4) == ([0, 1, 2, 3], [4, 5, 6, 7])
    # A triple never straddles two chunks.
    assert column_chunks(9, [[0, 1, 2], [3, 4, 5], [6, 7, 8]], 4) == (
        [0, 1, 2], [3, 4, 5], [6, 7, 8])
    assert len(column_chunks(8, [[0, 1], [2, 3], [4, 5], [6, 7]], 4)) == 2
    assert column_chunks(5, [[1, 2, 3]], 4) == ([0, 1, 2, 3], [4])
    # Groups are taken in order of their smallest channel, each kept in its own order.
    assert column_chunks(5, [[4, 3], [1, 0]], 2) == ([1, 0], [2], [4, 3])
    with pytest.raises(ValueError, match="2 columns, fewer than the 3 copies"):
        column_chunks(3, [[0, 1, 2]], 2)


def test_pe_site():
    assert pe_site(1, 2, ACC) == "array.pe_1_2.acc"

"""cocotb checks that catalogued fault sites are real and that RTL faults act as modelled.

The configuration carries the catalogue (``sites``: ``[path, width, kind]`` from
:mod:`sim.sites`) and the design's input ports (``inputs``), so the paths come from the
design, not from this module. For every
site a Deposit must change the register; for every register (not memory words, which
Icarus cannot force through VPI) a Force must hold it across clock edges and against a
later Deposit, and after Release a Deposit must take again. This proves that the path
reaches the register through the simulator's VPI and that the register is
``forceable`` under Verilator. On a plain systolic array (``kind`` = ``array``) the
injection of :class:`sim.rtl_faults.Injection` is checked against exact references:
a stuck weight bit corrupts that weight for the PE and every PE south of it, and a
flipped accumulator bit after the last product shows in the drained result.
"""

import cocotb
import numpy as np
from cocotb.handle import Deposit, Force, Release
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from neuroharden.golden.numerics import wrap
from neuroharden.hw.pe import ACC, W_REG
from neuroharden.hw.systolic_array import PE_NAME, flush_cycles
from .array_tb import ArrayTB
from .rtl_faults import Injection, RTLFault
from .runner import tb_config
from .sites import site_handle


async def settle():
    """Let a write take effect without a clock edge."""
    await Timer(1, unit="ns")


def read(handle):
    return int(handle.value)  # a Logic for one-bit registers, a LogicArray otherwise


@cocotb.test()
async def every_site_deposits_forces_and_releases(dut):
    """Deposit, Force (held over two edges and against a Deposit), Release, by path."""
    config = tb_config()
    Clock(dut.clk, 10, unit="ns").start()
    for name in config["inputs"]:
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    checked = 0
    for path, width, kind in config["sites"]:
        handle = site_handle(dut, path)
        assert len(handle) == width, (path, len(handle), width)
        mask = (1 << width) - 1
        await FallingEdge(dut.clk)
        deposited = read(handle) ^ mask
        handle.value = Deposit(deposited)
        await settle()
        assert read(handle) == deposited, f"Deposit did not reach {path}"
        checked += 1
        if kind == "buffer":
            continue  # Icarus cannot force a memory word through VPI
        forced = 0x5A5A5A5A5A5A & mask if deposited != 0x5A5A5A5A5A5A & mask else 1
        handle.value = Force(forced)
        await ClockCycles(dut.clk, 2)
        handle.value = Deposit(forced ^ 1)
        await settle()
        assert read(handle) == forced, f"Force did not hold {path}: {read(handle):#x}"
        handle.value = Release()
        await settle()
        handle.value = Deposit(forced ^ 1)
        await settle()
        assert read(handle) == forced ^ 1, f"Release did not free {path}"
    assert checked == len(config["sites"]) > 0


def int8(values):
    return wrap(np.asarray(values) & 0xFF, 8)


async def faulty_tile(dut, tb, fault, a, b):
    injection = Injection(dut, fault)
    injection.start()
    await tb.load(a, b, on_cycle=injection.on_cycle)
    result = await tb.drain()
    injection.stop()
    assert injection.applied, fault
    return result


@cocotb.test()
async def stuck_weight_bit_matches_reference(dut):
    """A stuck bit of pe_r_c.w_reg corrupts column c's weights in rows r and below."""
    config = tb_config()
    rows, cols = config["rows"], config["cols"]
    tb = ArrayTB(dut, rows=rows, cols=cols)
    await tb.start()
    rng = np.random.default_rng(31)
    depth = 9
    a = rng.integers(-128, 128, (rows, depth))
    b = rng.integers(-128, 128, (depth, cols))
    for r in range(rows):
        for c in range(cols):
            for model, bit in (("stuck1", 7), ("stuck0", 2), ("stuck1", 0)):
                mask = 1 << bit
                column = int8(b[:, c] | mask if model == "stuck1" else b[:, c] & ~mask)
                faulty_b = b.copy()
                faulty_b[:, c] = column
                expected = wrap(a @ b, 32)
                expected[r:, c] = wrap(a[r:] @ faulty_b[:, c], 32)
                fault = RTLFault(f"{PE_NAME.format(r, c)}.{W_REG}", bit, model)
                got = await faulty_tile(dut, tb, fault, a, b)
                np.testing.assert_array_equal(got, expected, err_msg=str(fault))
    # Without a fault the tile is correct again: stop() ended the stuck bit.
    np.testing.assert_array_equal(await tb.matmul_tile(a, b), wrap(a @ b, 32))


@cocotb.test()
async def flipped_accumulator_bit_matches_reference(dut):
    """A bitflip of pe_0_0.acc after its last product is XORed into C[0, 0]."""
    config = tb_config()
    rows, cols = config["rows"], config["cols"]
    tb = ArrayTB(dut, rows=rows, cols=cols)
    await tb.start()
    rng = np.random.default_rng(32)
    depth = 6
    a = rng.integers(-128, 128, (rows, depth))
    b = rng.integers(-128, 128, (depth, cols))
    # PE (0, 0) adds its last product at the end of cycle depth; the last hook is later.
    last_cycle = depth + flush_cycles(rows, cols) - 1
    for bit in (0, 13, 31):
        expected = wrap(a @ b, 32)
        expected[0, 0] = wrap((int(expected[0, 0]) & 0xFFFFFFFF) ^ (1 << bit), 32)
        fault = RTLFault(f"{PE_NAME.format(0, 0)}.{ACC}", bit, "bitflip", cycle=last_cycle)
        got = await faulty_tile(dut, tb, fault, a, b)
        np.testing.assert_array_equal(got, expected, err_msg=str(fault))

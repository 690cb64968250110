"""cocotb regressions of TMR-wrapped blocks: single-replica faults are masked.

For every register of ``replica_0`` (its fault sites, :mod:`sim.sites`) a transient
flip (Deposit) and a stuck value (Force for the whole computation, then Release) must
leave the voted outputs correct and raise ``tmr_error``; the same flip in two replicas
must corrupt the output. The same module serves ``tmr_pe`` and ``tmr_array`` (``kind``
in the configuration).
"""

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from neuroharden.golden.numerics import wrap
from .array_tb import ArrayTB
from .inject import flip, force, release
from .pe_tb import PETB
from .runner import tb_config
from .sites import design_catalogue, site_handle


def replica_registers(kind, **parameters):
    """``(path, kind)`` of every register of one replica, the path relative to it."""
    prefix = "replica_0."
    return [(site.path[len(prefix):], site.kind)
            for site in design_catalogue(kind.replace("_", "-"), **parameters)
            if site.path.startswith(prefix)]


def resolve(dut, replica, path):
    return site_handle(dut, f"replica_{replica}.{path}")


class Scenario:
    """A TMR-wrapped PE or array with one reference computation and fault hooks."""

    def __init__(self, dut):
        config = tb_config()
        self.dut, self.kind = dut, config["kind"]
        self.width, self.acc_width = config["width"], config["acc_width"]
        rng = np.random.default_rng(21)
        # Nonzero operands, so that every corrupted operand changes some product.
        nonzero = np.concatenate([np.arange(-128, 0), np.arange(1, 128)])
        if self.kind == "tmr_pe":
            self.tb = PETB(dut, width=self.width, acc_width=self.acc_width)
            self.pairs = [tuple(rng.choice(nonzero, 2)) for _ in range(12)]
            self.expected = wrap(sum(int(a) * int(w) for a, w in self.pairs), self.acc_width)
            self.registers = replica_registers(self.kind, width=self.width,
                                               acc_width=self.acc_width)
            self.inject_cycle = 6
        else:
            rows, cols = config["rows"], config["cols"]
            self.tb = ArrayTB(dut, rows=rows, cols=cols, width=self.width, acc_width=self.acc_width)
            # K >= rows + cols keeps every PE and skew register busy at the injection cycle.
            depth = rows + cols + 4
            self.a = rng.choice(nonzero, (rows, depth))
            self.b = rng.choice(nonzero, (depth, cols))
            self.expected = wrap(self.a @ self.b, self.acc_width)
            self.registers = replica_registers(self.kind, rows=rows, cols=cols,
                                               width=self.width, acc_width=self.acc_width)
            self.inject_cycle = rows + cols

    async def compute(self, on_cycle=None):
        """Run the reference computation; returns (result, whether tmr_error was seen).

        ``tmr_error`` is sampled on every falling edge of the run, drain included,
        since a corrupted upper-row accumulator reaches the voted outputs only then.
        """
        error_seen = False

        async def watch():
            nonlocal error_seen
            while True:
                await FallingEdge(self.dut.clk)
                error_seen |= bool(int(self.dut.tmr_error.value))

        watcher = cocotb.start_soon(watch())
        if self.kind == "tmr_pe":
            result = await self.tb.mac(self.pairs, on_cycle=on_cycle)
        else:
            await self.tb.load(self.a, self.b, on_cycle=on_cycle)
            result = await self.tb.drain()
        watcher.cancel()
        return result, error_seen


def same(result, expected):
    return bool(np.array_equal(np.asarray(result), np.asarray(expected)))


@cocotb.test()
async def fault_free_run_is_correct(dut):
    """Without faults the wrapped block computes the reference and flags nothing."""
    scenario = Scenario(dut)
    await scenario.tb.start()
    result, error_seen = await scenario.compute()
    assert same(result, scenario.expected) and not error_seen


@cocotb.test()
async def transient_flip_in_one_replica_is_masked(dut):
    """Every bit of every register of replica_0, flipped mid-computation."""
    scenario = Scenario(dut)
    await scenario.tb.start()
    for path, _ in scenario.registers:
        handle = resolve(dut, 0, path)
        for bit in range(len(handle)):
            async def upset(cycle, handle=handle, bit=bit):
                if cycle == scenario.inject_cycle:
                    flip(handle, [bit])
            result, error_seen = await scenario.compute(upset)
            assert same(result, scenario.expected), (path, bit)
            assert error_seen, f"tmr_error not raised for {path} bit {bit}"


@cocotb.test()
async def stuck_register_in_one_replica_is_masked(dut):
    """Every register of replica_0 forced to a wrong value for the whole run."""
    scenario = Scenario(dut)
    await scenario.tb.start()
    for path, _ in scenario.registers:
        handle = resolve(dut, 0, path)
        # A pattern no fault-free register value reaches here, in every width.
        force(handle, 0x5A5A5A5A5A5A)
        result, error_seen = await scenario.compute()
        release(handle)
        assert same(result, scenario.expected), path
        assert error_seen, f"tmr_error not raised for stuck {path}"


@cocotb.test()
async def same_flip_in_two_replicas_corrupts(dut):
    """Two replicas agreeing on a wrong accumulator outvote the good one."""
    scenario = Scenario(dut)
    await scenario.tb.start()
    accumulators = [path for path, kind in scenario.registers if kind == "pe.acc"]
    for path in accumulators:
        handles = [resolve(dut, replica, path) for replica in (0, 1)]

        async def double_upset(cycle):
            if cycle == scenario.inject_cycle:
                for handle in handles:
                    flip(handle, [3])
        result, _ = await scenario.compute(double_upset)
        assert not same(result, scenario.expected), path

"""cocotb module of the RTL fault runner (:mod:`sim.rtl_runner`): one tile, many faults.

The configuration (``sim.runner.tb_config``) carries the accelerator's parameters
(``rows``, ``cols``, ``k_depth``, ``width``, ``acc_width``, ``protect``) and the files of
one job: ``tile`` (the tile, ``.npz``), ``faults`` (a JSON list of
:class:`sim.rtl_faults.RTLFault` dicts) and ``results`` (the ``.npz`` written at the
end), plus ``persistent`` and ``control`` (site paths, see below), ``accumulators``
(also record the drained accumulators of every fault) and ``driver``.

With ``driver = "fast"`` the tile is loaded once and run fault-free (the golden run);
then for each fault: the fault is applied with
:class:`sim.rtl_faults.Injection`, the tile is run, the output buffer is read through
its memory handles, and the fault-free state is restored. The run lets the simulator
run freely: the test awaits a ``Timer`` to each cycle where something happens (the
injection cycle, the drain cycles when accumulators are recorded, the last cycle;
``start`` is held until then, as the controller samples it only while idle) instead of
every clock edge. The times are 1 ns after a
falling edge, where :class:`sim.accelerator_tb.AcceleratorTB` acts (its ``on_cycle``
numbering is kept: cycle 0 samples ``start``); the drained accumulators are sampled
3 ns later, so an upset injected in a drain cycle is recorded as the requantizers see
it. An X or Z bit (Icarus reads a buffer word past its depth as X) reads as 0, as on
Verilator. A fault in a ``control`` site, or in a
``persistent`` one (a register or buffer word only the load port writes), can end a
run early or hang it, so it runs cycle by cycle with ``AcceleratorTB.run``'s schedule
and timeout, after the output buffer is cleared (a row such a run does not write reads
0, as in a fresh simulator; every other run writes every row).

Restoring: PE, skew and requantizer registers are rewritten by every run (the clear
cycle, the streaming, the drain), so nothing is done for them. A ``persistent`` site
hit by a fault gets its fault-free value back by a ``Deposit`` (the snapshot taken
after the golden run); after a fault in a ``control`` site, or a run that hung, every
control register is restored the same way. No operand is reloaded.

With ``driver = "naive"`` every fault reloads the whole tile through the load port, runs
it with ``AcceleratorTB.run``'s schedule (every clock cycle awaited from Python) and
reads the outputs through the read port: the baseline the fast driver is measured
against (both give the same results).
"""

import json
import time

import cocotb
import numpy as np
from cocotb.handle import Deposit
from cocotb.triggers import Timer

from golden.numerics import wrap
from hw.accelerator import OUTPUT_WIDTH, tile_cycles
from sim.accelerator_tb import TIMEOUT_SLACK, AcceleratorTB
from sim.array_tb import unpack
from sim.rtl_faults import Injection, RTLFault
from sim.rtl_runner import load_tile
from sim.runner import tb_config
from sim.sites import site_handle

#: Clock period of ``AcceleratorTB.start`` (ns).
PERIOD = 10
#: The drained accumulators are sampled this long after a cycle's action time (4 ns
#: before the rising edge): a deposit made at the action time has reached the
#: register by then, so an upset of a bottom-row accumulator in its own drain cycle is
#: recorded as the requantizer sees it.
SAMPLE = 3


def value(handle):
    """A register's value as an int; X and Z read as 0 (Icarus gives X for a buffer
    word read past its depth, where Verilator gives 0)."""
    read = handle.value
    if len(handle) == 1:
        return int(str(read) == "1")
    try:
        return read.to_unsigned()
    except ValueError:
        return read.resolve("zeros").to_unsigned()


class FaultDriver:
    """Runs faults against the tile loaded into an :class:`AcceleratorTB`."""

    def __init__(self, tb, config):
        self.tb = tb
        self.dut = tb.dut
        self.accumulators = bool(config.get("accumulators", True))
        self.persistent = set(config.get("persistent", ()))
        self.control = list(config.get("control", ()))
        self.out_words = [self.dut.out_buf[row] for row in range(tb.rows)]
        self.snapshot = {}

    def take_snapshot(self):
        """Record the fault-free value of every persistent and control register."""
        self.snapshot = {path: value(site_handle(self.dut, path))
                         for path in sorted(self.persistent | set(self.control))}

    def restore(self, path):
        handle = site_handle(self.dut, path)
        if value(handle) != self.snapshot[path]:
            handle.value = Deposit(self.snapshot[path])

    def clear_outputs(self):
        for word in self.out_words:
            word.value = Deposit(0)

    def read_outputs(self):
        m, _, n = self.tb.tile.shape
        cols = self.tb.cols
        # Element c of a row is byte c of the word (OUTPUT_WIDTH = 8).
        data = b"".join(value(word).to_bytes(cols, "little") for word in self.out_words[:m])
        return np.frombuffer(data, dtype=np.int8).reshape(m, cols)[:, :n].astype(np.int64)

    def drained(self, values):
        m, _, n = self.tb.tile.shape
        return wrap(values[:m, :n] + self.tb.tile.bias[:n], self.tb.acc_width)

    async def run_free(self, injection):
        """One run awaiting only the cycles where something happens; returns
        ``(cycles, accumulators)`` (cycles -1 when ``done`` does not rise in time)."""
        tb, dut = self.tb, self.dut
        rows, cols = tb.rows, tb.cols
        k = tb.tile.shape[1]
        nominal = tile_cycles(rows, cols, k)
        first_drain = k + rows + cols + 1
        drain = range(first_drain, first_drain + rows) if self.accumulators else range(0)
        fault = injection.fault
        # (time in ns from start, action): inject, sample a drain. ``start`` stays 1
        # until the last cycle: the controller samples it only while idle.
        events = []
        if fault.model == "bitflip" and fault.cycle < nominal:
            events.append((fault.cycle * PERIOD, "inject", fault.cycle))
        events += [(cycle * PERIOD + SAMPLE, "sample", cycle) for cycle in drain]
        values = np.zeros((rows, cols), dtype=np.int64)
        dut.start.value = 1
        injection.start()
        now = 0
        for when, action, cycle in sorted(events):
            if when > now:
                await Timer(when - now, unit="ns")
                now = when
            if action == "inject":
                await injection.on_cycle(cycle)
            else:
                values[rows - 1 - (cycle - first_drain)] = unpack(
                    value(dut.array.result), cols, tb.acc_width)
        await Timer(nominal * PERIOD - now, unit="ns")
        dut.start.value = 0
        injection.stop()
        cycles = nominal if value(dut.done) else -1
        return cycles, self.drained(values) if self.accumulators else None

    async def run_stepped(self, injection):
        """One run awaiting every clock cycle, with ``AcceleratorTB.run``'s schedule:
        it ends when ``done`` rises; returns ``(cycles, accumulators)``."""
        tb, dut = self.tb, self.dut
        rows, cols = tb.rows, tb.cols
        k = tb.tile.shape[1]
        nominal = tile_cycles(rows, cols, k)
        first_drain = k + rows + cols + 1
        values = np.zeros((rows, cols), dtype=np.int64)
        dut.start.value = 1
        injection.start()
        cycles = -1
        for cycle in range(nominal + TIMEOUT_SLACK):
            await injection.on_cycle(cycle)
            if first_drain <= cycle < first_drain + rows:
                await Timer(SAMPLE, unit="ns")
                values[rows - 1 - (cycle - first_drain)] = unpack(
                    value(dut.array.result), cols, tb.acc_width)
                await Timer(PERIOD - SAMPLE, unit="ns")
            else:
                await Timer(PERIOD, unit="ns")
            dut.start.value = 0
            if value(dut.done):
                cycles = cycle + 1
                break
        injection.stop()
        return cycles, self.drained(values)

    async def read_port(self):
        """The outputs read through the read port, one row per cycle (``AcceleratorTB.read``)."""
        m, _, n = self.tb.tile.shape
        out = np.zeros((m, n), dtype=np.int64)
        for row in range(m):
            self.dut.rd_addr.value = row
            await Timer(PERIOD, unit="ns")
            out[row] = unpack(value(self.dut.rd_data), self.tb.cols, OUTPUT_WIDTH)[:n]
        return out

    async def run_fault(self, fault):
        """Apply, run, read and undo one fault; returns (outputs, accumulators, cycles)."""
        injection = Injection(self.dut, fault)
        if fault.site in self.persistent or fault.site in self.control:
            # Only these faults can keep the controller from writing every output row.
            self.clear_outputs()
            cycles, accumulators = await self.run_stepped(injection)
        else:
            cycles, accumulators = await self.run_free(injection)
        outputs = self.read_outputs()
        if fault.site in self.persistent:
            self.restore(fault.site)
        if fault.site in self.control or cycles < 0:
            for path in self.control:
                self.restore(path)
        return outputs, accumulators, cycles


@cocotb.test()
async def run_faults(dut):
    """Run the job's fault list against its tile and write the results file."""
    config = tb_config()
    tb = AcceleratorTB.from_config(dut, config)
    tile = load_tile(config["tile"])
    with open(config["faults"]) as file:
        faults = [RTLFault.from_dict(data) for data in json.load(file)]
    # The clock runs in the simulator interface: no Python between awaited triggers.
    await tb.start(clock_impl="gpi")
    driver = FaultDriver(tb, config)
    naive = config.get("driver", "fast") == "naive"
    await tb.load(tile)
    await tb.run()
    golden = await tb.read()
    golden_acc = tb.read_accumulators()
    # From here on the driver acts 1 ns after a falling edge (see the module docstring).
    await Timer(1, unit="ns")
    driver.take_snapshot()
    m, _, n = tile.shape
    outputs = np.zeros((len(faults), m, n), dtype=np.int64)
    accumulators = np.zeros((len(faults), m, n), dtype=np.int64)
    cycles = np.zeros(len(faults), dtype=np.int64)
    started, cpu = time.perf_counter(), time.process_time()
    for index, fault in enumerate(faults):
        if naive:
            await tb.load(tile)
            await Timer(1, unit="ns")
            driver.clear_outputs()
            injection = Injection(dut, fault)
            cycles[index], accumulators[index] = await driver.run_stepped(injection)
            outputs[index] = await driver.read_port()
            if fault.site in driver.control or cycles[index] < 0:
                for path in driver.control:
                    driver.restore(path)
        else:
            outputs[index], drained, cycles[index] = await driver.run_fault(fault)
            if drained is not None:
                accumulators[index] = drained
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    with open(config["results"], "wb") as file:
        np.savez(file, outputs=outputs,
                 accumulators=accumulators if driver.accumulators else accumulators[:0],
                 cycles=cycles, golden=golden, golden_accumulators=golden_acc,
                 seconds=np.array(seconds), cpu_seconds=np.array(cpu))

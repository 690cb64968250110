"""cocotb module of the RTL fault runner (:mod:`sim.rtl_runner`): tiles and their faults.

The configuration (``sim.runner.tb_config``) carries the accelerator's parameters
(``accelerator``: :meth:`hw.contract.AcceleratorConfig.to_dict`) and ``groups``,
a JSON file listing the job's groups in order, each ``{"tile", "faults", "results"}``:
the tile (``.npz``), its faults (a JSON list of :class:`sim.rtl_faults.RTLFault` dicts)
and the ``.npz`` its results are written to; plus ``persistent`` and ``control`` (site
paths, see below), ``accumulators`` (also record the drained accumulators of every
fault) and ``driver``. One simulator process runs every group in turn: its start-up is
paid once per job, not once per tile.

With ``driver = "fast"`` each group's tile is loaded once and run fault-free (the
golden run, which the host checks against ``sim.tile.reference``); then for each
fault: the fault is applied with :class:`sim.rtl_faults.Injection`, the tile is run,
the output buffer is read through its memory handles, and the fault-free state is
restored. A tile is loaded by depositing the registers and buffer words the load port
writes (the ``persistent`` sites, the registers of the register map with a load-port
select, every one of them: buffer words past the tile's K get 0, the value of a fresh
simulator), skipping those that already hold their value,
so a loaded tile leaves the same state as the load port writing it into a fresh
simulator, whatever ran before it in the process. The runs let the simulator run
freely: the test awaits a ``Timer`` to each cycle where something happens (the
injection cycle, the drain cycles when accumulators are recorded, the last cycle;
``start`` is held until then, as the controller samples it only while idle) instead of
every clock edge. The times are 1 ns after a
falling edge, where :class:`sim.accelerator_tb.AcceleratorTB` acts (its ``on_cycle``
numbering is kept: cycle 0 samples ``start``); the drained accumulators are sampled
3 ns later, so an upset injected in a drain cycle is recorded as the requantizers see
it. An X or Z bit (Icarus reads a buffer word past its depth as X) reads as 0, as on
Verilator. A fault in a ``control`` site (the controller's registers, the loaded
``K`` included) can end a run early or hang it, so it runs cycle by cycle with
``AcceleratorTB.run``'s schedule and timeout, after the output buffer is cleared (a row
such a run does not write reads 0, as in a fresh simulator; every other run writes
every row). The other ``persistent`` sites (registers and buffer words only the load
port writes: operands, post-processing parameters, the protection map) feed the data
path only, so their faults run freely like those of the array.

With protection, every run also records the error flags the protection unit raised
(``errors`` in the cycles that write an output row, OR-ed: a bit mask of
:data:`hw.contract.ERROR_FLAGS`), which is what the AXI accelerator's counters would
count: the hardware's *detection* of the fault.

Restoring: PE, skew and requantizer registers are rewritten by every run (the clear
cycle, the streaming, the drain), so nothing is done for them. A ``persistent`` site
hit by a fault gets its loaded value back by a ``Deposit``; after a fault in a
``control`` site, or a run that hung, every control register is restored the same way
(to its value after the golden run). No operand is reloaded. A deposit reads back only
in a later time step, so after a restore one idle cycle passes before the next fault
(whose stuck-at reads the register it holds).

With ``driver = "naive"`` every fault reloads the whole tile through the load port, runs
it with ``AcceleratorTB.run``'s schedule (every clock cycle awaited from Python) and
reads the outputs through the read port: the baseline the fast driver is measured
against (both give the same results). Its golden run also goes through the ports, the
first load of a group also writes 0 to the buffer words past the tile's K, and a
persistent site hit by a fault is restored as above (a reload rewrites only the words
of the tile's K).
"""

import json
import time

import cocotb
import numpy as np
from cocotb.handle import Deposit
from cocotb.triggers import Timer
from cocotb.types import Logic

from neuroharden.golden.numerics import wrap
from neuroharden.hw.contract import (ARRAY, OUT_BUF, OUTPUT_WIDTH, WRITE_SELECT,
                                     AcceleratorConfig, unpack)
from .accelerator_tb import TIMEOUT_SLACK, AcceleratorTB, tile_writes
from .rtl_faults import Injection, RTLFault
from .rtl_runner import load_tile
from .runner import tb_config
from .sites import site_handle
from .tb import PERIOD

#: The drained accumulators are sampled this long after a cycle's action time (4 ns
#: before the rising edge): a deposit made at the action time has reached the
#: register by then, so an upset of a bottom-row accumulator in its own drain cycle is
#: recorded as the requantizer sees it.
SAMPLE = 3


def value(handle):
    """A register's value as an int; X and Z read as 0 (Icarus gives X for a buffer
    word read past its depth, where Verilator gives 0)."""
    read = handle.value
    if isinstance(read, Logic):
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
        loaded = [register for register in tb.config.registers.values() if register.loaded]
        # The register each load-port select writes, and the buffers among them.
        self.targets = {WRITE_SELECT[register.select]: register for register in loaded}
        self.buffers = [register.select for register in loaded if register.memory]
        self.accumulators = bool(config.get("accumulators", True))
        self.persistent = set(config.get("persistent", ()))
        self.control = list(config.get("control", ()))
        self.handles = {}
        out_buf = tb.config.registers[OUT_BUF]
        self.out_words = [self.handle(out_buf.path(row)) for row in range(out_buf.depth)]
        self.result = getattr(self.dut, ARRAY).result
        self.masks = {}
        # The protection's error flags (hw.contract.ERROR_FLAGS) of every output row a
        # run writes, OR-ed: a build without protection has none to read.
        self.detects = tb.config.protect != "none"
        # Value of every persistent site as the last load left it (None before the first).
        self.loaded = dict.fromkeys(self.persistent)
        self.snapshot = {}

    def handle(self, path):
        if path not in self.handles:
            self.handles[path] = site_handle(self.dut, path)
        return self.handles[path]

    def deposit_tile(self, tile):
        """Load ``tile`` by depositing the registers and buffer words the load port
        writes (see the module docstring); no simulated time passes."""
        # Buffer words past K hold 0, as in a fresh simulator.
        state = {path: 0 for path in self.persistent}
        for select, address, data in tile_writes(tile, self.tb.config):
            target = self.targets[select]
            state[target.path(address) if target.indices else target.path()] = data
        if set(state) != self.persistent:
            raise RuntimeError(f"The load port writes {sorted(set(state) ^ self.persistent)} "
                               f"unlike the catalogue's loaded registers")
        if not self.masks:
            self.masks = {path: (1 << len(self.handle(path))) - 1 for path in state}
        for path, data in state.items():
            # The load port keeps the low bits of wr_data that fit the register.
            data &= self.masks[path]
            if self.loaded[path] != data:
                self.handle(path).value = Deposit(data)
                self.loaded[path] = data
        self.tb.tile = tile

    async def port_load(self, tile):
        """Load ``tile`` through the load port, buffer words past its K cleared too (as
        :meth:`deposit_tile` leaves them), and note the loaded values."""
        await self.tb.load(tile)
        for select in self.buffers:
            for address in range(tile.shape[1], self.tb.config.k_depth):
                await self.tb.write(WRITE_SELECT[select], address, 0)
        self.loaded = {path: value(self.handle(path)) for path in self.persistent}

    def take_snapshot(self):
        """Record the fault-free value of every persistent register (as loaded) and
        control register (as the golden run left it)."""
        self.snapshot = {**self.loaded,
                         **{path: value(self.handle(path)) for path in self.control}}

    def restore(self, path):
        """Deposit the snapshot value of ``path`` if it differs; returns whether it did."""
        handle = self.handle(path)
        if value(handle) == self.snapshot[path]:
            return False
        handle.value = Deposit(self.snapshot[path])
        return True

    def clear_outputs(self):
        for word in self.out_words:
            word.value = Deposit(0)

    def read_outputs(self):
        m, _, n = self.tb.tile.shape
        cols = self.tb.config.cols
        # Element c of a row is byte c of the word (OUTPUT_WIDTH = 8).
        data = b"".join(value(word).to_bytes(cols, "little") for word in self.out_words[:m])
        return np.frombuffer(data, dtype=np.int8).reshape(m, cols)[:, :n].astype(np.int64)

    def drained(self, values):
        m, _, n = self.tb.tile.shape
        return wrap(values[:m, :n] + self.tb.tile.bias[:n], self.tb.config.acc_width)

    async def run_free(self, injection, *, accumulators):
        """One run awaiting only the cycles where something happens (``injection``
        None: a fault-free run); returns ``(cycles, accumulators, detected)`` (cycles -1
        when ``done`` does not rise in time; accumulators None unless recorded;
        detected the error flags the protection raised, OR-ed over the rows)."""
        tb, dut = self.tb, self.dut
        rows, cols = tb.config.rows, tb.config.cols
        schedule = tb.config.schedule(tb.tile.shape[1])
        nominal = schedule.cycles
        drain = schedule.drain if accumulators else range(0)
        # (time in ns from start, action): inject, sample a drain. ``start`` stays 1
        # until the last cycle: the controller samples it only while idle.
        events = []
        if injection is not None:
            fault = injection.fault
            if fault.model == "bitflip" and fault.cycle < nominal:
                events.append((fault.cycle * PERIOD, "inject", fault.cycle))
        events += [(cycle * PERIOD + SAMPLE, "sample", cycle) for cycle in drain]
        if self.detects:   # the cycles writing the output rows
            events += [(cycle * PERIOD + SAMPLE, "errors", cycle)
                       for cycle in range(schedule.first_drain + 1, schedule.write + 1)]
        detected = 0
        values = np.zeros((rows, cols), dtype=np.int64)
        dut.start.value = 1
        if injection is not None:
            injection.start()
        now = 0
        for when, action, cycle in sorted(events):
            if when > now:
                await Timer(when - now, unit="ns")
                now = when
            if action == "inject":
                await injection.on_cycle(cycle)
            elif action == "errors":
                detected |= value(dut.errors)
            else:
                values[schedule.drained_row(cycle)] = unpack(
                    value(self.result), cols, tb.config.acc_width)
        await Timer(nominal * PERIOD - now, unit="ns")
        dut.start.value = 0
        if injection is not None:
            injection.stop()
        cycles = nominal if value(dut.done) else -1
        return cycles, self.drained(values) if accumulators else None, detected

    async def run_stepped(self, injection):
        """One run awaiting every clock cycle, with ``AcceleratorTB.run``'s schedule:
        it ends when ``done`` rises; returns ``(cycles, accumulators, detected)``."""
        tb, dut = self.tb, self.dut
        rows, cols = tb.config.rows, tb.config.cols
        schedule = tb.config.schedule(tb.tile.shape[1])
        drain = schedule.drain
        values = np.zeros((rows, cols), dtype=np.int64)
        dut.start.value = 1
        injection.start()
        cycles, detected = -1, 0
        for cycle in range(schedule.cycles + TIMEOUT_SLACK):
            await injection.on_cycle(cycle)
            if cycle in drain or self.detects:
                await Timer(SAMPLE, unit="ns")
                if cycle in drain:
                    values[schedule.drained_row(cycle)] = unpack(
                        value(self.result), cols, tb.config.acc_width)
                # A control fault can move the writes: every cycle that writes a row.
                if self.detects and value(dut.errors_valid):
                    detected |= value(dut.errors)
                await Timer(PERIOD - SAMPLE, unit="ns")
            else:
                await Timer(PERIOD, unit="ns")
            dut.start.value = 0
            if value(dut.done):
                cycles = cycle + 1
                break
        injection.stop()
        return cycles, self.drained(values), detected

    async def read_port(self):
        """The outputs read through the read port, one row per cycle (``AcceleratorTB.read``)."""
        m, _, n = self.tb.tile.shape
        out = np.zeros((m, n), dtype=np.int64)
        for row in range(m):
            self.dut.rd_addr.value = row
            await Timer(PERIOD, unit="ns")
            out[row] = unpack(value(self.dut.rd_data), self.tb.config.cols, OUTPUT_WIDTH)[:n]
        return out

    async def load_golden(self, tile):
        """Load ``tile`` by deposits and run it fault-free; returns ``(outputs,
        accumulators, detected)``."""
        self.deposit_tile(tile)
        cycles, accumulators, detected = await self.run_free(None, accumulators=True)
        if cycles < 0:
            raise RuntimeError("done did not rise in the fault-free run")
        return self.read_outputs(), accumulators, detected

    async def run_fault(self, fault):
        """Apply, run, read and undo one fault; returns (outputs, accumulators, cycles,
        detected)."""
        injection = Injection(self.dut, fault)
        if fault.site in self.control:
            # Only these faults can keep the controller from writing every output row.
            self.clear_outputs()
            cycles, accumulators, detected = await self.run_stepped(injection)
        else:
            cycles, accumulators, detected = await self.run_free(
                injection, accumulators=self.accumulators)
        outputs = self.read_outputs()
        restored = [self.restore(fault.site)] if fault.site in self.persistent else []
        if fault.site in self.control or cycles < 0:
            restored += [self.restore(path) for path in self.control]
        if any(restored):
            # Let the deposits settle (see the module docstring).
            await Timer(PERIOD, unit="ns")
        return outputs, accumulators, cycles, detected

    async def run_naive(self, tile, fault):
        """One fault the naive way: reload through the load port, run stepped, read
        through the read port; returns (outputs, accumulators, cycles, detected)."""
        await self.tb.load(tile)
        await Timer(1, unit="ns")
        self.clear_outputs()
        cycles, accumulators, detected = await self.run_stepped(Injection(self.dut, fault))
        outputs = await self.read_port()
        # The reload rewrites the buffer words of the tile's K, not those past it.
        if fault.site in self.persistent:
            self.restore(fault.site)
        if fault.site in self.control or cycles < 0:
            for path in self.control:
                self.restore(path)
        return outputs, accumulators, cycles, detected


async def run_group(tb, driver, group, *, naive):
    """Load one group's tile, run it fault-free, run its faults; write its results."""
    tile = load_tile(group["tile"])
    with open(group["faults"]) as file:
        faults = [RTLFault.from_dict(data) for data in json.load(file)]
    if naive:
        await driver.port_load(tile)
        await tb.run()
        golden = await tb.read()
        golden_acc = tb.read_accumulators()
        # The driver acts 1 ns after a falling edge (see the module docstring).
        await Timer(1, unit="ns")
    else:
        golden, golden_acc, _ = await driver.load_golden(tile)
    driver.take_snapshot()
    m, _, n = tile.shape
    outputs = np.zeros((len(faults), m, n), dtype=np.int64)
    accumulators = np.zeros((len(faults), m, n), dtype=np.int64)
    cycles = np.zeros(len(faults), dtype=np.int64)
    detected = np.zeros(len(faults), dtype=np.int64)
    started, cpu = time.perf_counter(), time.process_time()
    for index, fault in enumerate(faults):
        if naive:
            run = driver.run_naive(tile, fault)
        else:
            run = driver.run_fault(fault)
        outputs[index], drained, cycles[index], detected[index] = await run
        if drained is not None:
            accumulators[index] = drained
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    with open(group["results"], "wb") as file:
        np.savez(file, outputs=outputs,
                 accumulators=accumulators if driver.accumulators else accumulators[:0],
                 cycles=cycles, detected=detected, golden=golden, golden_accumulators=golden_acc,
                 seconds=np.array(seconds), cpu_seconds=np.array(cpu))


@cocotb.test()
async def run_faults(dut):
    """Run every group of the job (tile, faults) in turn and write its results file."""
    config = tb_config()
    tb = AcceleratorTB(dut, AcceleratorConfig.from_dict(config["accelerator"]))
    with open(config["groups"]) as file:
        groups = json.load(file)
    # The clock runs in the simulator interface: no Python between awaited triggers.
    await tb.start(clock_impl="gpi")
    driver = FaultDriver(tb, config)
    naive = config.get("driver", "fast") == "naive"
    if not naive:
        # From here on the fast driver acts 1 ns after a falling edge.
        await Timer(1, unit="ns")
    for group in groups:
        await run_group(tb, driver, group, naive=naive)

"""cocotb driver of a processing element (``hw.pe``), bare or TMR-wrapped."""

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["PETB"]


class PETB:
    """Owns the PE's clock and reset and runs multiply-accumulate sequences.

    Inputs change on falling edges and outputs are read on falling edges.
    """

    def __init__(self, dut, *, width=8, acc_width=32):
        self.dut = dut
        self.width, self.acc_width = width, acc_width

    async def start(self):
        """Start the clock and apply a two-cycle reset with idle inputs."""
        Clock(self.dut.clk, 10, unit="ns").start()
        for port in (self.dut.a_in, self.dut.w_in, self.dut.clear, self.dut.drain, self.dut.acc_in):
            port.value = 0
        self.dut.rst.value = 1
        await self.tick(2)
        self.dut.rst.value = 0

    async def tick(self, count=1):
        """Wait ``count`` cycles (to the next falling edge)."""
        for _ in range(count):
            await FallingEdge(self.dut.clk)

    async def mac(self, pairs, *, on_cycle=None):
        """Clear, multiply-accumulate every (activation, weight) pair, return ``acc_out``.

        The PE multiplies its registered operands, so one idle cycle after the last pair
        brings the final product into the accumulator. ``on_cycle(i)`` is awaited before
        each streaming cycle ``i`` (fault hooks).
        """
        self.dut.clear.value = 1
        await self.tick()
        self.dut.clear.value = 0
        for cycle, (a, w) in enumerate(list(pairs) + [(0, 0)]):
            if on_cycle is not None:
                await on_cycle(cycle)
            self.dut.a_in.value = int(a) & ((1 << self.width) - 1)
            self.dut.w_in.value = int(w) & ((1 << self.width) - 1)
            await self.tick()
        return self.dut.acc_out.value.to_signed()

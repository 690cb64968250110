"""Clock and reset shared by the cocotb drivers of the PE, the array and the accelerator.

Inputs change on falling clock edges and outputs are read on falling edges, which keeps
the drivers free of delta-cycle races on both Icarus and Verilator.
"""

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

__all__ = ["PERIOD", "ClockedTB"]

#: Clock period in ns.
PERIOD = 10


class ClockedTB:
    """Owns the ``clk`` and ``rst`` of a cocotb DUT and counts the cycles it waits.

    A subclass names the DUT's input ports in :attr:`INPUTS`; :meth:`start` holds them
    at 0 through the reset.

    Parameters
    ----------
    dut : cocotb handle
        Top level with ports ``clk``, ``rst`` and :attr:`INPUTS`.

    Attributes
    ----------
    cycles : int
        Clock cycles waited since :meth:`start` (its reset included).
    """

    #: Input ports (besides ``clk`` and ``rst``) idled at reset.
    INPUTS = ()

    def __init__(self, dut):
        self.dut = dut
        self.cycles = 0

    async def start(self, *, clock_impl=None):
        """Start the :data:`PERIOD` clock (``clock_impl`` as cocotb's
        ``Clock(impl=...)``: ``"gpi"`` runs it in the simulator, without Python between
        the triggers a test awaits) and apply a two-cycle reset with idle inputs."""
        Clock(self.dut.clk, PERIOD, unit="ns", impl=clock_impl).start()
        for name in self.INPUTS:
            getattr(self.dut, name).value = 0
        self.dut.rst.value = 1
        await self.tick(2)
        self.dut.rst.value = 0

    async def tick(self, count=1):
        """Wait ``count`` clock cycles (to the next falling edge)."""
        for _ in range(count):
            await FallingEdge(self.dut.clk)
        self.cycles += count

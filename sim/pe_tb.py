"""cocotb driver of a processing element (``hw.pe``), bare or TMR-wrapped."""

from .tb import ClockedTB

__all__ = ["PETB"]


class PETB(ClockedTB):
    """Owns the PE's clock and reset and runs multiply-accumulate sequences.

    Inputs change on falling edges and outputs are read on falling edges.
    """

    INPUTS = ("a_in", "w_in", "clear", "drain", "acc_in")

    def __init__(self, dut, *, width=8, acc_width=32):
        super().__init__(dut)
        self.width, self.acc_width = width, acc_width

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

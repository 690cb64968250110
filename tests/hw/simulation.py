"""Helpers to run Amaranth-simulator testbenches in the hw unit tests."""

from amaranth.sim import Simulator


def simulate(dut, testbench, *, clocked=True):
    """Run ``testbench(ctx)`` against ``dut``, with a 1 MHz ``sync`` clock if ``clocked``."""
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def to_signed(value, width):
    """Interpret the low ``width`` bits of ``value`` as a two's complement integer."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


async def gemm(ctx, dut, a, b, *, before_tick=None):
    """Multiply ``a`` (rows x K) by ``b`` (K x cols) on a SystolicArray-like ``dut``.

    Follows the documented protocol exactly and returns the rows x cols product as a
    list of rows (drained last row first). ``before_tick(cycle)``, if given, runs just
    before each clock edge, cycle 0 being the clear cycle.
    """
    rows, depth = a.shape
    cols = b.shape[1]

    cycle = 0

    async def present(a_column, b_row, *, clear=0, drain=0):
        nonlocal cycle
        for r in range(rows):
            ctx.set(dut.a_in[r], int(a_column[r]))
        for c in range(cols):
            ctx.set(dut.w_in[c], int(b_row[c]))
        ctx.set(dut.clear, clear)
        ctx.set(dut.drain, drain)
        if before_tick is not None:
            before_tick(cycle)
        cycle += 1
        await ctx.tick()

    zeros_a, zeros_b = [0] * rows, [0] * cols
    await present(zeros_a, zeros_b, clear=1)
    for k in range(depth):
        await present(a[:, k], b[k, :])
    for _ in range(rows + cols - 1):
        await present(zeros_a, zeros_b)
    result = [None] * rows
    for r in reversed(range(rows)):
        result[r] = [ctx.get(dut.result[c]) for c in range(cols)]
        await present(zeros_a, zeros_b, drain=1)
    return result

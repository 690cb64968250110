# amaranth: UnusedElaboratable=no
"""TMR: signature, fan-out and voting, masking of a corrupted replica, bad factories."""

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from neuroharden.hw.pe import PE
from neuroharden.hw.systolic_array import SystolicArray
from neuroharden.hw.tmr import TMR
from tests.hw.simulation import gemm, simulate


def registers(fragment, path):
    """The registers (by name) of the subfragment at ``path`` of an elaborated design."""
    for name in path:
        fragment = {sub_name: sub for sub, sub_name, _ in fragment.subfragments}[name]
    return {signal.name: signal
            for statement in fragment.statements.get("sync", [])
            for signal in statement._lhs_signals()}


def test_signature_is_the_replicas_plus_tmr_error():
    tmr = TMR(lambda: SystolicArray(rows=2, cols=3))
    members = dict(tmr.signature.members)
    assert members.pop("tmr_error") == Out(1)
    assert members == dict(SystolicArray(rows=2, cols=3).signature.members)


@pytest.mark.parametrize("register", ["acc", "a_reg", "w_reg"])
def test_pe_with_one_corrupted_replica_register_is_still_correct(register):
    tmr = TMR(lambda: PE())
    # Simulate the very fragment whose signals we corrupt (elaborating again would make
    # new ones).
    fragment = Fragment.get(tmr, None)
    target = registers(fragment, ["replica_1"])[register]
    steps = [(3, 4), (-128, -128), (7, -9), (127, -128), (0, 0), (0, 0)]
    seen = []

    async def testbench(ctx):
        ctx.set(tmr.clear, 1)
        await ctx.tick()
        ctx.set(tmr.clear, 0)
        for index, (a, w) in enumerate(steps):
            ctx.set(tmr.a_in, a)
            ctx.set(tmr.w_in, w)
            if index == 2:
                # A transient upset: flip bit 6 of the register in replica 1 only.
                ctx.set(target, ctx.get(target) ^ (1 << 6))
            await ctx.tick()
            seen.append((ctx.get(tmr.acc_out), ctx.get(tmr.tmr_error)))

    sim = Simulator(fragment)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    expected_acc = sum(a * w for a, w in steps)
    assert seen[-1][0] == expected_acc
    assert any(error for _, error in seen)


def test_fault_free_pe_raises_no_error():
    tmr = TMR(lambda: PE(width=16, acc_width=48))
    seen = []

    async def testbench(ctx):
        ctx.set(tmr.clear, 1)
        await ctx.tick()
        ctx.set(tmr.clear, 0)
        for a, w in [(-32768, -32768), (1234, -4321), (0, 0), (0, 0)]:
            ctx.set(tmr.a_in, a)
            ctx.set(tmr.w_in, w)
            await ctx.tick()
            seen.append((ctx.get(tmr.a_out), ctx.get(tmr.tmr_error)))
        seen.append((ctx.get(tmr.acc_out), ctx.get(tmr.tmr_error)))

    simulate(tmr, testbench)
    assert seen[-1] == (2 ** 30 - 1234 * 4321, 0)
    assert [error for _, error in seen] == [0] * 5
    assert [a for a, _ in seen[:2]] == [-32768, 1234]


def test_systolic_array_computes_a_gemm_and_masks_a_corrupted_pe():
    tmr = TMR(lambda: SystolicArray(rows=2, cols=3))
    fragment = Fragment.get(tmr, None)
    target = registers(fragment, ["replica_2", "pe_1_2"])["acc"]
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (2, 5))
    b = rng.integers(-128, 128, (5, 3))
    out = {}

    async def testbench(ctx):
        out["clean"] = await gemm(ctx, tmr, a, b, before_tick=lambda cycle: errors.append(
            ctx.get(tmr.tmr_error)))

        def upset(cycle):
            if cycle == 4:  # mid-stream: flip bit 3 of one replica's accumulator
                ctx.set(target, ctx.get(target) ^ 8)
            errors_faulty.append(ctx.get(tmr.tmr_error))

        out["faulty"] = await gemm(ctx, tmr, a, b, before_tick=upset)

    errors, errors_faulty = [], []
    sim = Simulator(fragment)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert np.array_equal(out["clean"], a @ b)
    assert not any(errors)
    assert any(errors_faulty)
    assert np.array_equal(out["faulty"], a @ b)


class _NotAComponent:
    pass


class _WithSubSignature(wiring.Component):
    def __init__(self):
        super().__init__({"bus": Out(wiring.Signature({"x": Out(1)}))})

    def elaborate(self, platform):
        return Module()


class _WithTmrError(wiring.Component):
    tmr_error: Out(1)

    def elaborate(self, platform):
        return Module()


@pytest.mark.parametrize("factory, match", [
    (None, "callable"),
    (lambda: _NotAComponent(), "wiring.Component"),
    (lambda: Module(), "wiring.Component"),
    (lambda: _WithSubSignature(), "ports"),
    (lambda: _WithTmrError(), "tmr_error"),
])
def test_bad_factories_are_rejected(factory, match):
    with pytest.raises(TypeError, match=match):
        TMR(factory)


def test_factory_must_return_new_replicas():
    pe = PE()
    with pytest.raises(TypeError, match="new component"):
        TMR(lambda: pe)


def test_factory_errors_propagate():
    with pytest.raises(ValueError, match="Row count"):
        TMR(lambda: SystolicArray(rows=0, cols=2))

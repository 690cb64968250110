# amaranth: UnusedElaboratable=no
"""Verification wrappers: the formal properties of the protection units.

Each wrapper instantiates the real ``hw/`` component (through :func:`hw.verilog.build`)
next to free inputs and exposes one output ``ok`` that is 1 exactly when the property
holds for the current input values (and, for the sequential wrappers, the current
state). :mod:`synth.prove` asks Yosys' ``sat`` to prove ``ok == 1``: every input of the
wrapper is unconstrained, so a proof covers every value of it, at every cycle.

Restrictions of the input space (the fault-free half of a split neuron lies in
``[0, 2**(width-2))``, exactly one copy is corrupted, ...) are built into the wrapper's
structure (a narrower input zero-extended, a multiplexer choosing the corrupted copy),
never stated as assumptions, so no assumption can make a proof vacuous.
"""

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from neuroharden.hw.verilog import build

__all__ = ["LCUProperty", "VoterProperty", "VoterAllDifferProperty", "TMRPEProperty"]


class LCUProperty(wiring.Component):
    """LCU merges a fault-free half with a copy that has any set of 0->1 flips.

    Inputs: ``v`` (the fault-free value, ``value_bits`` bits zero-extended to ``width``;
    ``value_bits = width - 2`` covers exactly ``[0, 2**(width-2))``), ``f`` (any flip
    mask, ``width`` bits), ``swap`` (which copy is corrupted). The LCU sees
    ``a = v, b = v | f`` (or swapped); ``ok = (y == v)``.
    """

    def __init__(self, *, width=8, value_bits=None):
        self.width = width
        self.value_bits = width - 2 if value_bits is None else value_bits
        super().__init__({
            "v": In(unsigned(self.value_bits)) if self.value_bits else In(1),
            "f": In(unsigned(width)),
            "swap": In(1),
            "ok": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.lcu = lcu = build("lcu", width=self.width)
        v = Signal(unsigned(self.width))
        m.d.comb += v.eq(self.v if self.value_bits else 0)
        corrupted = v | self.f
        m.d.comb += [
            lcu.a.eq(Mux(self.swap, corrupted, v)),
            lcu.b.eq(Mux(self.swap, v, corrupted)),
            self.ok.eq(lcu.y.as_unsigned() == v),
        ]
        return m


class VoterProperty(wiring.Component):
    """A voter given three copies of ``v`` of which ``corrupt`` are replaced.

    ``corrupt = 1``: copy ``pos`` (0, 1 or 2; 3 = no copy) becomes ``e``;
    ``ok = (y == v) & (mismatch == (copy pos differs from v))``.
    ``corrupt = 2`` (a deliberately wrong property, the sanity check that the flow can
    fail): every copy but ``pos`` (3 counts as 0) becomes ``e``/``e2``; ``ok = (y == v)``.
    """

    def __init__(self, *, width=8, mode="bitwise", corrupt=1):
        self.width = width
        self.mode = mode
        self.corrupt = corrupt
        super().__init__({
            "v": In(unsigned(width)),
            "e": In(unsigned(width)),
            "e2": In(unsigned(width)),
            "pos": In(2),
            "ok": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.voter = voter = build("voter", width=self.width, mode=self.mode)
        ports = (voter.a, voter.b, voter.c)
        if self.corrupt == 1:
            for index, port in enumerate(ports):
                m.d.comb += port.eq(Mux(self.pos == index, self.e, self.v))
            differs = (self.pos != 3) & (self.e != self.v)
            m.d.comb += self.ok.eq((voter.y.as_unsigned() == self.v)
                                   & (voter.mismatch == differs))
        else:
            good = Mux(self.pos == 3, 0, self.pos)
            for index, port in enumerate(ports):
                m.d.comb += port.eq(Mux(good == index, self.v,
                                        self.e if index % 2 else self.e2))
            m.d.comb += self.ok.eq(voter.y.as_unsigned() == self.v)
        return m


class VoterAllDifferProperty(wiring.Component):
    """Word voter: three pairwise different copies give 0 and raise ``mismatch``."""

    def __init__(self, *, width=8):
        self.width = width
        super().__init__({
            "a": In(unsigned(width)),
            "b": In(unsigned(width)),
            "c": In(unsigned(width)),
            "ok": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.voter = voter = build("voter", width=self.width, mode="word")
        m.d.comb += [voter.a.eq(self.a), voter.b.eq(self.b), voter.c.eq(self.c)]
        all_differ = (self.a != self.b) & (self.a != self.c) & (self.b != self.c)
        m.d.comb += self.ok.eq(~all_differ | ((voter.y == 0) & voter.mismatch))
        return m


class TMRPEProperty(wiring.Component):
    """A TMR-wrapped PE next to a bare PE, every input shared; ``ok`` compares them.

    ``ok = (every voted output == the bare PE's output)``, and with ``check_error``
    also ``tmr_error == 0`` (the fault-free equivalence). With one ``faulty`` replica,
    ``ok`` also requires the two other replicas' outputs to equal the bare PE's. The free 1-bit input
    ``fault_en`` is wired to nothing here: :mod:`synth.prove` uses it as the enable of
    Yosys' ``abstract -state`` on the registers of the faulty replica(s), which then load
    an arbitrary value on every clock edge where ``fault_en`` is 1.
    """

    OUTPUTS = ("a_out", "w_out", "acc_out")

    def __init__(self, *, width=8, acc_width=32, check_error=True, faulty=()):
        self.width = width
        self.acc_width = acc_width
        self.check_error = check_error
        self.faulty = tuple(faulty)
        super().__init__({
            "a_in": In(width),
            "w_in": In(width),
            "clear": In(1),
            "drain": In(1),
            "acc_in": In(acc_width),
            "fault_en": In(1),
            "ok": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tmr = tmr = build("tmr-pe", width=self.width, acc_width=self.acc_width)
        m.submodules.ref = ref = build("pe", width=self.width, acc_width=self.acc_width)
        for dut in (tmr, ref):
            m.d.comb += [
                dut.a_in.eq(self.a_in), dut.w_in.eq(self.w_in), dut.clear.eq(self.clear),
                dut.drain.eq(self.drain), dut.acc_in.eq(self.acc_in),
            ]
        same = Const(1)
        for name in self.OUTPUTS:
            same = same & (getattr(tmr, name) == getattr(ref, name))
        if self.check_error:
            same = same & ~tmr.tmr_error
        if len(self.faulty) == 1:
            # Strengthening (implies the voted outputs' equality): the replicas that
            # receive no fault equal the bare PE. The PE exposes every register it has
            # (a_reg, w_reg, acc) on an output, so this is an inductive invariant.
            for index, replica in enumerate(tmr.replicas):
                if index not in self.faulty:
                    for name in self.OUTPUTS:
                        same = same & (getattr(replica, name) == getattr(ref, name))
        # Keep fault_en alive in the netlist (it only drives abstract's enable).
        keep = Signal(name="fault_en_seen")
        m.d.comb += [keep.eq(self.fault_en), self.ok.eq(same)]
        return m

"""Spatial triple modular redundancy around any component."""

from amaranth.hdl import Cat, Module, Shape, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .voter import MajorityVoter

__all__ = ["TMR", "REPLICAS"]

#: Number of replicas.
REPLICAS = 3


class TMR(wiring.Component):
    """Triplicate a component and vote every output bitwise.

    The wrapper has the replica's ports, with the same names and shapes, plus
    ``tmr_error``. Every input fans out to the three replicas ``replica_0``,
    ``replica_1``, ``replica_2``; every output is voted bit by bit over its flat bits by
    a :class:`~hw.voter.MajorityVoter` named ``vote_{member}``, so any single faulty
    replica is masked.

    Parameters
    ----------
    factory : callable
        Called with no arguments three times; each call must return a new
        :class:`amaranth.lib.wiring.Component` whose signature has only port members.

    Attributes
    ----------
    tmr_error : Out(1)
        1 while any voted output has replicas that disagree.
    """

    def __init__(self, factory):
        if not callable(factory):
            raise TypeError(f"TMR factory must be a zero-argument callable, not {factory!r}")
        replicas = [factory() for _ in range(REPLICAS)]
        for replica in replicas:
            if not isinstance(replica, wiring.Component):
                raise TypeError(f"TMR factory must return a wiring.Component, "
                                f"not {replica!r}")
        if len({id(replica) for replica in replicas}) != REPLICAS:
            raise TypeError("TMR factory must return a new component on every call")
        members = dict(replicas[0].signature.members)
        for name, member in members.items():
            if not member.is_port:
                raise TypeError(f"TMR can only wrap components whose members are all ports; "
                                f"{name!r} is not")
        if "tmr_error" in members:
            raise TypeError("TMR cannot wrap a component that already has a 'tmr_error' port")
        self._replicas = tuple(replicas)
        super().__init__({**members, "tmr_error": Out(1)})

    @property
    def replicas(self):
        """The three replica components."""
        return self._replicas

    def elaborate(self, platform):
        m = Module()

        for index, replica in enumerate(self.replicas):
            m.submodules[f"replica_{index}"] = replica
        voters = {}
        for name, member in self.replicas[0].signature.members.items():
            if member.flow == Out:
                voters[name] = MajorityVoter(width=Shape.cast(member.shape).width)
                m.submodules[f"vote_{name}"] = voters[name]

        for name, member in self.replicas[0].signature.members.items():
            port = Value.cast(getattr(self, name))
            copies = [Value.cast(getattr(replica, name)) for replica in self.replicas]
            if member.flow == In:
                m.d.comb += [copy.eq(port) for copy in copies]
            else:
                voter = voters[name]
                m.d.comb += [
                    voter.a.eq(copies[0]),
                    voter.b.eq(copies[1]),
                    voter.c.eq(copies[2]),
                    port.eq(voter.y),
                ]
        m.d.comb += self.tmr_error.eq(Cat(*(voter.mismatch for voter in voters.values())).any())

        return m

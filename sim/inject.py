"""Fault actions on RTL registers through cocotb handles.

A transient upset is a Deposit of the register's current value with bits flipped: the
design overwrites it at the register's next update, as it would a particle strike. A
stuck value is a Force that holds until :func:`release`. Both work on Icarus and, for
the registers the hardware declares (made forceable by
:func:`sim.runner.control_file_text`), on Verilator.
"""

from cocotb.handle import Deposit, Force, Release

__all__ = ["flip", "force", "release"]


def flip(handle, bits):
    """Invert ``bits`` (an iterable of bit positions) of a register, transiently."""
    mask = 0
    for bit in bits:
        mask |= 1 << bit
    # int() reads a one-bit register (a Logic) as well as a vector (a LogicArray).
    value = int(handle.value) ^ mask
    handle.value = Deposit(value)
    return value


def force(handle, value):
    """Hold a register at ``value`` (taken modulo its width) until released."""
    handle.value = Force(value & ((1 << len(handle)) - 1))


def release(handle):
    """End a :func:`force`; the design drives the register again from its next update."""
    handle.value = Release()

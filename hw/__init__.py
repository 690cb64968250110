"""Amaranth hardware blocks of the accelerator and their Verilog generator.

Nothing here imports torch, ``sim`` or ``synth``; the numeric contract comes from
:mod:`golden.numerics`.
"""

from hw.accelerator import Accelerator
from hw.lcu import LCU
from hw.pe import PE
from hw.protection import ProtectionUnit
from hw.requantizer import Requantizer
from hw.systolic_array import SystolicArray
from hw.tmr import TMR
from hw.voter import MajorityVoter

__all__ = ["PE", "SystolicArray", "Requantizer", "LCU", "MajorityVoter", "TMR", "ProtectionUnit",
           "Accelerator"]

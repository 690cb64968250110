"""Amaranth hardware blocks of the accelerator and their Verilog generator.

Nothing here imports torch, ``sim`` or ``synth``; the numeric contract comes from
:mod:`golden.numerics`. The accelerator's contract with the rest of the project (its
configuration, register map, cycle schedule and tile packing) is :mod:`hw.contract`.
"""

from .accelerator import Accelerator
from .contract import AcceleratorConfig
from .lcu import LCU
from .pe import PE
from .protection import ProtectionUnit
from .requantizer import Requantizer
from .systolic_array import SystolicArray
from .tmr import TMR
from .voter import MajorityVoter

__all__ = ["PE", "SystolicArray", "Requantizer", "LCU", "MajorityVoter", "TMR", "ProtectionUnit",
           "Accelerator", "AcceleratorConfig"]

"""Amaranth hardware blocks of the accelerator and their Verilog generator.

Nothing here imports torch, ``sim`` or ``synth``; the numeric contract comes from
:mod:`golden.numerics`.
"""

from .accelerator import Accelerator
from .lcu import LCU
from .pe import PE
from .protection import ProtectionUnit
from .requantizer import Requantizer
from .systolic_array import SystolicArray
from .tmr import TMR
from .voter import MajorityVoter

__all__ = ["PE", "SystolicArray", "Requantizer", "LCU", "MajorityVoter", "TMR", "ProtectionUnit",
           "Accelerator"]

# amaranth: UnusedElaboratable=no
"""Verilog generation of every hardware block.

(The first line silences Amaranth's unused-elaboratable warning for components built
here whose parameters turn out invalid: the error raised is the report.)
"""

from amaranth.back import verilog

from .accelerator import Accelerator
from .axi_accelerator import AXIAccelerator
from .lcu import LCU
from .pe import PE
from .requantizer import Requantizer
from .systolic_array import SystolicArray
from .tmr import TMR
from .voter import MajorityVoter

__all__ = ["KINDS", "build", "generate"]

#: Block kind -> one-line description (the top module is the kind with '-' -> '_').
KINDS = {
    "pe": "one processing element (uses --width, --acc-width)",
    "array": "rows x cols output-stationary systolic array (--rows, --cols, --width, --acc-width)",
    "requant": "combinational bias/scale/ReLU/int8 post-processor (--acc-width)",
    "lcu": "Lightweight Correction Unit of paper 004 (--width)",
    "voter": "majority voter of three copies with a mismatch flag (--width, --mode)",
    "tmr-pe": "a processing element triplicated with voted outputs (--width, --acc-width)",
    "tmr-array": "a whole systolic array triplicated with voted outputs "
                 "(--rows, --cols, --width, --acc-width)",
    "accelerator": "operand buffers, array, requantizers, protection unit, output buffer and "
                   "controller (--rows, --cols, --width, --acc-width, --protect, --k-depth)",
    "accelerator-axi": "the accelerator with AXI4-Lite registers, AXI4-Stream load and "
                       "output ports, error counters and an interrupt (as accelerator)",
}


def build(kind, *, rows=4, cols=4, width=8, acc_width=32, mode="bitwise", protect="none",
          k_depth=256):
    """Build the Amaranth component of a block kind.

    Parameters are those of :func:`generate`; each kind uses only the ones it needs.

    Raises
    ------
    ValueError
        For an unknown kind or parameters the block rejects.
    TypeError
        For parameters of the wrong type.
    """
    if kind not in KINDS:
        raise ValueError(f"Block kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "pe":
        return PE(width=width, acc_width=acc_width)
    if kind == "array":
        return SystolicArray(rows=rows, cols=cols, width=width, acc_width=acc_width)
    if kind == "requant":
        return Requantizer(acc_width=acc_width)
    if kind == "lcu":
        return LCU(width=width)
    if kind == "voter":
        return MajorityVoter(width=width, mode=mode)
    if kind == "tmr-pe":
        return TMR(lambda: PE(width=width, acc_width=acc_width))
    if kind == "accelerator-axi":
        return AXIAccelerator(rows=rows, cols=cols, width=width, acc_width=acc_width,
                              protect=protect, k_depth=k_depth)
    if kind == "accelerator":
        return Accelerator(rows=rows, cols=cols, width=width, acc_width=acc_width,
                           protect=protect, k_depth=k_depth)
    return TMR(lambda: SystolicArray(rows=rows, cols=cols, width=width, acc_width=acc_width))


def generate(kind, *, rows=4, cols=4, width=8, acc_width=32, mode="bitwise", protect="none",
             k_depth=256):
    """Generate the Verilog of one block.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    rows, cols : int
        Array size (``array``, ``tmr-array``, ``accelerator``).
    width : int
        Operand width (``pe``, ``array``, ``lcu``, ``voter``, ``tmr-*``, ``accelerator``).
    acc_width : int
        Accumulator width (``pe``, ``array``, ``requant``, ``tmr-*``, ``accelerator``).
    mode : {"bitwise", "word"}
        Voting mode (``voter``).
    protect : {"none", "lcu", "tmr"}
        Protection unit (``accelerator``).
    k_depth : int
        Operand-buffer depth, the largest K of a tile (``accelerator``).

    Returns
    -------
    str
        Verilog whose top module is ``kind`` with ``-`` replaced by ``_``, with clock
        ``clk`` and synchronous reset ``rst`` for the sequential blocks. The text is the
        same for the same arguments: no source locations are emitted.

    Raises
    ------
    ValueError, TypeError
        For an unknown kind or invalid parameters.
    """
    component = build(kind, rows=rows, cols=cols, width=width, acc_width=acc_width, mode=mode,
                      protect=protect, k_depth=k_depth)
    return verilog.convert(component, name=kind.replace("-", "_"), emit_src=False,
                           strip_internal_attrs=True)

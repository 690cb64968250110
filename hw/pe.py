"""Processing element of the output-stationary systolic array."""

from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .registers import Register

__all__ = ["PE", "OPERAND_WIDTHS", "MAX_ACC_WIDTH", "A_REG", "W_REG", "ACC", "registers",
           "check_int", "check_widths", "read_register"]

#: Operand widths a PE supports (int8 and int16).
OPERAND_WIDTHS = (8, 16)
#: Widest accumulator a PE supports.
MAX_ACC_WIDTH = 48
#: Names of the PE's registers: the registered activation and weight, the accumulator.
A_REG, W_REG, ACC = "a_reg", "w_reg", "acc"


def registers(*, width=8, acc_width=32):
    """The register map of a :class:`PE` of these widths (see :mod:`hw.registers`)."""
    check_widths(width, acc_width)
    return {A_REG: Register(A_REG, "pe.a_reg", signed(width)),
            W_REG: Register(W_REG, "pe.w_reg", signed(width)),
            ACC: Register(ACC, "pe.acc", signed(acc_width))}


def read_register(register):
    """Read a register so that the Verilog keeps the register's own name.

    A plain ``port.eq(register)`` makes the two signals one net, and Amaranth then names
    the Verilog ``reg`` after the port. The register names are the fault sites cocotb
    forces, so a port is driven from this no-op OR instead, which keeps ``register`` as
    the ``reg`` and the port as a ``wire`` assigned from it.
    """
    return register | 0


def check_int(name, value, *, minimum=1):
    """Raise unless ``value`` is an integer (not a bool) of at least ``minimum``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        qualifier = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {qualifier}, not {value!r}")


def check_widths(width, acc_width):
    """Validate the operand and accumulator widths shared by the PE and the array.

    Raises
    ------
    TypeError
        If either width is not an integer.
    ValueError
        If ``width`` is not 8 or 16, or ``acc_width`` is narrower than a full product
        (``2 * width``) or wider than :data:`MAX_ACC_WIDTH`.
    """
    check_int("Operand width", width)
    check_int("Accumulator width", acc_width)
    if width not in OPERAND_WIDTHS:
        raise ValueError(f"Operand width must be one of {OPERAND_WIDTHS}, not {width!r}")
    if not 2 * width <= acc_width <= MAX_ACC_WIDTH:
        raise ValueError(f"Accumulator width must be between {2 * width} (a full product) "
                         f"and {MAX_ACC_WIDTH}, not {acc_width!r}")


class PE(wiring.Component):
    """Multiply-accumulate cell: registers its operands and passes them east and south.

    Every cycle ``a_reg <= a_in`` and ``w_reg <= w_in``; the accumulator ``acc`` is cleared
    (``clear``), loaded from the PE to the north (``drain``), or else accumulates
    ``a_reg * w_reg`` with two's complement wrap-around at ``acc_width`` bits. The MAC
    uses the registered operands, so a fault in ``a_reg``/``w_reg`` hits this PE and
    the PEs downstream of it.

    Parameters
    ----------
    width : int
        Operand width, 8 or 16.
    acc_width : int
        Accumulator width, from ``2 * width`` to 48.

    Attributes
    ----------
    a_in, w_in : In(signed(width))
        Activation from the west, weight from the north.
    clear, drain : In(1)
        Zero the accumulator; load it from ``acc_in`` (``clear`` wins).
    acc_in : In(signed(acc_width))
        Accumulator of the PE to the north, loaded on ``drain``.
    a_out, w_out : Out(signed(width))
        The registered operands, to the PE to the east and to the south.
    acc_out : Out(signed(acc_width))
        The accumulator register.
    """

    def __init__(self, *, width=8, acc_width=32):
        check_widths(width, acc_width)
        self._width = width
        self._acc_width = acc_width
        super().__init__({
            "a_in": In(signed(width)),
            "w_in": In(signed(width)),
            "clear": In(1),
            "drain": In(1),
            "acc_in": In(signed(acc_width)),
            "a_out": Out(signed(width)),
            "w_out": Out(signed(width)),
            "acc_out": Out(signed(acc_width)),
        })

    @property
    def width(self):
        """Operand width in bits."""
        return self._width

    @property
    def acc_width(self):
        """Accumulator width in bits."""
        return self._acc_width

    @property
    def registers(self):
        """The register map (:func:`registers`)."""
        return registers(width=self.width, acc_width=self.acc_width)

    def elaborate(self, platform):
        m = Module()

        declared = self.registers
        a_reg, w_reg, acc = (declared[name].signal() for name in (A_REG, W_REG, ACC))

        m.d.comb += [
            self.a_out.eq(read_register(a_reg)),
            self.w_out.eq(read_register(w_reg)),
            self.acc_out.eq(read_register(acc)),
        ]

        m.d.sync += [
            a_reg.eq(self.a_in),
            w_reg.eq(self.w_in),
        ]
        with m.If(self.clear):
            m.d.sync += acc.eq(0)
        with m.Elif(self.drain):
            m.d.sync += acc.eq(self.acc_in)
        with m.Else():
            # .eq truncates to acc_width bits: the contract's wrap-around.
            m.d.sync += acc.eq(acc + a_reg * w_reg)

        return m

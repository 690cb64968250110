"""AXI4-Lite and AXI4-Stream interface signatures (AMBA AXI, ARM IHI 0022 and 0051).

Both signatures are described from the manager's (the source's) side, as Amaranth's
``lib.wiring`` does: a subordinate port is ``In(AXI4LiteSignature(...))``. Member names
are the specification's signal names without the channel prefix, lower case, so that
the Verilog ports of a component port ``s_axil`` are ``s_axil__awaddr``,
``s_axil__wdata``, ... (cocotbext-axi finds them with the prefix ``"s_axil_"``).
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import check_int

__all__ = ["OKAY", "SLVERR", "AXI4LiteSignature", "AXI4StreamSignature"]

#: ``BRESP`` / ``RRESP`` codes.
OKAY, SLVERR = 0b00, 0b10


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, manager side: the five channels AW, W, B, AR, R.

    Parameters
    ----------
    addr_width : int
        Bits of ``awaddr`` / ``araddr`` (byte addresses).
    data_width : {32, 64}
        Bits of ``wdata`` / ``rdata``.
    """

    def __init__(self, *, addr_width, data_width=32):
        check_int("Address width", addr_width)
        if data_width not in (32, 64):
            raise ValueError(f"AXI4-Lite data width must be 32 or 64, not {data_width!r}")
        self._addr_width, self._data_width = addr_width, data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })

    @property
    def addr_width(self):
        """Bits of a byte address."""
        return self._addr_width

    @property
    def data_width(self):
        """Bits of a data word."""
        return self._data_width

    def __eq__(self, other):
        return (isinstance(other, AXI4LiteSignature) and other.addr_width == self.addr_width
                and other.data_width == self.data_width)

    def __repr__(self):
        return f"AXI4LiteSignature(addr_width={self.addr_width}, data_width={self.data_width})"


class AXI4StreamSignature(wiring.Signature):
    """AXI4-Stream, transmitter side: ``tdata``, ``tvalid``, ``tready``, ``tlast``.

    Parameters
    ----------
    data_width : int
        Bits of ``tdata``, a whole number of bytes.
    """

    def __init__(self, *, data_width):
        check_int("Stream data width", data_width)
        if data_width % 8:
            raise ValueError(f"Stream data width must be a whole number of bytes, "
                             f"not {data_width!r}")
        self._data_width = data_width
        super().__init__({"tdata": Out(data_width), "tvalid": Out(1), "tready": In(1),
                          "tlast": Out(1)})

    @property
    def data_width(self):
        """Bits of ``tdata``."""
        return self._data_width

    def __eq__(self, other):
        return isinstance(other, AXI4StreamSignature) and other.data_width == self.data_width

    def __repr__(self):
        return f"AXI4StreamSignature(data_width={self.data_width})"

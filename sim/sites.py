"""The RTL fault-site catalogue: every injectable register of a generated design.

The catalogue is read from the design itself, not from a list kept by hand: the
component is elaborated and lowered to Amaranth's netlist (NIR) exactly as
:func:`hw.verilog.generate` does before it writes Verilog, and every flip-flop cell and
every memory of every module is reported under the name the Verilog gives it. A site's
``path`` is the dotted path cocotb follows from the toplevel handle
(``pe_0_1.acc``, ``replica_2.a_skew_1_0``; a memory word is ``act_buf[3]``), so a
path of the catalogue can be handed to :func:`site_handle` inside a testbench.

The netlist is Amaranth's internal representation (``amaranth.hdl._ir`` /
``amaranth.hdl._nir``, pinned at 0.5.10 in ``constraints.txt``): it is the one place
where flip-flops exist as cells with their module and their signal name, the same data
Amaranth's RTLIL back end turns into the Verilog ``reg``\\ s. ``tests/sim/test_sites.py``
checks every catalogued path against the generated Verilog text, and
``sim/tb_sites.py`` forces and deposits catalogued sites on both simulators.

Each site has a ``kind`` (:data:`hw.registers.KINDS`) read from the register map of the
component that holds it (its ``registers``: :func:`hw.pe.registers`,
:func:`hw.systolic_array.registers`, :attr:`hw.contract.AcceleratorConfig.registers`):
``pe.a_reg`` / ``pe.w_reg`` / ``pe.acc`` in a :class:`~hw.pe.PE`, ``skew`` for the
systolic array's skew registers, ``requant`` and ``protect`` for the accelerator's
post-processing registers and protection map; ``buffer`` for memory words, and
``control`` for every other register (controllers, counters, valid bits).
"""

import difflib
import re
from dataclasses import asdict, dataclass

from neuroharden.hw.registers import KINDS
from neuroharden.hw.verilog import build

__all__ = [
    "Site", "Catalogue", "UnknownSiteError", "catalogue", "design_catalogue", "resolve",
    "site_handle",
]


@dataclass(frozen=True)
class Site:
    """One injectable register (or memory word) of a design.

    Attributes
    ----------
    path : str
        Dotted path from the toplevel handle, e.g. ``"pe_0_1.acc"``; a memory word ends
        in ``[index]``.
    width : int
        Bits of the register or word.
    kind : str
        One of :data:`hw.registers.KINDS`.
    module : str
        Name of the Verilog module that holds it (``"array.pe_0_1"``).
    """

    path: str
    width: int
    kind: str
    module: str

    def to_dict(self):
        """A JSON-ready dict."""
        return asdict(self)


class UnknownSiteError(ValueError):
    """A path or glob that names no site of a catalogue; the message lists close matches."""


class Catalogue:
    """The fault sites of one generated design, in hierarchical order.

    Parameters
    ----------
    toplevel : str
        Name of the top Verilog module.
    sites : iterable of Site
    inputs : iterable of str
        The toplevel's input ports besides ``clk`` and ``rst`` (a testbench idles them).
    """

    def __init__(self, toplevel, sites, inputs=()):
        self._toplevel = toplevel
        self._sites = tuple(sites)
        self._inputs = tuple(inputs)
        self._by_path = {site.path: site for site in self._sites}
        if len(self._by_path) != len(self._sites):
            raise ValueError(f"Duplicate site paths in the catalogue of {toplevel}")

    @property
    def toplevel(self):
        """Name of the top Verilog module."""
        return self._toplevel

    @property
    def sites(self):
        """The sites, as a tuple."""
        return self._sites

    @property
    def inputs(self):
        """The toplevel's input ports besides ``clk`` and ``rst``."""
        return self._inputs

    @property
    def bits(self):
        """Total number of register bits."""
        return sum(site.width for site in self._sites)

    def __iter__(self):
        return iter(self._sites)

    def __len__(self):
        return len(self._sites)

    def __contains__(self, path):
        return path in self._by_path

    def __getitem__(self, path):
        """The site at ``path``; :class:`UnknownSiteError` names close matches."""
        try:
            return self._by_path[path]
        except KeyError:
            raise UnknownSiteError(_unknown_message(self, path)) from None

    def totals(self):
        """Sites and bits per kind, in :data:`hw.registers.KINDS` order (kinds present only)."""
        totals = {}
        for kind in KINDS:
            chosen = [site for site in self._sites if site.kind == kind]
            if chosen:
                totals[kind] = {"sites": len(chosen), "bits": sum(s.width for s in chosen)}
        return totals

    def fault_space(self, *, cycles=None):
        """Fault-space sizes (:mod:`.rtl_faults`) and paper 003's over the whole catalogue.

        Parameters
        ----------
        cycles : int, optional
            Tile length in clock cycles (the injection times of a transient).

        Returns
        -------
        dict
            ``stuck_at`` = bits x 2; ``transient_per_cycle`` = bits;
            ``transient`` = bits x cycles (when ``cycles`` is given);
            ``paper003_weight_stuck_at`` = 2 x K x M over the PE weight registers
            (K their width, M the number of PEs; paper 003 eq. 1).
        """
        weights = [site for site in self._sites if site.kind == "pe.w_reg"]
        space = {"bits": self.bits, "stuck_at": 2 * self.bits, "transient_per_cycle": self.bits}
        if cycles is not None:
            space["cycles"] = cycles
            space["transient"] = self.bits * cycles
        space["paper003_weight_stuck_at"] = 2 * sum(site.width for site in weights)
        return space


def _unknown_message(catalogue, pattern):
    paths = [site.path for site in catalogue]
    literal = pattern.replace("*", "").replace("?", "")
    close = difflib.get_close_matches(literal, paths, n=5, cutoff=0.6)
    if not close:
        # A path that is right below its last dot but wrong above it (e.g. a missing
        # replica prefix) is still worth suggesting.
        leaf = pattern.rsplit(".", 1)[-1]
        close = [path for path in paths if path.rsplit(".", 1)[-1] == leaf][:5]
    hint = f"; close matches: {', '.join(close)}" if close else ""
    what = "matches" if _is_glob(pattern) else "is"
    return (f"No fault site of {catalogue.toplevel} {what} {pattern!r} "
            f"({len(paths)} sites){hint}")


def _is_glob(pattern):
    return "*" in pattern or "?" in pattern


def _glob_regex(pattern):
    # '*' and '?' are the only wildcards: brackets stay literal, for memory words.
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts) + r"\Z")


def resolve(catalogue, path_or_glob):
    """The sites named by a path, a glob, or a list of them.

    Parameters
    ----------
    catalogue : Catalogue
    path_or_glob : str or iterable of str
        Exact paths (``"pe_0_1.acc"``) or globs where ``*`` matches any run of
        characters, dots included, and ``?`` one character (``"pe_*.acc"``,
        ``"replica_0.*"``); brackets are literal (``"act_buf[3]"``).

    Returns
    -------
    list of Site
        In catalogue order, each once.

    Raises
    ------
    UnknownSiteError
        When a path or glob names no site; the message names close matches.
    """
    patterns = [path_or_glob] if isinstance(path_or_glob, str) else list(path_or_glob)
    if not patterns:
        raise UnknownSiteError("No site path or glob given")
    chosen = set()
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise UnknownSiteError(f"A site path must be a non-empty string, not {pattern!r}")
        if pattern in catalogue:
            chosen.add(pattern)
            continue
        if not _is_glob(pattern):
            raise UnknownSiteError(_unknown_message(catalogue, pattern))
        regex = _glob_regex(pattern)
        matched = {site.path for site in catalogue if regex.match(site.path)}
        if not matched:
            raise UnknownSiteError(_unknown_message(catalogue, pattern))
        chosen |= matched
    return [site for site in catalogue if site.path in chosen]


def _ports(component):
    """The toplevel ports of a component, named as :func:`amaranth.back.verilog.convert` does."""
    from amaranth.hdl import _ast, _ir
    from amaranth.lib import wiring

    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, _ast.ValueCastable):
            value = value.as_value()
        if isinstance(value, _ast.Value):
            direction = (_ir.PortDirection.Input if member.flow == wiring.In
                         else _ir.PortDirection.Output)
            ports["__".join(map(str, path))] = (value, direction)
    return ports


def _natural_key(text):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _kind(component, name):
    """The kind the register map of ``component`` declares for register ``name``."""
    for register in getattr(component, "registers", {}).values():
        if not register.memory and register.pattern.match(name):
            return register.kind
    return "control"


def catalogue(component, *, toplevel):
    """Catalogue the registers and memory words of an Amaranth component.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design, not yet elaborated (it is elaborated here).
    toplevel : str
        The top module name the Verilog is generated with (it is the first element of
        every module name, as in ``hw.verilog.generate``).

    Returns
    -------
    Catalogue
    """
    from amaranth.hdl import _ir, _nir

    ports = _ports(component)
    fragment = _ir.Fragment.get(component, None)
    design = fragment.prepare(ports=ports, hierarchy=(toplevel,))
    netlist = _ir.build_netlist(design)
    components = {info.name: frag.origins[0] if frag.origins else None
                  for frag, info in design.fragments.items()}
    found = []
    for module in netlist.modules:
        prefix = "".join(f"{part}." for part in module.name[1:])
        component = components.get(module.name)
        outputs = set()
        module_sites = []
        for index in module.cells:
            cell = netlist.cells[index]
            if isinstance(cell, _nir.FlipFlop):
                outputs.update(_nir.Net.from_cell(index, bit) for bit in range(len(cell.data)))
            elif isinstance(cell, _nir.Memory):
                module_sites += [Site(f"{prefix}{cell.name}[{word}]", cell.width, "buffer",
                                      ".".join(module.name)) for word in range(cell.depth)]
        # The Verilog names a flip-flop's reg after the first signal of the module that
        # carries its value (the RTLIL back end's rule); later aliases, and signals that
        # carry only some of a register's bits (a field of a struct), are plain wires.
        registers = {}
        for signal, name in module.signal_names.items():
            value = netlist.signals[signal]
            if len(value) and value not in registers and all(net in outputs for net in value):
                registers[value] = name
        for value, name in registers.items():
            nets = set(value)
            if any(nets < set(other) for other in registers):
                continue
            module_sites.append(Site(prefix + name, len(value), _kind(component, name),
                                     ".".join(module.name)))
        found += sorted(module_sites, key=lambda site: _natural_key(site.path))
    inputs = [name for name, (_, direction) in ports.items()
              if direction == _ir.PortDirection.Input]
    return Catalogue(toplevel, found, inputs)


def design_catalogue(kind, **parameters):
    """Catalogue of a block that :func:`hw.verilog.build` makes.

    Parameters
    ----------
    kind : str
        One of :data:`hw.verilog.KINDS`.
    **parameters
        Generation parameters of :func:`hw.verilog.build` (``rows``, ``cols``, ...).

    Raises
    ------
    ValueError, TypeError
        For an unknown kind or invalid parameters.
    """
    return catalogue(build(kind, **parameters), toplevel=kind.replace("-", "_"))


_WORD = re.compile(r"(?P<name>[^\[\]]+)\[(?P<index>\d+)\]\Z")


def site_handle(dut, path):
    """Inside a cocotb test: the handle of a catalogued site.

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    path : str
        A :attr:`Site.path` (``"replica_0.pe_1_2.acc"``, ``"act_buf[3]"``).
    """
    handle = dut
    for part in path.split("."):
        word = _WORD.match(part)
        if word:
            handle = getattr(handle, word["name"])[int(word["index"])]
        else:
            handle = getattr(handle, part)
    return handle

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

Each site has a ``kind`` chosen from the component that holds it (the Python class of
the elaboratable behind its module): ``pe.a_reg`` / ``pe.w_reg`` / ``pe.acc`` in a
:class:`~hw.pe.PE`, ``skew`` for the systolic array's skew registers, ``requant`` in a
requantizer, ``protect`` in the protection unit, voters and LCUs, ``buffer`` for memory
words, and ``control`` for every other register (controllers, counters, valid bits).
"""

import difflib
import json
import re
from dataclasses import asdict, dataclass

import click

from neuroharden.golden.sampling import leveugle_sample_size
from neuroharden.hw.verilog import KINDS, build

__all__ = [
    "Site", "Catalogue", "UnknownSiteError", "KIND_NAMES", "catalogue", "design_catalogue",
    "resolve", "site_handle", "sites",
]

#: Site kinds, in the order tables and totals list them.
KIND_NAMES = ("pe.a_reg", "pe.w_reg", "pe.acc", "skew", "requant", "protect", "buffer",
              "control")

# Component class name -> kind of all its registers.
_CLASS_KINDS = {
    "Requantizer": "requant",
    "LCU": "protect",
    "MajorityVoter": "protect",
    "ProtectionUnit": "protect",
}
# Component class name -> (register name pattern, kind) rules, first match wins; the
# accelerator keeps the post-processing parameters and the protection map in its own
# module.
_NAME_KINDS = {
    "PE": ((r"a_reg", "pe.a_reg"), (r"w_reg", "pe.w_reg"), (r"acc", "pe.acc")),
    "SystolicArray": ((r"[aw]_skew_\d+_\d+", "skew"),),
    "Accelerator": ((r"(bias|multiplier|shift|relu|y)_\d+", "requant"),
                    (r"group_\d+|word_vote", "protect")),
}


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
        One of :data:`KIND_NAMES`.
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
        """Sites and bits per kind, in :data:`KIND_NAMES` order (kinds present only)."""
        totals = {}
        for kind in KIND_NAMES:
            chosen = [site for site in self._sites if site.kind == kind]
            if chosen:
                totals[kind] = {"sites": len(chosen), "bits": sum(s.width for s in chosen)}
        return totals

    def fault_space(self, *, cycles=None):
        """Fault-space sizes of DESIGN.md and paper 003 over the whole catalogue.

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
    for pattern, kind in _NAME_KINDS.get(component, ()):
        if re.fullmatch(pattern, name):
            return kind
    return _CLASS_KINDS.get(component, "control")


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
    classes = {info.name: type(frag.origins[0]).__name__ if frag.origins else ""
               for frag, info in design.fragments.items()}
    found = []
    for module in netlist.modules:
        prefix = "".join(f"{part}." for part in module.name[1:])
        component_class = classes.get(module.name, "")
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
            module_sites.append(Site(prefix + name, len(value), _kind(component_class, name),
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


# -- the command --------------------------------------------------------------------

def _table(found):
    rows = [("path", "width", "kind", "module")]
    rows += [(site.path, str(site.width), site.kind, site.module) for site in found]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join("  ".join(cell.ljust(width) if column != 1 else cell.rjust(width)
                               for column, (cell, width) in enumerate(zip(row, widths))).rstrip()
                     for row in rows)


@click.command()
@click.option("--kind", "kind", default="array", show_default=True,
              type=click.Choice(list(KINDS)), help="Design to catalogue (as for 'generate').")
@click.option("--rows", default=4, show_default=True, type=int, help="Array rows.")
@click.option("--cols", default=4, show_default=True, type=int, help="Array columns.")
@click.option("--width", default=8, show_default=True, type=int, help="Operand width (8 or 16).")
@click.option("--acc-width", default=32, show_default=True, type=int, help="Accumulator width.")
@click.option("--protect", default="none", show_default=True,
              type=click.Choice(["none", "lcu", "tmr"]),
              help="Protection unit of the accelerator.")
@click.option("--k-depth", default=256, show_default=True, type=int,
              help="Operand buffer depth of the accelerator (largest K).")
@click.option("--sites", "patterns", multiple=True, metavar="GLOB",
              help="Only these paths or globs ('pe_*.acc'); repeatable.")
@click.option("--cycles", type=click.IntRange(min=1), default=None,
              help="Tile length in cycles (the accelerator's is hw.accelerator.tile_cycles): "
                   "size the transient space as bits x cycles.")
@click.option("--confidence", default=0.95, show_default=True, type=float,
              help="Confidence of the Leveugle sample sizes.")
@click.option("--margin", default=0.01, show_default=True, type=float,
              help="Error margin of the Leveugle sample sizes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def sites(kind, rows, cols, width, acc_width, protect, k_depth, patterns, cycles, confidence,
          margin, as_json):
    """List every injectable register of a generated design and size its fault space.

    The sites are read from the elaborated design (its flip-flops and memories), with
    the hierarchical path cocotb uses from the toplevel handle, the width, the kind
    (pe.a_reg, pe.w_reg, pe.acc, skew, requant, protect, buffer, control) and the
    Verilog module. The summary gives the stuck-at space (bits x 2), the transient
    space (bits x cycles with --cycles), paper 003's weight-input stuck-at space
    (2 x K x M) and their Leveugle sample sizes.
    """
    try:
        found = design_catalogue(kind, rows=rows, cols=cols, width=width, acc_width=acc_width,
                                 protect=protect, k_depth=k_depth)
        chosen = Catalogue(found.toplevel, resolve(found, patterns), found.inputs) \
            if patterns else found
        space = chosen.fault_space(cycles=cycles)
        samples = {name: leveugle_sample_size(space[name], confidence, margin)
                   for name in ("stuck_at", "transient", "paper003_weight_stuck_at")
                   if space.get(name)}
    except (ValueError, TypeError) as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps({
            "design": kind, "toplevel": chosen.toplevel,
            "sites": [site.to_dict() for site in chosen],
            "totals": {"sites": len(chosen), "bits": chosen.bits, "kinds": chosen.totals()},
            "fault_space": space,
            "sample_size": {"confidence": confidence, "margin": margin, **samples},
        }))
        return
    if len(chosen):
        click.echo(_table(chosen))
        click.echo()
    for name, total in chosen.totals().items():
        click.echo(f"{name:9s} {total['sites']:6,d} sites {total['bits']:9,d} bits")
    click.echo(f"{chosen.toplevel}: {len(chosen):,d} sites, {chosen.bits:,d} bits")
    click.echo(f"stuck-at faults (bits x 2): {space['stuck_at']:,d}"
               f" (sample {samples['stuck_at']:,d})" if "stuck_at" in samples else
               "stuck-at faults (bits x 2): 0")
    if cycles is None:
        click.echo(f"transient bit-flips: {space['transient_per_cycle']:,d} per cycle "
                   f"(--cycles N sizes a tile)")
    else:
        click.echo(f"transient bit-flips (bits x {cycles} cycles): {space['transient']:,d}"
                   + (f" (sample {samples['transient']:,d})" if "transient" in samples else ""))
    if space["paper003_weight_stuck_at"]:
        click.echo(f"paper 003 weight-input stuck-at (2 x K x M): "
                   f"{space['paper003_weight_stuck_at']:,d} "
                   f"(sample {samples['paper003_weight_stuck_at']:,d})")
    click.echo(f"sample sizes: Leveugle at {confidence:.0%} confidence, "
               f"{margin:.0%} margin")

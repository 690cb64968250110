"""RTL faults: their description, the fault space of a catalogue, sampling, injection.

An :class:`RTLFault` is one fault in one register of a generated design, addressed by
a path of the site catalogue (:mod:`sim.sites`):

* ``site``: the register's path from the toplevel handle (``"pe_0_1.acc"``);
* ``bit``: the bit position (0 = LSB) in the register;
* ``model``: ``"bitflip"`` (a transient upset: the bit is inverted once, at clock cycle
  ``cycle``, and the design overwrites it at the register's next update), or
  ``"stuck0"`` / ``"stuck1"`` (the register's output bit holds 0 / 1 for the whole run);
* ``cycle``: the injection cycle of a bitflip, counted as the testbench's ``on_cycle``
  hook counts (:meth:`sim.array_tb.ArrayTB.load`: 0 = the first streamed column);
  ``None`` for the stuck-at models;
* ``layer`` / ``tile``: the network layer and the tile of that layer the fault is
  injected into, in a network campaign (both ``None`` for a single tile).

The fault space is the sum over sites of bits x injection cycles for
transients, or bits x 2 for stuck-at (both polarities); a network campaign multiplies
it by the number of (layer, tile) runs. Paper 003 (Section V-C, eq. 1) sizes its
weight-input stuck-at space as ``2 x K x M`` with ``K`` the PE operand width and ``M``
the number of PEs: :func:`paper003_space` is that space over the PE weight registers
(``w_reg``, the PE's registered weight input). Sample sizes follow Leveugle et al.
(:func:`golden.sampling.leveugle_sample_size`), and :func:`sample` draws faults
without replacement, deterministically for a seed.

Inside a cocotb test, :class:`Injection` applies one fault to the running design:

* a bitflip is a ``Deposit`` of the register's value with the bit inverted
  (:func:`sim.inject.flip`) when the hook reaches ``cycle``;
* a stuck-at bit is re-applied by a ``Deposit`` right after every rising clock edge
  (in the ReadWrite phase, once the registers have updated) until :meth:`stop`, so
  logic reading the register sees the stuck bit in every cycle while the register's
  other bits keep working. A ``Force`` would hold every bit of the register, and
  Icarus cannot force one bit of a vector through VPI ("vpi_put_value() ... does not
  currently support force/release"), so the same mechanism serves both simulators; on
  Verilator it gives the same values as a native one-bit Force.
"""

import json
from dataclasses import asdict, dataclass

from neuroharden.golden.sampling import leveugle_sample_size, sample_indices

__all__ = [
    "MODELS", "SPACE_MODELS", "ROW_FIELDS", "RTLFault", "RTLFaultSpace", "paper003_space",
    "sample", "Injection",
]

#: Fault models of one :class:`RTLFault`.
MODELS = ("bitflip", "stuck0", "stuck1")
#: Models of a fault space: ``"stuck-at"`` holds both polarities (bits x 2).
SPACE_MODELS = (*MODELS, "stuck-at")
#: Field order of :meth:`RTLFault.to_row` (one SQLite row).
ROW_FIELDS = ("site", "bit", "model", "cycle", "layer", "tile")


def _check_count(name, value, *, allow_none=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    return value


@dataclass(frozen=True)
class RTLFault:
    """One fault in one register bit (see the module docstring for the fields)."""

    site: str
    bit: int
    model: str = "bitflip"
    cycle: int = None
    layer: str = None
    tile: int = None

    def __post_init__(self):
        if not isinstance(self.site, str) or not self.site:
            raise ValueError(f"fault site must be a non-empty path, not {self.site!r}")
        if self.model not in MODELS:
            raise ValueError(f"RTL fault model must be one of {', '.join(MODELS)}, "
                             f"not {self.model!r}")
        _check_count("fault bit", self.bit)
        if self.model == "bitflip":
            if self.cycle is None:
                raise ValueError("a bitflip fault needs an injection cycle")
            _check_count("injection cycle", self.cycle)
        elif self.cycle is not None:
            raise ValueError(f"a {self.model} fault holds for the whole run and takes no cycle")
        if self.layer is not None and (not isinstance(self.layer, str) or not self.layer):
            raise ValueError(f"fault layer must be a non-empty name or None, not {self.layer!r}")
        _check_count("tile index", self.tile, allow_none=True)

    def validate(self, catalogue):
        """Check the fault against a design's catalogue; return its :class:`~sim.sites.Site`.

        Raises
        ------
        sim.sites.UnknownSiteError
            The site is not in the catalogue (the message names close matches).
        ValueError
            The bit is outside the register.
        """
        site = catalogue[self.site]
        if self.bit >= site.width:
            raise ValueError(f"bit {self.bit} out of range for the {site.width}-bit "
                             f"register {site.path} (0..{site.width - 1})")
        return site

    # -- serialization --------------------------------------------------------------

    def to_dict(self):
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        """Build (and check) a fault from :meth:`to_dict`'s output."""
        if not isinstance(data, dict):
            raise ValueError(f"an RTL fault must be a JSON object, not {type(data).__name__}")
        unknown = set(data) - set(ROW_FIELDS)
        if unknown:
            raise ValueError(f"unknown RTL fault field(s): {', '.join(sorted(unknown))}")
        for key in ("site", "bit"):
            if key not in data:
                raise ValueError(f"RTL fault is missing {key!r}")
        return cls(**data)

    def to_json(self):
        """Compact JSON with sorted keys (stable, usable as a database key)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text):
        """Parse :meth:`to_json`'s output."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not an RTL fault in JSON: {error}") from None
        return cls.from_dict(data)

    def to_row(self):
        """The fields as a tuple in :data:`ROW_FIELDS` order (str, int or None: SQLite types)."""
        return tuple(getattr(self, name) for name in ROW_FIELDS)

    @classmethod
    def from_row(cls, row):
        """Inverse of :meth:`to_row`."""
        row = tuple(row)
        if len(row) != len(ROW_FIELDS):
            raise ValueError(f"an RTL fault row has {len(ROW_FIELDS)} fields "
                             f"({', '.join(ROW_FIELDS)}), not {len(row)}")
        return cls(**dict(zip(ROW_FIELDS, row)))


class RTLFaultSpace:
    """The enumerable fault population of a set of sites for one fault model.

    Fault ``k`` is enumerated (layer, tile) run by run, site by site in catalogue order,
    bit by bit from the LSB, then injection cycle by cycle (bitflip) or stuck0 before
    stuck1 (``"stuck-at"``).

    Parameters
    ----------
    sites : Catalogue or iterable of sim.sites.Site
        The fault sites (e.g. ``resolve(catalogue, "pe_*.acc")``).
    model : str
        One of :data:`SPACE_MODELS`.
    cycles : int or iterable of int, optional
        Injection cycles of a bitflip: ``N`` means cycles ``0 .. N-1`` (a tile of ``N``
        cycles); required for bitflips, refused for stuck-at models.
    runs : iterable of (str, int), optional
        The (layer, tile) runs of a network campaign; every run has the whole space.
    """

    def __init__(self, sites, model, *, cycles=None, runs=None):
        self._sites = tuple(sites)
        if not self._sites:
            raise ValueError("A fault space needs at least one site")
        if model not in SPACE_MODELS:
            raise ValueError(f"RTL fault model must be one of {', '.join(SPACE_MODELS)}, "
                             f"not {model!r}")
        self._model = model
        if model == "bitflip":
            if cycles is None:
                raise ValueError("A bitflip fault space needs its injection cycles")
            if isinstance(cycles, int) and not isinstance(cycles, bool):
                if cycles < 1:
                    raise ValueError(f"Tile length must be a positive number of cycles, "
                                     f"not {cycles!r}")
                cycles = range(cycles)
            self._times = tuple(sorted({_check_count("injection cycle", c) for c in cycles}))
            if not self._times:
                raise ValueError("A bitflip fault space needs at least one injection cycle")
        elif cycles is not None:
            raise ValueError(f"A {model} fault holds for the whole run and takes no cycles")
        else:
            self._times = ("stuck0", "stuck1") if model == "stuck-at" else (model,)
        self._runs = (None,) if runs is None else tuple(
            (str(layer), _check_count("tile index", tile)) for layer, tile in runs)
        if not self._runs:
            raise ValueError("A network campaign needs at least one (layer, tile) run")
        self._bits = sum(site.width for site in self._sites)
        # First fault number of each site within one run.
        self._offsets = []
        offset = 0
        for site in self._sites:
            self._offsets.append(offset)
            offset += site.width * len(self._times)
        self._per_run = offset

    @property
    def model(self):
        """The space's fault model."""
        return self._model

    @property
    def sites(self):
        """The sites, as a tuple."""
        return self._sites

    @property
    def bits(self):
        """Register bits of the sites."""
        return self._bits

    def __len__(self):
        return self._per_run * len(self._runs)

    def fault(self, k):
        """Fault number ``k`` of the population (``0 <= k < len(self)``)."""
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < len(self):
            raise ValueError(f"fault number {k!r} outside the population 0..{len(self) - 1}")
        run, k = divmod(k, self._per_run)
        low, high = 0, len(self._sites) - 1
        while low < high:  # the last site whose offset is <= k
            middle = (low + high + 1) // 2
            if self._offsets[middle] <= k:
                low = middle
            else:
                high = middle - 1
        site = self._sites[low]
        bit, time = divmod(k - self._offsets[low], len(self._times))
        layer, tile = self._runs[run] or (None, None)
        if self._model == "bitflip":
            return RTLFault(site.path, bit, "bitflip", self._times[time], layer, tile)
        return RTLFault(site.path, bit, self._times[time], None, layer, tile)

    def sample_size(self, confidence=0.95, margin=0.01, p=0.5):
        """Leveugle et al.'s sample size for this population."""
        return leveugle_sample_size(len(self), confidence, margin, p)

    def describe(self):
        """JSON-ready summary of the population."""
        summary = {"model": self._model, "sites": len(self._sites), "bits": self._bits,
                   "population": len(self)}
        if self._model == "bitflip":
            summary["cycles"] = len(self._times)
        if self._runs != (None,):
            summary["runs"] = len(self._runs)
        return summary


def paper003_space(catalogue):
    """Paper 003's weight-input stuck-at space, ``2 x K x M``, over the PE weight registers.

    Parameters
    ----------
    catalogue : sim.sites.Catalogue

    Raises
    ------
    ValueError
        When the design has no PE weight register.
    """
    weights = [site for site in catalogue if site.kind == "pe.w_reg"]
    if not weights:
        raise ValueError(f"{catalogue.toplevel} has no PE weight registers (pe.w_reg)")
    return RTLFaultSpace(weights, "stuck-at")


def sample(space, n, seed):
    """``n`` distinct faults of a space, in draw order, deterministic for ``seed``.

    ``n`` equal to ``len(space)`` is an exhaustive campaign in random order.
    """
    return [space.fault(k) for k in sample_indices(len(space), n, seed)]


class Injection:
    """One :class:`RTLFault` applied to a running design, inside a cocotb test.

    Call :meth:`start` before the run, await :meth:`on_cycle` from the testbench's
    per-cycle hook (it acts only for a bitflip, at the fault's cycle), and :meth:`stop`
    after the run (it ends a stuck-at; the register is then driven by the design again
    from its next update).

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    fault : RTLFault
    clock : cocotb handle, optional
        The clock the register updates on (default ``dut.clk``).
    """

    def __init__(self, dut, fault, *, clock=None):
        from .sites import site_handle

        self._fault = fault
        self._handle = site_handle(dut, fault.site)
        if fault.bit >= len(self._handle):
            raise ValueError(f"bit {fault.bit} out of range for the {len(self._handle)}-bit "
                             f"register {fault.site}")
        self._clock = dut.clk if clock is None else clock
        self._task = None
        self.applied = False

    @property
    def fault(self):
        """The fault."""
        return self._fault

    def start(self):
        """Begin a stuck-at fault now (nothing for a bitflip)."""
        import cocotb

        if self._fault.model != "bitflip" and self._task is None:
            self._hold()
            self._task = cocotb.start_soon(self._stick())
            self.applied = True

    async def on_cycle(self, cycle):
        """The testbench's per-cycle hook: flip the bit at the fault's cycle."""
        from .inject import flip

        if self._fault.model == "bitflip" and cycle == self._fault.cycle:
            flip(self._handle, [self._fault.bit])
            self.applied = True

    def stop(self):
        """End a stuck-at fault."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _hold(self):
        from cocotb.handle import Deposit

        value = int(self._handle.value)
        mask = 1 << self._fault.bit
        stuck = value | mask if self._fault.model == "stuck1" else value & ~mask
        if stuck != value:
            self._handle.value = Deposit(stuck)

    async def _stick(self):
        from cocotb.triggers import ReadWrite, RisingEdge

        while True:
            await RisingEdge(self._clock)
            await ReadWrite()
            self._hold()

"""The hardened integer network: protected copies, their correction, and its file.

A :class:`HardenedNet` is an :class:`~golden.intmodel.IntNet` whose layers hold the
copies of the protected neurons as extra output channels (conv) or neurons (linear),
plus one :class:`LayerProtection` per layer saying which channels are copies of which
original channel and how they are corrected. It is built by :func:`golden.harden.harden`.

Execution, per layer ``i`` (exactly what the accelerator does):

1. ``acc, y = layer_step(i, x)`` computes every channel, copies included, with the shared
   numeric contract: copies have the original int8 weights and int32 bias; LCU copies
   (the halves of a split neuron) have the shift ``s + 1`` and saturate at
   :data:`~golden.numerics.HALF_MAX` (``saturation(i)``), TMR copies the shift ``s``.
2. ``correct(i, y)`` runs the protection unit on the raw outputs, after any fault: each
   LCU pair ``(a, b)`` becomes ``numerics.lcu(a, b)`` written back to *both* halves;
   each TMR triple is reduced by ``numerics.vote_bitwise`` or ``numerics.vote_word``
   (paper 000: 0 when no two copies agree) into its first copy. It then gathers the
   channels the next layer reads (``LayerProtection.read``): both halves of a split
   neuron, the voted copy of a triple once, every unprotected channel once.
3. ``next_input(i, ·)`` max-pools and flattens as in the original network.

So the next layer's weights are the original ones, with the input column of a split
neuron duplicated (one per half, same int8 weight), and untouched for a TMR neuron. A
split neuron therefore feeds ``w * v + w * v = w * 2v`` where ``v`` is the corrected half.
Fault-free, ``v = round(x / 2)`` of the original output ``x`` (round half up through
the shift ``s + 1``): ``2v == x`` when ``x`` is even and ``2v == x +- 1`` when it is odd,
which is the rounding that can move the split network's predictions (reported by
``neuroharden harden``). A half saturates at 63 (``numerics.lcu``'s Notes): every
fault-free half has bit 6 clear, so the LCU is the identity without faults, and an
original output of 127 becomes ``2 * 63 = 126``. A fault *upstream* of a split neuron
moves both halves together; past 63 they saturate, as the original output would at 127,
instead of losing bit 6 in the LCU's reset. On a channel with an output zero point
``z`` (imported asymmetric networks) the pair is wide (``LayerProtection.wide``): the
halves are offset-free (zero point 0), saturate at 127 and the LCU clears bit 7, and the
next layer's bias carries the ``z * w`` the halves lack (:mod:`golden.harden`).

Pruned channels (paper 000) are removed: their filter, bias and the next layer's input
column are deleted, which is exactly an output forced to 0 (a 0 input contributes
nothing) at no cost.

The fault-injection engines requantize every faulty value with ``saturation(i)`` and
call ``correct`` after applying a fault to any channel, copy or not
(:mod:`golden.injection`, saturation and correction hooks), so a campaign on a hardened
network measures the protection.

File format (``HARDENED.pt``)
-----------------------------
A plain dict that ``torch.load(path, weights_only=True)`` reads:

* ``format``: :data:`HARDENED_FORMAT`; ``scheme``, ``voter``: strings;
* ``input_scale``, ``input_shape``: as :class:`~golden.intmodel.IntNet`;
* ``layers``: a list of dicts, one per layer, with the :class:`~golden.intmodel.IntLayer`
  fields (tensors and primitives) plus the :class:`LayerProtection` tensors ``source``,
  ``lcu``, ``tmr``, ``read`` and ``pruned``;
* ``model_sha256``: sha256 of the original checkpoint file (its fingerprint);
* ``checkpoint``: the original checkpoint's content (float weights and metadata), so the
  hardened file alone evaluates: dataset, float accuracy, campaigns
  (:func:`golden.checkpoint.load_hardened_checkpoint`);
* ``selection``: primitives describing how the protected neurons were chosen.
"""

import os
import zipfile
from dataclasses import dataclass, field, fields

import torch

from .atomic import atomic_output
from .intmodel import IntLayer, IntNet
from .numerics import HALF_MAX, INT8_MAX, WIDTH, lcu, vote_bitwise, vote_word

__all__ = ["HARDENED_FORMAT", "VOTERS", "LayerProtection", "HardenedNet", "is_hardened",
           "save_hardened", "load_hardened"]

#: ``format`` field of a hardened network file.
HARDENED_FORMAT = "neuroharden-hardened-1"
#: Majority voters of the TMR scheme.
VOTERS = {"bitwise": vote_bitwise, "word": vote_word}

_PROTECTION_FIELDS = ("source", "lcu", "tmr", "read", "pruned", "wide")
_LAYER_FIELDS = tuple(f.name for f in fields(IntLayer))


def _index(values, *shape):
    return torch.as_tensor(values, dtype=torch.int64).reshape(*shape)


@dataclass
class LayerProtection:
    """How one layer's channels map to the original ones and how they are corrected.

    Attributes
    ----------
    source : torch.Tensor
        int64 ``[O']``: the original output channel each channel of the hardened layer
        computes (copies repeat it; pruned channels are absent).
    lcu : torch.Tensor
        int64 ``[P, 2]``: channel pairs (halves of a split neuron) merged by the LCU.
    tmr : torch.Tensor
        int64 ``[T, 3]``: channel triples reduced by the voter into their first channel.
    read : torch.Tensor
        int64 ``[C]``: channels the next layer reads (or, for the last layer, the logits),
        in order.
    pruned : torch.Tensor
        int64 ``[Q]``: original channels removed.
    wide : torch.Tensor
        bool ``[P]``: the pairs whose halves are offset-free values of a channel with an
        output zero point (:mod:`golden.harden`): they saturate at
        :data:`~golden.numerics.INT8_MAX` and the LCU clears bit 7 instead of bit 6
        (``numerics.lcu(..., bit=WIDTH - 1)``). All false by default (symmetric networks
        and files written before zero points).
    high : torch.Tensor
        int64 ``[O']``, derived: the saturation ceiling of each channel,
        :data:`~golden.numerics.HALF_MAX` on the halves of a split neuron that is not
        wide, else :data:`~golden.numerics.INT8_MAX`.
    reach : torch.Tensor
        int64 ``[O', 2]``, derived: the positions in ``read`` whose corrected value a
        change of each channel can alter, ``-1`` padded (both halves of a pair, the voted
        copy of a triple, the channel itself).
    """

    source: torch.Tensor
    lcu: torch.Tensor = field(default_factory=lambda: _index([], 0, 2))
    tmr: torch.Tensor = field(default_factory=lambda: _index([], 0, 3))
    read: torch.Tensor = None
    pruned: torch.Tensor = field(default_factory=lambda: _index([], 0))
    wide: torch.Tensor = None

    def __post_init__(self):
        if self.read is None:
            self.read = torch.arange(len(self.source))
        if self.wide is None:
            self.wide = torch.zeros(len(self.lcu), dtype=torch.bool)
        self.wide = torch.as_tensor(self.wide, dtype=torch.bool).reshape(len(self.lcu))
        self.high = torch.full((len(self.source),), INT8_MAX, dtype=torch.int64)
        self.high[self.lcu[~self.wide].reshape(-1)] = HALF_MAX
        where = torch.full((len(self.source),), -1, dtype=torch.int64)
        where[self.read] = torch.arange(len(self.read))
        self.reach = torch.stack([where, torch.full_like(where, -1)], 1)
        pair = torch.stack([where[self.lcu[:, 0]], where[self.lcu[:, 1]]], 1)
        self.reach[self.lcu[:, 0]] = pair
        self.reach[self.lcu[:, 1]] = pair
        for k in range(3):
            self.reach[self.tmr[:, k], 0] = where[self.tmr[:, 0]]
            self.reach[self.tmr[:, k], 1] = -1
        if set(self.lcu.reshape(-1).tolist()) & set(self.tmr.reshape(-1).tolist()):
            raise ValueError("a channel cannot be both an LCU half and a TMR copy")
        # Positions in ``read`` of the corrected channels (-1: not read), for ``correct``.
        self.lcu_read = where[self.lcu]
        self.tmr_read = where[self.tmr[:, 0]]
        # An untouched layer skips the correction entirely (the common case).
        self.identity = (not self.lcu.numel() and not self.tmr.numel()
                         and len(self.read) == len(self.source)
                         and bool((self.read == torch.arange(len(self.source))).all()))

    @classmethod
    def unprotected(cls, channels):
        """The protection of a layer of ``channels`` channels with nothing protected."""
        return cls(source=torch.arange(channels))


@dataclass
class HardenedNet(IntNet):
    """An integer network with protected copies corrected after every layer.

    Attributes
    ----------
    protection : list of LayerProtection
        One per layer.
    scheme : str
        ``"lcu"``, ``"tmr"`` or ``"tmr-prune"``.
    voter : str
        Key of :data:`VOTERS` used for the TMR triples.
    """

    protection: list = None
    scheme: str = "tmr"
    voter: str = "bitwise"

    def saturation(self, i):
        """Per-channel saturation ceilings ``[O']`` of layer ``i`` (``LayerProtection.high``).

        The injection engines requantize every faulty value of layer ``i`` with these
        ceilings (:mod:`golden.injection`, saturation hook).
        """
        return self.protection[i].high

    def reach(self, i):
        """Which corrected channels each raw channel of layer ``i`` can change.

        Returns
        -------
        torch.Tensor or None
            ``LayerProtection.reach`` (int64 ``[O', 2]``), or ``None`` where ``correct`` is
            the identity. The injection engine recomputes only these corrected values
            after a neuron fault (:mod:`golden.injection`, correction hook).
        """
        p = self.protection[i]
        return None if p.identity else p.reach

    def layer_step(self, i, x):
        """:meth:`golden.intmodel.IntNet.layer_step` with the halves of split neurons
        saturated at :data:`~golden.numerics.HALF_MAX`."""
        acc, y = super().layer_step(i, x)
        p = self.protection[i]
        if p.lcu.numel():
            # requantize(..., high) == min(requantize(...), high): the ceiling is above
            # the ReLU floor (harden refuses the LCU on a layer without ReLU).
            y = torch.minimum(y, p.high.view(1, -1, *([1] * (y.dim() - 2))))
        return acc, y

    def correct(self, i, y):
        """Protection unit of layer ``i``: raw outputs (copies included) -> next input.

        Parameters
        ----------
        i : int
            Layer index.
        y : torch.Tensor
            Raw int8 outputs ``[B, O', ...]`` of the hardened layer, faults applied: int64,
            or floating point holding integers (the injection engine's float path; the
            result then has the same dtype).

        Returns
        -------
        torch.Tensor
            ``[B, C, ...]``: the corrected channels listed in ``protection[i].read``.
        """
        p = self.protection[i]
        if p.identity:
            return y
        # Gather what the next layer reads, then overwrite the corrected channels: the
        # bitwise logic runs on the protected columns only, never on the whole layer.
        out = y[:, p.read]
        if p.lcu.numel():
            merged = _on_integers(_lcu_pairs, y[:, p.lcu[:, 0]], y[:, p.lcu[:, 1]], p.wide)
            for half in (0, 1):
                read = p.lcu_read[:, half] >= 0
                out[:, p.lcu_read[read, half]] = merged[:, read]
        if p.tmr.numel():
            voted = _on_integers(VOTERS[self.voter], *(y[:, p.tmr[:, k]] for k in range(3)))
            read = p.tmr_read >= 0
            out[:, p.tmr_read[read]] = voted[:, read]
        return out

    def forward(self, x, *, start=0, record=False):
        """Run layers ``start`` to the end, correcting after every layer.

        Same contract as :meth:`golden.intmodel.IntNet.forward`; recorded ``y`` are the
        raw outputs before correction (the fault sites).
        """
        records = []
        for i in range(start, len(self.layers)):
            acc, y = self.layer_step(i, x)
            if record:
                records.append((acc, y))
            x = self.next_input(i, self.correct(i, y))
        return (x, records) if record else x


def _on_integers(function, *values):
    """``function`` of int64 tensors applied to ``values``, returned in their dtype."""
    if values[0].is_floating_point():
        return function(*(v if v.dtype == torch.bool else v.to(torch.int64)
                          for v in values)).to(values[0].dtype)
    return function(*values)


def _lcu_pairs(a, b, wide):
    """``numerics.lcu`` of pairs ``[B, P, ...]``, the wide variant where ``wide[P]``."""
    if not bool(wide.any()):
        return lcu(a, b)
    return torch.where(wide.view(1, -1, *([1] * (a.dim() - 2))),
                       lcu(a, b, bit=WIDTH - 1), lcu(a, b))


def _to_plain(value):
    return list(value) if isinstance(value, tuple) else value


def save_hardened(net, path, *, model_sha256, checkpoint, selection):
    """Write a hardened network atomically (see the module docstring for the format).

    Parameters
    ----------
    net : HardenedNet
    path : str or os.PathLike
    model_sha256 : str
        Fingerprint of the original checkpoint file.
    checkpoint : dict
        The original checkpoint's content (as read with ``weights_only=True``).
    selection : dict
        Primitives describing the selection (scheme, threshold, fraction, ...).
    """
    layers = []
    for layer, p in zip(net.layers, net.protection):
        entry = {name: _to_plain(getattr(layer, name)) for name in _LAYER_FIELDS}
        entry.update({name: getattr(p, name) for name in _PROTECTION_FIELDS})
        layers.append(entry)
    payload = {"format": HARDENED_FORMAT, "scheme": net.scheme, "voter": net.voter,
               "input_scale": float(net.input_scale),
               "input_shape": list(net.input_shape),
               "input_zero_point": int(net.input_zero_point), "layers": layers,
               "model_sha256": model_sha256, "checkpoint": checkpoint,
               "selection": selection}
    with atomic_output(path) as file:
        torch.save(payload, file)


def _read(path):
    """The payload of a torch zip archive, never unpickled; ``None`` if not one."""
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 -- torch raises many types for a foreign archive
        return None


def is_hardened(path):
    """Whether ``path`` is a hardened network file (:func:`save_hardened`)."""
    payload = _read(path)
    return isinstance(payload, dict) and payload.get("format") == HARDENED_FORMAT


def load_hardened(path):
    """Read a hardened network file.

    Returns
    -------
    (HardenedNet, dict)
        The network and the rest of the payload (``model_sha256``, ``checkpoint``,
        ``selection``, ...).

    Raises
    ------
    ValueError
        Missing or foreign file, a plain model checkpoint, or inconsistent content.
    """
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such file")
    payload = _read(path)
    if not isinstance(payload, dict):
        raise ValueError(f"{path}: not a hardened network (unreadable or foreign file)")
    if payload.get("format") != HARDENED_FORMAT:
        if str(payload.get("format", "")).startswith("neuroharden-model"):
            raise ValueError(f"{path}: is a model checkpoint, not a hardened network "
                             f"(make one with `neuroharden harden`)")
        raise ValueError(f"{path}: not a neuroharden hardened network")
    try:
        layers, protection = [], []
        for entry in payload["layers"]:
            # Fields added later (zero points) take their defaults in older files.
            values = {name: entry[name] for name in _LAYER_FIELDS if name in entry}
            values["out_hw"] = tuple(values["out_hw"])
            layers.append(IntLayer(**values))
            protection.append(LayerProtection(**{n: entry[n] for n in _PROTECTION_FIELDS
                                                 if n in entry}))
        net = HardenedNet(layers=layers, input_scale=payload["input_scale"],
                          input_shape=tuple(payload["input_shape"]),
                          input_zero_point=payload.get("input_zero_point", 0),
                          protection=protection,
                          scheme=payload["scheme"], voter=payload["voter"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: damaged hardened network ({error})") from None
    if net.voter not in VOTERS:
        raise ValueError(f"{path}: unknown voter {net.voter!r}")
    return net, {k: v for k, v in payload.items() if k != "layers"}


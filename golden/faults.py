"""Fault models of the model-level fault injector.

A :class:`Fault` is one permanent fault in the integer network of
:mod:`golden.intmodel`, addressed by

* ``layer``: the layer name (``"conv1"``, ``"fc2"``, ...);
* ``target``: ``"output"`` (the int8 neuron output ``y`` of a neuron, before pooling),
  ``"accumulator"`` (its int32 accumulator ``acc``, bias added, before requantization)
  or ``"weight"`` (one int8 weight of the layer);
* ``index``: the flat index of the neuron in one image's ``[O, H, W]`` (conv) or ``[O]``
  (linear) output, or the flat index of the weight in ``[O, I, kh, kw]`` / ``[O, I]``;
* ``model``:

  - ``"bitflip"``: the bits in ``bits`` are inverted (one bit = single-bit flip, several
    = multi-bit flip);
  - ``"stuck0"`` / ``"stuck1"``: the bits in ``bits`` are forced to 0 / 1;
  - ``"crash"``: the value is forced to 0 (paper 000's crashed neuron);
  - ``"byzantine"``: the value is forced to ``value``, a random value of the target's
    range drawn from a seeded generator when the fault list is built (paper 000);

* ``bits``: bit positions (0 = LSB) for bit-level models, ``()`` otherwise;
* ``value``: the forced value of a Byzantine fault, ``None`` otherwise.

Bits are numbered on the two's complement word of the target: 8 bits for outputs and
weights, :data:`golden.numerics.ACC_WIDTH` (32) for accumulators; flipping bit 7 of a
ReLU output therefore makes it negative, exactly as in an int8 register. An accumulator
fault corrupts ``acc`` and the neuron is then requantized from the corrupted value.

Faults are permanent for the inference of every image: a neuron-output fault corrupts
that neuron for each image of the test set (the site is a hardware register / PE that
computes that neuron for every inference).
"""

import json
from dataclasses import asdict, dataclass

from .numerics import ACC_WIDTH, WIDTH, wrap

__all__ = [
    "FAULT_MODELS", "TARGETS", "BIT_MODELS", "Fault", "target_width", "apply_fault_value",
    "site_count",
]

#: Fault models accepted by :class:`Fault`.
FAULT_MODELS = ("bitflip", "stuck0", "stuck1", "crash", "byzantine")
#: Models that act on the bits listed in ``Fault.bits``.
BIT_MODELS = ("bitflip", "stuck0", "stuck1")
#: Injection targets.
TARGETS = ("output", "accumulator", "weight")


def target_width(target):
    """Word width in bits of a target (8 for output and weight, 32 for accumulator)."""
    if target not in TARGETS:
        raise ValueError(f"unknown fault target {target!r} (choose from {', '.join(TARGETS)})")
    return ACC_WIDTH if target == "accumulator" else WIDTH


def _layer(net, name):
    for i, layer in enumerate(net.layers):
        if layer.name == name:
            return i, layer
    names = ", ".join(layer.name for layer in net.layers)
    raise ValueError(f"unknown layer {name!r} (the network has {names})")


def site_count(layer, target):
    """Number of fault sites of ``target`` in ``layer`` (neurons or weights)."""
    return layer.weight.numel() if target == "weight" else layer.neurons


@dataclass(frozen=True)
class Fault:
    """One permanent fault (see the module docstring for the fields)."""

    layer: str
    target: str
    index: int
    bits: tuple = ()
    model: str = "bitflip"
    value: int = None

    def __post_init__(self):
        # Normalise types (JSON gives lists) and check what needs no network.
        object.__setattr__(self, "bits", tuple(int(b) for b in self.bits))
        object.__setattr__(self, "index", int(self.index))
        if not isinstance(self.layer, str) or not self.layer:
            raise ValueError(f"fault layer must be a non-empty name, got {self.layer!r}")
        if self.model not in FAULT_MODELS:
            raise ValueError(f"unknown fault model {self.model!r} "
                             f"(choose from {', '.join(FAULT_MODELS)})")
        width = target_width(self.target)
        if self.index < 0:
            raise ValueError(f"fault index {self.index} is negative")
        if self.model in BIT_MODELS:
            if not self.bits:
                raise ValueError(f"a {self.model} fault needs at least one bit")
            if len(set(self.bits)) != len(self.bits):
                raise ValueError(f"repeated bit in {self.bits}")
            for bit in self.bits:
                if not 0 <= bit < width:
                    raise ValueError(f"bit {bit} out of range for a {width}-bit "
                                     f"{self.target} (0..{width - 1})")
        elif self.bits:
            raise ValueError(f"a {self.model} fault takes no bits")
        if self.model == "byzantine":
            if self.value is None:
                raise ValueError("a byzantine fault needs a value")
            object.__setattr__(self, "value", int(self.value))
            low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
            if not low <= self.value <= high:
                raise ValueError(f"byzantine value {self.value} out of the {width}-bit "
                                 f"range {low}..{high}")
        elif self.value is not None:
            raise ValueError(f"a {self.model} fault takes no value")

    # -- addressing -----------------------------------------------------------------

    def validate(self, net):
        """Check the fault against a network; return the layer index.

        Raises
        ------
        ValueError
            Unknown layer or an index outside the layer's neurons / weights.
        """
        i, layer = _layer(net, self.layer)
        sites = site_count(layer, self.target)
        if self.index >= sites:
            what = "weights" if self.target == "weight" else "neurons"
            raise ValueError(f"fault index {self.index} out of range: layer {self.layer} "
                             f"has {sites} {what}")
        return i

    @property
    def width(self):
        """Width in bits of the faulty word."""
        return target_width(self.target)

    # -- serialization --------------------------------------------------------------

    def to_dict(self):
        """A JSON-ready dict (bits as a list)."""
        d = asdict(self)
        d["bits"] = list(self.bits)
        return d

    @classmethod
    def from_dict(cls, d):
        """Build (and validate) a fault from :meth:`to_dict`'s output."""
        if not isinstance(d, dict):
            raise ValueError(f"a fault must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - {"layer", "target", "index", "bits", "model", "value"}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        for key in ("layer", "target", "index"):
            if key not in d:
                raise ValueError(f"fault is missing {key!r}")
        return cls(layer=d["layer"], target=d["target"], index=d["index"],
                   bits=tuple(d.get("bits", ())), model=d.get("model", "bitflip"),
                   value=d.get("value"))

    def to_json(self):
        """Compact JSON string with sorted keys (stable, usable as a key)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text):
        """Parse :meth:`to_json`'s output."""
        try:
            d = json.loads(text)
        except (TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"not a fault in JSON: {error}") from None
        return cls.from_dict(d)


def apply_fault_value(values, fault):
    """Apply a fault's model to values of its target word (ints, arrays or tensors).

    ``values`` are signed two's complement values of ``fault.width`` bits (int64
    elements); the result has the same type and range.
    """
    width = fault.width
    if fault.model == "crash":
        return values * 0
    if fault.model == "byzantine":
        return values * 0 + fault.value
    mask = sum(1 << b for b in fault.bits)
    unsigned = values & ((1 << width) - 1)
    if fault.model == "bitflip":
        unsigned = unsigned ^ mask
    elif fault.model == "stuck0":
        unsigned = unsigned & ~mask
    else:
        unsigned = unsigned | mask
    return wrap(unsigned, width)

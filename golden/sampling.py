"""Statistical fault injection: Leveugle sizing and sampling of the fault space.

Sample size (Leveugle et al., "Statistical fault injection: quantified error and
confidence", DATE 2009)::

    n = N / (1 + e**2 * (N - 1) / (t**2 * p * (1 - p)))

with ``N`` the fault population, ``e`` the error margin, ``p`` the estimated failure
probability (0.5, the worst case) and ``t`` the two-sided normal quantile of the
confidence (``statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)``, 1.959964 at
95 %). For an infinite population ``n = t**2 p (1 - p) / e**2``. ``n`` is rounded *up* (never fewer
faults than the margin needs): 9,604 at 95 % / 1 % for an infinite population.

Paper 004's sizes: MLP-7 has 2,816 neurons (N = 22,528 single-bit flips) and the formula
gives 6,733.5 -> 6,734; LeNet-5 has 4,684 (N = 37,472) and the formula gives 7,644.6 ->
7,645 (the issue's number). The paper prints 6,750 and 7,650: both are the formula
rounded up to the next multiple of 50, which ``round_to=50`` reproduces (its AlexNet
figure 9,500 is consistent with this for a population of 0.59 M to 0.88 M faults, i.e.
74 k to 110 k neurons; the paper does not give that AlexNet's neuron count).

Fault space (:class:`FaultSpace`): for neuron targets (``output``, ``accumulator``) the
sites are the neurons of the hidden layers (every layer but the output layer, pooling not
counted: paper 004's population); for ``weight`` they are every weight of every layer.
Each site has ``C(width, bits)`` faults for the bit models (bitflip, stuck0, stuck1 with
``bits`` bits), and one for crash and Byzantine. Fault ``k`` of the space is enumerated
layer by layer, site by site, bit combination by bit combination (lexicographic).
"""

import itertools
import math
from statistics import NormalDist

import numpy as np

from .faults import BIT_MODELS, FAULT_MODELS, TARGETS, Fault, site_count, target_width

__all__ = ["leveugle_sample_size", "t_quantile", "FaultSpace", "sample_indices"]


def t_quantile(confidence):
    """Two-sided standard normal quantile of a confidence level in (0, 1)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    # The standard library's quantile: no scipy import in every simulator process.
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def leveugle_sample_size(population=None, confidence=0.95, margin=0.01, p=0.5, round_to=1):
    """Number of faults to inject for a given confidence and error margin.

    Parameters
    ----------
    population : int or None
        Fault population ``N``; ``None`` (or ``math.inf``) for an infinite population.
    confidence : float
        Confidence level in (0, 1).
    margin : float
        Error margin ``e`` in (0, 1).
    p : float
        Estimated probability of a fault failing, in (0, 1) (0.5 is the worst case).
    round_to : int
        Round up to a multiple of this (1 = the next integer; 50 reproduces paper 004).

    Returns
    -------
    int
        The sample size, never above ``population``.
    """
    t = t_quantile(confidence)
    if not 0 < margin < 1:
        raise ValueError(f"margin must lie in (0, 1), got {margin}")
    if not 0 < p < 1:
        raise ValueError(f"p must lie in (0, 1), got {p}")
    if round_to < 1:
        raise ValueError(f"round_to must be at least 1, got {round_to}")
    base = t * t * p * (1 - p)
    if population is None or population == math.inf:
        n = base / margin ** 2
    else:
        population = int(population)
        if population < 1:
            raise ValueError(f"population must be at least 1, got {population}")
        n = population / (1 + margin ** 2 * (population - 1) / base)
    # Guard against float noise just above an integer (e.g. 9604.0000001).
    n = math.ceil(round(n, 9) / round_to) * round_to
    if population is not None and population != math.inf:
        n = min(n, population)
    return int(n)


class FaultSpace:
    """The enumerable fault population of a network for one fault model and target.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    model : str
        One of :data:`golden.faults.FAULT_MODELS`.
    target : str
        One of :data:`golden.faults.TARGETS`.
    bits : int
        Bits per fault for the bit models (1 = single-bit).
    layers : list of str, optional
        Layer names to include (default: hidden layers for neuron targets, every layer
        for weights).
    seed : int
        Seed of the Byzantine values (fault ``k`` draws its value from
        ``numpy.random.default_rng([seed, k])``).
    positions : list of int, optional
        Bit positions the bit models may hit (default: every bit of the word).
    """

    def __init__(self, net, model, target="output", bits=1, layers=None, seed=0,
                 positions=None):
        if model not in FAULT_MODELS:
            raise ValueError(f"unknown fault model {model!r} "
                             f"(choose from {', '.join(FAULT_MODELS)})")
        if target not in TARGETS:
            raise ValueError(f"unknown fault target {target!r} "
                             f"(choose from {', '.join(TARGETS)})")
        self.model, self.target, self.seed = model, target, int(seed)
        self.width = target_width(target)
        if model in BIT_MODELS:
            if not 1 <= bits <= self.width:
                raise ValueError(f"bits must lie in 1..{self.width} for a {target} target, "
                                 f"got {bits}")
            if positions is None:
                positions = range(self.width)
            positions = sorted(set(int(b) for b in positions))
            for b in positions:
                if not 0 <= b < self.width:
                    raise ValueError(f"bit {b} out of range for a {self.width}-bit {target} "
                                     f"(0..{self.width - 1})")
            if bits > len(positions):
                raise ValueError(f"cannot flip {bits} bits among positions {positions}")
            self.combos = list(itertools.combinations(positions, bits))
        else:
            self.combos = [()]
        self.bits = bits if model in BIT_MODELS else 0
        names = [layer.name for layer in net.layers]
        if layers is None:
            chosen = names if target == "weight" else names[:-1]
        else:
            for name in layers:
                if name not in names:
                    raise ValueError(f"unknown layer {name!r} (the network has "
                                     f"{', '.join(names)})")
            chosen = [n for n in names if n in set(layers)]
        self.layers = []           # (name, sites, first fault index)
        offset = 0
        for layer in net.layers:
            if layer.name in chosen:
                sites = site_count(layer, target)
                self.layers.append((layer.name, sites, offset))
                offset += sites * len(self.combos)
        self.size = offset

    def __len__(self):
        return self.size

    def fault(self, k):
        """Fault number ``k`` of the population (``0 <= k < len(self)``)."""
        k = int(k)
        if not 0 <= k < self.size:
            raise ValueError(f"fault number {k} outside the population 0..{self.size - 1}")
        for name, sites, offset in self.layers:
            if k < offset + sites * len(self.combos):
                site, combo = divmod(k - offset, len(self.combos))
                value = None
                if self.model == "byzantine":
                    rng = np.random.default_rng([self.seed, k])
                    value = int(rng.integers(-(1 << (self.width - 1)), 1 << (self.width - 1)))
                return Fault(name, self.target, site, self.combos[combo], self.model, value)
        raise AssertionError("unreachable")

    def describe(self):
        """JSON-ready summary of the population."""
        return {"model": self.model, "target": self.target, "bits": self.bits,
                "positions": sorted({b for c in self.combos for b in c}),
                "population": self.size,
                "layers": {name: sites for name, sites, _ in self.layers}}


def sample_indices(population, n, seed):
    """``n`` distinct fault numbers of ``range(population)``, deterministic for a seed.

    The order is the draw order (a campaign's fault ``i`` is the ``i``-th draw); ``n``
    equal to the population is an exhaustive campaign in random order.
    """
    if not 0 <= n <= population:
        raise ValueError(f"cannot sample {n} faults from a population of {population}")
    rng = np.random.default_rng(int(seed))
    return [int(k) for k in rng.choice(population, size=n, replace=False)]

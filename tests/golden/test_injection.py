"""The fast injection engine against the naive full re-run, and the outcome classes."""

import dataclasses
import random

import pytest
import torch

from neuroharden.golden.faults import FAULT_MODELS, TARGETS, Fault, target_width
from neuroharden.golden.injection import InjectionEngine, classify, naive_logits
from neuroharden.golden.intmodel import IntNet
from neuroharden.golden.numerics import lcu
from tests.golden.fi_nets import _layer, random_net


def random_faults(net, count, seed, targets=TARGETS, models=FAULT_MODELS):
    rng = random.Random(seed)
    faults = []
    for _ in range(count):
        layer = rng.choice(net.layers)
        target = rng.choice(targets)
        width = target_width(target)
        model = rng.choice(models)
        sites = layer.weight.numel() if target == "weight" else layer.neurons
        bits = (tuple(rng.sample(range(width), rng.choice([1, 1, 2, 3])))
                if model in ("bitflip", "stuck0", "stuck1") else ())
        value = rng.randrange(-(1 << (width - 1)), 1 << (width - 1)) \
            if model == "byzantine" else None
        faults.append(Fault(layer.name, target, rng.randrange(sites), bits, model, value))
    return faults


@pytest.mark.parametrize("geometry", [dict(), dict(padding=0), dict(stride=2, padding=1)])
@pytest.mark.parametrize("target", TARGETS)
def test_fast_equals_naive(geometry, target):
    net, x = random_net(seed=3, **geometry)
    faults = random_faults(net, 90, seed=hash(target) % 1000, targets=(target,))
    engine = InjectionEngine(net, x, max_elements=1 << 14)  # small chunks: exercise chunking
    fast = engine.run(faults)
    assert torch.equal(engine.logits, net.forward(x))
    changed = 0
    for k, fault in enumerate(faults):
        reference = naive_logits(net, x, fault)
        assert torch.equal(fast[k], reference), fault
        changed += not torch.equal(reference, engine.logits)
    assert changed > 10  # the faults do something


def conv_chain_net(seed=6, images=20):
    """Convolutions without pooling (stride 1 and 2) feeding convolutions, then a pooled
    one, a hidden and an output linear layer."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 128, (images, 2, 11, 11), generator=gen)
    w = lambda *shape: torch.randint(-127, 128, shape, generator=gen)  # noqa: E731
    l1, h = _layer("conv1", "conv", w(4, 2, 3, 3), x, padding=1, gen=gen)      # 11x11
    l2, h = _layer("conv2", "conv", w(5, 4, 3, 3), h, stride=2, padding=1, gen=gen)  # 6x6
    l3, h = _layer("conv3", "conv", w(3, 5, 2, 2), h, pool=2, flatten=True, gen=gen)
    l4, h = _layer("fc1", "linear", w(7, h.shape[1]), h, gen=gen)
    l5, h = _layer("fc2", "linear", w(6, 7), h, relu=False, gen=gen)
    return IntNet([l1, l2, l3, l4, l5], 0.01, (2, 11, 11)), x


@pytest.mark.parametrize("target", TARGETS)
def test_fast_equals_naive_without_pooling(target):
    net, x = conv_chain_net()
    faults = random_faults(net, 120, seed=len(target), targets=(target,))
    engine = InjectionEngine(net, x, max_elements=1 << 12)
    fast = engine.run(faults)
    changed = 0
    for k, fault in enumerate(faults):
        reference = naive_logits(net, x, fault)
        assert torch.equal(fast[k], reference), fault
        changed += not torch.equal(reference, engine.logits)
    assert changed > 10


def test_mixed_batch_and_every_neuron_of_a_layer():
    net, x = random_net(seed=5)
    faults = [Fault("conv1", "output", n, (6,)) for n in range(net.layers[0].neurons)]
    faults += random_faults(net, 60, seed=1)
    fast = InjectionEngine(net, x).run(faults)
    for k in range(0, len(faults), 7):
        assert torch.equal(fast[k], naive_logits(net, x, faults[k]))


@dataclasses.dataclass
class HookedNet(IntNet):
    """A toy 'hardened' net: layer 0's outputs pass through an LCU with themselves
    (clearing bit 6) and layer 2's are clamped, as a correction hook would."""

    def correct(self, i, y):
        if i == 0:
            return lcu(y, y)
        if i == 2:
            return y.clamp(max=100)
        return y

    def reach(self, i):
        # Both corrections act on each channel alone.
        return torch.arange(self.layers[i].weight.shape[0]).view(-1, 1) if i in (0, 2) \
            else None


def test_correction_hook_is_used_by_both_engines():
    base, x = random_net(seed=7)
    net = HookedNet(base.layers, base.input_scale, base.input_shape)
    faults = random_faults(net, 80, seed=2)
    engine = InjectionEngine(net, x)
    fast = engine.run(faults)
    assert not torch.equal(engine.logits, base.forward(x))  # the hook changes the run
    for k, fault in enumerate(faults):
        assert torch.equal(fast[k], naive_logits(net, x, fault)), fault


def test_classify():
    ref = torch.tensor([[10, 0, 0], [0, 20, 0]])
    faulty = torch.stack([
        ref,                                          # masked
        torch.tensor([[10, 0, 1], [0, 20, 0]]),       # tolerable: same top-1, tiny change
        torch.tensor([[10, 0, 9], [0, 20, 0]]),       # critical (003): score drops a lot
        torch.tensor([[0, 10, 0], [0, 20, 0]]),       # critical (003 and 004): top-1 moves
    ])
    labels = torch.tensor([0, 2])
    out = classify(faulty, ref, labels, out_scale=0.5)
    assert [o["outcome"] for o in out] == ["masked", "tolerable", "critical", "critical"]
    assert [o["critical"] for o in out] == [False, False, False, True]
    assert [o["changed"] for o in out] == [0, 0, 0, 1]
    assert [o["correct"] for o in out] == [1, 1, 1, 0]
    assert out[1]["tolerable_images"] == 1 and out[1]["masked_images"] == 1


def test_evaluate_counts():
    net, x = random_net(seed=9)
    labels = net.predict(x)
    engine = InjectionEngine(net, x, labels)
    assert engine.fault_free_correct() == len(x)
    results = engine.evaluate(random_faults(net, 50, seed=4), chunk=16)
    assert len(results) == 50
    for r in results:
        assert r["masked_images"] + r["tolerable_images"] + r["critical_images"] == len(x)
        assert r["critical"] == (r["changed"] > 0)
        assert r["correct"] == len(x) - r["changed"]

import random

import pytest
import torch

from neuroharden.golden.faults import Fault
from neuroharden.golden.harden import harden
from neuroharden.golden.hardened import (HardenedNet, LayerProtection, is_hardened, load_hardened,
                             save_hardened)
from neuroharden.golden.injection import InjectionEngine, naive_logits
from neuroharden.golden.numerics import HALF_MAX, lcu, requantize, vote_bitwise
from tests.golden.fi_nets import conv_chain_net, offset_net, random_faults, random_net

PROTECT = [("conv1", 1), ("conv2", 2), ("fc1", 3), ("fc1", 7)]


def _neuron_indices(layer, channel):
    per = layer.neurons // layer.weight.shape[0]
    return range(channel * per, (channel + 1) * per)


def test_correction_applies_the_hardware_units():
    net, x = random_net()
    split = harden(net, "lcu", [("fc1", 0)])
    y = torch.zeros(2, 13, dtype=torch.int64)
    y[:, 0], y[:, 1] = torch.tensor([37, 100]), torch.tensor([45, -91])
    out = split.correct(2, y)
    assert out.shape == (2, 13)                         # both halves are read
    assert out[:, 0].tolist() == out[:, 1].tolist() == lcu(y[:, 0], y[:, 1]).tolist()
    for voter, expect in (("bitwise", vote_bitwise(5, 6, 9)), ("word", 0)):
        tmr = harden(net, "tmr", [("fc1", 0)], voter=voter)
        y = torch.zeros(1, 14, dtype=torch.int64)
        y[0, :3] = torch.tensor([5, 6, 9])              # three copies, all disagree
        out = tmr.correct(2, y)
        assert out.shape == (1, 12) and int(out[0, 0]) == expect
        # The injection engine's float path corrects float tensors holding integers.
        assert tmr.correct(2, y.double()).tolist() == out.double().tolist()


def test_a_channel_is_either_an_lcu_half_or_a_tmr_copy():
    with pytest.raises(ValueError, match="both an LCU half and a TMR copy"):
        LayerProtection(source=torch.tensor([0, 0, 0]), lcu=torch.tensor([[0, 1]]),
                        tmr=torch.tensor([[0, 1, 2]]))


def _engine(scheme, voter="bitwise", seed=11):
    net, x = random_net(seed=seed)
    hardened = harden(net, scheme, PROTECT, voter=voter)
    return net, hardened, x, InjectionEngine(hardened, x)


def test_engines_agree_on_a_hardened_network():
    _, hardened, x, engine = _engine("lcu")
    rng = random.Random(0)
    faults = []
    for layer in hardened.layers:
        for target, sites, width in (("output", layer.neurons, 8),
                                     ("accumulator", layer.neurons, 32),
                                     ("weight", layer.weight.numel(), 8)):
            for _ in range(6):
                faults.append(Fault(layer.name, target, rng.randrange(sites),
                                    (rng.randrange(width),)))
    fast = engine.run(faults)
    for k, fault in enumerate(faults):
        assert torch.equal(fast[k], naive_logits(hardened, x, fault)), fault


@pytest.mark.parametrize("geometry", [dict(), dict(padding=0), dict(stride=2, padding=1)])
@pytest.mark.parametrize("scheme,voter", [("lcu", "bitwise"), ("tmr", "bitwise"),
                                          ("tmr", "word")])
def test_engines_agree_on_random_faults(scheme, voter, geometry):
    """Every fault model and target, copies or not, every layer (the output layer's
    TMR too), on protected layers that feed a convolution, a linear layer or the logits."""
    net, x = random_net(seed=4, **geometry)
    protect = PROTECT + [("conv1", 0), ("fc1", 11)] + ([("fc2", 4)] if scheme == "tmr" else [])
    hardened = harden(net, scheme, protect, voter=voter)
    faults = random_faults(hardened, 150, seed=len(scheme) + len(voter) + len(geometry))
    engine = InjectionEngine(hardened, x, max_elements=1 << 14)
    fast = engine.run(faults)
    changed = 0
    for k, fault in enumerate(faults):
        reference = naive_logits(hardened, x, fault)
        assert torch.equal(fast[k], reference), fault
        changed += not torch.equal(reference, engine.logits)
    assert changed > 10


@pytest.mark.parametrize("scheme", ["lcu", "tmr"])
def test_engines_agree_on_unpooled_convolutions(scheme):
    """Protected convolutions without pooling feeding convolutions (the correction runs
    inside the next layer's incremental window)."""
    net, x = conv_chain_net()
    protect = [("conv1", 0), ("conv1", 3), ("conv2", 1), ("conv3", 2), ("fc1", 5)]
    hardened = harden(net, scheme, protect)
    faults = random_faults(hardened, 150, seed=len(scheme))
    fast = InjectionEngine(hardened, x, max_elements=1 << 13).run(faults)
    for k, fault in enumerate(faults):
        assert torch.equal(fast[k], naive_logits(hardened, x, fault)), fault


@pytest.mark.parametrize("scheme", ["lcu", "tmr"])
def test_engines_agree_on_a_hardened_network_with_zero_points(scheme):
    # Wide halves (zero point 0, ceiling 127) beside copies and channels offset by -128.
    net, x = random_net(seed=0, padding=0, images=6)
    shifted = offset_net(net, -128)
    hardened = harden(shifted, scheme, [(layer.name, c) for layer in shifted.layers[:-1]
                                        for c in (0, 1)])
    faults = random_faults(hardened, 150, seed=3)
    fast = InjectionEngine(hardened, x, max_elements=1 << 13).run(faults)
    for k, fault in enumerate(faults):
        assert torch.equal(fast[k], naive_logits(hardened, x, fault)), fault


def test_save_load_keeps_wide_pairs_and_the_input_zero_point(tmp_path):
    net, x = random_net(seed=0, padding=0, images=4)
    shifted = offset_net(net, -128)
    shifted.input_zero_point = -3
    hardened = harden(shifted, "lcu", [("conv2", 1), ("fc1", 0)])
    assert hardened.input_zero_point == -3
    save_hardened(hardened, tmp_path / "h.pt", model_sha256="0" * 64, checkpoint={},
                  selection={})
    again, _ = load_hardened(tmp_path / "h.pt")
    assert again.input_zero_point == -3
    for mine, theirs in zip(again.protection, hardened.protection):
        assert torch.equal(mine.wide, theirs.wide) and torch.equal(mine.high, theirs.high)
    assert bool(again.protection[1].wide.all()) and len(again.protection[1].wide) == 1
    assert torch.equal(again.forward(x), hardened.forward(x))


def test_every_zero_to_one_flip_in_an_lcu_half_is_masked():
    _, hardened, x, engine = _engine("lcu")
    faults, where = [], []
    for layer, p in zip(hardened.layers, hardened.protection):
        for pair in p.lcu.tolist():
            for half in pair:
                for index in _neuron_indices(layer, half):
                    for bit in range(8):
                        faults.append(Fault(layer.name, "output", index, (bit,)))
                        where.append((hardened.layers.index(layer), index, bit))
    assert len(faults) == 2 * 8 * (100 + 25 + 2)
    faulty = engine.run(faults)
    zero_bits = 0
    for k, (i, index, bit) in enumerate(where):
        was_zero = ((engine.ys[i].flatten(1)[:, index] >> bit) & 1) == 0   # per image
        zero_bits += int(was_zero.sum())
        assert torch.equal(faulty[k][was_zero], engine.logits[was_zero]), faults[k]
    assert zero_bits > len(faults) * len(x) // 2
    # A stuck-at-1 is a 0->1 flip wherever it changes anything: masked on every image.
    stuck = [Fault(f.layer, "output", f.index, f.bits, "stuck1") for f in faults]
    assert torch.equal(engine.run(stuck), engine.logits_ref_expand(len(stuck)))


@pytest.mark.parametrize("voter", ["bitwise", "word"])
def test_every_fault_confined_to_one_tmr_copy_is_masked(voter):
    net, hardened, x, engine = _engine("tmr", voter)
    assert torch.equal(engine.logits, net.forward(x))
    rng = random.Random(1)
    faults = []
    for layer, p in zip(hardened.layers, hardened.protection):
        fan_in = layer.weight[0].numel()
        for triple in p.tmr.tolist():
            for copy in triple:
                for index in _neuron_indices(layer, copy):
                    faults.append(Fault(layer.name, "output", index, (rng.randrange(8),)))
                    faults.append(Fault(layer.name, "output", index,
                                        tuple(rng.sample(range(8), 3))))
                    faults.append(Fault(layer.name, "output", index, (), "crash"))
                    faults.append(Fault(layer.name, "output", index, (), "byzantine",
                                        rng.randrange(-128, 128)))
                    faults.append(Fault(layer.name, "accumulator", index,
                                        (rng.randrange(32),)))
                for w in range(fan_in):
                    faults.append(Fault(layer.name, "weight", copy * fan_in + w,
                                        (rng.randrange(8),), "stuck1"))
    faulty = engine.run(faults)
    assert torch.equal(faulty, engine.logits_ref_expand(len(faults)))


def test_protection_reduces_critical_faults():
    """The same faults on the unprotected neurons' counterparts: TMR masks what hurt."""
    net, hardened, x, engine = _engine("tmr")
    plain = InjectionEngine(net, x)
    faults = [Fault(name, "output", index, (6,))
              for name, c in PROTECT
              for index in _neuron_indices(net.layers[[l.name for l in net.layers].index(name)],
                                           c)]
    before = sum(r["outcome"] != "masked" for r in plain.evaluate(faults))
    # In the hardened net the original channel c sits at the first copy of its triple.
    moved = []
    for f in faults:
        i = [l.name for l in net.layers].index(f.layer)
        per = net.layers[i].neurons // net.layers[i].weight.shape[0]
        c, pixel = divmod(f.index, per)
        first = int((hardened.protection[i].source == c).nonzero()[0])
        moved.append(Fault(f.layer, "output", first * per + pixel, (6,)))
    after = sum(r["outcome"] != "masked" for r in engine.evaluate(moved))
    assert before > 0 and after == 0


def test_save_load_roundtrip(tmp_path, lenet5_model):
    net, x = random_net()
    hardened = harden(net, "tmr", PROTECT, voter="word")
    path = tmp_path / "h.pt"
    save_hardened(hardened, path, model_sha256="ab" * 32, checkpoint={"model": "toy"},
                  selection={"fraction": 5.0, "threshold": None})
    assert is_hardened(path) and not is_hardened(lenet5_model)
    payload = torch.load(path, weights_only=True)
    assert payload["model_sha256"] == "ab" * 32 and payload["scheme"] == "tmr"
    loaded, rest = load_hardened(path)
    assert isinstance(loaded, HardenedNet) and loaded.voter == "word"
    assert rest["selection"]["fraction"] == 5.0
    assert torch.equal(loaded.forward(x), hardened.forward(x))
    for a, b in zip(loaded.protection, hardened.protection):
        assert torch.equal(a.tmr, b.tmr) and torch.equal(a.read, b.read)
    assert not list(tmp_path.glob(".tmp-*"))


def test_load_recognises_foreign_files(tmp_path, lenet5_model):
    with pytest.raises(ValueError, match="is a model checkpoint, not a hardened network"):
        load_hardened(lenet5_model)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a hardened network"):
        load_hardened(junk)
    with pytest.raises(ValueError, match="no such file"):
        load_hardened(tmp_path / "missing.pt")


def test_split_halves_saturate_at_half_max_and_pass_the_lcu_unchanged():
    net, x = random_net(seed=11)
    hardened = harden(net, "lcu", [("conv1", c) for c in range(3)] + [("fc1", 0)])
    _, records = hardened.forward(x, record=True)
    unsaturated = 0
    for layer, p, (acc, y) in zip(hardened.layers, hardened.protection, records):
        if not p.lcu.numel():
            continue
        shape = (1, -1) + (1,) * (acc.dim() - 2)
        raw = requantize(acc, layer.multiplier.view(shape), layer.shift.view(shape), True)
        halves = p.lcu.reshape(-1)
        unsaturated += int((raw[:, halves] > HALF_MAX).sum())
        assert torch.equal(y[:, halves], raw[:, halves].clamp(max=HALF_MAX))
        assert torch.equal(lcu(y[:, p.lcu[:, 0]], y[:, p.lcu[:, 1]]), y[:, p.lcu[:, 0]])
    assert unsaturated > 20  # the ceiling is reached on this network
    # An input far above the usual range (an upstream fault) saturates both halves.
    _, big = hardened.layer_step(0, x * 4)
    assert int(big[:, :2].max()) == HALF_MAX


def _campaign_on_protected_neurons(scheme, seed):
    """Paper 004 critical faults of every single-bit output flip of the PROTECT
    neurons, unprotected and in every copy of the hardened network (count, faults)."""
    net, x = random_net(seed=seed)
    labels = net.predict(x)
    hardened = harden(net, scheme, PROTECT)
    names = [layer.name for layer in net.layers]
    plain, protected = [], []
    for name, c in PROTECT:
        i = names.index(name)
        per = net.layers[i].neurons // net.layers[i].weight.shape[0]
        copies = (hardened.protection[i].source == c).nonzero().flatten().tolist()
        for pixel in range(per):
            for bit in range(8):
                plain.append(Fault(name, "output", c * per + pixel, (bit,)))
                protected += [Fault(name, "output", k * per + pixel, (bit,)) for k in copies]
    critical = []
    for model, faults in ((net, plain), (hardened, protected)):
        results = InjectionEngine(model, x, labels).evaluate(faults)
        critical.append((sum(r["critical"] for r in results), len(faults)))
    return critical


@pytest.mark.parametrize("seed", [3, 5])
def test_lcu_reduces_critical_faults_of_the_protected_neurons(seed):
    (before, n_before), (after, n_after) = _campaign_on_protected_neurons("lcu", seed)
    assert n_after == 2 * n_before
    # Only 1 -> 0 flips of a half get through the LCU: at least half the rate goes.
    assert before > 100 and after / n_after < 0.5 * before / n_before

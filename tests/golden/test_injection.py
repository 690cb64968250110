"""The fast injection engine against the naive full re-run."""

import dataclasses

import pytest
import torch

from neuroharden.golden.faults import TARGETS, Fault
from neuroharden.golden.injection import InjectionEngine, naive_logits
from neuroharden.golden.intmodel import IntNet
from neuroharden.golden.numerics import lcu
from tests.golden.fi_nets import conv_chain_net, random_faults, random_net
from tests.golden.onnx_nets import images, imported_net


@pytest.fixture(scope="module")
def asymmetric_cnn(tmp_path_factory):
    """An onnxruntime QDQ network (uint8 activations, per-channel int8 weights) imported:
    zero points on every layer, conv padding with the input zero point, and a strided
    convolution whose last input row and column feed no output."""
    net, _ = imported_net("cnn", tmp_path_factory.mktemp("onnx"))
    return net, net.quantize_input(images(8, "test"))


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


def assert_fast_equals_naive(engine, net, x, faults):
    """Every fault's fast logits equal the naive run's, and enough faults change them."""
    fast = engine.run(faults)
    changed = 0
    for k, fault in enumerate(faults):
        reference = naive_logits(net, x, fault)
        assert torch.equal(fast[k], reference), fault
        changed += not torch.equal(reference, engine.logits)
    assert changed > 10


@pytest.mark.parametrize("target", TARGETS)
def test_fast_equals_naive_without_pooling(target):
    net, x = conv_chain_net()
    faults = random_faults(net, 120, seed=len(target), targets=(target,))
    engine = InjectionEngine(net, x, max_elements=1 << 12)
    assert_fast_equals_naive(engine, net, x, faults)


@pytest.mark.parametrize("target", TARGETS)
def test_fast_equals_naive_with_zero_points(asymmetric_cnn, target):
    net, x = asymmetric_cnn
    assert net.input_zero_point == -128 and net.layers[0].pad_value == -128
    faults = random_faults(net, 60, seed=len(target), targets=(target,))
    engine = InjectionEngine(net, x, max_elements=1 << 12)
    assert torch.equal(engine.logits, net.forward(x))
    assert_fast_equals_naive(engine, net, x, faults)


def test_zero_points_change_the_engines_results(asymmetric_cnn):
    """Dropping the zero points changes the fault-free logits: the test above would
    catch an engine that ignored them."""
    net, x = asymmetric_cnn
    symmetric = IntNet(layers=[dataclasses.replace(layer, zero_point=0, pad_value=0)
                               for layer in net.layers],
                       input_scale=net.input_scale, input_shape=net.input_shape)
    assert not torch.equal(InjectionEngine(symmetric, x).logits, net.forward(x))


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

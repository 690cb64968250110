import pytest
import torch

from neuroharden.golden.harden import (cost, harden, harden_checkpoint, select_bottom,
                                      select_top, to_channels)
from neuroharden.golden.numerics import INT8_MAX, wrap
from tests.golden.fi_nets import offset_net, random_net

# conv1: 3 x 10x10, conv2: 4 x 5x5 (pooled to 2x2), fc1: 12, fc2: 10 (output, no ReLU).
PROTECT = [("conv1", 1), ("conv2", 2), ("fc1", 3), ("fc1", 7)]


def _pixels(net, pairs):
    per = {layer.name: layer.neurons // layer.weight.shape[0] for layer in net.layers}
    return sum(per[name] for name, _ in pairs)


@pytest.mark.parametrize("scheme, extra", [("lcu", 1), ("tmr", 2)])
def test_neuron_count_identity(scheme, extra):
    net, _ = random_net()
    protect = PROTECT + ([("fc2", 4)] if scheme == "tmr" else [])
    hardened = harden(net, scheme, protect)
    before, after = cost(net), cost(hardened)
    c = _pixels(net, protect)
    assert after["neurons"] == before["neurons"] + extra * c
    # TMR leaves the next layer's inputs alone; the LCU duplicates a column per half.
    fan_in_growth = 0 if scheme == "tmr" else 1
    fc2_inputs = hardened.layers[3].weight.shape[1]
    assert fc2_inputs == net.layers[3].weight.shape[1] + fan_in_growth * 2


def test_pruning_removes_neurons_and_columns():
    net, x = random_net()
    hardened = harden(net, "tmr", [("fc1", 0)], prune=[("conv2", 1), ("fc1", 5)])
    after = cost(hardened)
    assert after["neurons"] == cost(net)["neurons"] + 2 - 25 - 1
    assert hardened.layers[2].weight.shape == (12 + 2 - 1, 3 * 4)  # 2x2 pooled
    # Removing a channel is exactly forcing its output to 0.
    zeroed = harden(net, "tmr", [("fc1", 0)])
    w = zeroed.layers[2].weight.view(14, 4, 4).clone()
    w[:, 1] = 0
    zeroed.layers[2].weight = w.view(14, 16)
    zeroed.layers[3].weight = zeroed.layers[3].weight.clone()
    zeroed.layers[3].weight[:, 5] = 0
    assert torch.equal(hardened.forward(x), zeroed.forward(x))


def test_lcu_refused_on_a_signed_layer():
    net, _ = random_net()
    with pytest.raises(ValueError, match="LCU refused on layer fc2.*negative"):
        harden(net, "lcu", [("fc1", 0), ("fc2", 3)])
    harden(net, "tmr", [("fc2", 3)])  # the voter handles signed values


@pytest.mark.parametrize("bad, match", [
    (dict(scheme="dmr"), "unknown scheme"),
    (dict(voter="median"), "unknown voter"),
    (dict(protect=[("conv9", 0)]), "unknown layer"),
    (dict(protect=[("conv1", 3)]), "out of range"),
    (dict(prune=[("fc1", 0)]), "both protected and pruned"),
    (dict(prune=[("fc2", 0)]), "output layer"),
    (dict(prune=[("conv2", c) for c in range(4)]), "every channel"),
])
def test_bad_arguments(bad, match):
    net, _ = random_net()
    args = dict(scheme="tmr", protect=[("fc1", 0)], prune=(), voter="bitwise") | bad
    with pytest.raises(ValueError, match=match):
        harden(net, args["scheme"], args["protect"], prune=args["prune"], voter=args["voter"])


def test_lcu_refuses_a_shift_without_room():
    net, _ = random_net()
    net.layers[2].shift = torch.full_like(net.layers[2].shift, 62)
    with pytest.raises(ValueError, match="shift"):
        harden(net, "lcu", [("fc1", 0)])


@pytest.mark.parametrize("voter", ["bitwise", "word"])
def test_fault_free_tmr_is_identical(voter):
    net, x = random_net(seed=3)
    hardened = harden(net, "tmr", PROTECT + [("fc2", 0)], voter=voter)
    assert torch.equal(hardened.forward(x), net.forward(x))


def test_split_network_rounds_by_at_most_one_lsb_per_half():
    """A split neuron feeds ``2v`` to the next layer, ``v = round(x / 2)`` (half up)."""
    net, x = random_net(seed=5)
    channels = [3, 7, 8]
    hardened = harden(net, "lcu", [("fc1", c) for c in channels])
    _, rec = net.forward(x, record=True)
    _, rec_h = hardened.forward(x, record=True)
    orig = rec[2][1][:, channels]                                     # x, [B, 3]
    read = hardened.correct(2, rec_h[2][1])                           # [B, 12 + 3]
    carried = hardened.protection[2].source[hardened.protection[2].read]
    v = read[:, [int((carried == c).nonzero()[0]) for c in channels]]
    fits = orig <= 126                                # the half stays in [0, 63]
    assert bool(fits.any())
    d = (2 * v - orig)[fits]
    assert bool((d.abs() <= 1).all()) and bool((d[orig[fits] % 2 == 0] == 0).all())
    # The output layer's accumulator moves by exactly sum_c w[:, c] * (2v - x).
    w = net.layers[3].weight[:, channels]
    delta = rec_h[3][0] - rec[3][0]
    assert torch.equal(delta, (2 * v - orig) @ w.T)


def test_selection_and_channel_mapping():
    net, _ = random_net()
    ranking = [("conv1", 150, 40.0), ("fc1", 2, 30.0), ("conv1", 10, 20.0),
               ("fc1", 5, 10.0), ("conv2", 0, 5.0)]
    assert select_top(ranking, threshold=20) == [("conv1", 150), ("fc1", 2), ("conv1", 10)]
    assert select_top(ranking, fraction=40) == [("conv1", 150), ("fc1", 2)]
    assert select_top(ranking, fraction=0) == []
    assert select_bottom(ranking, 2) == [("fc1", 5), ("conv2", 0)]
    assert select_bottom(ranking, 0) == []
    # Any selected pixel protects its channel; pruning needs every pixel of it.
    assert to_channels(net, select_top(ranking, threshold=0)) == [
        ("conv1", 0), ("conv1", 1), ("conv2", 0), ("fc1", 2), ("fc1", 5)]
    whole = [("conv2", 25 + k) for k in range(25)] + [("conv2", 0), ("fc1", 4)]
    assert to_channels(net, whole, whole=True) == [("conv2", 1), ("fc1", 4)]
    with pytest.raises(ValueError, match="exactly one"):
        select_top(ranking)
    with pytest.raises(ValueError, match="out of range"):
        to_channels(net, [("fc1", 12)])


@pytest.mark.parametrize("options, match", [
    ({"scheme": "split", "fraction": 5.0}, "scheme must be one of lcu, tmr, tmr-prune"),
    ({"scheme": "tmr"}, "exactly one of threshold and fraction"),
    ({"scheme": "tmr", "threshold": 1.0, "fraction": 5.0}, "exactly one"),
    ({"scheme": "lcu", "fraction": 5.0, "voter": "word"}, "tmr schemes only"),
    ({"scheme": "tmr", "fraction": 5.0, "output": "m.pt"}, "must not overwrite"),
])
def test_harden_checkpoint_refuses_bad_parameters_before_reading(tmp_path, options, match):
    # Neither file exists: the parameters are refused before anything is read.
    options = {**options, "output": tmp_path / options.get("output", "h.pt")}
    with pytest.raises(ValueError, match=match):
        harden_checkpoint(tmp_path / "m.pt", tmp_path / "c.json", **options)
    assert list(tmp_path.iterdir()) == []


def _hidden(net, skip=()):
    return [(layer.name, c) for layer in net.layers[:-1] if layer.name not in skip
            for c in range(layer.weight.shape[0])]


@pytest.mark.parametrize("seed, padding", [(0, 0), (3, 1)])
def test_an_offset_network_hardens_like_the_symmetric_one(seed, padding):
    # offset_net(z = -128) is the symmetric net as an import of uint8 activations gives it;
    # no hidden output reaches 127 on these inputs, so both compute the same function,
    # and so must their hardened versions: wide halves, bias +z*w, pruning to z.
    net, x = random_net(seed=seed, padding=padding)
    shifted = offset_net(net, -128)
    assert torch.equal(shifted.forward(x), net.forward(x))
    # A padded conv2 pads conv1's output with its zero point: conv1 cannot be split.
    protect = _hidden(net, skip=("conv1",) if padding else ())
    cases = [("lcu", protect, (), "bitwise"), ("tmr", _hidden(net), (), "bitwise"),
             ("tmr", PROTECT[1:], [("conv1", 0), ("conv2", 1), ("fc1", 5)], "bitwise"),
             ("lcu", [("fc1", 2)], [("conv2", 3)], "bitwise")]
    for scheme, chosen, prune, voter in cases:
        mine = harden(shifted, scheme, chosen, prune=prune, voter=voter)
        theirs = harden(net, scheme, chosen, prune=prune, voter=voter)
        assert torch.equal(mine.forward(x), theirs.forward(x)), (scheme, prune)
    hardened = harden(shifted, "lcu", protect)
    for layer, p in zip(hardened.layers[:-1], hardened.protection):
        assert bool(p.wide.all()) and len(p.wide) == len(p.lcu)
        assert bool((p.high == INT8_MAX).all())
        assert int(layer.zero_point[p.lcu].abs().sum()) == 0
    symmetric = harden(net, "lcu", protect)
    assert not any(bool(p.wide.any()) for p in symmetric.protection)


def test_zero_point_refusals():
    net, x = random_net(seed=3, padding=1)
    shifted = offset_net(net, -128)
    with pytest.raises(ValueError, match="next conv conv2 pads its input with the zero point"):
        harden(shifted, "lcu", [("conv1", 0)])
    with pytest.raises(ValueError, match="word voter refused on layer fc1"):
        harden(shifted, "tmr", [("fc1", 0)], voter="word")
    # Both are fine on the symmetric network, and TMR's word voter on an offset-free layer.
    harden(net, "lcu", [("conv1", 0)])
    harden(net, "tmr", [("fc1", 0)], voter="word")
    assert torch.equal(harden(shifted, "tmr", [("fc2", 0)], voter="word").forward(x),
                       shifted.forward(x))


def _stuck_at_one(hardened, x, layer, channel, bit):
    """Logits with every output of one channel of one layer forced to have ``bit`` set."""
    for i in range(len(hardened.layers)):
        _, y = hardened.layer_step(i, x)
        if i == layer:
            y = y.clone()
            y[:, channel] = wrap(y[:, channel] | (1 << bit), 8)
        x = hardened.next_input(i, hardened.correct(i, y))
    return x


@pytest.mark.parametrize("qdq", [True, False], ids=["qdq", "qoperator"])
def test_imported_asymmetric_network_hardened(tmp_path, qdq):
    from neuroharden.golden.onnx_import import import_onnx
    from tests.golden.onnx_nets import images, quantized_model

    path, _ = quantized_model("cnn", tmp_path, qdq=qdq)
    net = import_onnx(path, dataset="digits").intnet
    assert int(net.layers[0].zero_point[0]) == -128
    x = net.quantize_input(images(200, "test"))
    logits = net.forward(x)
    lcu = harden(net, "lcu", _hidden(net))
    split = lcu.forward(x)
    # The halves round: at most one LSB on these logits, the same top-1 on >= 97 %.
    assert int((split - logits).abs().max()) <= 1
    assert float((split.argmax(1) == logits.argmax(1)).double().mean()) >= 0.97
    tmr = harden(net, "tmr", _hidden(net))
    assert torch.equal(tmr.forward(x), logits)
    # Single faults: a 0->1 flip of any bit (the sign bit too) of one wide half, any
    # corruption of one TMR copy, masked on every image.
    for i, p in enumerate(lcu.protection[:-1]):
        for half in p.lcu[:2].reshape(-1).tolist():
            for bit in range(8):
                assert torch.equal(_stuck_at_one(lcu, x, i, half, bit), split), (i, half, bit)
    for i, p in enumerate(tmr.protection[:-1]):
        for copy in p.tmr[:2].reshape(-1).tolist():
            assert torch.equal(_stuck_at_one(tmr, x, i, copy, 7), logits), (i, copy)
            assert torch.equal(_stuck_at_one(tmr, x, i, copy, 2), logits), (i, copy)

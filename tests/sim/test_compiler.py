"""The network compiler: tiles executed by the plain reference reproduce the golden model."""

import numpy as np
import pytest
import torch

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.export import export_intnet, import_intnet
from neuroharden.golden.harden import harden
from neuroharden.sim.compiler import compile_network, infer, k_depth_of, load_program
from neuroharden.sim.tile import reference
from tests.golden.fi_nets import offset_net, random_net
from tests.golden.onnx_nets import images, imported_net

PROTECT = [("conv1", 0), ("conv1", 2), ("conv2", 1), ("conv2", 3), ("fc1", 3), ("fc1", 5)]


def hardened(net, scheme, voter="bitwise"):
    """``net`` with a few neurons of every hidden layer protected (TMR: also fc2, pruning)."""
    if scheme == "lcu":
        return harden(net, "lcu", PROTECT)
    return harden(net, "tmr", PROTECT + [("fc2", 4)], prune=[("fc1", 7), ("conv2", 0)],
                  voter=voter)


@pytest.mark.parametrize("padding, stride", [(1, 1), (0, 2)])
@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 5), (8, 8), (16, 3)])
def test_compiled_inference_is_bit_exact(padding, stride, rows, cols):
    net, x = random_net(images=5, padding=padding, stride=stride)
    logits, tiles = infer(compile_network(net, rows=rows, cols=cols), x.numpy())
    np.testing.assert_array_equal(logits, net.forward(x).numpy())
    assert tiles > len(net.layers)


@pytest.mark.parametrize("scheme, voter, cols", [("lcu", "bitwise", 2), ("lcu", "bitwise", 7),
                                                 ("tmr", "bitwise", 3), ("tmr", "word", 8)])
def test_hardened_inference_is_bit_exact(scheme, voter, cols):
    net, x = random_net(images=4)
    net = hardened(net, scheme, voter)
    logits, _ = infer(compile_network(net, rows=5, cols=cols), x.numpy())
    np.testing.assert_array_equal(logits, net.forward(x).numpy())


def test_protection_unit_matters():
    """A compiled hardened layer without its protection map differs from golden: the
    test above would catch a compiler that dropped the map."""
    net, x = random_net(images=4)
    net = hardened(net, "lcu")
    program = compile_network(net, rows=4, cols=4)

    def unprotected(tile):
        return reference(type(tile)(
            activations=tile.activations, weights=tile.weights, bias=tile.bias,
            multiplier=tile.multiplier, shift=tile.shift, relu=tile.relu))[1]

    logits, _ = infer(program, x.numpy(), unprotected)
    assert not np.array_equal(logits, net.forward(x).numpy())


@pytest.mark.parametrize("scheme", ["lcu", "tmr"])
@pytest.mark.parametrize("cols", [3, 4, 7])
def test_copies_share_a_tile_in_distinct_columns(scheme, cols):
    net, x = random_net(images=2)
    net = hardened(net, scheme)
    program = compile_network(net, rows=6, cols=cols)
    h = x.numpy()
    for layer, protection in zip(program.layers, net.protection):
        placements = layer.place(h, program.rows)
        groups = {tuple(g) for g in protection.lcu.tolist() + protection.tmr.tolist()}
        covered = np.zeros((placements[-1].rows.stop, layer.channels), dtype=int)
        for p in placements:
            assert len(p.columns) <= cols and p.tile.shape[0] <= program.rows
            covered[p.rows, p.columns] += 1
            local = [tuple(int(p.columns[c]) for c in g)
                     for g in p.tile.lcu_pairs.tolist() + p.tile.tmr_triples.tolist()]
            # Every group whose first copy is here is here whole, in distinct columns.
            here = {g for g in groups if g[0] in set(p.columns.tolist())}
            assert set(local) == here
            assert all(len(set(g)) == len(g) for g in local)
            assert all(p.tile.high[c] == 63 for g in p.tile.lcu_pairs for c in g)
        assert (covered == 1).all()  # every output computed exactly once
        h = layer.gather(h, placements, [reference(p.tile)[1] for p in placements])


@pytest.mark.parametrize("name", ["cnn", "mlp"])
@pytest.mark.parametrize("symmetric", [False, True], ids=["asymmetric", "symmetric"])
def test_imported_onnxruntime_networks_are_bit_exact(tmp_path, name, symmetric):
    """onnxruntime QDQ networks, per-channel int8 weights: uint8 activations (zero points
    on every layer, the input zero point as the conv pad value) or symmetric int8."""
    net, _ = imported_net(name, tmp_path, symmetric=symmetric, unsigned=not symmetric)
    zero_points = {int(v) for layer in net.layers for v in layer.zero_points}
    assert (zero_points == {0}) == symmetric
    x = net.quantize_input(images(6, "test"))
    program = compile_network(net, rows=5, cols=7)
    program.save(tmp_path / "program.npz")
    for compiled in (program, load_program(tmp_path / "program.npz")):
        logits, _ = infer(compiled, x.numpy())
        np.testing.assert_array_equal(logits, net.forward(x).numpy())


def test_pad_value_and_zero_points_reach_the_tiles():
    """Per-channel zero points and a pad value on random layers (conv with padding)."""
    net, x = random_net(images=3)
    gen = torch.Generator().manual_seed(5)
    for layer in net.layers:
        layer.zero_point = torch.randint(-128, 20, (layer.weight.shape[0],), generator=gen)
    net.layers[0].pad_value, net.layers[1].pad_value = 17, -128
    logits, _ = infer(compile_network(net, rows=4, cols=3), x.numpy())
    np.testing.assert_array_equal(logits, net.forward(x).numpy())
    tiles = compile_network(net, rows=4, cols=3).layers[0].place(x.numpy(), 4)
    assert tiles[0].tile.zero_point.tolist() == net.layers[0].zero_point[:3].tolist()


@pytest.mark.parametrize("scheme", ["lcu", "tmr"])
def test_hardened_asymmetric_network_is_bit_exact(tmp_path, scheme):
    """Wide LCU pairs (offset-free halves of a layer with zero point -128) reach the
    tiles: saturation at 127 and the LCU's bit-7 reset, through an npz round trip."""
    net, x = random_net(seed=0, padding=0, images=4)
    net = harden(offset_net(net, -128), scheme, [(layer.name, c) for layer in net.layers[:-1]
                                                 for c in (0, 1)])
    program = compile_network(net, rows=4, cols=5)
    program.save(tmp_path / "program.npz")
    for compiled in (program, load_program(tmp_path / "program.npz")):
        np.testing.assert_array_equal(infer(compiled, x.numpy())[0], net.forward(x).numpy())
    placements = program.layers[0].place(x.numpy(), 4)
    pairs = [(p.tile.lcu_pairs, p.tile.lcu_wide, p.tile.high) for p in placements]
    # conv1's channels 0 and 1 are split: two pairs in the first chunk of every row block.
    assert sum(len(g) for g, _, _ in pairs) == (2 * len(placements) if scheme == "lcu" else 0)
    assert all(w.all() and (high == 127).all() for _, w, high in pairs)


def test_program_round_trips_through_npz(tmp_path):
    net, x = random_net(images=3)
    net = hardened(net, "tmr", "word")
    program = compile_network(net, rows=4, cols=5, k_depth=40)
    program.save(tmp_path / "program.npz")
    again = load_program(tmp_path / "program.npz")
    assert (again.rows, again.cols, again.k_depth, again.input_shape) == (4, 5, 40, (1, 12, 12))
    for a, b in zip(program.layers, again.layers):
        assert [c.tolist() for c in a.chunks] == [c.tolist() for c in b.chunks]
        assert a.vote_mode == b.vote_mode == "word"
    np.testing.assert_array_equal(infer(again, x.numpy())[0], net.forward(x).numpy())


def test_k_depth_defaults_to_the_deepest_reduction():
    net, _ = random_net()
    deepest = max(3 * 9, net.layers[2].weight.shape[1], 12)
    assert k_depth_of(net) == deepest
    assert compile_network(net, rows=2, cols=2).k_depth == deepest


@pytest.mark.parametrize("change, message", [
    (dict(rows=0), "rows must be a positive integer"),
    (dict(cols=2.5), "cols must be a positive integer"),
    (dict(k_depth=26), "K cannot be split: use k_depth >= 27"),
    (dict(cols=2, scheme="tmr"), "fewer than the 3 copies"),
    (dict(cols=1, scheme="lcu"), "fewer than the 2 copies"),
    (dict(zero_point=200), "zero points must be int8 values"),
    (dict(pad_value=[1, 2]), "the pad value must be one value, not 2"),
    (dict(pad_value=-129), "pad value must be int8 values"),
])
def test_bad_compilations_are_refused(change, message):
    net, _ = random_net()
    scheme = change.pop("scheme", None)
    for field in ("zero_point", "pad_value"):
        if field in change:
            setattr(net.layers[0], field, torch.tensor(change.pop(field)))
    if scheme:
        net = hardened(net, scheme)
    with pytest.raises(ValueError, match=message):
        compile_network(net, **{"rows": 4, "cols": 4, **change})


def test_bad_inputs_and_files_are_refused(tmp_path):
    net, x = random_net(images=2)
    program = compile_network(net, rows=4, cols=4)
    with pytest.raises(ValueError, match=r"images \[B, 1, 12, 12\]"):
        infer(program, np.zeros((2, 1, 10, 12), dtype=np.int64))
    with pytest.raises(ValueError, match="int8"):
        infer(program, np.full((1, 1, 12, 12), 200))
    with pytest.raises(ValueError, match="at least one image"):
        infer(program, np.zeros((0, 1, 12, 12)))
    with pytest.raises(ValueError, match="expected"):
        infer(program, x.numpy(), lambda tile: reference(tile)[1][:, :1])
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable npz"):
        load_program(tmp_path / "junk.npz")
    export_intnet(net, tmp_path / "qnet.npz")
    with pytest.raises(ValueError, match="not a neuroharden program"):
        load_program(tmp_path / "qnet.npz")


@pytest.mark.slow
@pytest.mark.parametrize("name, images", [("mlp7", 5), ("lenet5", 5), ("alexnet", 2)])
def test_trained_networks_are_bit_exact(trained_model, tmp_path, name, images):  # noqa: F811
    intnet, _, _, data = quantize_checkpoint(trained_model(name))
    x = intnet.quantize_input(data.x_test[:images])
    logits, _ = infer(compile_network(intnet, rows=8, cols=8), x.numpy())
    np.testing.assert_array_equal(logits, intnet.forward(x).numpy())
    # The npz interchange of `neuroharden export` compiles to the same program.
    export_intnet(intnet, tmp_path / "qnet.npz")
    logits_npz, _ = infer(compile_network(import_intnet(tmp_path / "qnet.npz"), rows=8,
                                          cols=8), x.numpy())
    np.testing.assert_array_equal(logits_npz, logits)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["lcu", "tmr"])
def test_hardened_lenet5_is_bit_exact(lenet5_model, scheme):  # noqa: F811
    intnet, _, _, data = quantize_checkpoint(lenet5_model)
    # Every third channel of every hidden layer (TMR: of the output layer too).
    layers = intnet.layers if scheme == "tmr" else intnet.layers[:-1]
    net = harden(intnet, scheme, [(layer.name, c) for layer in layers
                                  for c in range(0, layer.weight.shape[0], 3)])
    x = intnet.quantize_input(data.x_test[:8])
    logits, _ = infer(compile_network(net, rows=8, cols=8), x.numpy())
    np.testing.assert_array_equal(logits, net.forward(x).numpy())


def test_program_names_the_protection_unit_it_needs():
    net, _ = random_net()
    assert compile_network(net, rows=2, cols=3).protect == "none"
    for scheme in ("lcu", "tmr"):
        assert compile_network(hardened(net, scheme), rows=2, cols=3).protect == scheme
    lcu = compile_network(hardened(net, "lcu"), rows=2, cols=3)
    tmr = compile_network(hardened(net, "tmr"), rows=2, cols=3)
    mixed = type(lcu)(layers=lcu.layers[:1] + tmr.layers[1:], rows=2, cols=3,
                      k_depth=lcu.k_depth, input_shape=lcu.input_shape)
    with pytest.raises(ValueError, match="mixes LCU pairs and TMR triples"):
        mixed.protect

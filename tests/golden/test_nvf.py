"""NVF (paper 004, Algorithm 1) on nets where the answer can be worked out."""

import pytest
import torch

from neuroharden.golden.intmodel import IntNet
from neuroharden.golden.nvf import (FaultFree, bit_positions, deviation_search, gradients, nvf,
                        nvf_from_counts)
from tests.golden.fi_nets import linear_layer, offset_net, random_net


def tiny_net():
    """h = (x0, x1, x0); logits = (h0, h1): h2 feeds nothing."""
    hidden = linear_layer("fc1", [[1, 0], [0, 1], [1, 0]], relu=True)
    out = linear_layer("fc2", [[1, 0, 0], [0, 1, 0]], relu=False)
    return IntNet([hidden, out], 1.0, (1, 1, 2))


def test_hand_worked_nvf():
    net = tiny_net()
    x = torch.tensor([[[[10, 20]]]])               # h = (10, 20, 10), class 1
    grads = gradients(net, x)
    # S = 2 E_1 - (E_0 + E_1) = h1 - h0, and h2 reaches no output.
    assert grads[0].tolist() == [[-1.0, 1.0, 0.0]]
    result = nvf(net, x, progress=False)
    # h0 + 10 ties the logits and argmax takes class 0: r_upper = 10 -> bit 4, weight
    # (9 - 4) / 8, halved by line 14. h1 - 10 likewise: r_lower = -10 -> bit 3.
    expected = [100 * 0.5 * 5 / 8, 100 * 0.5 * 6 / 8, 0.0]
    assert torch.allclose(result["scores"][0], torch.tensor(expected, dtype=torch.float64))
    assert result["analysed"][0].tolist() == [1, 1, 0]        # the filter skips h2
    assert result["evaluations"][0][2] == 0


def test_bit_mapping_and_line_15():
    up, low = bit_positions(torch.tensor([1, 2, 3, 127, 255, 0]),
                            torch.tensor([-1, -2, -3, -128, -255, 0]))
    assert up.tolist() == [1, 2, 2, 7, 8, -1]
    assert low.tolist() == [0, 1, 1, 7, 7, -1]
    counts = torch.zeros(2, 9, dtype=torch.int64)
    counts[0, 1] = 2                                 # both directions at bit 1, one image
    counts[1, 0] = 2                                 # index 0 lies outside the sums
    nvf_pct = nvf_from_counts(counts, counts, images=2)
    assert nvf_pct.tolist() == [100.0, 0.0]


def _brute_force(net, ff, i, b, n):
    """Flip predicate of every int8 value of neuron n on image b (plain dense runs)."""
    y = ff.ys[i][b:b + 1].repeat(256, *([1] * (ff.ys[i].dim() - 1)))
    values = torch.arange(-128, 128)
    y.view(256, -1)[:, n] = values
    top = net.forward(net.next_input(i, y), start=i + 1).argmax(1)
    return values, top != ff.top[b]


def test_deviation_search_against_brute_force():
    net, x = random_net(seed=7, images=6)
    ff = FaultFree(net, x)
    gen = torch.Generator().manual_seed(0)
    monotone_checked = 0
    for i in (0, 1, 2):
        image = torch.randint(0, 6, (12,), generator=gen)
        neuron = torch.randint(0, net.layers[i].neurons, (12,), generator=gen)
        up_x, low_x, used = deviation_search(ff, i, image, neuron, "exhaustive")
        assert used.tolist() == [255] * 12
        up_b, low_b, _ = deviation_search(ff, i, image, neuron, "bisect")
        for k in range(12):
            b, n = int(image[k]), int(neuron[k])
            values, flip = _brute_force(net, ff, i, b, n)
            y0 = int(ff.ys[i].flatten(1)[b, n])
            delta = values - y0
            pos = delta[flip & (delta > 0)]
            neg = delta[flip & (delta < 0)]
            assert int(up_x[k]) == (int(pos.min()) if pos.numel() else 0)
            assert int(low_x[k]) == (int(neg.max()) if neg.numel() else 0)
            # Bisection is exact where the flip predicate is monotone in |delta|.
            above, below = flip[delta > 0], flip[delta < 0]
            if bool((above.cummax(0).values == above).all()) and \
                    bool((below.flip(0).cummax(0).values == below.flip(0)).all()):
                assert (int(up_b[k]), int(low_b[k])) == (int(up_x[k]), int(low_x[k]))
                monotone_checked += 1
    assert monotone_checked >= 20


def test_gradient_filter_on_pooling_and_neuron_subsets():
    net, x = random_net(seed=2, images=5)
    grads = gradients(net, x)
    # Max-pooling routes the gradient to one element per 2x2 window at most.
    g = grads[0][:, :, :10, :10].reshape(5, 3, 5, 2, 5, 2) != 0
    assert int(g.sum((3, 5)).max()) <= 1
    full = nvf(net, x, progress=False)
    chosen = {i: torch.tensor([0, 3]) for i in full["scores"]}
    part = nvf(net, x, neurons=chosen, progress=False)
    for i, s in part["scores"].items():
        assert torch.equal(s[[0, 3]], full["scores"][i][[0, 3]])
        assert bool(s[1:3].isnan().all())
        assert int(part["evaluations"][i][1:3].sum()) == 0
        assert bool((full["scores"][i] >= 0).all() and (full["scores"][i] <= 100).all())


@pytest.mark.parametrize("seed, padding", [(0, 0), (3, 1)])
def test_gradients_measure_the_output_less_its_zero_point(seed, padding):
    # Same function as the symmetric net (no output reaches 127 here): the surrogate's
    # ReLU floor and its padding follow the zero point, so the gradients are the same.
    net, x = random_net(seed=seed, padding=padding)
    shifted = offset_net(net, -128)
    for mine, theirs in zip(gradients(shifted, x), gradients(net, x)):
        assert torch.equal(mine != 0, theirs != 0)
        assert torch.allclose(mine, theirs)


def test_gradient_passes_where_the_offset_free_value_exceeds_127():
    # uint8 activations (z = -128): v = y - z = 2x spans [0, 255]. fc2 copies fc1
    # (bias +128 folds fc1's zero point out), so its surrogate is inside its range at
    # v = 200 (y = 72) and passes the gradient; a clamp of v at 127 would stop it.
    fc1 = linear_layer("fc1", [[2, 0], [0, 2]], relu=True)
    fc2 = linear_layer("fc2", [[1, 0], [0, 1]], relu=True)
    fc3 = linear_layer("fc3", [[1, 0], [0, 1]], relu=False)
    for layer in (fc1, fc2):
        layer.zero_point = torch.tensor([-128, -128])
    fc2.bias = torch.tensor([128, 128])
    fc3.bias, fc3.shift = torch.tensor([128, 128]), torch.tensor([2, 2])
    net = IntNet([fc1, fc2, fc3], 1.0, (1, 1, 2))
    x = torch.tensor([[100, 10]]).view(1, 1, 1, 2)
    _, records = net.forward(x, record=True)
    assert [y.tolist() for _, y in records] == [[[72, -108]], [[72, -108]], [[50, 5]]]
    assert bool((gradients(net, x)[0] != 0).all())

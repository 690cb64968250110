"""The exact bit-flip oracle against the naive full re-run."""

import torch

from neuroharden.golden.exact import exact_vulnerability
from neuroharden.golden.faults import Fault
from neuroharden.golden.injection import naive_logits
from tests.golden.fi_nets import random_net


def test_exact_equals_naive_engine():
    net, x = random_net(seed=4, images=8)
    chosen = {0: torch.tensor([0, 11, 57, 150]), 1: torch.tensor([2, 40]),
              2: torch.tensor([0, 5, 11])}
    result = exact_vulnerability(net, x, neurons=chosen, chunk=5, progress=False)
    top = net.forward(x).argmax(1)
    nonzero = 0
    for i, idx in chosen.items():
        for n in idx.tolist():
            changed = sum(int((naive_logits(net, x, Fault(net.layers[i].name, "output", n,
                                                           (bit,))).argmax(1) != top).sum())
                          for bit in range(8))
            assert result["scores"][i][n] == 100.0 * changed / (8 * 8)
            assert result["evaluations"][i][n] == 64
            nonzero += changed > 0
        others = torch.ones(net.layers[i].neurons, dtype=torch.bool)
        others[idx] = False
        assert bool(result["scores"][i][others].isnan().all())
    assert nonzero >= 2  # the flips do something

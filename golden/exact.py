"""The measured vulnerability oracle: exhaustive single-bit flips of neuron outputs.

Each hidden neuron's int8 output is flipped at each of its 8 bits, one fault at a time,
as a permanent fault on every analysed image (no gradient filter), through the fast
model-level engine :class:`golden.injection.InjectionEngine`. A neuron's vulnerability
is the fraction of (bit, image) pairs whose top-1 class differs from the fault-free one,
in percent: what NVF estimates analytically. It costs 8 evaluations per
(neuron, image); the engine itself skips rows a flip leaves masked (see its docstring),
so the count is of evaluations asked for, as for :mod:`golden.nvf`.
"""

import torch
from tqdm import tqdm

from .faults import Fault
from .injection import InjectionEngine
from .nvf import BITS, hidden_layers

__all__ = ["exact_vulnerability"]


def exact_vulnerability(net, x, *, layers=None, neurons=None, chunk=2048, progress=None):
    """Measured single-bit-flip vulnerability of hidden neurons, in percent.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64) ``[B, C, H, W]``.
    layers : list of int, optional
        Layer indices (default: every hidden layer).
    neurons : dict of int to torch.Tensor, optional
        Only these flat neuron indices per layer index (the others get NaN).
    chunk : int
        Faults per engine call.
    progress : bool, optional
        tqdm bar; by default only on a terminal.

    Returns
    -------
    dict
        ``scores``: layer index -> float64 ``[neurons]`` vulnerability in percent;
        ``evaluations``: layer index -> int64 ``[neurons]`` evaluations per neuron.
    """
    layers = hidden_layers(net) if layers is None else list(layers)
    engine = InjectionEngine(net, x)
    top = engine.logits.argmax(1)
    B = x.shape[0]
    todo = {i: (torch.as_tensor(neurons[i], dtype=torch.int64) if neurons is not None
                else torch.arange(net.layers[i].neurons)) for i in layers}
    bar = tqdm(total=sum(BITS * t.numel() for t in todo.values()), desc="exact",
               unit="fault", disable=None if progress is None else not progress)
    scores, evals = {}, {}
    for i in layers:
        name, n_neu = net.layers[i].name, net.layers[i].neurons
        faults = [Fault(name, "output", int(n), (bit,)) for n in todo[i] for bit in range(BITS)]
        changed = torch.zeros(len(faults), dtype=torch.int64)
        for a in range(0, len(faults), chunk):
            logits = engine.run(faults[a:a + chunk])                  # [F, B, classes]
            changed[a:a + chunk] = (logits.argmax(2) != top.view(1, -1)).sum(1)
            bar.update(min(chunk, len(faults) - a))
        s = torch.full((n_neu,), float("nan"), dtype=torch.float64)
        s[todo[i]] = 100.0 * changed.view(-1, BITS).sum(1).double() / (BITS * B)
        e = torch.zeros(n_neu, dtype=torch.int64)
        e[todo[i]] = BITS * B
        scores[i], evals[i] = s, e
    bar.close()
    return {"scores": scores, "evaluations": evals}

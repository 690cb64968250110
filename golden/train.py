"""Deterministic float training of the three networks.

For a given seed, dataset and epoch count the trained weights are the same on every
run and machine: torch is seeded, deterministic algorithms are enforced, the mini-batch
order comes from a seeded generator, data is fed from memory in the main thread, and
training runs on one intra-op thread (float reductions split over a machine-dependent
number of threads round differently; one thread also avoids oversubscribing the cores
when test workers train in parallel).
"""

import os
import time

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .datasets import load_dataset
from .models import Net

__all__ = ["DEFAULT_EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "train", "accuracy"]

#: Epochs per model on the default dataset (each model trains in well under 2 minutes).
DEFAULT_EPOCHS = {"mlp7": 30, "lenet5": 60, "alexnet": 40}
#: Mini-batch size.
BATCH_SIZE = 32
#: Adam learning rate.
LEARNING_RATE = 1e-3


def accuracy(net, x, y, batch_size=512):
    """Top-1 accuracy of a float network on images ``x`` with labels ``y``.

    Returns
    -------
    float
        Fraction of correct predictions in [0, 1].
    """
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                      for i in range(0, len(x), batch_size))
    return correct / len(x)


def train(model, dataset="digits", data_dir=None, epochs=None, seed=0, progress=None):
    """Train a network from scratch.

    Parameters
    ----------
    model : str
        ``"mlp7"``, ``"lenet5"`` or ``"alexnet"``.
    dataset : str
        ``"digits"`` (default), ``"mnist"`` or ``"cifar10"``.
    data_dir : str, optional
        Directory of the raw dataset files (mnist, cifar10).
    epochs : int, optional
        Passes over the training split; :data:`DEFAULT_EPOCHS` when omitted.
    seed : int
        Seed of the initial weights and the batch order.
    progress : bool, optional
        Show a tqdm progress bar; by default only when stderr is a terminal.

    Returns
    -------
    (Net, dict)
        The trained network (eval mode) and the checkpoint metadata: ``dataset``,
        ``data_dir``, ``seed``, ``epochs``, ``float_accuracy`` (test split) and
        ``train_seconds``.
    """
    epochs = DEFAULT_EPOCHS.get(model, 1) if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        net = Net(model)
        data = load_dataset(dataset, net.input_shape, data_dir)
        order = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
        start = time.perf_counter()
        batches = (len(data.x_train) + BATCH_SIZE - 1) // BATCH_SIZE
        with tqdm(total=epochs * batches, desc=f"train {model}", unit="batch",
                  disable=None if progress is None else not progress) as bar:
            for _ in range(epochs):
                net.train()
                permutation = torch.randperm(len(data.x_train), generator=order)
                for i in range(0, len(permutation), BATCH_SIZE):
                    index = permutation[i:i + BATCH_SIZE]
                    loss = F.cross_entropy(net(data.x_train[index]), data.y_train[index])
                    optimiser.zero_grad()
                    loss.backward()
                    optimiser.step()
                    bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}")
        seconds = time.perf_counter() - start
        float_accuracy = accuracy(net, data.x_test, data.y_test)
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)
    # An absolute data_dir lets eval and export find the data from any working directory.
    return net, {"dataset": dataset,
                 "data_dir": None if data_dir is None else os.path.abspath(data_dir),
                 "seed": seed, "epochs": epochs, "float_accuracy": float_accuracy,
                 "train_seconds": seconds}

"""Feature resilience optimization and bottleneck analysis of paper 002 (eq. 6, Algorithm 1).

Paper 002 equalizes the bit-flip criticality of the features inside each layer by
rescaling the weights that read them, and lets a short fine-tuning recover the accuracy;
it also points at *bottleneck layers* (few neurons compared with the rest of the network)
as the least resilient ones. How we read it:

* **Criticality (eq. 5).** :func:`golden.lrp.criticality` on the int8 network quantized
  (:func:`golden.quantize.quantize`, calibrated on the training split) from the current
  float weights, with the relevance (eq. 2-4, :func:`golden.lrp.relevance`) of the first
  :data:`DEFAULT_IMAGES` training images: Algorithm 1 takes a "pre-trained and quantized
  model" and the training set ``D``.
* **Eq. 6 on our layers.** ``eta_c`` scores feature ``c`` of hidden layer ``l - 1``: an
  output channel of a convolution (all its positions share it, eq. 4) or a neuron of a
  linear layer. Every weight of layer ``l`` that reads feature ``c`` is multiplied by
  ``mean(eta) / eta_c`` (the paper's ``sum_c' eta_c' / (C eta_c)``): input channel ``c``
  of a conv kernel ``[K, C, U, V]``; column ``c`` of a linear layer; and, for the linear
  layer after a flattened conv map, the ``U x V`` columns of channel ``c`` (the kernel
  view of :func:`golden.lrp.criticality`). Biases are not touched. The layers adjusted
  are those whose input is a hidden layer's output, i.e. every layer but the first (the
  first reads the image, which has no criticality); on LeNet-5 conv2, fc1, fc2 and fc3.
  A feature with ``eta_c = 0`` (nothing downstream reads it) keeps its weights, since
  eq. 6 is undefined there. No scale is clipped.
* **Order.** Algorithm 1 loops over the layers and calls GetFeatureRelevance inside the
  loop, so the relevance is recomputed on the network as adjusted so far, layer by layer
  in network order (4 LRP passes per iteration on LeNet-5).
* **Fine-tuning.** Adam, the training batch size and learning rate of
  :mod:`golden.train`, a fresh optimizer each iteration, ``epochs`` passes over the
  training split (default :data:`DEFAULT_FINE_TUNE_EPOCHS`, a small fraction of the
  training epochs as the paper asks). Float training (the paper fine-tunes but does not
  say how quantization enters it); the accuracy that decides is the int8 one.
* **Stopping rule.** Paper 002 runs ``T`` iterations "chosen for each CNN such that the
  classification accuracy after the final weight adjustment lies above the baseline of
  the original float32 model", without fine-tuning after the last adjustment. We stop
  at the first iteration whose int8 test accuracy *right after the adjustment* is at
  least the original model's float test accuracy, and return that adjusted network as
  it is. If ``max_iterations`` pass without that, the last adjusted network is returned
  and the report says ``converged: false``. Accuracy is measured on the test split, as
  the paper's baseline is the float model's test accuracy.
* **Homogeneity.** Paper 002's Fig. 5b measure, ``mean over layers of
  SD(eta / mean(eta))``, is reported after every adjustment.
* **Bottlenecks** (:func:`bottlenecks`). A hidden layer is a bottleneck when its neuron
  count (output elements of one image, before pooling) is below
  :data:`BOTTLENECK_RATIO` of the largest hidden layer's. The paper gives no threshold;
  its examples are 64 and 128 neurons against 12,544 and 32,768 (under 1 %), while the
  8,112 of SqueezeNet's bottlenecks (a third of its largest layers) are "less
  critical". On LeNet-5 fc1 (120) and fc2 (84) are bottlenecks against conv1 (3,456).
  The paper's architectural optimization (moving the global pooling) changes the
  network and is not applied here; the report only names the layers.

Determinism: torch is seeded, deterministic algorithms are enforced and everything runs
on one intra-op thread (as in :mod:`golden.train`), so a seed gives the same checkpoint.
"""

import os
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .datasets import load_dataset
from .evaluation import int8_predictions
from .lrp import criticality, feature_relevance, relevance
from .models import load_checkpoint, protectable_neurons, save_checkpoint
from .quantize import CALIBRATION_IMAGES, quantize
from .train import BATCH_SIZE, LEARNING_RATE, accuracy

__all__ = [
    "DEFAULT_FINE_TUNE_EPOCHS", "DEFAULT_MAX_ITERATIONS", "DEFAULT_IMAGES",
    "BOTTLENECK_RATIO", "bottlenecks", "layer_criticality", "equalization_scales",
    "scale_inputs", "criticality_spread", "optimize", "optimize_checkpoint",
]

#: Fine-tuning epochs per iteration (LeNet-5 trains for 60).
DEFAULT_FINE_TUNE_EPOCHS = 5
#: Most iterations of Algorithm 1 when the accuracy rule is not met earlier.
DEFAULT_MAX_ITERATIONS = 10
#: Training images of the relevance analysis.
DEFAULT_IMAGES = 256
#: A hidden layer with fewer neurons than this fraction of the largest is a bottleneck.
BOTTLENECK_RATIO = 0.1


def bottlenecks(model, ratio=BOTTLENECK_RATIO):
    """Paper 002's bottleneck analysis of a network (see the module docstring).

    Parameters
    ----------
    model : str
        One of :data:`golden.models.MODEL_NAMES`.
    ratio : float
        Threshold on neurons / neurons of the largest hidden layer, in (0, 1].

    Returns
    -------
    list of dict
        Per hidden layer in order: ``layer``, ``neurons``, ``share`` (of all hidden
        neurons), ``ratio_to_largest`` and ``bottleneck`` (bool).
    """
    if not 0 < ratio <= 1:
        raise ValueError(f"bottleneck ratio must lie in (0, 1], not {ratio!r}")
    counts = protectable_neurons(model)
    largest, total = max(counts.values()), sum(counts.values())
    return [{"layer": name, "neurons": n, "share": n / total,
             "ratio_to_largest": n / largest, "bottleneck": n / largest < ratio}
            for name, n in counts.items()]


def _adjusted_layers(net):
    # Every layer that reads a hidden layer's output (the first reads the image).
    return list(range(1, len(net.specs)))


def layer_criticality(net, i, x_calibration, x, labels):
    """Eq. 5 criticality of the features of hidden layer ``i`` of a float network.

    Parameters
    ----------
    net : golden.models.Net
    i : int
        Hidden layer (not the last).
    x_calibration : torch.Tensor
        float calibration images of the quantization.
    x : torch.Tensor
        float images of the relevance analysis (``D``).
    labels : torch.Tensor
        Their labels.

    Returns
    -------
    torch.Tensor
        float64 ``[features of layer i]``.
    """
    return _all_criticality(net, x_calibration, x, labels, [i])[i]


def _all_criticality(net, x_calibration, x, labels, layers):
    intnet = quantize(net, x_calibration)
    r_hat = [r.mean(0) for r in relevance(intnet, intnet.quantize_input(x), labels)]
    return {i: criticality(intnet, i, feature_relevance(r_hat[i + 1])) for i in layers}


def equalization_scales(eta):
    """Eq. 6's factor ``mean(eta) / eta_c`` per feature (1 where ``eta_c = 0``)."""
    eta = eta.double()
    safe = torch.where(eta > 0, eta, torch.ones_like(eta))
    return torch.where(eta > 0, eta.mean() / safe, torch.ones_like(eta))


def scale_inputs(layer, scales):
    """Multiply the weights of ``layer`` that read input feature ``c`` by ``scales[c]``.

    A conv weight ``[K, C, U, V]`` is scaled per input channel; a linear weight ``[K, I]``
    per column, in groups of ``I / C`` columns when it reads a flattened ``C``-channel map.
    """
    with torch.no_grad():
        weight = layer.weight
        grouped = weight.view(weight.shape[0], scales.numel(), -1)
        grouped.mul_(scales.to(weight.dtype).view(1, -1, 1))


def criticality_spread(etas):
    """Paper 002's Fig. 5b measure: mean over layers of ``SD(eta / mean(eta))``.

    Parameters
    ----------
    etas : iterable of torch.Tensor
        Criticality of each layer's features.

    Returns
    -------
    float
    """
    spreads = [float((eta / eta.mean()).std(unbiased=False)) for eta in etas
               if float(eta.mean()) > 0]
    return sum(spreads) / len(spreads) if spreads else 0.0


@contextmanager
def _deterministic():
    deterministic = torch.are_deterministic_algorithms_enabled()
    threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def _fine_tune(net, x, y, epochs, order, bar):
    optimiser = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    for _ in range(epochs):
        net.train()
        permutation = torch.randperm(len(x), generator=order)
        for a in range(0, len(permutation), BATCH_SIZE):
            index = permutation[a:a + BATCH_SIZE]
            loss = F.cross_entropy(net(x[index]), y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        bar.update()
    net.eval()


def _int8_accuracy(net, data, x_calibration):
    intnet = quantize(net, x_calibration)
    return float((int8_predictions(intnet, data.x_test) == data.y_test).double().mean())


def optimize(net, data, *, epochs=DEFAULT_FINE_TUNE_EPOCHS,
             max_iterations=DEFAULT_MAX_ITERATIONS, images=DEFAULT_IMAGES, seed=0,
             progress=None):
    """Run Algorithm 1 of paper 002 on a trained float network, in place.

    Parameters
    ----------
    net : golden.models.Net
        Trained network; its weights are replaced by the optimized ones.
    data : golden.datasets.Dataset
        Training split (fine-tuning, calibration, relevance) and test split (accuracy).
    epochs : int
        Fine-tuning epochs per iteration.
    max_iterations : int
        Most iterations ``T``.
    images : int
        First training images of the relevance analysis.
    seed : int
        Seed of the fine-tuning batch order.
    progress : bool, optional
        tqdm bar; by default only when stderr is a terminal.

    Returns
    -------
    dict
        ``converged``, ``iterations`` (per iteration: ``float_accuracy`` and
        ``int8_accuracy`` right after the adjustment, ``criticality_spread`` and per
        layer the ``scale_min``/``scale_max`` applied), ``baseline_float_accuracy``
        and ``layers`` (per adjusted layer: ``layer``, ``features_of``,
        ``criticality_spread_before``/``_after`` and ``relative_weight_change``).
    """
    for name, value, low in (("epochs", epochs, 0), ("max_iterations", max_iterations, 1),
                             ("images", images, 1)):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")
    if images > len(data.x_train):
        raise ValueError(f"images ({images}) exceeds the {len(data.x_train)} training images")
    x_cal = data.x_train[:CALIBRATION_IMAGES]
    x_rel, y_rel = data.x_train[:images], data.y_train[:images]
    adjusted = _adjusted_layers(net)
    with _deterministic():
        torch.manual_seed(seed)
        order = torch.Generator().manual_seed(seed)
        net.eval()
        baseline = accuracy(net, data.x_test, data.y_test)
        original = {j: net.layers[net.specs[j].name].weight.detach().clone() for j in adjusted}
        before = _all_criticality(net, x_cal, x_rel, y_rel, [j - 1 for j in adjusted])
        history, converged = [], False
        with tqdm(total=max_iterations * (len(adjusted) + epochs), desc="optimize",
                  unit="step", disable=None if progress is None else not progress) as bar:
            for t in range(max_iterations):
                scales = {}
                for j in adjusted:
                    eta = layer_criticality(net, j - 1, x_cal, x_rel, y_rel)
                    factor = equalization_scales(eta)
                    scale_inputs(net.layers[net.specs[j].name], factor)
                    scales[net.specs[j].name] = (float(factor.min()), float(factor.max()))
                    bar.update()
                etas = _all_criticality(net, x_cal, x_rel, y_rel, [j - 1 for j in adjusted])
                step = {"iteration": t + 1,
                        "float_accuracy": accuracy(net, data.x_test, data.y_test),
                        "int8_accuracy": _int8_accuracy(net, data, x_cal),
                        "criticality_spread": criticality_spread(etas.values()),
                        "scales": {k: {"min": lo, "max": hi}
                                   for k, (lo, hi) in scales.items()}}
                history.append(step)
                bar.set_postfix(int8=f"{100 * step['int8_accuracy']:.2f}%")
                if step["int8_accuracy"] >= baseline:
                    converged = True
                    break
                if t < max_iterations - 1:
                    _fine_tune(net, data.x_train, data.y_train, epochs, order, bar)
    layers = []
    for j in adjusted:
        weight = net.layers[net.specs[j].name].weight.detach()
        layers.append({
            "layer": net.specs[j].name, "features_of": net.specs[j - 1].name,
            "criticality_spread_before": criticality_spread([before[j - 1]]),
            "criticality_spread_after": criticality_spread([etas[j - 1]]),
            "relative_weight_change": float((weight - original[j]).norm()
                                            / original[j].norm())})
    return {"converged": converged, "baseline_float_accuracy": baseline,
            "criticality_spread_before": criticality_spread(before.values()),
            "criticality_spread_after": history[-1]["criticality_spread"],
            "iterations": history, "layers": layers}


def optimize_checkpoint(model_path, output, *, dataset=None, data_dir=None,
                        epochs=DEFAULT_FINE_TUNE_EPOCHS,
                        max_iterations=DEFAULT_MAX_ITERATIONS, images=DEFAULT_IMAGES, seed=0,
                        bottleneck_ratio=BOTTLENECK_RATIO, progress=None):
    """Optimize a checkpoint (:func:`optimize`) and write the result as a new checkpoint.

    The output is an ordinary model checkpoint (:func:`golden.models.save_checkpoint`)
    that every command accepts; its metadata keeps the original's and adds
    ``float_accuracy`` of the optimized network, ``optimized_from`` (sha256 of the
    input), ``optimize_epochs``, ``optimize_iterations`` and ``optimize_seed``.

    Parameters
    ----------
    model_path, output : str or os.PathLike
        Trained checkpoint and the checkpoint to write.
    dataset, data_dir : str, optional
        Dataset and its directory; by default those recorded in the checkpoint.
    epochs, max_iterations, images, seed, progress
        As in :func:`optimize`.
    bottleneck_ratio : float
        Threshold of :func:`bottlenecks`.

    Returns
    -------
    dict
        The report: ``model``, ``dataset``, ``float_accuracy`` and ``int8_accuracy``
        (``before``/``after``), ``bottlenecks``, ``seconds`` and :func:`optimize`'s fields.

    Raises
    ------
    ValueError
        Unreadable checkpoint or dataset, or a bad parameter.
    """
    from .campaign import file_sha256

    start = time.perf_counter()
    net, metadata = load_checkpoint(model_path)
    report_bottlenecks = bottlenecks(net.name, bottleneck_ratio)
    dataset = dataset if dataset is not None else metadata.get("dataset", "digits")
    if data_dir is None and dataset == metadata.get("dataset", "digits"):
        data_dir = metadata.get("data_dir")
    elif data_dir is not None:
        data_dir = os.path.abspath(data_dir)
    data = load_dataset(dataset, net.input_shape, data_dir)
    x_cal = data.x_train[:CALIBRATION_IMAGES]
    with _deterministic():
        before = {"float": accuracy(net, data.x_test, data.y_test),
                  "int8": _int8_accuracy(net, data, x_cal)}
    result = optimize(net, data, epochs=epochs, max_iterations=max_iterations,
                      images=images, seed=seed, progress=progress)
    with _deterministic():
        after = {"float": accuracy(net, data.x_test, data.y_test),
                 "int8": _int8_accuracy(net, data, x_cal)}
    fields = {k: v for k, v in metadata.items()
              if k not in ("format", "model", "input_shape")}
    fields.update(dataset=dataset, data_dir=data_dir, float_accuracy=after["float"],
                  optimized_from=file_sha256(model_path), optimize_epochs=epochs,
                  optimize_iterations=len(result["iterations"]), optimize_seed=seed)
    save_checkpoint(net, output, **fields)
    return {"model": net.name, "dataset": dataset, "output": str(output),
            "float_accuracy": {"before": before["float"], "after": after["float"]},
            "int8_accuracy": {"before": before["int8"], "after": after["int8"]},
            **result, "bottlenecks": report_bottlenecks,
            "seconds": time.perf_counter() - start}

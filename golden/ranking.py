"""Critical-neuron rankings and their file, CRITICAL.json.

:func:`rank` is the common entry point: it quantizes a checkpoint, takes the first
``images`` training images and scores every hidden neuron (the int8 output of a ReLU
layer, before pooling: 4,684 neurons in LeNet-5) with one method:

* ``nvf``: paper 004's Neuron Vulnerability Factor (:mod:`golden.nvf`), in percent;
* ``exact``: the measured single-bit-flip vulnerability (:mod:`golden.exact`), in percent;
* ``activation``: paper 000's activation-magnitude ranking (:mod:`golden.activation_rank`);
* ``lrp``: paper 002's bit-flip criticality score (:mod:`golden.lrp`);
* ``random``: a seeded uniform random score in [0, 1), the baseline of paper 000's
  "critical vs random" experiment.

CRITICAL.json (schema version 1)
--------------------------------
A JSON object::

    {
      "schema": "neuroharden-critical",
      "schema_version": 1,
      "method": "nvf",                  # one of METHODS
      "model_fingerprint": "<sha256 of the checkpoint file, 64 hex digits>",
      "images": 200,                    # training images analysed
      "seed": 0,
      "parameters": {...},              # method parameters (e.g. pneu, search)
      "neurons": [                      # every ranked neuron, score descending
        {"layer": "conv1", "index": 17, "score": 12.5}, ...
      ]
    }

``index`` is the neuron's flat index in one image's ``[O, H, W]`` (conv) or ``[O]``
(linear) output, as ``golden.faults.Fault.index``. Scores are finite numbers; ties keep
a documented secondary order (the method's tie-break, then layer order, then index).
:func:`load_critical` refuses a file of another model (fingerprint mismatch), another
schema version, or a malformed file with a one-line :class:`ValueError`.

Validation (``validate=K``) draws K hidden neurons (seeded) and compares NVF with the
exact oracle on them: mean absolute error in percentage points, Spearman rank
correlation and the evaluations each method used on those neurons.
"""

import json
import math
import os
import re
import time

import torch
from .atomic import atomic_output

__all__ = ["SCHEMA", "SCHEMA_VERSION", "METHODS", "score_neurons", "neuron_list",
           "make_document", "write_critical", "validate_document", "load_critical",
           "compare_nvf_exact", "rank"]

#: Tag of a CRITICAL.json file.
SCHEMA = "neuroharden-critical"
#: Version of the CRITICAL.json layout written and accepted.
SCHEMA_VERSION = 1
#: Ranking methods.
METHODS = ("nvf", "exact", "activation", "lrp", "random")
#: Default share of each class-oriented list merged into paper 000's ranking (%).
DEFAULT_PNEU = 5.0

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def score_neurons(net, x, labels, method, *, seed=0, pneu=DEFAULT_PNEU, progress=None):
    """Score every hidden neuron of ``net`` with ``method``.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64) ``[B, C, H, W]``.
    labels : torch.Tensor
        int64 labels ``[B]`` (activation and LRP rankings).
    method : str
        One of :data:`METHODS`.
    seed : int
        Seed of the ``random`` method.
    pneu : float
        Paper 000's pNeu in percent (``activation`` only).
    progress : bool, optional
        tqdm bars of the long methods.

    Returns
    -------
    (dict, dict, dict, dict)
        ``scores`` (layer index -> float64 ``[neurons]``), ``tiebreak`` (same shape or
        empty: a secondary key for equal scores), the method's ``parameters`` and its
        full result (the NVF or exact result dict, reused by the validation; else empty).
    """
    from .nvf import hidden_layers

    if method == "nvf":
        from .nvf import nvf

        result = nvf(net, x, progress=progress)
        return result["scores"], {}, {"search": "bisect"}, result
    if method == "exact":
        from .exact import exact_vulnerability

        result = exact_vulnerability(net, x, progress=progress)
        return result["scores"], {}, {"bits": 8}, result
    if method == "activation":
        from .activation_rank import activation_rank

        result = activation_rank(net, x, labels, pneu=pneu)
        return result["scores"], result["network"], {"pneu": pneu}, {}
    if method == "lrp":
        from .lrp import lrp_rank

        result = lrp_rank(net, x, labels)
        return result["scores"], result["relevance"], {"rule": "z+"}, {}
    if method == "random":
        gen = torch.Generator().manual_seed(seed)
        return ({i: torch.rand(net.layers[i].neurons, generator=gen, dtype=torch.float64)
                 for i in hidden_layers(net)}, {}, {}, {})
    raise ValueError(f"unknown ranking method {method!r} (choose from {', '.join(METHODS)})")


def neuron_list(net, scores, tiebreak=None):
    """Scores as CRITICAL.json neuron entries, sorted by score descending.

    Ties are ordered by ``tiebreak`` descending (if given), then layer order, then index.
    """
    tiebreak = tiebreak or {}
    layer, index, score, second = [], [], [], []
    for i in sorted(scores):
        s = scores[i].double()
        layer.append(torch.full_like(s, i, dtype=torch.int64))
        index.append(torch.arange(s.numel()))
        score.append(s)
        second.append(tiebreak[i].double() if i in tiebreak else torch.zeros_like(s))
    layer, index = torch.cat(layer), torch.cat(index)
    score, second = torch.cat(score), torch.cat(second)
    # Stable sorts from the least to the most significant key.
    order = torch.argsort(-second, stable=True)
    order = order[torch.argsort(-score[order], stable=True)]
    names = [lay.name for lay in net.layers]
    return [{"layer": names[lay], "index": idx, "score": float(s)}
            for lay, idx, s in zip(layer[order].tolist(), index[order].tolist(),
                                   score[order].tolist())]


def make_document(method, fingerprint, images, seed, parameters, neurons):
    """A CRITICAL.json document (see the module docstring)."""
    return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "method": method,
            "model_fingerprint": fingerprint, "images": images, "seed": seed,
            "parameters": parameters, "neurons": neurons}


def write_critical(path, document):
    """Validate and write a CRITICAL.json document atomically (temp file + rename)."""
    validate_document(document)
    with atomic_output(path, "w") as file:
        json.dump(document, file, indent=1)
        file.write("\n")


def _fail(where, message):
    raise ValueError(f"{where}: {message}")


def validate_document(document, where="CRITICAL.json"):
    """Check a document against schema version 1.

    Raises
    ------
    ValueError
        One line naming the first problem found.
    """
    if not isinstance(document, dict):
        _fail(where, "not a CRITICAL.json object")
    if document.get("schema") != SCHEMA:
        _fail(where, f"not a neuroharden critical-neuron file (schema tag "
                     f"{document.get('schema')!r}, expected {SCHEMA!r})")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        _fail(where, f"schema version {version!r} is not supported (expected "
                     f"{SCHEMA_VERSION})")
    missing = [key for key in ("method", "model_fingerprint", "images", "seed",
                               "parameters", "neurons") if key not in document]
    if missing:
        _fail(where, f"missing field(s): {', '.join(missing)}")
    if document["method"] not in METHODS:
        _fail(where, f"unknown method {document['method']!r}")
    if not isinstance(document["model_fingerprint"], str) or not _SHA256.match(
            document["model_fingerprint"]):
        _fail(where, "model_fingerprint is not a sha256 hex digest")
    images = document["images"]
    if not isinstance(images, int) or isinstance(images, bool) or images < 1:
        _fail(where, f"images must be a positive integer, got {images!r}")
    if not isinstance(document["parameters"], dict):
        _fail(where, "parameters must be an object")
    neurons = document["neurons"]
    if not isinstance(neurons, list) or not neurons:
        _fail(where, "neurons must be a non-empty list")
    seen = set()
    previous = math.inf
    for k, entry in enumerate(neurons):
        if not isinstance(entry, dict) or set(entry) != {"layer", "index", "score"}:
            _fail(where, f"neuron {k} must be an object with exactly layer, index, score")
        layer, index, score = entry["layer"], entry["index"], entry["score"]
        if not isinstance(layer, str) or not layer:
            _fail(where, f"neuron {k}: layer must be a non-empty string")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            _fail(where, f"neuron {k}: index must be a non-negative integer")
        if (not isinstance(score, (int, float)) or isinstance(score, bool)
                or not math.isfinite(score)):
            _fail(where, f"neuron {k}: score must be a finite number")
        if score > previous:
            _fail(where, f"neuron {k}: neurons are not sorted by score descending")
        previous = score
        if (layer, index) in seen:
            _fail(where, f"neuron {k}: {layer}[{index}] is listed twice")
        seen.add((layer, index))


def load_critical(path, model_path):
    """Read and validate a CRITICAL.json written for the checkpoint ``model_path``.

    Parameters
    ----------
    path : str or os.PathLike
        CRITICAL.json file.
    model_path : str or os.PathLike
        The checkpoint the ranking must belong to.

    Returns
    -------
    dict
        The document.

    Raises
    ------
    ValueError
        Unreadable or malformed file, unsupported schema version, or a ranking of
        another model (one-line message).
    """
    from .campaign import file_sha256

    where = str(path)
    try:
        with open(path) as file:
            document = json.load(file)
    except OSError as error:
        _fail(where, f"cannot read ({error.strerror or error})")
    except (json.JSONDecodeError, UnicodeDecodeError):
        _fail(where, "not valid JSON")
    validate_document(document, where)
    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such checkpoint")
    if document["model_fingerprint"] != file_sha256(model_path):
        _fail(where, f"ranks another model (fingerprint {document['model_fingerprint'][:12]}"
                     f"... does not match {os.path.basename(str(model_path))})")
    return document


def _sample_neurons(net, k, seed):
    from .nvf import hidden_layers

    layers = hidden_layers(net)
    sizes = torch.tensor([net.layers[i].neurons for i in layers])
    total = int(sizes.sum())
    if not 1 <= k <= total:
        raise ValueError(f"--validate must be between 1 and {total} (hidden neurons), got {k}")
    gen = torch.Generator().manual_seed(seed)
    flat = torch.randperm(total, generator=gen)[:k].sort().values
    bounds = torch.cumsum(sizes, 0)
    which = torch.bucketize(flat, bounds, right=True)
    starts = bounds - sizes
    return {layers[w]: flat[which == w] - starts[w] for w in range(len(layers))}


def compare_nvf_exact(net, x, k, seed=0, *, nvf_result=None, exact_result=None,
                      progress=None):
    """NVF against the exact oracle on ``k`` hidden neurons drawn with ``seed``.

    Parameters
    ----------
    net : golden.intmodel.IntNet
    x : torch.Tensor
        int8 images (int64).
    k : int
        Neurons to compare.
    seed : int
        Seed of the draw.
    nvf_result, exact_result : dict, optional
        Results of :func:`golden.nvf.nvf` / :func:`golden.exact.exact_vulnerability`
        already computed on every neuron over ``x`` (reused instead of recomputed).

    Returns
    -------
    dict
        ``validated`` (k), ``mae_pp``, ``spearman`` (None when undefined, e.g. constant
        scores), ``evaluations_nvf`` and ``evaluations_exact`` on those neurons.
    """
    from scipy.stats import spearmanr

    from .exact import exact_vulnerability
    from .nvf import nvf

    chosen = _sample_neurons(net, k, seed)
    if nvf_result is None:
        nvf_result = nvf(net, x, neurons=chosen, progress=progress)
    if exact_result is None:
        exact_result = exact_vulnerability(net, x, neurons=chosen, progress=progress)

    def pick(result, key):
        return torch.cat([result[key][i][idx] for i, idx in chosen.items()])

    a, b = pick(nvf_result, "scores"), pick(exact_result, "scores")
    # Spearman is undefined when either side is constant (scipy would warn).
    defined = k > 1 and bool(a.max() > a.min()) and bool(b.max() > b.min())
    rho = float(spearmanr(a.numpy(), b.numpy()).statistic) if defined else math.nan
    return {"validated": k, "mae_pp": float((a - b).abs().mean()),
            "spearman": rho if math.isfinite(rho) else None,
            "evaluations_nvf": int(pick(nvf_result, "evaluations").sum()),
            "evaluations_exact": int(pick(exact_result, "evaluations").sum())}


def rank(model_path, method, *, images=200, seed=0, validate=None, pneu=DEFAULT_PNEU,
         data_dir=None, dataset=None, progress=None):
    """Rank the hidden neurons of a network file (the ``neuroharden rank`` job).

    Parameters
    ----------
    model_path : str or os.PathLike
        Any file of :func:`golden.checkpoint.quantize_checkpoint` (checkpoint, hardened
        network, ``.onnx``, ``QNET.npz``); every method works on the integer network.
    method : str
        One of :data:`METHODS`.
    images : int
        First training images analysed.
    seed : int
        Seed of the ``random`` method and of the validation draw.
    validate : int, optional
        Compare NVF with the exact oracle on this many neurons.
    pneu : float
        Paper 000's pNeu in percent (``activation``).
    data_dir : str, optional
        Dataset directory (default: the one recorded in the checkpoint).
    dataset : str, optional
        Image source (:func:`golden.checkpoint.quantize_checkpoint`).
    progress : bool, optional
        tqdm bars; by default only on a terminal.

    Returns
    -------
    (dict, dict)
        The CRITICAL.json document and a report: ``neurons``, ``seconds`` and, with
        ``validate``, the keys of :func:`compare_nvf_exact`.

    Raises
    ------
    ValueError
        Bad checkpoint, method or argument.
    """
    from .campaign import file_sha256
    from .checkpoint import quantize_checkpoint

    if method not in METHODS:
        raise ValueError(f"unknown ranking method {method!r} (choose from {', '.join(METHODS)})")
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    if not 0 < pneu <= 100:
        raise ValueError(f"pNeu must be in (0, 100] percent, got {pneu}")
    if not os.path.isfile(model_path):
        raise ValueError(f"{model_path}: no such checkpoint")
    fingerprint = file_sha256(model_path)
    net, _, _, data = quantize_checkpoint(model_path, data_dir, dataset)
    if images > data.x_train.shape[0]:
        raise ValueError(f"images must be at most {data.x_train.shape[0]} (training "
                         f"images of {data.name}), got {images}")
    x = net.quantize_input(data.x_train[:images])
    labels = data.y_train[:images]
    if validate is not None:
        _sample_neurons(net, validate, seed)  # refuse a bad K before the long run
    start = time.perf_counter()
    scores, tiebreak, parameters, full = score_neurons(net, x, labels, method, seed=seed,
                                                       pneu=pneu, progress=progress)
    seconds = time.perf_counter() - start
    neurons = neuron_list(net, scores, tiebreak)
    document = make_document(method, fingerprint, images, seed, parameters, neurons)
    report = {"method": method, "neurons": len(neurons), "images": images,
              "seconds": seconds}
    if validate is not None:
        # The method's own all-neuron result is reused for its side of the comparison.
        reuse = {"nvf": {"nvf_result": full}, "exact": {"exact_result": full}}
        report.update(compare_nvf_exact(net, x, validate, seed, progress=progress,
                                        **reuse.get(method, {})))
    return document, report

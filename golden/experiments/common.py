"""Helpers shared by the experiments: options, model and ranking cache, output files.

Networks. An experiment runs the built-in architectures it names (``--models``), trained
with ``--seed`` on ``--dataset`` (default ``digits``; ``mnist5k`` is real MNIST), and/or
network files given with ``--model`` (a checkpoint, a quantized ``.onnx`` or a
``QNET.npz``), read with ``--dataset`` as their image source (:class:`Network`). Paper
figures are compared only for the built-in architectures.

Every experiment writes into one output directory (``-o``, default
``build/experiments/NAME``) through :func:`golden.atomic.atomic_output`, so a run
interrupted at any point leaves each file either complete or untouched. Trained
checkpoints and rankings are cached in ``--cache`` (default ``build/experiments/cache``),
shared by all experiments: training is deterministic and a ranking is tied to its
checkpoint's sha256, so a cached file is exactly what a rerun would compute. Fault
campaigns go to ``results.sqlite`` in the output directory and resume from it
(:func:`golden.campaign.run_campaign`).

This module imports only the standard library and click at import time, so that
``neuroharden experiment --help`` stays fast; torch and matplotlib are imported by the
functions that need them.
"""

import csv
import functools
import io
import json
import math
import os
import time

import click

from ..atomic import atomic_output

__all__ = ["DEFAULT_ROOT", "DEFAULT_CACHE", "MODEL_LABELS", "common_options", "faults_option",
           "model_options", "prepare", "Context", "Network", "networks", "checkpoint",
           "ranking_file", "ranking_path", "ranking_list", "campaign",
           "hardened_path", "write_csv", "write_text", "save_figure", "markdown_table",
           "parse_floats", "parse_names", "wilson", "reduction_factor", "write_summary",
           "finish"]

#: Parent of the default output directories.
DEFAULT_ROOT = os.path.join("build", "experiments")
#: Default cache of checkpoints and rankings.
DEFAULT_CACHE = os.path.join(DEFAULT_ROOT, "cache")
#: Printed names of the networks.
MODEL_LABELS = {"mlp7": "MLP-7", "lenet5": "LeNet-5", "alexnet": "AlexNet"}


def common_options(name):
    """Decorate an experiment command with ``-o``, ``--cache``, ``--seed``, ``--json``,
    ``--dataset`` and ``--data-dir``."""
    def decorate(function):
        @click.option("--dataset", default=None, metavar="NAME",
                      help="Images: the dataset the built-in networks are trained on "
                           "(default digits; mnist5k: 5,000 real MNIST digits; mnist, "
                           "cifar10: raw files in --data-dir), and the image source of a "
                           "--model file (default: its own, digits for .onnx/.npz).")
        @click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                      help="Directory of the mnist / cifar10 raw files.")
        @click.option("-o", "--output", "output", type=click.Path(file_okay=False),
                      default=os.path.join(DEFAULT_ROOT, name), show_default=True,
                      help="Output directory (CSV, PNG, Markdown, results.sqlite).")
        @click.option("--cache", type=click.Path(file_okay=False), default=DEFAULT_CACHE,
                      show_default=True,
                      help="Cache of trained checkpoints and rankings (shared).")
        @click.option("--seed", type=int, default=0, show_default=True,
                      help="Training, random-ranking and fault-sampling seed.")
        @click.option("--json", "as_json", is_flag=True,
                      help="Print one JSON summary object instead of text.")
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            return function(*args, **kwargs)
        return wrapper
    return decorate


def model_options(builtins, default):
    """Decorate an experiment command with ``--models`` and ``--model FILE``.

    The command receives ``models`` (the built-in names; none when only files are given
    and ``--models`` is not) and ``model_files`` (a tuple of paths).
    """
    def decorate(function):
        @click.option("--models", default=None,
                      help=f"Comma-separated built-in networks ({', '.join(builtins)}) "
                           f"[default: {default}, or none when --model is given].")
        @click.option("--model", "model_files", multiple=True,
                      type=click.Path(dir_okay=False),
                      help="A network file to run besides --models: a checkpoint "
                           "(MODEL.pt), a quantized .onnx or a QNET.npz (repeatable; named "
                           "by its file stem, e.g. in --images).")
        @functools.wraps(function)
        def wrapper(*args, models, model_files, **kwargs):
            if models is None:
                models = "" if model_files else default
            names = parse_names(models, "--models", builtins) if models.strip() else []
            return function(*args, models=names, model_files=model_files, **kwargs)
        return wrapper
    return decorate


def faults_option(function):
    """Decorate an experiment command with ``--faults N`` (alias ``--max-faults``).

    The command receives it as ``max_faults``: ``None`` (the default) runs every campaign
    at Leveugle's size, ``N`` caps each campaign at ``N`` faults for a quick run.
    """
    return click.option(
        "--faults", "--max-faults", "max_faults", type=click.IntRange(min=1), default=None,
        help="Cap every campaign at N faults for a quick run (default: Leveugle's size, "
             "95 % confidence and 1 % margin over each network's own fault population)."
    )(function)


class Context:
    """Where an experiment writes and caches, and how it reports.

    Attributes
    ----------
    name : str
        Experiment name.
    output, cache : str
        Output and cache directories (created).
    seed : int
    as_json : bool
        Print one JSON object at the end instead of text.
    dataset, data_dir : str or None
        ``--dataset`` and ``--data-dir``.
    files : list of str
        Files written so far (reported at the end).
    started : float
        :func:`time.monotonic` at creation (the run's wall time goes into the summary).
    """

    def __init__(self, name, output, cache, seed, as_json, dataset=None, data_dir=None):
        self.name, self.seed, self.as_json = name, seed, as_json
        self.dataset, self.data_dir = dataset, data_dir
        self.output, self.cache = output, cache
        self.files = []
        self.started = time.monotonic()
        for directory in (output, cache):
            if os.path.exists(directory) and not os.path.isdir(directory):
                raise click.ClickException(f"{directory}: exists and is not a directory")
            os.makedirs(directory, exist_ok=True)

    def path(self, filename):
        """A file of the output directory, recorded as written."""
        path = os.path.join(self.output, filename)
        if path not in self.files:
            self.files.append(path)
        return path

    def say(self, text):
        """A progress line on stderr (never mixed into ``--json`` output)."""
        if not self.as_json:
            click.echo(text, err=True)

    @property
    def db(self):
        """The experiment's campaign database."""
        return os.path.join(self.output, "results.sqlite")


def prepare(name, output, cache, seed, as_json, dataset=None, data_dir=None):
    """The :class:`Context` of a run (bad directories are one-line click errors)."""
    return Context(name, output, cache, seed, as_json, dataset, data_dir)


class Network:
    """One network an experiment runs: a built-in architecture or a file.

    Attributes
    ----------
    key : str
        The built-in name or the file's stem: the key of ``--images`` and of the rows.
    label : str
        Printed name.
    path : str
        Checkpoint or network file.
    builtin : bool
        A built-in architecture trained by the experiment (paper figures exist for it).
    source : dict
        Keyword arguments naming its images (``dataset``, ``data_dir``) for the loaders,
        campaigns and rankings: empty for a trained checkpoint, which records its own.
    dataset : str
        Name of the dataset its images come from.
    """

    def __init__(self, key, label, path, builtin, source):
        self.key, self.label, self.path = key, label, path
        self.builtin, self.source = builtin, source
        self._loaded = None

    def load(self):
        """:func:`golden.checkpoint.quantize_checkpoint` of the network (read once)."""
        from ..checkpoint import quantize_checkpoint

        if self._loaded is None:
            self._loaded = quantize_checkpoint(self.path, **self.source)
        return self._loaded

    @property
    def dataset(self):
        return self.load()[3].name


def network_keys(models, files=()):
    """The keys of the :class:`Network` s :func:`networks` returns for ``models`` and
    ``files`` (built-in names, then file stems), without training anything: options that
    name networks are checked against them before any work."""
    return [*models, *(os.path.splitext(os.path.basename(path))[0] for path in files)]


def networks(ctx, models, files=(), *, epochs=None):
    """The :class:`Network` s of a run: ``models`` trained (cached), then ``files``.

    Raises
    ------
    ValueError
        No network, a missing file, or two files with the same stem.
    """
    out = [Network(m, MODEL_LABELS[m], checkpoint(ctx, m, epochs=epochs), True, {})
           for m in models]
    for path in files:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
        key = os.path.splitext(os.path.basename(path))[0]
        if key in {n.key for n in out}:
            raise ValueError(f"{path}: a second network named {key!r}; rename the file")
        out.append(Network(key, key, path, False,
                           {"dataset": ctx.dataset, "data_dir": ctx.data_dir}))
    if not out:
        raise ValueError("no network: give --models or --model")
    return out


def checkpoint(ctx, model, *, epochs=None):
    """Path of a checkpoint of ``model`` trained on ``ctx.dataset`` (default digits) with
    ``ctx.seed`` (cached).

    Training is deterministic (:mod:`golden.train`), so a cached checkpoint is the one a
    new training run would produce.
    """
    from ..models import save_checkpoint
    from ..train import DEFAULT_EPOCHS, train

    dataset = ctx.dataset or "digits"
    epochs = DEFAULT_EPOCHS[model] if epochs is None else epochs
    path = os.path.join(ctx.cache, f"{model}-{dataset}-seed{ctx.seed}-e{epochs}.pt")
    if not os.path.isfile(path):
        ctx.say(f"training {MODEL_LABELS.get(model, model)} on {dataset} ({epochs} epochs) "
                f"-> {path}")
        net, metadata = train(model, dataset, ctx.data_dir, epochs=epochs, seed=ctx.seed)
        save_checkpoint(net, path, **metadata)
    return path


def ranking_file(ctx, model_path, method, *, images, source=None):
    """Where :func:`ranking_path` caches the ranking of ``method`` on ``model_path``."""
    from ..campaign import file_sha256

    stem = os.path.splitext(os.path.basename(model_path))[0]
    if source:
        stem += f"-{file_sha256(model_path)[:12]}-{source.get('dataset') or 'own'}"
    return os.path.join(ctx.cache, f"{stem}-{method}-{images}img.json")


def ranking_path(ctx, model_path, method, *, images, source=None):
    """Path of the CRITICAL.json of ``method`` on ``model_path`` (cached, validated).

    ``source``: the :attr:`Network.source` of a network file; its ranking's name carries
    the file's fingerprint and the dataset, so that files named alike, or one file on
    two datasets, never share a cached ranking.
    """
    from ..ranking import load_critical, rank, write_critical

    path = ranking_file(ctx, model_path, method, images=images, source=source)
    if os.path.isfile(path):
        try:
            load_critical(path, model_path)
            return path
        except ValueError:
            pass  # another model under the same name: rank again
    ctx.say(f"ranking with {method} on {images} training images -> {path}")
    document, _ = rank(model_path, method, images=images, seed=ctx.seed, **(source or {}))
    write_critical(path, document)
    return path


def ranking_list(path, model_path):
    """The ranking of a CRITICAL.json as ``(layer, index, score)``, best first."""
    from ..ranking import load_critical

    return [(n["layer"], n["index"], n["score"])
            for n in load_critical(path, model_path)["neurons"]]


def hardened_path(ctx, hardened, model_path, filename, selection, source=None):
    """Write a hardened network into the output directory and return its path.

    It is rewritten on every run (cheap) so that a change of the hardening code is never
    hidden by a stale file; identical content gives an identical file, so the campaigns
    stored for it resume. ``source``: as for :func:`ranking_path`.
    """
    from ..campaign import file_sha256
    from ..checkpoint import original_content, quantize_checkpoint
    from ..hardened import save_hardened

    directory = os.path.join(ctx.output, "hardened")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, filename)
    metadata = quantize_checkpoint(model_path, **(source or {}))[2]
    save_hardened(hardened, path, model_sha256=file_sha256(model_path),
                  checkpoint=original_content(model_path, metadata), selection=selection)
    return path


def campaign(ctx, model_path, *, faults=None, cap=None, images=None, fault_model="bitflip",
             source=None):
    """A Leveugle-sized (95 %, 1 %) single-fault campaign on neuron outputs.

    Parameters
    ----------
    model_path : str
        Checkpoint or hardened network file.
    faults : int, optional
        Explicit sample size (instead of Leveugle's).
    cap : int, optional
        Upper bound on the sample size (runs small, at a wider margin).
    images : int, optional
        First test images only.
    source : dict, optional
        As for :func:`ranking_path`.

    Returns
    -------
    dict
        :func:`golden.campaign.run_campaign`'s summary plus ``leveugle`` (the full
        Leveugle size of this population) and ``capped`` (bool).
    """
    from ..campaign import run_campaign
    from ..checkpoint import quantize_checkpoint
    from ..sampling import FaultSpace, leveugle_sample_size

    source = source or {}
    net, _, _, _ = quantize_checkpoint(model_path, **source)
    population = len(FaultSpace(net, fault_model, "output"))
    leveugle = leveugle_sample_size(population, 0.95, 0.01)
    n = faults if faults is not None else leveugle
    if cap is not None:
        n = min(n, cap)
    summary = run_campaign(model_path, fault_model=fault_model, target="output",
                           faults=n, seed=ctx.seed, db_path=ctx.db, images=images, **source)
    summary.update({"leveugle": leveugle, "capped": n < leveugle})
    return summary


def reduction_factor(base, value):
    """How many times smaller ``value`` is than ``base`` (None when ``value`` <= 0)."""
    return base / value if value > 0 else None


def wilson(k, n, z=1.959964):
    """95 % Wilson score interval ``(low, high)`` of a proportion ``k / n``."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def write_csv(ctx, filename, header, rows):
    """Write a CSV file of the output directory atomically; returns its path."""
    path = ctx.path(filename)
    with atomic_output(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_text(ctx, filename, text):
    """Write a text (Markdown, JSON) file of the output directory atomically."""
    path = ctx.path(filename)
    with atomic_output(path, "w") as file:
        file.write(text)
    return path


def save_figure(ctx, figure, filename):
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = ctx.path(filename)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    with atomic_output(path) as file:
        file.write(buffer.getvalue())
    return path


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg back end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def markdown_table(header, rows):
    """A Markdown table (cells converted with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def parse_floats(text, what, *, low=None, high=None):
    """Comma-separated numbers of an option (a one-line click error otherwise)."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise click.ClickException(f"{what} must be comma-separated numbers, "
                                   f"got {text!r}") from None
    if not values:
        raise click.ClickException(f"{what} must list at least one number")
    for v in values:
        if not math.isfinite(v) or (low is not None and v < low) or (
                high is not None and v > high):
            raise click.ClickException(f"{what}: {v:g} is outside [{low}, {high}]")
    return values


def parse_names(text, what, allowed):
    """Comma-separated names of an option, each one of ``allowed``."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise click.ClickException(f"{what} must list at least one name")
    for name in names:
        if name not in allowed:
            raise click.ClickException(f"{what}: unknown {name!r} (choose from "
                                       f"{', '.join(allowed)})")
    return list(dict.fromkeys(names))


def write_summary(ctx, summary):
    """Write ``summary.json`` and return the summary with the files written.

    The summary gets ``experiment``, ``output`` and ``seconds``, the wall time of the
    run (training, ranking and campaigns taken from the cache or ``results.sqlite``
    cost next to nothing); the returned copy also ``files``.
    """
    summary = {"experiment": ctx.name, "output": ctx.output, **summary,
               "seconds": round(time.monotonic() - ctx.started, 1)}
    write_text(ctx, "summary.json", json.dumps(summary, indent=1) + "\n")
    return {**summary, "files": list(ctx.files)}


def finish(ctx, summary, lines):
    """Write ``summary.json`` (:func:`write_summary`), then print the summary
    (``--json``) or ``lines`` and the files written."""
    summary = write_summary(ctx, summary)
    if ctx.as_json:
        click.echo(json.dumps(summary))
        return
    for line in lines:
        click.echo(line)
    click.echo(f"wrote {len(ctx.files)} files to {ctx.output} in {summary['seconds']:g} s:")
    for path in ctx.files:
        click.echo(f"  {path}")

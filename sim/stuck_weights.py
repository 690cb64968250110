"""Stuck-at faults in the PE weight inputs: an exact numpy model, tile and network.

Paper 003 (Section V-C) injects stuck-at faults into the weight input of the PEs of an
output-stationary systolic array. In :class:`hw.pe.PE` that input is the register
``w_reg`` (``w_reg <= w_in`` every cycle); the MAC multiplies ``a_reg * w_reg`` and
``w_out`` is ``w_reg`` itself, which PE ``(r + 1, c)`` registers one cycle later. A bit
of ``pe_{r}_{c}.w_reg`` stuck at 0 or 1 for a whole run (:class:`sim.rtl_faults.RTLFault`
``stuck0`` / ``stuck1``) therefore hands every PE of column ``c`` from row ``r`` down
the same corrupted weight stream, aligned with their activations as the fault-free
one is; PEs above row ``r`` and in other columns are untouched. Outside the streaming
cycles the activation registers hold 0, so the corrupted weight adds nothing then.
Hence, for a tile ``A [m, k] @ B [k, n]`` (:mod:`sim.tile`)::

    product[i, j] = A[i] @ stuck(B[:, j])   for i >= r and j == c
                    A[i] @ B[:, j]          elsewhere

and the post-processor and protection unit run unchanged on that product
(:func:`sim.tile.postprocess`). ``stuck`` forces the bit in the ``width``-bit word the
PE holds: the accelerator sign-extends an int8 weight to the array's operand width
(:func:`hw.contract.pack`), so on a 16-bit array bits 8..15 are copies of the sign,
and a stuck bit there turns e.g. -3 (``0xFFFD``) into 32765 (bit 15 stuck at 0) or 5
into 261 (bit 8 stuck at 1): products far outside the int8 x int8 range.

A permanent fault hits every tile of every layer. Array row ``r`` of a tile computes
matrix row ``r`` of its row block, and row blocks start at multiples of the array's
rows, so matrix row ``i`` of a layer runs on PE row ``i % rows``; array column ``c``
computes the ``c``-th channel of each column chunk (:mod:`sim.compiler`).
:class:`StuckWeightNetwork` applies the tile model to one tall tile per column chunk
(all row blocks at once), which gives the same outputs as the tiles one by one and runs
a whole faulty inference of many images in numpy. :func:`tile_outputs` is the per-tile
model that the RTL checks compare with :func:`sim.rtl_runner.run_faults`, and
:func:`rtl_logits` runs whole faulty inferences on the RTL (:mod:`sim.tb_stuck_network`)
to compare with :meth:`StuckWeightNetwork.run`.
"""

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from neuroharden.golden.numerics import ACC_WIDTH
from neuroharden.hw.contract import ARRAY, pe_site
from neuroharden.hw.pe import OPERAND_WIDTHS, W_REG
from neuroharden.hw.registers import template_regex
from .runner import DEFAULT_BUILD_ROOT, run
from .tile import postprocess

__all__ = ["MODELS", "parse_site", "stuck_values", "tile_outputs", "StuckWeightNetwork",
           "rtl_logits"]

#: Stuck-at models (:data:`sim.rtl_faults.MODELS` without the bitflip).
MODELS = ("stuck0", "stuck1")
#: Float64 sums of integer products are exact below this magnitude.
_EXACT = 1 << 53
# A PE weight register from the accelerator's top level, or from the array's.
_SITE = template_regex(pe_site("{}", "{}", W_REG))
_ARRAY_SITE = template_regex(pe_site("{}", "{}", W_REG).removeprefix(f"{ARRAY}."))


def parse_site(site):
    """``(row, column)`` of a PE weight-register site (``array.pe_{r}_{c}.w_reg``, or
    ``pe_{r}_{c}.w_reg`` in the array itself).

    Raises
    ------
    ValueError
        When ``site`` is not a PE weight register.
    """
    match = _SITE.match(site) or _ARRAY_SITE.match(site)
    if not match:
        raise ValueError(f"{site!r} is not a PE weight register "
                         f"({pe_site('R', 'C', W_REG)})")
    return int(match.group(1)), int(match.group(2))


def _check(bit, model, width):
    if width not in OPERAND_WIDTHS:
        raise ValueError(f"operand width must be one of {OPERAND_WIDTHS}, not {width!r}")
    if not 0 <= bit < width:
        raise ValueError(f"bit {bit} is outside a {width}-bit weight register")
    if model not in MODELS:
        raise ValueError(f"stuck-at model must be one of {', '.join(MODELS)}, not {model!r}")


def stuck_values(weights, bit, model, width):
    """int8 weights as a ``width``-bit PE holds them, with ``bit`` stuck, read back signed.

    Parameters
    ----------
    weights : numpy.ndarray
        int8 values (any integer dtype).
    bit : int
        Bit of the weight register, 0 = LSB.
    model : {"stuck0", "stuck1"}
    width : {8, 16}
        Operand width of the array (int8 weights are sign-extended to it).

    Returns
    -------
    numpy.ndarray
        int64 signed ``width``-bit values.
    """
    _check(bit, model, width)
    mask, sign = (1 << width) - 1, 1 << (width - 1)
    word = np.asarray(weights, dtype=np.int64) & mask
    word = word | (1 << bit) if model == "stuck1" else word & ~(1 << bit)
    return word - ((word & sign) << 1)


def _product(a, w):
    """Exact integer ``a @ w`` as int64: BLAS in float32 or float64 when every partial
    sum is exact in it (below 2**24 or 2**53), else Python ints."""
    if not a.size or not w.size:
        return np.zeros((a.shape[0], w.shape[1]), dtype=np.int64)
    bound = int(np.abs(a).max()) * int(np.abs(w).max()) * a.shape[1]
    for dtype, exact in ((np.float32, 1 << 24), (np.float64, 1 << 53)):
        if bound < exact:
            return (a.astype(dtype) @ w.astype(dtype)).astype(np.int64)
    return np.asarray(a.astype(object) @ w.astype(object), dtype=np.int64)


def _faulty_outputs(tile, rows, column, bit, model, width, acc_width, product=None):
    """Tile outputs with ``column``'s weights stuck on the rows where ``rows`` is True.

    ``product`` is the tile's fault-free ``A @ B`` when already known."""
    product = _product(tile.activations, tile.weights) if product is None else product.copy()
    if column < tile.shape[2] and rows.any():
        stuck = stuck_values(tile.weights[:, column:column + 1], bit, model, width)
        product[rows, column:column + 1] = _product(tile.activations[rows], stuck)
    return postprocess(tile, product, acc_width)


def tile_outputs(tile, site, bit, model, *, width=8, acc_width=ACC_WIDTH):
    """The accumulators and outputs of a tile run with one stuck weight-register bit.

    Parameters
    ----------
    tile : sim.tile.Tile
        The tile, loaded into the top-left corner of the array (as the accelerator does).
    site : str
        ``array.pe_{r}_{c}.w_reg``.
    bit : int
    model : {"stuck0", "stuck1"}
    width : {8, 16}
        Operand width of the array.
    acc_width : int
        Accumulator width of the array.

    Returns
    -------
    acc, y : numpy.ndarray
        int64 ``[m, n]``, as :func:`sim.tile.reference` and
        :class:`sim.rtl_runner.FaultResults` give them.
    """
    row, column = parse_site(site)
    _check(bit, model, width)
    rows = np.arange(tile.shape[0]) >= row
    return _faulty_outputs(tile, rows, column, bit, model, width, acc_width)


class StuckWeightNetwork:
    """Whole inferences of a compiled network with one stuck weight-register bit.

    The fault-free run is computed once; a faulty run recomputes a layer only when its
    input differs from the fault-free one or the stuck bit changes one of the weights
    that reach the faulty PE column in that layer.

    Parameters
    ----------
    program : sim.compiler.Program
        The compiled network (its ``rows`` and ``cols`` are the array's).
    x : numpy.ndarray
        int8 images ``[B, C, H, W]``.
    width : {8, 16}
        Operand width of the array.
    acc_width : int
        Accumulator width of the array.

    Attributes
    ----------
    logits : numpy.ndarray
        int64 ``[B, classes]``: the fault-free logits (equal to
        :func:`sim.compiler.infer`'s).
    """

    def __init__(self, program, x, *, width=8, acc_width=ACC_WIDTH):
        if width not in OPERAND_WIDTHS:
            raise ValueError(f"operand width must be one of {OPERAND_WIDTHS}, not {width!r}")
        self.program, self.width, self.acc_width = program, width, acc_width
        self._inputs, self._placements, self._products, self._outputs = [], [], [], []
        h = np.asarray(x, dtype=np.int64)
        for layer in program.layers:
            placements = layer.place(h, sys.maxsize)
            products = [_product(p.tile.activations, p.tile.weights) for p in placements]
            outputs = [postprocess(p.tile, product, acc_width)[1]
                       for p, product in zip(placements, products)]
            self._inputs.append(h)
            self._placements.append(placements)
            self._products.append(products)
            self._outputs.append(outputs)
            h = layer.gather(h, placements, outputs)
        self.logits = h

    def run(self, site, bit, model):
        """int64 ``[B, classes]`` logits with ``site``'s ``bit`` stuck (``model``)."""
        row, column = parse_site(site)
        _check(bit, model, self.width)
        if row >= self.program.rows or column >= self.program.cols:
            raise ValueError(f"{site} is outside the {self.program.rows}x"
                             f"{self.program.cols} array")
        h, clean = self._inputs[0], True
        for i, layer in enumerate(self.program.layers):
            placements = self._placements[i] if clean else layer.place(h, sys.maxsize)
            hits = [column < p.tile.shape[2] and not np.array_equal(
                stuck_values(p.tile.weights[:, column], bit, model, self.width),
                p.tile.weights[:, column]) for p in placements]
            if clean and not any(hits):
                h = self._inputs[i + 1] if i + 1 < len(self._inputs) else self.logits
                continue
            outputs = []
            for index, (placement, hit) in enumerate(zip(placements, hits)):
                tile = placement.tile
                if hit:
                    # Matrix row j runs on PE row j % rows (row blocks start at multiples).
                    rows = np.arange(tile.shape[0]) % self.program.rows >= row
                    outputs.append(_faulty_outputs(
                        tile, rows, column, bit, model, self.width, self.acc_width,
                        self._products[i][index] if clean else None)[1])
                elif clean:
                    outputs.append(self._outputs[i][index])
                else:
                    outputs.append(postprocess(tile, _product(tile.activations, tile.weights),
                                               self.acc_width)[1])
            h = layer.gather(h, placements, outputs)
            clean = i + 1 < len(self._inputs) and np.array_equal(h, self._inputs[i + 1])
        return h


def rtl_logits(program, x, faults, *, width=8, acc_width=ACC_WIDTH, sim="verilator",
               build_root=DEFAULT_BUILD_ROOT, log=None):
    """Whole inferences on the RTL accelerator, one per stuck-at fault held in every tile.

    Parameters
    ----------
    program : sim.compiler.Program
        An unprotected compiled network.
    x : numpy.ndarray
        int8 images ``[B, C, H, W]``.
    faults : sequence of sim.rtl_faults.RTLFault
        ``stuck0`` / ``stuck1`` faults of the accelerator's catalogue.
    width, acc_width : int
        Operand and accumulator widths of the accelerator.
    sim : {"verilator", "icarus"}
    build_root : path-like
        Where builds are kept (:func:`sim.rtl_runner.accelerator_design`).
    log : path-like, optional
        The simulator's output (default: a temporary file, dropped).

    Returns
    -------
    numpy.ndarray
        int64 ``[F, B, classes]``.
    """
    from .rtl_runner import accelerator_design

    faults = tuple(faults)
    if not faults:
        raise ValueError("No faults to run")
    if program.protect != "none":
        raise ValueError("the RTL check runs unprotected programs only")
    config = dataclasses.replace(program.accelerator, width=width, acc_width=acc_width)
    design, catalogue = accelerator_design(config, sim=sim, build_root=build_root)
    for fault in faults:
        if fault.model not in MODELS:
            raise ValueError(f"{fault.model} is not a stuck-at fault")
        fault.validate(catalogue)
    with tempfile.TemporaryDirectory(prefix="stuck-network-") as work:
        work = Path(work)
        program.save(work / "program.npz")
        np.save(work / "images.npy", np.asarray(x, dtype=np.int8))
        (work / "faults.json").write_text(json.dumps([fault.to_dict() for fault in faults]))
        job = {"accelerator": config.to_dict(), "program": str(work / "program.npz"),
               "images": str(work / "images.npy"), "faults": str(work / "faults.json"),
               "logits": str(work / "logits.npy")}
        run(design, "neuroharden.sim.tb_stuck_network", config=job, log=log or work / "sim.log",
            test_dir=work)
        return np.load(work / "logits.npy", allow_pickle=False)

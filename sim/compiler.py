"""The network compiler: an integer network, hardened or not, as accelerator tiles.

:func:`compile_network` turns a :class:`~golden.intmodel.IntNet` (from ``MODEL.pt``
through :func:`golden.checkpoint.quantize_checkpoint`, or from ``QNET.npz`` through
:func:`golden.export.import_intnet`) or a :class:`~golden.hardened.HardenedNet`
(``HARDENED.pt``) into a :class:`Program` for an array of ``rows`` x ``cols`` processing
elements whose operand buffers hold ``k_depth`` steps of the reduction.

Mapping of every conv / linear layer onto tiles (:class:`sim.tile.Tile`):

* **Matrix form.** A linear layer is ``X [B, I] @ W.T``. A convolution is lowered by
  im2col on the host: one matrix row per (image, output pixel), image-major then
  row-major over the output pixels, holding the ``I * kh * kw`` input values under the
  kernel (padding applied on the host, with the layer's pad value: 0, or the input zero
  point of an imported asymmetric network), in the order of ``weight.reshape(O, -1)``
  (input channel, kernel row, kernel column). Output channels become matrix columns.
* **Rows.** The matrix is cut into blocks of ``rows`` consecutive rows; the last block
  may be shorter (:func:`hw.contract.row_blocks`).
* **K is never split.** The accelerator requantizes every tile in hardware, so a
  reduction cut into partial tiles would need raw accumulators back on the host. The
  compiler therefore requires ``k_depth`` >= the largest ``K`` of the network and, by
  default, chooses exactly that (:func:`k_depth_of`): 784 words for MLP-7's first layer,
  1,024 for its second, 256 for LeNet-5, 512 for the AlexNet-style net.
* **Columns.** The output channels are packed, in channel order, into column chunks of at
  most ``cols`` channels. The copies of a protected neuron (an LCU pair, a TMR triple)
  form one group that is never cut: they occupy distinct columns of the *same* tile, so
  the protection unit sees every copy at once and the tile's protection map
  (:attr:`~sim.tile.Tile.lcu_pairs`, :attr:`~sim.tile.Tile.tmr_triples`) names them in
  tile columns; split copies saturate at ``HALF_MAX`` through :attr:`Tile.high
  <sim.tile.Tile.high>`. A chunk that cannot take a whole group starts a new one, so
  ``cols`` must be at least the largest group (2 for LCU, 3 for TMR)
  (:func:`hw.contract.column_chunks`, which ``synth.cost`` counts the tiles with too).
* **Reassembly.** Each tile's protected outputs (the LCU result in both halves, the vote
  in all three copies) go back to their rows and channels; the layer then hands the next
  layer the channels of :attr:`golden.hardened.LayerProtection.read` (both halves of a
  split neuron, one copy of a triple), exactly as
  :meth:`golden.hardened.HardenedNet.correct` does, and max-pools and flattens on the
  host as :meth:`golden.intmodel.IntNet.next_input` does. Pruned neurons do not exist in
  a hardened layer (golden.hardened removes them with their weights), so they produce no
  column.

A :class:`Program` holds no activations: :meth:`CompiledLayer.place` builds a layer's
tiles from its input and :meth:`CompiledLayer.gather` turns their outputs into the next
layer's input. :func:`infer` runs this loop with any tile executor; with
:func:`sim.tile.reference` it reproduces the golden model bit for bit without RTL.
Programs are stored as plain npz archives (:meth:`Program.save`, :func:`load_program`)
so that a cocotb process can read them without unpickling anything.
"""

from dataclasses import dataclass

import numpy as np

from neuroharden.hw.contract import AcceleratorConfig, column_chunks, row_blocks
from .tile import VOTE_MODES, Tile, reference

__all__ = ["PROGRAM_FORMAT", "CompiledLayer", "Placement", "Program", "k_depth_of",
           "compile_network", "load_program", "infer"]

#: ``format`` entry of a program archive.
PROGRAM_FORMAT = "neuroharden-program-1"

_LAYER_KINDS = ("conv", "linear")
#: Per-layer arrays of a program archive, ``{field}_{i}``.
_LAYER_ARRAYS = ("weight", "bias", "multiplier", "shift", "zero_point", "pad_value", "lcu",
                 "lcu_wide", "tmr", "read")


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class Placement:
    """Where one tile of a layer lives in the layer's output matrix.

    Attributes
    ----------
    tile : sim.tile.Tile
    rows : slice
        Rows of the layer's output matrix (image-major output pixels) the tile computes.
    columns : numpy.ndarray
        Channels of the (hardened) layer held by the tile's columns, in column order.
    """

    tile: Tile
    rows: slice
    columns: np.ndarray


@dataclass(frozen=True, eq=False)
class CompiledLayer:
    """One conv / linear layer mapped onto the array (see the module docstring).

    Attributes
    ----------
    name, kind : str
        Layer name and ``"conv"`` or ``"linear"``.
    weight : numpy.ndarray
        int64 int8 values ``[O, I, kh, kw]`` (conv) or ``[O, I]`` (linear), copies of
        protected neurons included.
    bias, multiplier, shift : numpy.ndarray
        int64 ``[O]``.
    zero_point : numpy.ndarray
        int64 ``[O]``: output zero points (zeros for symmetric networks).
    relu : bool
    stride, padding, pool : int
    pad_value : int
        What a convolution pads its input with (:attr:`golden.intmodel.IntLayer.pad_value`).
    flatten : bool
    lcu, tmr : numpy.ndarray
        int64 ``[P, 2]`` and ``[T, 3]``: channel groups of protected copies.
    lcu_wide : numpy.ndarray
        bool ``[P]``: wide LCU pairs (:attr:`golden.hardened.LayerProtection.wide`).
    read : numpy.ndarray
        int64: channels the next layer reads, in order.
    vote_mode : str
        Voter of the TMR triples (:data:`sim.tile.VOTE_MODES`).
    chunks : tuple of numpy.ndarray
        The channels of each column chunk (computed from ``cols``).
    """

    name: str
    kind: str
    weight: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    zero_point: np.ndarray
    relu: bool
    stride: int
    padding: int
    pad_value: int
    pool: int
    flatten: bool
    lcu: np.ndarray
    lcu_wide: np.ndarray
    tmr: np.ndarray
    read: np.ndarray
    vote_mode: str
    chunks: tuple

    @property
    def k(self):
        """Reduction length of the layer's matrix form (``I * kh * kw`` or ``I``)."""
        return int(np.prod(self.weight.shape[1:]))

    @property
    def channels(self):
        """Output channels of the layer, copies included."""
        return self.weight.shape[0]

    def _matrix(self, x):
        """The layer input as its im2col matrix ``[B * pixels, K]`` and the output shape."""
        batch = x.shape[0]
        if self.kind == "linear":
            matrix = x.reshape(batch, -1)
            if matrix.shape[1] != self.k:
                raise ValueError(f"layer {self.name} takes {self.k} inputs per image, "
                                 f"not {matrix.shape[1]}")
            return matrix, ()
        channels, kh, kw = self.weight.shape[1:]
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"layer {self.name} takes [B, {channels}, H, W] inputs, "
                             f"not {list(x.shape)}")
        p, s = self.padding, self.stride
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=self.pad_value)
        if padded.shape[2] < kh or padded.shape[3] < kw:
            raise ValueError(f"layer {self.name}: input {list(x.shape[2:])} is smaller than "
                             f"its {kh}x{kw} kernel")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
        windows = windows[:, :, ::s, ::s]  # [B, I, OH, OW, kh, kw]
        out_hw = windows.shape[2:4]
        matrix = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, self.k)
        return matrix, out_hw

    def place(self, x, rows):
        """The tiles of this layer for input ``x``.

        Parameters
        ----------
        x : numpy.ndarray
            int8 values: ``[B, I, H, W]`` (conv) or ``[B, ...]`` (linear).
        rows : int
            Array rows (largest tile height).

        Returns
        -------
        list of Placement
            Row blocks in order, each with every column chunk in order.
        """
        matrix, _ = self._matrix(np.asarray(x, dtype=np.int64))
        weights = self.weight.reshape(self.channels, -1).T
        position = [{int(c): i for i, c in enumerate(chunk)} for chunk in self.chunks]

        def local(groups, where):
            return [[where[int(c)] for c in group] for group in groups
                    if int(group[0]) in where]

        placements = []
        for block in row_blocks(matrix.shape[0], rows):
            for chunk, where in zip(self.chunks, position):
                tile = Tile(activations=matrix[block], weights=weights[:, chunk],
                            bias=self.bias[chunk], multiplier=self.multiplier[chunk],
                            shift=self.shift[chunk], relu=np.full(len(chunk), self.relu),
                            zero_point=self.zero_point[chunk],
                            lcu_pairs=np.asarray(local(self.lcu, where),
                                                 dtype=np.int64).reshape(-1, 2),
                            lcu_wide=[wide for pair, wide in zip(self.lcu, self.lcu_wide)
                                      if int(pair[0]) in where],
                            tmr_triples=np.asarray(local(self.tmr, where),
                                                   dtype=np.int64).reshape(-1, 3),
                            vote_mode=self.vote_mode)
                placements.append(Placement(tile, block, chunk))
        return placements

    def gather(self, x, placements, outputs):
        """Reassemble the tiles' protected outputs into the next layer's input.

        Parameters
        ----------
        x : numpy.ndarray
            The layer's input (for its batch and spatial size).
        placements : list of Placement
            What :meth:`place` returned for ``x``.
        outputs : list of numpy.ndarray
            The int8 output ``[m, n]`` of each tile, in the same order.

        Returns
        -------
        numpy.ndarray
            int64: the channels of ``read``, max-pooled and flattened as the layer says.
        """
        x = np.asarray(x)
        matrix, out_hw = self._matrix(x)
        if len(outputs) != len(placements):
            raise ValueError(f"layer {self.name}: {len(outputs)} tile outputs for "
                             f"{len(placements)} tiles")
        y = np.zeros((matrix.shape[0], self.channels), dtype=np.int64)
        for placement, out in zip(placements, outputs):
            m, _, n = placement.tile.shape
            out = np.asarray(out, dtype=np.int64)
            if out.shape != (m, n):
                raise ValueError(f"layer {self.name}: a tile output is {out.shape}, "
                                 f"expected {(m, n)}")
            y[placement.rows, placement.columns] = out
        batch = x.shape[0]
        y = y.reshape(batch, *out_hw, self.channels)
        if out_hw:
            y = y.transpose(0, 3, 1, 2)
        y = y[:, self.read]
        if self.pool:
            p = self.pool
            h, w = (size // p for size in y.shape[2:])  # floor, as torch's max_pool2d
            y = y[:, :, :h * p, :w * p].reshape(batch, y.shape[1], h, p, w, p).max((3, 5))
        return y.reshape(batch, -1) if self.flatten else y


@dataclass(frozen=True, eq=False)
class Program:
    """A compiled network.

    Attributes
    ----------
    layers : tuple of CompiledLayer
    rows, cols, k_depth : int
        The accelerator the program is compiled for.
    input_shape : tuple of int
        ``(C, H, W)`` of one int8 input image.
    """

    layers: tuple
    rows: int
    cols: int
    k_depth: int
    input_shape: tuple

    @property
    def protect(self):
        """Protection unit the program needs: ``"none"``, ``"lcu"`` or ``"tmr"``.

        Raises
        ------
        ValueError
            When it holds both LCU pairs and TMR triples (an accelerator has one kind).
        """
        kinds = {kind for layer in self.layers
                 for kind, groups in (("lcu", layer.lcu), ("tmr", layer.tmr)) if len(groups)}
        if len(kinds) > 1:
            raise ValueError("the program mixes LCU pairs and TMR triples; an accelerator "
                             "has one kind of protection unit")
        return kinds.pop() if kinds else "none"

    @property
    def accelerator(self):
        """The :class:`hw.contract.AcceleratorConfig` the program runs on: its size,
        ``k_depth`` and :attr:`protect`, int8 operands and 32-bit accumulators."""
        return AcceleratorConfig(rows=self.rows, cols=self.cols, k_depth=self.k_depth,
                                 protect=self.protect)

    def save(self, path):
        """Write the program as a plain npz archive (no pickled objects).

        Parameters
        ----------
        path : str or os.PathLike or file
        """
        arrays = {"format": np.array(PROGRAM_FORMAT),
                  "geometry": np.array([self.rows, self.cols, self.k_depth], np.int64),
                  "input_shape": np.array(self.input_shape, np.int64),
                  "names": np.array([layer.name for layer in self.layers]),
                  "kinds": np.array([layer.kind for layer in self.layers]),
                  "vote_modes": np.array([layer.vote_mode for layer in self.layers]),
                  "scalars": np.array([[layer.relu, layer.stride, layer.padding, layer.pool,
                                        layer.flatten] for layer in self.layers], np.int64)}
        for i, layer in enumerate(self.layers):
            for field in _LAYER_ARRAYS:
                arrays[f"{field}_{i}"] = np.asarray(getattr(layer, field), np.int64)
        np.savez(path, **arrays)


def _compile_layer(*, name, kind, weight, bias, multiplier, shift, zero_point, relu, stride,
                   padding, pad_value, pool, flatten, lcu, lcu_wide, tmr, read, vote_mode,
                   cols):
    if kind not in _LAYER_KINDS:
        raise ValueError(f"layer {name}: unknown kind {kind!r}")
    if vote_mode not in VOTE_MODES:
        raise ValueError(f"layer {name}: unknown voter {vote_mode!r}")
    weight = np.asarray(weight, dtype=np.int64)
    channels = weight.shape[0]
    lcu = np.asarray(lcu, dtype=np.int64).reshape(-1, 2)
    lcu_wide = np.asarray(lcu_wide, dtype=bool).reshape(-1)
    if lcu_wide.size != len(lcu):
        raise ValueError(f"layer {name}: one wide flag per LCU pair ({len(lcu)}), "
                         f"not {lcu_wide.size}")
    tmr = np.asarray(tmr, dtype=np.int64).reshape(-1, 3)
    read = np.asarray(read, dtype=np.int64).reshape(-1)
    members = np.concatenate([lcu.reshape(-1), tmr.reshape(-1)])
    for what, values in (("protection groups", members), ("read", read)):
        if values.size and (values.min() < 0 or values.max() >= channels):
            raise ValueError(f"layer {name}: {what} must name channels in [0, {channels})")
    if np.unique(members).size != members.size:
        raise ValueError(f"layer {name}: a channel belongs to more than one protection group")
    zero_point = np.broadcast_to(np.asarray(zero_point, np.int64), (channels,)).copy()
    pad_value = np.asarray(pad_value, np.int64)
    if pad_value.size != 1:
        raise ValueError(f"layer {name}: the pad value must be one value, not {pad_value.size}")
    for what, values in (("zero points", zero_point), ("pad value", pad_value)):
        if values.min() < -128 or values.max() > 127:
            raise ValueError(f"layer {name}: {what} must be int8 values")
    return CompiledLayer(
        name=name, kind=kind, weight=weight, bias=np.asarray(bias, np.int64),
        multiplier=np.asarray(multiplier, np.int64), shift=np.asarray(shift, np.int64),
        zero_point=zero_point, relu=bool(relu), stride=int(stride), padding=int(padding),
        pad_value=int(pad_value.reshape(-1)[0]), pool=int(pool),
        flatten=bool(flatten), lcu=lcu, lcu_wide=lcu_wide, tmr=tmr, read=read,
        vote_mode=vote_mode,
        chunks=tuple(np.asarray(chunk, dtype=np.int64)
                     for chunk in column_chunks(channels, [*lcu, *tmr], cols)))


def _program(layers, *, rows, cols, k_depth, input_shape):
    deepest = max(layer.k for layer in layers)
    k_depth = deepest if k_depth is None else _positive("k_depth", k_depth)
    if k_depth < deepest:
        name = next(layer.name for layer in layers if layer.k == deepest)
        raise ValueError(f"k_depth {k_depth} is smaller than the reduction of layer {name} "
                         f"({deepest}); tiles are requantized in hardware, so K cannot be "
                         f"split: use k_depth >= {deepest}")
    return Program(layers=tuple(layers), rows=rows, cols=cols, k_depth=k_depth,
                   input_shape=tuple(int(v) for v in input_shape))


def k_depth_of(net):
    """The smallest ``k_depth`` that runs ``net``: the largest reduction length of its layers.

    Parameters
    ----------
    net : golden.intmodel.IntNet

    Returns
    -------
    int
    """
    return max(int(np.prod(layer.weight.shape[1:])) for layer in net.layers)


def compile_network(net, *, rows, cols, k_depth=None):
    """Compile an integer network (original or hardened) for a ``rows`` x ``cols`` array.

    Parameters
    ----------
    net : golden.intmodel.IntNet or golden.hardened.HardenedNet
    rows, cols : int
        Array size.
    k_depth : int, optional
        Depth of the accelerator's operand buffers; default :func:`k_depth_of`.

    Returns
    -------
    Program

    Raises
    ------
    ValueError
        A non-positive size, ``k_depth`` below the largest reduction, fewer columns than
        the copies of a protected neuron, or an inconsistent network.
    """
    # Imported here: the simulator process loads programs without importing torch.
    from neuroharden.golden.hardened import HardenedNet

    rows, cols = _positive("rows", rows), _positive("cols", cols)
    if not net.layers:
        raise ValueError("the network has no layers")
    hardened = isinstance(net, HardenedNet)
    layers = []
    for i, layer in enumerate(net.layers):
        protection = net.protection[i] if hardened else None
        channels = layer.weight.shape[0]
        layers.append(_compile_layer(
            name=layer.name, kind=layer.kind, weight=layer.weight.numpy(),
            bias=layer.bias.numpy(), multiplier=layer.multiplier.numpy(),
            shift=layer.shift.numpy(), zero_point=layer.zero_points.numpy(),
            relu=layer.relu, stride=layer.stride, padding=layer.padding,
            pad_value=np.asarray(layer.pad_value), pool=layer.pool,
            flatten=layer.flatten,
            lcu=protection.lcu.numpy() if hardened else np.zeros((0, 2)),
            lcu_wide=protection.wide.numpy() if hardened else np.zeros(0, bool),
            tmr=protection.tmr.numpy() if hardened else np.zeros((0, 3)),
            read=protection.read.numpy() if hardened else np.arange(channels),
            vote_mode=net.voter if hardened else VOTE_MODES[0], cols=cols))
    return _program(layers, rows=rows, cols=cols, k_depth=k_depth,
                    input_shape=net.input_shape)


def load_program(path):
    """Read a program written by :meth:`Program.save`.

    Raises
    ------
    ValueError
        Not a readable program archive.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: not a readable npz file ({error})") from None
    if str(data.get("format", "")) != PROGRAM_FORMAT:
        raise ValueError(f"{path}: not a neuroharden program")
    try:
        rows, cols, k_depth = (int(v) for v in data["geometry"])
        layers = []
        for i, (name, kind, vote_mode) in enumerate(zip(data["names"], data["kinds"],
                                                        data["vote_modes"])):
            relu, stride, padding, pool, flatten = (int(v) for v in data["scalars"][i])
            layers.append(_compile_layer(
                name=str(name), kind=str(kind), vote_mode=str(vote_mode), relu=relu,
                stride=stride, padding=padding, pool=pool, flatten=flatten, cols=cols,
                **{field: data[f"{field}_{i}"] for field in _LAYER_ARRAYS}))
        return _program(layers, rows=rows, cols=cols, k_depth=k_depth,
                        input_shape=data["input_shape"])
    except KeyError as error:
        raise ValueError(f"{path}: missing entry {error}") from None


def _reference_output(tile):
    return reference(tile)[1]


def infer(program, x, execute=_reference_output):
    """Run a compiled network tile by tile.

    Parameters
    ----------
    program : Program
    x : array-like
        int8 input images ``[B, C, H, W]`` (e.g. ``IntNet.quantize_input``).
    execute : callable
        ``execute(tile) -> [m, n]`` protected int8 outputs of one tile; default the
        plain reference :func:`sim.tile.reference`.

    Returns
    -------
    logits : numpy.ndarray
        int64 ``[B, classes]``.
    tiles : int
        Tiles executed.
    """
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 4 or tuple(x.shape[1:]) != program.input_shape:
        shape = ", ".join(map(str, program.input_shape))
        raise ValueError(f"the program takes images [B, {shape}], not {list(x.shape)}")
    if x.shape[0] < 1:
        raise ValueError("give at least one image")
    if x.min() < -128 or x.max() > 127:
        raise ValueError("inputs must be int8 values")
    count = 0
    for layer in program.layers:
        placements = layer.place(x, program.rows)
        x = layer.gather(x, placements, [execute(p.tile) for p in placements])
        count += len(placements)
    return x, count

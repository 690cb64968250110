"""Cross-check of the integer model against PyTorch's own quantized engine and onnxruntime.

Every layer of an :class:`~golden.intmodel.IntNet` is rebuilt as a
``torch.ao.nn.quantized.Conv2d`` / ``Linear`` (x86 back end, FBGEMM kernels) from the same
int8 weights with their per-channel scales, the bias ``bias * s_in * s_w`` in float, and
the same input and output scales, then fed the very int8 input the integer model gave that
layer. Both outputs are compared element by element.

Activations use ``quint8`` with zero point 0 (hidden inputs are ReLU outputs or
non-negative images, in [0, 127]); the logits layer uses zero point 128 so that
``q - 128`` is the signed int8 logit. torch saturates at 255, so its ReLU-layer outputs are
clamped to 127 afterwards, which commutes with its monotone rounding. torch requantizes in
float32 (``round(acc * s_in * s_w / s_out)``, round half to even) where the contract uses
the 16-bit fixed-point multiplier and rounds half up, so a few outputs may differ by one LSB.

:func:`crosscheck_onnx` does the same against onnxruntime (CPU) for a network imported
from ONNX (:func:`golden.onnx_import.import_onnx`): one run of the ONNX graph with every
layer's 8-bit output added as a graph output, then each layer of the integer model fed
the very input onnxruntime gave that layer, so that a difference does not propagate.
It also compares the input quantization and the end-to-end logits of the integer model
run alone.
"""

import warnings
from dataclasses import dataclass

import torch
import torch.ao.nn.quantized as nnq

__all__ = ["ENGINES", "LayerAgreement", "crosscheck", "crosscheck_onnx", "crosscheck_checkpoint"]

#: The independent int8 engines the integer model is checked against.
ENGINES = ("torch", "onnxruntime")


@dataclass
class LayerAgreement:
    """Agreement of one layer's int8 outputs with torch.ao's.

    Attributes
    ----------
    name : str
        Layer name.
    total : int
        Outputs compared.
    identical : int
        Outputs that are equal.
    max_difference : int
        Largest absolute difference in LSB.
    """

    name: str
    total: int
    identical: int
    max_difference: int

    @property
    def fraction(self):
        """Fraction of identical outputs."""
        return self.identical / self.total


def _torch_layer(layer, s_in, s_w):
    # The int8 weights enter as they are: no float round trip can move them.
    weight = torch._make_per_channel_quantized_tensor(
        layer.weight.to(torch.int8), s_w, torch.zeros_like(layer.multiplier), 0)
    bias = (layer.bias.double() * s_in * s_w).float()
    out_channels, in_features = layer.weight.shape[:2]
    if layer.kind == "conv":
        module = nnq.Conv2d(in_features, out_channels, tuple(layer.weight.shape[2:]),
                            stride=layer.stride, padding=layer.padding)
    else:
        module = nnq.Linear(in_features, out_channels)
    module.set_weight_bias(weight, bias)
    module.scale = layer.out_scale
    module.zero_point = 0 if layer.relu else 128
    return module


def crosscheck(intnet, weight_scales, x_int, engine="x86"):
    """Compare every layer of ``intnet`` with torch.ao's quantized kernels.

    Parameters
    ----------
    intnet : IntNet
        The integer network.
    weight_scales : list of torch.Tensor
        Per-output-channel float weight scales of each layer
        (:func:`golden.quantize.weight_scales` of the float network).
    x_int : torch.Tensor
        int8 input images (int64), e.g. ``intnet.quantize_input(x_test)``.
    engine : str
        ``torch.backends.quantized.engine`` to use (``"x86"`` or ``"fbgemm"``).

    Returns
    -------
    list of LayerAgreement
        One per layer, in order.
    """
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch deprecates its quantized tensors; they are the very engine checked here.
        warnings.simplefilter("ignore", UserWarning)
        try:
            return _compare(intnet, weight_scales, x_int)
        finally:
            torch.backends.quantized.engine = previous


def _compare(intnet, weight_scales, x_int):
    results = []
    x, s_in = x_int, intnet.input_scale
    for i, (layer, s_w) in enumerate(zip(intnet.layers, weight_scales)):
        _, y = intnet.layer_step(i, x)
        module = _torch_layer(layer, s_in, s_w.double())
        feed = x.flatten(1) if layer.kind == "linear" else x
        q_in = torch._make_per_tensor_quantized_tensor(feed.to(torch.uint8), s_in, 0)
        theirs = module(q_in).int_repr().to(torch.int64) - module.zero_point
        if layer.relu:
            theirs = theirs.clamp(max=127)
        difference = (theirs - y).abs()
        results.append(LayerAgreement(layer.name, difference.numel(),
                                      int((difference == 0).sum()), int(difference.max())))
        x, s_in = intnet.next_input(i, y), layer.out_scale
    return results


def _agreement(name, theirs, mine):
    difference = (theirs.reshape(mine.shape) - mine).abs()
    return LayerAgreement(name, difference.numel(), int((difference == 0).sum()),
                          int(difference.max()) if difference.numel() else 0)


def crosscheck_onnx(source, x, imported=None, batch=256):
    """Compare every layer of an imported ONNX network with onnxruntime (CPU).

    Parameters
    ----------
    source : str, os.PathLike or onnx.ModelProto
        The quantized ONNX model.
    x : torch.Tensor
        float input images ``[N, C, H, W]`` (e.g. a test split).
    imported : golden.onnx_import.OnnxImport, optional
        The import of ``source`` (imported here if not given).
    batch : int
        Images per onnxruntime run (a model with a fixed batch size runs one batch of
        that size at a time).

    Returns
    -------
    list of LayerAgreement
        ``input`` (the input quantization), one per layer in order (pre-pooling output,
        or the pooled one where the graph has no pre-pooling tensor), and
        ``logits (end to end)``.
    """
    import onnx
    import onnxruntime as ort

    from .onnx_import import import_onnx, load_onnx

    model = onnx.ModelProto()
    model.CopyFrom(load_onnx(source))
    record = imported if imported is not None else import_onnx(model)
    net = record.intnet
    names = list(dict.fromkeys([record.input_tensor, *filter(None, record.outputs),
                                *record.next_inputs]))
    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            element = onnx.TensorProto.UINT8 if record.unsigned[name] else onnx.TensorProto.INT8
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, element, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    fixed = session.get_inputs()[0].shape[0]
    step = fixed if isinstance(fixed, int) and fixed > 0 else batch
    chunks = [session.run(names, {record.input_name: x[i:i + step].numpy().astype("float32")})
              for i in range(0, len(x), step)]

    def value(name):
        import numpy as np

        v = np.concatenate([chunk[names.index(name)] for chunk in chunks]).astype(np.int64)
        return torch.from_numpy(v - 128 if record.unsigned[name] else v)

    x_int = net.quantize_input(x)
    results = [_agreement("input", value(record.input_tensor), x_int)]
    feed = value(record.input_tensor)
    for i, layer in enumerate(net.layers):
        _, y = net.layer_step(i, feed)
        if record.outputs[i]:
            results.append(_agreement(layer.name, value(record.outputs[i]), y))
        else:
            results.append(_agreement(layer.name, value(record.next_inputs[i]),
                                      net.next_input(i, y)))
        feed = value(record.next_inputs[i])
    results.append(_agreement("logits (end to end)", value(record.next_inputs[-1]),
                              net.forward(x_int)))
    return results


def crosscheck_checkpoint(model_path, engine, *, dataset=None, data_dir=None, images=None):
    """Cross-check a network's integer model over its test split.

    Parameters
    ----------
    model_path : str or os.PathLike
        Checkpoint written by ``neuroharden train``, or a quantized ``.onnx`` model.
    engine : {"torch", "onnxruntime"}
        ``torch``: :func:`crosscheck` against torch.ao (checkpoints only: it needs the
        float network's weight scales). ``onnxruntime``: a checkpoint's integer network is
        exported as QDQ ONNX (:func:`golden.onnx_export.intnet_to_onnx`) and
        :func:`crosscheck_onnx` compares onnxruntime's every layer with the integer model
        itself (not with a re-import of the exported file); an ``.onnx`` model is run as
        it is against its import.
    dataset : str, optional
        Image source (see :func:`golden.checkpoint.quantize_checkpoint`).
    data_dir : str, optional
        Dataset directory.
    images : int, optional
        First N test images (default: the whole test split).

    Returns
    -------
    list of LayerAgreement
        One per layer (``torch``), or the rows of :func:`crosscheck_onnx`.

    Raises
    ------
    ValueError
        Unknown engine, torch on an ONNX model, onnxruntime on a hardened network,
        unreadable model or dataset.
    """
    from dataclasses import replace

    from .checkpoint import quantize_checkpoint
    from .quantize import weight_scales

    if engine not in ENGINES:
        raise ValueError(f"Engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    intnet, net, metadata, data = quantize_checkpoint(model_path, data_dir, dataset)
    x = data.x_test if images is None else data.x_test[:images]
    if engine == "torch":
        if net is None:
            raise ValueError(f"{model_path}: the torch engine needs a trained checkpoint "
                             f"(its float weight scales); use --engine onnxruntime")
        return crosscheck(intnet, weight_scales(net), intnet.quantize_input(x))
    if metadata.get("source") == "onnx":  # the loader's own reading of the file kind
        return crosscheck_onnx(model_path, x)
    from .hardened import HardenedNet
    from .onnx_export import intnet_to_onnx

    if isinstance(intnet, HardenedNet):
        # Its ONNX export (with the corrections) does not import back layer by layer.
        raise ValueError(f"{model_path}: a hardened network has no layer-by-layer "
                         f"onnxruntime cross-check; cross-check the original model")
    from .onnx_import import import_onnx

    model = intnet_to_onnx(intnet)
    return crosscheck_onnx(model, x, imported=replace(import_onnx(model), intnet=intnet))


def _cpu_has_vnni():
    """Whether this CPU has AVX-VNNI or AVX512-VNNI (``None`` when it cannot be told)."""
    try:
        with open("/proc/cpuinfo") as file:
            flags = next((line for line in file if line.startswith("flags")), "")
    except OSError:
        return None
    return any(f in flags.split() for f in ("avx512_vnni", "avx_vnni")) if flags else None


def onnxruntime_saturation_note(model_path):
    """Why onnxruntime may depart from the exact arithmetic on this CPU, or ``None``.

    onnxruntime's 8-bit x int8 kernels on x86 CPUs without VNNI add pairs of products in
    16 bits with saturation (VPMADDUBSW): a layer with a weight beyond +-64 can
    then differ from the exact result by many LSB. onnxruntime's advice is
    to quantize with ``reduce_range=True`` (weights in [-64, 64]) for such CPUs.

    Parameters
    ----------
    model_path : str or os.PathLike
        A quantized ``.onnx`` model.

    Returns
    -------
    str or None
        One sentence when the model has a weight beyond +-64 and the CPU has no VNNI (or
        cannot be told), else ``None``.
    """
    from .onnx_import import import_onnx

    record = import_onnx(model_path)
    wide = [layer.name for layer in record.intnet.layers
            if int(layer.weight.abs().max()) > 64]   # 2 x 255 x 64 fits in int16
    if not wide or _cpu_has_vnni():
        return None
    return (f"note: 8-bit weights ({', '.join(wide)}) on a CPU without VNNI: "
            f"onnxruntime's 8-bit x int8 kernels saturate sums of product "
            f"pairs at 16 bits (VPMADDUBSW), so onnxruntime itself departs from the exact "
            f"arithmetic here; quantize with reduce_range=True or cross-check on a VNNI CPU")

"""``neuroharden run-rtl``: whole inferences with every conv / fc layer on the RTL accelerator.

The network (``MODEL.pt`` quantized as ``neuroharden eval`` does, or a hardened
``HARDENED.pt`` as it is) is compiled into tiles for a ``rows`` x ``cols`` accelerator
(:mod:`sim.compiler`); the accelerator is generated with the protection unit the network
needs (none, LCU or TMR) and operand buffers as deep as the network's largest reduction,
built once per configuration (:mod:`sim.runner`), and one simulator process runs every
tile of every layer of every image (:mod:`sim.tb_run_rtl`). The int8 logits are compared
with the golden integer model image by image. With ``bus="axi"`` the accelerator is the
AXI one (``hw.axi_accelerator``), driven through AXI4-Lite and AXI4-Stream by
cocotbext-axi (:mod:`sim.axi_tb`).
"""

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from neuroharden.hw.verilog import generate
from .compiler import compile_network
from .runner import DEFAULT_BUILD_ROOT, SIMULATORS, build, run

__all__ = ["BUSES", "run_program", "run_checkpoint"]

#: How the host reaches the accelerator: its own load / read port (``hw.accelerator``),
#: or AXI4-Lite registers and AXI4-Stream data driven by cocotbext-axi
#: (``hw.axi_accelerator``).
BUSES = ("port", "axi")


def run_program(program, x, *, sim="verilator", build_root=DEFAULT_BUILD_ROOT, bus="port"):
    """Run a compiled network on the RTL accelerator.

    Parameters
    ----------
    program : sim.compiler.Program
    x : numpy.ndarray
        int8 input images ``[B, C, H, W]``.
    sim : str
        ``"verilator"`` or ``"icarus"``.
    build_root : path-like
        Where builds are cached.
    bus : {"port", "axi"}
        The accelerator's own load / read port, or the AXI accelerator through its
        buses (:data:`BUSES`).

    Returns
    -------
    logits : numpy.ndarray
        int64 ``[B, classes]`` read back from the accelerator.
    stats : dict
        ``tiles`` run, ``cycles`` simulated (loads, runs and reads), ``protect`` and
        ``k_depth`` of the accelerator, ``seconds`` of simulation proper (without the
        build and the simulator's start-up); with ``bus="axi"`` also ``error_counters``,
        the AXI accelerator's three counters at the end (0 on a fault-free run).
    """
    if bus not in BUSES:
        raise ValueError(f"unknown bus {bus!r}; choose one of {', '.join(BUSES)}")
    protect = program.protect
    accelerator = program.accelerator
    kind = "accelerator" if bus == "port" else "accelerator-axi"
    verilog = generate(kind, **accelerator.to_dict())
    design = build(verilog, toplevel=kind.replace("-", "_"), sim=sim, build_root=build_root,
                   log=Path(build_root) / "run-rtl-build.log")
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        program.save(work / "program.npz")
        np.save(work / "images.npy", np.asarray(x, dtype=np.int8))
        config = {"accelerator": accelerator.to_dict(), "program": str(work / "program.npz"),
                  "images": str(work / "images.npy"), "logits": str(work / "logits.npy"),
                  "stats": str(work / "stats.json"), "bus": bus}
        run(design, "neuroharden.sim.tb_run_rtl", config=config, log=work / "sim.log")
        logits = np.load(work / "logits.npy", allow_pickle=False)
        stats = json.loads((work / "stats.json").read_text())
    return logits, {**stats, "protect": protect, "k_depth": program.k_depth}


def run_checkpoint(model_path, *, images=8, rows=8, cols=8, sim="verilator", data_dir=None,
                   dataset=None, build_root=DEFAULT_BUILD_ROOT, bus="port"):
    """Run a network's first test images on the RTL accelerator and compare with golden.

    Every conv and fc layer runs on a generated ``rows`` x ``cols`` accelerator (operand
    buffers as deep as the network's largest reduction, the protection unit of a
    hardened network); im2col, padding, pooling and flattening happen on the host.

    Parameters
    ----------
    model_path : str or os.PathLike
        Checkpoint (MODEL.pt, quantized as ``neuroharden eval`` does), hardened
        network (HARDENED.pt), quantized ``.onnx`` or ``QNET.npz``
        (:func:`golden.checkpoint.quantize_checkpoint`).
    images : int
        First test images of the model's dataset to run.
    rows, cols : int
        Accelerator size.
    sim : {"verilator", "icarus"}
    data_dir : str, optional
        Dataset directory (default: the one used for training).
    dataset : str, optional
        Image source (default: the checkpoint's; ``digits`` for an imported network).
    build_root : path-like
        Where builds are cached.
    bus : {"port", "axi"}
        Drive the accelerator through its load / read port or through AXI
        (:func:`run_program`).

    Returns
    -------
    dict
        ``bus``, ``model``, ``scheme`` (hardening, "none" for a checkpoint), ``protect``,
        ``images``, ``agreement`` (fraction of images whose int8 logits equal the golden
        model's), ``disagreeing_images``, ``rows``, ``cols``, ``k_depth``, ``sim``,
        ``tiles``, ``cycles``, ``seconds`` (the RTL run, build included), ``sim_seconds``
        (simulation proper) and ``seconds_per_image`` (of ``sim_seconds``); with
        ``bus="axi"`` also ``error_counters``.

    Raises
    ------
    ValueError
        A bad simulator or image count, an unreadable network, or one the accelerator
        cannot run (:func:`sim.compiler.compile_network`).
    """
    from neuroharden.golden.checkpoint import quantize_checkpoint

    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    if not isinstance(images, int) or images < 1:
        raise ValueError(f"images must be a positive integer, not {images!r}")
    net, _, metadata, data = quantize_checkpoint(model_path, data_dir, dataset)
    program = compile_network(net, rows=rows, cols=cols)
    if images > len(data.x_test):
        raise ValueError(f"--images {images} exceeds the {len(data.x_test)} test images "
                         f"of {data.name}")
    x = net.quantize_input(data.x_test[:images])
    golden = net.forward(x).numpy()
    started = time.perf_counter()
    logits, stats = run_program(program, x.numpy(), sim=sim, build_root=build_root, bus=bus)
    seconds = time.perf_counter() - started
    agree = (logits == golden).all(axis=1)
    extra = {"error_counters": stats["error_counters"]} if bus == "axi" else {}
    return {"bus": bus, "model": metadata["model"],
            "scheme": metadata.get("hardened", {}).get("scheme", "none"),
            "protect": program.protect, "images": images, "agreement": float(agree.mean()),
            "disagreeing_images": np.flatnonzero(~agree).tolist(), "rows": rows,
            "cols": cols, "k_depth": stats["k_depth"], "sim": sim, "tiles": stats["tiles"],
            "cycles": stats["cycles"], "seconds": round(seconds, 3),
            "sim_seconds": round(stats["seconds"], 3),
            "seconds_per_image": round(stats["seconds"] / images, 3), **extra}

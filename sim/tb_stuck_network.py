"""cocotb module of :func:`sim.stuck_weights.rtl_logits`: whole inferences with a stuck-at held.

For every fault of the job, the simulator process runs the compiled network on the
images as :mod:`sim.tb_run_rtl` does (every tile of every layer loaded, run and read on
the accelerator, reassembled on the host), with the fault's stuck-at bit
(:class:`sim.rtl_faults.Injection`) held during every tile's run: a permanent fault.

Configuration (:func:`sim.runner.tb_config`): the accelerator (``accelerator``,
:meth:`hw.contract.AcceleratorConfig.to_dict`); ``program`` (npz of
:meth:`sim.compiler.Program.save`), ``images`` (``.npy``, int8 ``[B, C, H, W]``),
``faults`` (JSON list of :class:`sim.rtl_faults.RTLFault` dicts) and ``logits`` (the
``.npy`` written with the int64 logits ``[F, B, classes]``).
"""

import json

import cocotb
import numpy as np

from neuroharden.hw.contract import AcceleratorConfig
from .accelerator_tb import AcceleratorTB
from .compiler import load_program
from .rtl_faults import Injection, RTLFault
from .runner import tb_config


@cocotb.test()
async def run_stuck_network(dut):
    """Run the images through the network once per fault and save the logits."""
    config = tb_config()
    program = load_program(config["program"])
    images = np.load(config["images"], allow_pickle=False).astype(np.int64)
    with open(config["faults"]) as file:
        faults = [RTLFault.from_dict(data) for data in json.load(file)]
    tb = AcceleratorTB(dut, AcceleratorConfig.from_dict(config["accelerator"]))
    # The clock runs in the simulator interface: no Python between awaited triggers.
    await tb.start(clock_impl="gpi")
    logits = []
    for fault in faults:
        x = images
        for layer in program.layers:
            placements = layer.place(x, program.rows)
            outputs = []
            for placement in placements:
                await tb.load(placement.tile)
                injection = Injection(dut, fault)
                injection.start()
                await tb.run()
                injection.stop()
                outputs.append(await tb.read())
            x = layer.gather(x, placements, outputs)
        logits.append(x)
    np.save(config["logits"], np.stack(logits))

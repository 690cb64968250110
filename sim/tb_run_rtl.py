"""cocotb module behind ``neuroharden run-rtl``: whole inferences on the RTL accelerator.

The simulator process is the host: it reads the compiled network and the int8 images,
and for every layer builds the tiles (im2col, padding), runs each one on the accelerator
(load, start, read) and reassembles, pools and flattens their protected outputs into the
next layer's input (:class:`sim.compiler.CompiledLayer`), so one simulator process runs
every tile of every layer of every image.

Configuration (through :func:`sim.runner.tb_config`): ``program`` (npz written by
:meth:`sim.compiler.Program.save`), ``images`` (``.npy``, int8 ``[B, C, H, W]``),
``logits`` (``.npy`` written with the int8 logits), ``stats`` (a JSON file for
``tiles``, ``cycles`` and the ``seconds`` of the simulation proper), the accelerator
(``accelerator``, :meth:`hw.contract.AcceleratorConfig.to_dict`) and ``bus``: ``"port"``
drives ``hw.accelerator`` through its load / read port (:class:`sim.accelerator_tb.AcceleratorTB`),
``"axi"`` drives ``hw.axi_accelerator`` through its buses with cocotbext-axi
(:class:`sim.axi_tb.AXIAcceleratorTB`) and also reports its error counters.
"""

import json
import time

import cocotb
import numpy as np

from cocotb.utils import get_sim_time

from neuroharden.hw.contract import AcceleratorConfig
from .accelerator_tb import AcceleratorTB
from .axi_tb import AXIAcceleratorTB
from .compiler import load_program
from .runner import tb_config
from .tb import PERIOD


@cocotb.test()
async def run_network(dut):
    """Run the configured images through the compiled network and save the logits."""
    config = tb_config()
    program = load_program(config["program"])
    x = np.load(config["images"], allow_pickle=False).astype(np.int64)
    axi = config.get("bus", "port") == "axi"
    driver = AXIAcceleratorTB if axi else AcceleratorTB
    tb = driver(dut, AcceleratorConfig.from_dict(config["accelerator"]))
    await tb.start()
    started = time.perf_counter()
    tiles = 0
    for layer in program.layers:
        placements = layer.place(x, program.rows)
        x = layer.gather(x, placements, [await tb.run_tile(p.tile) for p in placements])
        tiles += len(placements)
    seconds = time.perf_counter() - started
    np.save(config["logits"], x)
    stats = {"tiles": tiles, "cycles": tb.cycles, "seconds": seconds}
    if axi:   # the bus peers wait on clock edges of their own: count simulated time
        stats["cycles"] = round(get_sim_time("ns") / PERIOD)
        stats["error_counters"] = await tb.error_counts()
    with open(config["stats"], "w") as file:
        json.dump(stats, file)

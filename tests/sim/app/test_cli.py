"""The `neuroharden` command group: every subcommand loads, errors are one line; the
demo command."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from neuroharden.sim.app import demo
from neuroharden.sim.app.cli import COMMANDS, main
from neuroharden.sim.app.report import NOT_AVAILABLE


def test_help_lists_every_subcommand():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output


def test_every_subcommand_has_help():
    for name in COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_the_registry_imports_no_subcommand_library():
    # A fresh interpreter: `neuroharden --help` and every command's start-up pay only
    # for what they use.
    code = ("import sys, neuroharden.sim.app.cli; "
            "print(sorted(m for m in ('torch', 'numpy', 'amaranth') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_usage_errors_are_one_line_with_exit_2():
    for args in (["no-such-command"], ["gemm"], ["generate", "no-such-kind", "-o", "x.v"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output


def _stub_stages(failing=None):
    """The demo's stages with stand-in runs: each not available, ``failing`` raising."""
    def stub(name):
        def run(ctx):
            if name == failing:
                raise RuntimeError("stand-in failure")
            raise NotImplementedError("stand-in")
        return run
    return tuple(dataclasses.replace(s, run=stub(s.name), needs=()) for s in demo.STAGES)


def test_demo_command_prints_the_records_and_exits_1_on_a_failed_stage(tmp_path,
                                                                      monkeypatch):
    monkeypatch.setattr(demo, "STAGES", _stub_stages())
    result = CliRunner().invoke(main, ["demo", "-o", tmp_path / "report", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert list(summary["stages"]) == [s.name for s in demo.STAGES]
    assert {r["status"] for r in summary["stages"].values()} == {NOT_AVAILABLE}
    assert {"README.md", "index.html"} <= {Path(p).name for p in summary["report"]}
    monkeypatch.setattr(demo, "STAGES", _stub_stages(failing="prove"))
    result = CliRunner().invoke(main, ["demo", "-o", tmp_path / "report"])
    assert result.exit_code == 1
    assert "prove" in result.output and "failed: RuntimeError: stand-in failure" in result.output
    assert result.output.strip().splitlines()[-1].startswith(
        f"report: {tmp_path / 'report' / 'index.html'} and ")

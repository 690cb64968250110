"""`neuroharden area`: JSON keys and bad input (exit 2, one line)."""

import json

import pytest
from click.testing import CliRunner

from neuroharden.sim.app.cli import main


def _run(*args):
    return CliRunner().invoke(main, ["area", *args])


def test_json_keys(tmp_path, area_json_keys):
    result = _run("--rows", "2", "--cols", "2", "--designs", "voter",
                  "--target", "generic", "--json", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["design"] for row in rows] == ["pe", "array", "voter"]
    for row in rows:
        for key in area_json_keys:
            assert key in row
    by = {row["design"]: row for row in rows}
    assert by["pe"]["overhead_pct"] is None and by["pe"]["reference"] is None
    assert by["voter"]["reference"] == "pe" and by["voter"]["overhead_pct"] > 0
    assert by["voter"]["overhead_array_pct"] < by["voter"]["overhead_pct"]


def test_table_output(tmp_path):
    result = _run("--designs", "lcu", "--rows", "2", "--cols", "2",
                  "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "lcu" in result.output and "of a pe" in result.output


@pytest.mark.parametrize("args", [
    ["--rows", "0"],
    ["--cols", "-3"],
    ["--k-depth", "0"],
    ["--target", "xilinx"],
    ["--designs", "pe,bogus"],
    ["--designs", ","],
    ["--sweep", "--sizes", "2,x"],
    ["--sweep", "--sizes", "0"],
    ["--sweep", "--designs", "pe"],
])
def test_bad_input_exits_2_with_one_line(args, tmp_path):
    result = _run(*args, "--cache-dir", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error:")


def test_sweep_writes_outputs(tmp_path):
    result = _run("--sweep", "--sizes", "1,2", "--target", "generic", "--designs", "array",
                  "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    assert "growth exponent of cells vs PEs: array on generic" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "sweep.csv", "sweep.json", "sweep.png"]

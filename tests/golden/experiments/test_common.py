import csv
import json
import os

import click
import pytest
from click.testing import CliRunner

from neuroharden.golden.experiments import common


def test_wilson_interval():
    low, high = common.wilson(0, 10)
    assert low == 0 and 0.27 < high < 0.28          # the known 0/10 bound, 0.2775
    low, high = common.wilson(50, 100)
    assert low == pytest.approx(1 - high) and 0.40 < low < 0.41
    assert common.wilson(0, 0) == (0.0, 1.0)


def test_parsers():
    assert common.parse_floats("1, 2.5,20", "--x") == [1.0, 2.5, 20.0]
    for bad in ("", "a", "1,nan", "-1"):
        with pytest.raises(click.ClickException):
            common.parse_floats(bad, "--x", low=0)
    assert common.parse_names("b,a,b", "--m", ("a", "b")) == ["b", "a"]
    with pytest.raises(click.ClickException):
        common.parse_names("c", "--m", ("a", "b"))


def test_markdown_table():
    text = common.markdown_table(["a", "b"], [[1, "x"]])
    assert text.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x |"]


def test_outputs_are_written_and_recorded(tmp_path):
    ctx = common.prepare("t", str(tmp_path / "out"), str(tmp_path / "cache"), 0, True)
    path = common.write_csv(ctx, "a.csv", ["x", "y"], [[1, 2]])
    assert list(csv.reader(open(path))) == [["x", "y"], ["1", "2"]]
    plt = common.pyplot()
    figure, axis = plt.subplots()
    axis.plot([0, 1])
    png = common.save_figure(ctx, figure, "a.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert ctx.files == [path, png]
    assert not [f for f in os.listdir(ctx.output) if f.endswith(".tmp")]


@pytest.mark.slow
def test_checkpoint_and_ranking_are_cached(cache, tmp_path):
    root = cache("lenet5")
    ctx = common.prepare("t", str(tmp_path / "out"), str(root), 0, True)
    path = common.checkpoint(ctx, "lenet5")
    assert os.path.dirname(path) == str(root)       # the cached file, not a new training
    first = common.ranking_path(ctx, path, "random", images=3)
    stamp = os.stat(first).st_mtime_ns
    assert common.ranking_path(ctx, path, "random", images=3) == first
    assert os.stat(first).st_mtime_ns == stamp
    ranking = common.ranking_list(first, path)
    assert len(ranking) == 4684
    assert all(a[2] >= b[2] for a, b in zip(ranking, ranking[1:]))


def test_faults_option_is_leveugle_by_default_and_caps_on_request():
    @click.command()
    @common.faults_option
    def show(max_faults):
        click.echo(repr(max_faults))

    runner = CliRunner()
    assert runner.invoke(show, []).output == "None\n"
    assert runner.invoke(show, ["--faults", "5"]).output == "5\n"
    assert runner.invoke(show, ["--max-faults", "7"]).output == "7\n"    # sim/demo.py's name
    assert runner.invoke(show, ["--faults", "0"]).exit_code == 2


def test_finish_records_the_wall_time(tmp_path):
    ctx = common.prepare("t", str(tmp_path / "out"), str(tmp_path / "cache"), 0, True)
    ctx.started -= 2.5
    common.finish(ctx, {"x": 1}, [])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["x"] == 1 and 2.5 <= summary["seconds"] < 60


@pytest.mark.slow
def test_campaign_is_leveugle_sized_unless_capped(lenet5_model, tmp_path):
    ctx = common.prepare("t", str(tmp_path / "out"), str(tmp_path / "cache"), 0, True)
    full = common.campaign(ctx, str(lenet5_model), images=2)
    # 95 % / 1 % over 4,684 neurons x 8 bits.
    assert full["leveugle"] == full["completed"] == 7645 and not full["capped"]
    capped = common.campaign(ctx, str(lenet5_model), cap=20, images=2)
    assert capped["completed"] == 20 and capped["capped"] and capped["leveugle"] == 7645

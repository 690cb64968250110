import pytest
from click.testing import CliRunner

from neuroharden.sim.app.experiments import experiment_modules
from neuroharden.sim.app.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_modules_are_discovered_with_dashes():
    modules = experiment_modules()
    for name, module in (("table1", "table1"), ("fig4", "fig4"), ("tmr-pneu", "tmr_pneu"),
                         ("rank-compare", "rank_compare")):
        assert modules[name] == f"neuroharden.golden.experiments.{module}"
    for name, module in (("sa-fi", "sa_fi"), ("rtl-vs-model", "rtl_vs_model")):
        assert modules[name] == f"neuroharden.sim.app.experiments.{module}"
    assert "common" not in modules
    assert not any(m.rsplit(".", 1)[-1].startswith("_") for m in modules.values())


def test_help_lists_every_experiment():
    result = run("experiment", "--help")
    assert result.exit_code == 0, result.output
    for name in experiment_modules():
        assert name in result.output


@pytest.mark.parametrize("name", ["table1", "fig4", "tmr-pneu", "rank-compare"])
def test_each_experiment_has_help_and_output_option(name):
    result = run("experiment", name, "--help")
    assert result.exit_code == 0, result.output
    assert "--output" in result.output and "--json" in result.output


def test_unknown_experiment_and_bad_options_exit_2(tmp_path):
    assert run("experiment", "nope").exit_code == 2
    result = run("experiment", "table1", "--models", "resnet", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "unknown 'resnet'" in result.output
    result = run("experiment", "fig4", "--thresholds", "1,x", "-o", tmp_path / "out")
    assert result.exit_code == 2 and "comma-separated numbers" in result.output
    result = run("experiment", "tmr-pneu", "--images", "lenet5=0", "-o", tmp_path / "out")
    assert result.exit_code == 2
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("experiment", "table1", "--models", "lenet5", "-o", blocker)
    assert result.exit_code == 2

"""The `neuroharden` command group: every subcommand loads, errors are one line."""

from click.testing import CliRunner

from neuroharden.sim.app.cli import COMMANDS, main


def test_help_lists_every_subcommand():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output


def test_every_subcommand_has_help():
    for name in COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_usage_errors_are_one_line_with_exit_2():
    for args in (["no-such-command"], ["gemm"], ["generate", "no-such-kind", "-o", "x.v"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1, result.output

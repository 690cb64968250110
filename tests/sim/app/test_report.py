"""The HTML / Markdown report writer (sim/app/report.py), checked in headless Chromium."""

import pytest

from neuroharden.sim.app.report import (NOT_AVAILABLE, Figure, Section, Table, markdown_table,
                                        write_report)
from tests.sim.app.chromium import check_in_chromium


def _sections():
    def bars(ax):
        ax.bar(["a", "b"], [1, 2])

    def line(ax):
        ax.plot([0, 1, 2], [2, 1, 3])

    return [Section("Results", text=["Some `code` and <escaped> text."],
                    tables=[Table("Numbers", ["name", "value"], [["x", 1], ["y|z", 2.5]])],
                    figures=[Figure("bars", "Two bars", bars)]),
            Section("More", tables=[Table("One row", ["k"], [["v"]])],
                    figures=[Figure("line", "A line", line)]),
            Section("Later", status=NOT_AVAILABLE, reason="the block is not built")]


def test_report_loads_in_chromium(tmp_path):
    out = tmp_path / "report"
    written = write_report(out, title="Demo", headline=["one result"], sections=_sections())
    assert {p.name for p in written} == {"bars.png", "line.png", "README.md", "index.html"}
    check = check_in_chromium(out, tmp_path)
    assert sorted(src for src, _ in check["images"]) == ["bars.png", "line.png"]
    assert all(width > 0 for _, width in check["images"]), check
    assert check["tables"] == [2, 1] and all(n > 0 for n in check["tables"])


def test_a_missing_image_is_caught(tmp_path):
    out = tmp_path / "report"
    write_report(out, title="Demo", headline=[], sections=_sections())
    (out / "line.png").unlink()
    check = check_in_chromium(out, tmp_path)
    assert dict(check["images"])["line.png"] == 0


def test_markdown_and_html_content(tmp_path):
    write_report(tmp_path, title="Demo", headline=["first", "second"], sections=_sections())
    md = (tmp_path / "README.md").read_text()
    assert md.startswith("# Demo\n\n- first\n- second")
    assert "| y\\|z | 2.5 |" in md and "![Two bars](bars.png)" in md
    assert f"**{NOT_AVAILABLE}: the block is not built**" in md
    page = (tmp_path / "index.html").read_text()
    assert "<code>code</code>" in page and "&lt;escaped&gt;" in page
    assert (tmp_path / "bars.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_table():
    assert markdown_table(Table("c", ["a", "b"], [[1, None]])) == "| a | b |\n| --- | --- |\n| 1 |  |"


def test_nothing_is_written_when_a_plot_fails(tmp_path):
    def broken(ax):
        raise RuntimeError("no data")

    with pytest.raises(RuntimeError):
        write_report(tmp_path, title="T", headline=[],
                     sections=[Section("S", figures=[Figure("bad", "x", broken)])])
    assert list(tmp_path.iterdir()) == []


def test_duplicate_figure_names_are_refused(tmp_path):
    figure = Figure("same", "x", lambda ax: None)
    with pytest.raises(ValueError, match="unique"):
        write_report(tmp_path, title="T", headline=[],
                     sections=[Section("S", figures=[figure, figure])])

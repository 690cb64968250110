"""The HTML and Markdown report of ``neuroharden demo``: tables and PNG plots.

:func:`write_report` turns a title, headline lines and a list of :class:`Section` into a
directory holding ``index.html`` (self-contained apart from its images), ``README.md``
(the same content in Markdown) and one PNG per :class:`Figure`, drawn with matplotlib's
Agg back end. Every file goes through :func:`golden.atomic.atomic_output`: the PNGs
first, then ``README.md``, then ``index.html``, so an interrupted run never leaves a page
that points at a missing or half-written image.

A section whose building block is not part of this version carries ``status = "not
available in this version"`` and its reason; the report lists it as such instead of
leaving it out.
"""

import html
import io
from dataclasses import dataclass, field
from pathlib import Path

from neuroharden.golden.atomic import atomic_output

__all__ = ["Table", "Figure", "Section", "NOT_AVAILABLE", "write_report", "markdown_table"]

#: Status text of a section whose building block does not exist yet.
NOT_AVAILABLE = "not available in this version"


@dataclass
class Table:
    """A table: ``header`` (column names) and ``rows`` (lists of cells, shown as text)."""

    caption: str
    header: list
    rows: list


@dataclass
class Figure:
    """A PNG plot: ``draw(axes)`` draws on one matplotlib Axes; saved as ``<name>.png``."""

    name: str
    caption: str
    draw: object
    size: tuple = (6.4, 3.6)


@dataclass
class Section:
    """One section of the report.

    ``status`` is ``"done"``, :data:`NOT_AVAILABLE` or ``"failed"``; ``reason`` says why
    a section is not done. ``text`` holds paragraphs (plain text; ``code`` in backticks
    is kept as code in both formats).
    """

    title: str
    text: list = field(default_factory=list)
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)
    status: str = "done"
    reason: str = ""


def _cell(value):
    return "" if value is None else str(value)


def markdown_table(table):
    """A Markdown table (``|`` in cells escaped)."""
    def row(cells):
        return "| " + " | ".join(_cell(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([row(table.header), row(["---"] * len(table.header)),
                      *(row(r) for r in table.rows)])


def _html_text(text):
    """Escape text and turn `code` spans into <code> elements."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _html_table(table):
    head = "".join(f"<th>{_html_text(_cell(h))}</th>" for h in table.header)
    body = "\n".join("<tr>" + "".join(f"<td>{_html_text(_cell(c))}</td>" for c in r)
                     + "</tr>" for r in table.rows)
    return (f"<table>\n<caption>{_html_text(table.caption)}</caption>\n"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>")


_STYLE = """
body { font-family: sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1rem 0; }
caption { text-align: left; font-weight: bold; padding: 0.3rem 0; }
th, td { border: 1px solid #bbb; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #eee; }
figure { margin: 1rem 0; }
img { max-width: 100%; }
.status { color: #a40; font-weight: bold; }
.headline li { margin: 0.2rem 0; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def _draw(figure, path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure as MplFigure

    # A bare Figure (no pyplot) keeps no global state between plots.
    canvas = MplFigure(figsize=figure.size, dpi=100)
    figure.draw(canvas.add_subplot())
    canvas.tight_layout()
    buffer = io.BytesIO()
    canvas.savefig(buffer, format="png")
    with atomic_output(path) as file:
        file.write(buffer.getvalue())


def write_report(directory, *, title, headline, sections):
    """Write ``index.html``, ``README.md`` and the PNGs of every figure into ``directory``.

    Parameters
    ----------
    directory : str or os.PathLike
        Created if missing.
    title : str
    headline : list of str
        The key results, shown first (a bullet list).
    sections : list of Section

    Returns
    -------
    list of pathlib.Path
        Every file written (PNGs, README.md, index.html).

    Raises
    ------
    ValueError
        Two figures with the same name.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = [f.name for s in sections for f in s.figures]
    if len(names) != len(set(names)):
        raise ValueError(f"figure names must be unique, got {names}")
    written = []
    for section in sections:
        for figure in section.figures:
            path = directory / f"{figure.name}.png"
            _draw(figure, path)
            written.append(path)

    md = [f"# {title}", "", *(f"- {line}" for line in headline), ""]
    page = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>",
            f"<h1>{html.escape(title)}</h1>",
            "<ul class=\"headline\">" + "".join(f"<li>{_html_text(line)}</li>"
                                                for line in headline) + "</ul>"]
    for section in sections:
        md += [f"## {section.title}", ""]
        page.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.status != "done":
            note = f"{section.status}" + (f": {section.reason}" if section.reason else "")
            md += [f"**{note}**", ""]
            page.append(f"<p class=\"status\">{_html_text(note)}</p>")
        for paragraph in section.text:
            md += [paragraph, ""]
            page.append(f"<p>{_html_text(paragraph)}</p>")
        for table in section.tables:
            md += [f"**{table.caption}**", "", markdown_table(table), ""]
            page.append(_html_table(table))
        for figure in section.figures:
            md += [f"![{figure.caption}]({figure.name}.png)", "", f"*{figure.caption}*", ""]
            page.append(f"<figure><img src=\"{figure.name}.png\" alt=\"{html.escape(figure.caption)}\">"
                        f"<figcaption>{_html_text(figure.caption)}</figcaption></figure>")
    page.append("</body>\n</html>\n")
    for name, text in (("README.md", "\n".join(md)), ("index.html", "\n".join(page))):
        with atomic_output(directory / name, "w", encoding="utf-8") as file:
            file.write(text)
        written.append(directory / name)
    return written

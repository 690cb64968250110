"""``neuroharden generate``: write the Verilog of one hardware block."""

import os
import tempfile
from pathlib import Path

import click

from .contract import PROTECT
from .verilog import KINDS, generate as generate_verilog

__all__ = ["generate"]

_KIND_HELP = "\n".join(f"  {kind:15s} {text}" for kind, text in KINDS.items())


@click.command(help=f"""Generate the Verilog of a hardware block KIND into FILE.

\b
Kinds (the top module is named after the kind, '-' -> '_'):
{_KIND_HELP}

Each kind uses only the options it needs; the others are ignored. The file is written
atomically: it either holds the complete Verilog or is left untouched. For
accelerator-axi, --register-map also writes its AXI4-Lite register map (Markdown).""")
@click.argument("kind", type=click.Choice(list(KINDS)), metavar="KIND")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="Verilog file to write (parent directories are created).")
@click.option("--rows", default=4, show_default=True, type=int,
              help="Array rows, i.e. output rows of a tile (array, tmr-array, accelerator*).")
@click.option("--cols", default=4, show_default=True, type=int,
              help="Array columns, i.e. output columns of a tile (array, tmr-array, "
                   "accelerator*).")
@click.option("--width", default=8, show_default=True, type=int,
              help="Operand width in bits: 8 or 16 for PEs and arrays (all but requant).")
@click.option("--acc-width", default=32, show_default=True, type=int,
              help="Accumulator width in bits, 2*width..48 (pe, array, requant, tmr-*).")
@click.option("--mode", default="bitwise", show_default=True,
              type=click.Choice(["bitwise", "word"]),
              help="Voter mode: bitwise majority, or the word two copies agree on (voter).")
@click.option("--protect", default="none", show_default=True,
              type=click.Choice(list(PROTECT)),
              help="Protection unit: none, LCU pairs or TMR triples (accelerator*).")
@click.option("--k-depth", default=256, show_default=True, type=int,
              help="Operand-buffer depth, i.e. the largest K of a tile (accelerator*).")
@click.option("--register-map", type=click.Path(dir_okay=False), default=None,
              help="accelerator-axi: also write its register map (Markdown) to this file.")
def generate(kind, output, rows, cols, width, acc_width, mode, protect, k_depth,
             register_map):
    if register_map is not None and kind != "accelerator-axi":
        raise click.ClickException(f"--register-map is for accelerator-axi, not {kind}")
    try:
        text = generate_verilog(kind, rows=rows, cols=cols, width=width,
                                acc_width=acc_width, mode=mode, protect=protect,
                                k_depth=k_depth)
    except (ValueError, TypeError) as error:
        raise click.ClickException(str(error)) from error
    files = {Path(output): text}
    if register_map is not None:
        from .csr import register_map_markdown

        files[Path(register_map)] = register_map_markdown()
    try:
        _write_atomically(files)
    except OSError as error:
        raise click.ClickException(f"Cannot write {error.filename or output}: "
                                   f"{error.strerror or error}") from error
    click.echo(f"wrote {kind} to {output}"
               + (f" and its register map to {register_map}" if register_map else ""))


def _write_atomically(files):
    """Write each ``path -> text`` of ``files`` to a temporary file next to it, then, once
    all are written, rename them over their paths: an error leaves every path untouched.
    (``hw`` may not import ``golden.atomic``, the one-file version of this.)"""
    temporaries = {}
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporaries[path] = tempfile.mkstemp(dir=path.parent,
                                                         prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(handle, "w") as file:
                file.write(text)
        for path, temporary in temporaries.items():
            os.replace(temporary, path)
    except BaseException:
        for temporary in temporaries.values():
            if os.path.exists(temporary):
                os.unlink(temporary)
        raise

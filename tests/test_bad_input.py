"""Bad input never crashes: generated variants of every file format the tool reads, and
out-of-range or wrong-type values of numeric options, through the command line.

Each case must end the way the README promises for bad input: exit status 2, exactly one
line on stderr, no traceback, no output file created, and an output file or database that
existed before left byte-identical. A variant that happens to still be a valid file
(a bit flip inside a weight or a score) may also succeed: then it is simply a different
valid input, and exit status 0 is right. Truncations, foreign magic bytes and files of
another format are never valid.

The cases come from hypothesis with a fixed seed (``derandomize``) and a bounded number
of examples per format, so the suite is deterministic and takes about a minute.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuroharden.sim.app.cli import main

SETTINGS = settings(derandomize=True, max_examples=12, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(*args):
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="module")
def files(tmp_path_factory, trained_model):
    """One valid file of every format: a trained MLP-7 checkpoint, and the rest made from a
    small onnxruntime-quantized MLP."""
    from tests.golden.onnx_nets import quantized_model

    root = tmp_path_factory.mktemp("valid")
    onnx_file = quantized_model("mlp", root)[0]
    qnet, critical = root / "qnet.npz", root / "critical.json"
    hardened, db, matrix = root / "hardened.pt", root / "results.sqlite", root / "a.npy"
    ok("import", onnx_file, "-o", qnet)
    ok("rank", "--model", qnet, "--method", "activation", "--images", 4, "-o", critical)
    ok("harden", "--model", qnet, "--critical", critical, "--scheme", "tmr",
       "--fraction", 10, "-o", hardened)
    ok("campaign", "--level", "model", "--model", qnet, "--fault", "bitflip", "--faults", 4,
       "--db", db)
    np.save(matrix, np.arange(-6, 6, dtype=np.int8).reshape(3, 4))
    np.save(root / "b.npy", np.ones((4, 2), np.int8))
    return {"pt": trained_model("mlp7"), "onnx": onnx_file, "npz": qnet, "json": critical,
            "hardened": hardened,
            "sqlite": db, "npy": matrix, "b": root / "b.npy", "root": root}


#: Per format: the command that reads it (``{bad}``: the file under test, ``{out}``: an
#: output path, ``{...}``: a valid file of that kind).
COMMANDS = {
    "npy": ["gemm", "--a", "{bad}", "--b", "{b}", "-o", "{out}.npy", "--rows", "2",
            "--cols", "2"],
    "pt": ["export", "--model", "{bad}", "-o", "{out}.npz"],
    "npz": ["export", "--model", "{bad}", "--format", "onnx", "-o", "{out}.onnx"],
    "onnx": ["import", "{bad}", "-o", "{out}.npz"],
    "hardened": ["export", "--model", "{bad}", "--format", "onnx", "-o", "{out}.onnx"],
    "json": ["harden", "--model", "{npz}", "--critical", "{bad}", "--scheme", "lcu",
             "--fraction", "5", "-o", "{out}.pt"],
    "sqlite": ["campaign", "--level", "model", "--model", "{npz}", "--fault", "bitflip",
               "--faults", "6", "--db", "{bad}"],
}
#: Suffix of the file under test (the readers dispatch on it).
SUFFIX = {"pt": ".pt", "npy": ".npy", "npz": ".npz", "onnx": ".onnx", "hardened": ".pt",
          "json": ".json", "sqlite": ".sqlite"}
#: Bytes of other formats and of nothing, for the wrong-type variant.
FOREIGN = [b"", b"PK\x03\x04" + bytes(60), b"\x93NUMPY\x01\x00" + bytes(20),
           b"\x80\x04\x95 pickle", b"SQLite format 3\x00" + bytes(84), b'{"neurons": 3}',
           b"\x08\x07\x12\x04junk", "héllo wörld\n".encode(), bytes(range(256))]

#: First bytes of the formats (and of none), for the foreign-magic variant.
MAGICS = [b"PK\x03\x04", b"\x93NUMPY", b"SQLite format 3\x00", b"\x00\x00\x00\x00", b"{",
          b"\x08\x07"]


@st.composite
def variants(draw, data, shortest=0):
    """A damaged copy of ``data``: truncated (to at least ``shortest`` bytes), bit-flipped,
    given another format's magic bytes, or replaced by a foreign file."""
    kind = draw(st.sampled_from(["truncate", "flip", "magic", "foreign"]))
    if kind == "truncate":
        return kind, data[:draw(st.integers(shortest, len(data) - 1))]
    if kind == "flip":
        position = draw(st.integers(0, len(data) - 1))
        bit = draw(st.integers(0, 7))
        return kind, data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1:]
    if kind == "magic":
        # Another format's magic: not one that starts like this file (protobuf's
        # b"\x08\x07" over an ONNX file is only another IR version, still valid).
        head = draw(st.sampled_from([h for h in MAGICS if h[:1] != data[:1]]))
        return kind, head + data[len(head):]
    return kind, draw(st.sampled_from([f for f in FOREIGN if f or shortest == 0]))


def check_refusal(result, kind, outputs, before):
    """The promise for bad input (or, for a still-valid bit flip, a plain success)."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"crash: {result.exception!r}\n{result.output}"
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    if result.exit_code == 0 and kind == "flip":
        return
    assert result.exit_code == 2, f"{kind}: exit {result.exit_code}\n{result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"{kind}: stderr is not one line:\n{result.stderr}"
    for path, sha in zip(outputs, before):
        assert digest(path) == sha, f"{kind}: {path.name} was written"


@pytest.mark.parametrize("fmt", list(COMMANDS))
def test_damaged_files_are_refused_in_one_line(files, tmp_path, fmt):
    valid = files["hardened" if fmt == "hardened" else fmt].read_bytes()
    counter = iter(range(10**6))

    # An empty file is a new results database (golden.campaign.ResultsDB), not a bad one.
    @SETTINGS
    @given(variant=variants(valid, shortest=1 if fmt == "sqlite" else 0),
           existing=st.booleans())
    def case(variant, existing):
        kind, data = variant
        n = next(counter)
        bad = tmp_path / f"bad{n}{SUFFIX[fmt]}"
        bad.write_bytes(data)
        out = tmp_path / f"out{n}"
        names = {k: v for k, v in files.items() if k != "root"}
        args = [a.format(bad=bad, out=out, **names) for a in COMMANDS[fmt]]
        outputs = [type(tmp_path)(a) for a in args if a.startswith(str(out))]
        if existing:
            for path in outputs:
                path.write_bytes(b"an earlier result")
        inputs = [bad] if fmt == "sqlite" else []   # a database must not be touched either
        before = [digest(p) for p in (*outputs, *inputs)]
        result = run(*args)
        check_refusal(result, kind, [*outputs, *inputs], before)

    case()


def test_a_zip_file_named_npy_is_one_line(files, tmp_path):
    """numpy would open it as an .npz archive and raise zipfile.BadZipFile."""
    bad = tmp_path / "x.npy"
    bad.write_bytes(b"PK\x03\x04" + bytes(40))
    result = run("gemm", "--a", bad, "--b", files["b"], "-o", tmp_path / "c.npy")
    assert result.exit_code == 2 and "not a .npy file" in result.stderr
    assert not (tmp_path / "c.npy").exists()


#: Numeric options, each with the command it belongs to and values it must refuse.
OPTIONS = [
    (["sample-size", "--population", "1000", "--margin", "0.01", "--confidence"],
     st.one_of(st.floats(max_value=0), st.floats(min_value=1), st.just("nan"))),
    (["sample-size", "--population", "1000", "--confidence", "0.95", "--margin"],
     st.one_of(st.floats(max_value=0), st.floats(min_value=1), st.just("inf"))),
    (["sample-size", "--confidence", "0.95", "--margin", "0.01", "--population"],
     st.integers(max_value=0)),
    (["campaign", "--level", "model", "--model", "{npz}", "--fault", "bitflip", "--db",
      "{out}.sqlite", "--faults"], st.integers(max_value=0)),
    (["rank", "--model", "{npz}", "--method", "nvf", "-o", "{out}.json", "--images"],
     st.integers(max_value=0)),
    (["harden", "--model", "{npz}", "--critical", "{json}", "--scheme", "lcu", "-o",
      "{out}.pt", "--fraction"], st.one_of(st.floats(max_value=-1e-9),
                                            st.floats(min_value=100.001), st.just("nan"))),
    (["gemm", "--a", "{npy}", "--b", "{b}", "-o", "{out}.npy", "--rows"],
     st.integers(max_value=0)),
    (["generate", "pe", "-o", "{out}.v", "--width"], st.integers(max_value=0)),
    (["train", "--model", "mlp7", "-o", "{out}.pt", "--epochs"], st.integers(max_value=0)),
    (["run-rtl", "--model", "{npz}", "--images"], st.integers(max_value=0)),
]
JUNK = st.sampled_from(["", "abc", "1.5.2", "0x", "--x", "1e999999", "nan", "-inf"])


@pytest.mark.parametrize("command", OPTIONS, ids=[" ".join(c[0][:1] + c[0][-1:])
                                                    for c in OPTIONS])
def test_bad_option_values_are_refused_in_one_line(files, tmp_path, command):
    template, refused = command
    counter = iter(range(10**6))

    @SETTINGS
    @given(value=st.one_of(refused, JUNK))
    def case(value):
        out = tmp_path / f"out{next(counter)}"
        names = {k: v for k, v in files.items() if k != "root"}
        args = [a.format(out=out, **names) for a in template] + [str(value)]
        result = run(*args)
        assert result.exit_code == 2, f"{args[-2:]}: exit {result.exit_code}\n{result.output}"
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert not list(tmp_path.glob(f"{out.name}*")), "an output was written"

    case()


def _numeric_options():
    """Every numeric option of every command: ``(command path, option, type)``."""
    import click

    context = click.Context(main)

    def walk(group, path):
        for name in group.list_commands(context):
            command = group.get_command(context, name)
            if isinstance(command, click.Group):
                yield from walk(command, [*path, name])
                continue
            for param in command.params:
                if isinstance(param, click.Option) and isinstance(
                        param.type, (click.types.IntParamType, click.types.FloatParamType)):
                    yield [*path, name], param.opts[0], param.type

    return list(walk(main, []))


def _outside(kind):
    """Values a numeric type must refuse while the command line is parsed."""
    import click

    refused = [st.sampled_from(["abc", "", "1.5.2", "0x1g", "--", "1,5"])]
    if isinstance(kind, click.types.IntParamType):
        refused.append(st.sampled_from(["1.5", "1e3", "nan", "inf"]))
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        number = st.integers if isinstance(kind, click.IntRange) else st.floats
        if kind.min is not None:
            low = kind.min - 1 if isinstance(kind, click.IntRange) else kind.min - 1e-6
            refused.append(number(max_value=low, **({} if number is st.integers else
                                                    {"allow_nan": False})).map(str))
        if kind.max is not None:
            high = kind.max + 1 if isinstance(kind, click.IntRange) else kind.max + 1e-6
            refused.append(number(min_value=high, **({} if number is st.integers else
                                                     {"allow_nan": False})).map(str))
        if isinstance(kind, click.FloatRange):
            refused.append(st.sampled_from(["nan", "-inf", "inf"]))
    return st.one_of(*refused)


NUMERIC = _numeric_options()


@pytest.mark.parametrize("path, option, kind", NUMERIC,
                         ids=[" ".join([*path, option]) for path, option, _ in NUMERIC])
def test_every_numeric_option_refuses_what_it_cannot_parse(path, option, kind):
    """Every numeric option of every command (found by walking the command tree): a value
    of the wrong type, or outside the option's declared range, is refused while the
    command line is parsed, in one line naming the option, before any work."""

    @settings(derandomize=True, max_examples=4, deadline=None, database=None)
    @given(value=_outside(kind))
    def case(value):
        result = run(*path, option, value)
        assert result.exit_code == 2, f"{option} {value!r}: exit {result.exit_code}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and option in lines[0], (value, result.stderr)
        assert "Traceback" not in result.output

    case()


def test_the_option_walk_finds_the_commands():
    commands = {" ".join(path) for path, _, _ in NUMERIC}
    assert len(NUMERIC) > 50 and {"campaign", "experiment fig4", "gemm", "harden"} <= commands

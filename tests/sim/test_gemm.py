"""`neuroharden gemm`: products on the RTL array, and every bad input refused."""

import numpy as np
import pytest
from click.testing import CliRunner

from neuroharden.sim.app.cli import main
from neuroharden.sim.runner import SIMULATORS


def invoke(*args):
    return CliRunner().invoke(main, ["gemm", *map(str, args)])


@pytest.fixture
def operands(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (5, 7), dtype=np.int8)
    b = rng.integers(-128, 128, (7, 6), dtype=np.int8)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    return tmp_path, a, b


@pytest.mark.slow
@pytest.mark.parametrize("sim", SIMULATORS)
def test_product_matches_numpy(operands, sim):
    directory, a, b = operands
    out = directory / "c.npy"
    result = invoke("--a", directory / "a.npy", "--b", directory / "b.npy", "-o", out,
                    "--rows", 3, "--cols", 4, "--sim", sim)
    assert result.exit_code == 0, result.output
    product = np.load(out)
    assert product.dtype == np.int32
    np.testing.assert_array_equal(product, a.astype(np.int32) @ b.astype(np.int32))


def bad_input_cases(directory):
    np.save(directory / "wide.npy", np.zeros((5, 7), dtype=np.int16))
    np.save(directory / "vector.npy", np.zeros(7, dtype=np.int8))
    np.save(directory / "tall.npy", np.zeros((8, 6), dtype=np.int8))
    (directory / "junk.npy").write_bytes(b"not an array")
    a, b = directory / "a.npy", directory / "b.npy"
    return {
        "missing file": (["--a", directory / "nope.npy", "--b", b], "no such file"),
        "wrong dtype": (["--a", directory / "wide.npy", "--b", b], "int8"),
        "not a matrix": (["--a", directory / "vector.npy", "--b", b], "2-D"),
        "shape mismatch": (["--a", a, "--b", directory / "tall.npy"], "shape mismatch"),
        "corrupt file": (["--a", directory / "junk.npy", "--b", b], "not a .npy file"),
        "unknown simulator": (["--a", a, "--b", b, "--sim", "modelsim"], "unknown simulator"),
        "zero rows": (["--a", a, "--b", b, "--rows", 0], "--rows"),
    }


@pytest.mark.parametrize("case", ["missing file", "wrong dtype", "not a matrix", "shape mismatch",
                                  "corrupt file", "unknown simulator", "zero rows"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(operands, case):
    directory, _, _ = operands
    args, message = bad_input_cases(directory)[case]
    out = directory / "c.npy"
    result = invoke(*args, "-o", out)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not out.exists()

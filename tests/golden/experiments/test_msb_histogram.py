"""Paper 002's MSB histogram and BER experiment on a briefly trained LeNet-5 (few images)."""

import csv
import json

import pytest
import torch
from click.testing import CliRunner

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.experiments.msb_histogram import (_flip_positions, ber_failure_rates, command,
                                              histogram, msb_failure_rates)
from neuroharden.golden.faults import Fault
from neuroharden.golden.injection import naive_logits
from neuroharden.golden.models import save_checkpoint
from neuroharden.golden.numerics import wrap
from neuroharden.golden.train import train


@pytest.fixture(scope="module")
def short_lenet(tmp_path_factory):
    net, metadata = train("lenet5", epochs=2, seed=0, progress=False)
    path = tmp_path_factory.mktemp("msb") / "lenet5.pt"
    save_checkpoint(net, path, **metadata)
    intnet, _, _, data = quantize_checkpoint(path)
    return path, intnet, intnet.quantize_input(data.x_test[:40]), data.y_test[:40]


def test_flip_positions_are_a_bernoulli_process():
    generator = torch.Generator().manual_seed(1)
    positions = _flip_positions(10**6, 1e-3, generator)
    assert abs(len(positions) - 1000) < 5 * 1000 ** 0.5
    assert bool((positions[1:] > positions[:-1]).all())
    assert int(positions[0]) >= 0 and int(positions[-1]) < 10**6
    # Uniform over the range: each half holds about half of the flips.
    assert abs(int((positions < 500_000).sum()) - len(positions) / 2) < 5 * 500 ** 0.5
    assert len(_flip_positions(100, 0.0, generator)) == 0
    assert torch.equal(_flip_positions(7, 1.0, generator), torch.arange(7))


def test_msb_failure_rates_match_the_naive_engine(short_lenet):
    _, net, x, y = short_lenet
    neurons = [("conv1", 5), ("conv2", 100), ("fc1", 7), ("fc2", 3), ("fc2", 60)]
    rates = msb_failure_rates(net, x, y, neurons, bit=7, progress=False)
    correct = net.predict(x) == y
    for (layer, index), rate in zip(neurons, rates):
        logits = naive_logits(net, x[correct], Fault(layer, "output", index, bits=(7,)))
        assert float(rate) == pytest.approx(float((logits.argmax(1) != y[correct])
                                                  .double().mean()))


def test_ber_extremes_match_a_full_forward(short_lenet):
    _, net, x, y = short_lenet
    assert float(ber_failure_rates(net, x, y, 0.0, 3, seed=0, progress=False).sum()) == 0
    # BER 1 flips every bit of every hidden output: y -> wrap(~y).
    h = x
    for i, layer in enumerate(net.layers):
        _, out = net.layer_step(i, h)
        if layer.relu:
            out = wrap((out & 255) ^ 255, 8)
        h = net.next_input(i, out)
    correct = net.predict(x) == y
    expected = float((h.argmax(1) != y)[correct].double().mean())
    rates = ber_failure_rates(net, x, y, 1.0, 2, seed=0, progress=False)
    assert rates.tolist() == pytest.approx([expected, expected])


def test_histogram_bins():
    edges, counts = histogram({"a": [0.0, 0.1, 0.5], "b": [0.2]}, 5)
    assert edges == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert counts == {"a": [1, 1, 0, 0, 1], "b": [0, 0, 1, 0, 0]}


def test_command_writes_csv_png_markdown(short_lenet, tmp_path):
    path = short_lenet[0]
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["--model", path, "--epochs", 0, "--iterations", 1, "--relevance-images", 16,
            "--images", 30, "--neurons", 3, "--runs", 2, "--bers", "1e-3,1e-2",
            "-o", out, "--cache", cache, "--json"]
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["neurons_tested"] == 12 and summary["images"] == 30
    assert [r["layer"] for r in summary["layers"] if r["bottleneck"]] == ["fc1", "fc2"]
    assert len(summary["ber_failure_rates"]["optimized"]) == 2
    for name in ("msb_histogram.png", "ber_failure_rate.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "msb_failure_rates.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 24 and {r["network"] for r in rows} == {"baseline", "optimized"}
    markdown = (out / "msb_histogram.md").read_text()
    assert "| fc2 | 84 | yes |" in markdown and "Failure rate vs bit-error rate" in markdown
    assert json.loads((out / "summary.json").read_text())["runs"] == 2
    # The optimized checkpoint is cached: a second run reuses it.
    cached = sorted(p.name for p in cache.iterdir())
    again = CliRunner().invoke(command, [str(a) for a in args])
    assert again.exit_code == 0 and sorted(p.name for p in cache.iterdir()) == cached


def test_bad_input_one_line_nothing_written(short_lenet, tmp_path):
    out = tmp_path / "out"
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    imported = tmp_path / "qnet.onnx"
    imported.write_bytes(b"an imported network has no float weights")
    for args in (["--model", tmp_path / "missing.pt"], ["--model", corrupt],
                 ["--model", imported],
                 ["--model", short_lenet[0], "--bers", "0.5,2"],
                 ["--model", short_lenet[0], "--bers", "x"]):
        result = CliRunner().invoke(command, [str(a) for a in args]
                                    + ["-o", str(out), "--cache", str(tmp_path / "c")])
        # A click error (exit 1 standalone, 2 under the root group), not a crash.
        assert isinstance(result.exception, SystemExit) and result.exit_code == 1, \
            result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()

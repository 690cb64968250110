import numpy as np
import pytest
import torch

from neuroharden.golden.checkpoint import load_intnet, quantize_checkpoint
from neuroharden.golden.evaluation import evaluate_checkpoint
from neuroharden.golden.export import export_intnet, import_intnet
from tests.golden.numpy_reader import predict

#: The three networks; AlexNet (about half a minute to train) only in the slow runs.
NETWORKS = ["mlp7", "lenet5", pytest.param("alexnet", marks=pytest.mark.slow(seconds=48))]


@pytest.mark.parametrize("name", NETWORKS)
def test_numpy_reader_reproduces_int8_predictions(trained_model, tmp_path, name):
    path = tmp_path / "qnet.npz"
    export_intnet(load_intnet(trained_model(name)), path)
    _, _, _, data = quantize_checkpoint(trained_model(name))
    expected = evaluate_checkpoint(trained_model(name))["predictions"]
    assert predict(path, data.x_test.numpy()).tolist() == expected


def test_export_round_trip_and_plain_arrays(lenet5_model, tmp_path):
    intnet = load_intnet(lenet5_model)
    path = tmp_path / "qnet.npz"
    export_intnet(intnet, path)
    with np.load(path, allow_pickle=False) as archive:
        assert int(archive["format_version"]) == 1
        assert archive["weight_0"].dtype == np.int8 and archive["bias_0"].dtype == np.int32
        assert archive["multiplier_0"].dtype == np.uint16
        assert archive["kinds"].tolist() == ["conv", "conv", "linear", "linear", "linear"]
    back = import_intnet(path)
    assert back.input_scale == intnet.input_scale and back.input_shape == intnet.input_shape
    for a, b in zip(intnet.layers, back.layers):
        assert (a.name, a.kind, a.relu, a.stride, a.padding, a.pool, a.flatten, a.out_scale,
                a.out_hw) == (b.name, b.kind, b.relu, b.stride, b.padding, b.pool, b.flatten,
                              b.out_scale, b.out_hw)
        for field in ("weight", "bias", "multiplier", "shift"):
            assert torch.equal(getattr(a, field), getattr(b, field))
    assert [p.name for p in tmp_path.iterdir()] == ["qnet.npz"]


def test_import_rejects_foreign_files(tmp_path):
    (tmp_path / "text.npz").write_text("hello")
    np.savez(tmp_path / "foreign.npz", a=np.zeros(2))
    np.savez(tmp_path / "future.npz", format=np.array("neuroharden-qnet"),
             format_version=np.array(3))
    np.savez(tmp_path / "partial.npz", format=np.array("neuroharden-qnet"),
             format_version=np.array(1))
    for name, message in [("text.npz", "not a readable"), ("foreign.npz", "not a neuroharden"),
                          ("future.npz", "format_version 3"), ("partial.npz", "missing entry")]:
        with pytest.raises(ValueError, match=message):
            import_intnet(tmp_path / name)

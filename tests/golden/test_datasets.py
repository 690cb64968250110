"""The dataset readers (golden/datasets.py): the bundled digits, MNIST IDX and CIFAR-10."""

import gzip

import numpy as np
import pytest
import torch

from neuroharden.golden.datasets import fit_shape, load_dataset, mnist5k_path, read_mnist5k
from tests.golden.dataset_files import write_cifar, write_idx, write_mnist


def test_digits_split_is_fixed_stratified_and_scaled():
    a = load_dataset("digits", (1, 28, 28))
    b = load_dataset("digits", (1, 28, 28))
    assert a.x_train.shape == (1437, 1, 28, 28) and a.x_test.shape == (360, 1, 28, 28)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    assert 0.0 <= float(a.x_train.min()) and float(a.x_train.max()) <= 1.0
    counts = torch.bincount(a.y_test, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # 20 % of each class


def test_digits_for_alexnet_repeat_grey_over_three_channels():
    data = load_dataset("digits", (3, 32, 32))
    assert data.x_test.shape == (360, 3, 32, 32)
    assert torch.equal(data.x_test[:, 0], data.x_test[:, 2])


def test_fit_shape_averages_rgb_and_resizes():
    x = torch.rand(2, 3, 32, 32)
    grey = fit_shape(x, (1, 32, 32))
    assert torch.allclose(grey[:, 0], x.mean(dim=1))
    assert fit_shape(x, (1, 28, 28)).shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="channels"):
        fit_shape(torch.rand(1, 2, 8, 8), (3, 8, 8))


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_files_load(tmp_path, compress):
    write_mnist(tmp_path, compress)
    data = load_dataset("mnist", (1, 28, 28), tmp_path)
    assert data.x_train.shape == (5, 1, 28, 28) and data.x_test.shape == (3, 1, 28, 28)
    assert data.y_train.tolist() == [0, 1, 2, 3, 4]
    with (gzip.open if compress else open)(
            tmp_path / f"t10k-images-idx3-ubyte{'.gz' if compress else ''}", "rb") as file:
        raw = np.frombuffer(file.read()[16:], dtype=np.uint8).reshape(3, 28, 28)
    assert torch.allclose(data.x_test[:, 0], torch.from_numpy(raw / 255.0).float())


def test_mnist_bad_magic_is_reported(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", 0x801, np.zeros((5, 28, 28)))
    with pytest.raises(ValueError, match="bad IDX magic"):
        load_dataset("mnist", (1, 28, 28), tmp_path)


def test_mnist_truncated_file_is_reported(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match="header announces"):
        load_dataset("mnist", (1, 28, 28), tmp_path)


def test_mnist_label_count_mismatch_and_missing_file(tmp_path):
    write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", 0x801, np.zeros(4))
    with pytest.raises(ValueError, match="4 labels for 5 images"):
        load_dataset("mnist", (1, 28, 28), tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="not found"):
        load_dataset("mnist", (1, 28, 28), tmp_path)


def test_cifar10_binary_batches_load(tmp_path):
    first = write_cifar(tmp_path / "data_batch_1.bin", [0, 1, 2])
    write_cifar(tmp_path / "data_batch_2.bin", [3])
    write_cifar(tmp_path / "test_batch.bin", [9, 8])
    data = load_dataset("cifar10", (3, 32, 32), tmp_path)
    assert data.y_train.tolist() == [0, 1, 2, 3] and data.y_test.tolist() == [9, 8]
    # Record layout: label, then the R, G and B planes row by row.
    expected = torch.from_numpy(first[0, 1:].reshape(3, 32, 32) / 255.0).float()
    assert torch.allclose(data.x_train[0], expected)
    assert load_dataset("cifar10", (1, 28, 28), tmp_path).x_test.shape == (2, 1, 28, 28)


def test_cifar10_bad_files_are_reported(tmp_path):
    with pytest.raises(ValueError, match="no data_batch"):
        load_dataset("cifar10", (3, 32, 32), tmp_path)
    write_cifar(tmp_path / "data_batch_1.bin", [0])
    with pytest.raises(ValueError, match="test_batch.bin"):
        load_dataset("cifar10", (3, 32, 32), tmp_path)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 3000)
    with pytest.raises(ValueError, match="whole number"):
        load_dataset("cifar10", (3, 32, 32), tmp_path)
    write_cifar(tmp_path / "test_batch.bin", [10])
    with pytest.raises(ValueError, match="out of range"):
        load_dataset("cifar10", (3, 32, 32), tmp_path)


def test_bad_dataset_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", (1, 28, 28))
    with pytest.raises(ValueError, match="needs --data-dir"):
        load_dataset("mnist", (1, 28, 28))
    with pytest.raises(ValueError, match="does not exist"):
        load_dataset("mnist", (1, 28, 28), tmp_path / "nowhere")


def test_mnist5k_is_the_real_subset_with_a_fixed_stratified_split():
    a = load_dataset("mnist5k", (1, 28, 28))
    assert a.x_train.shape == (4000, 1, 28, 28) and a.x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(a.y_test).tolist() == [100] * 10
    assert torch.bincount(a.y_train).tolist() == [400] * 10
    assert 0 <= float(a.x_train.min()) and float(a.x_train.max()) == 1.0
    b = load_dataset("mnist5k", (1, 28, 28))
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_train, b.y_train)
    # The first line of the file is a 0 (class of the first image) drawn as on the wheel.
    images, labels = read_mnist5k(mnist5k_path())
    assert images.shape == (5000, 28, 28) and labels[0] == 0 and images[0, 4, 15] == 51


def test_mnist5k_reader_rejects_malformed_csv(tmp_path):
    good = ",".join(["0"] * 784 + ["3"])
    cases = [("columns.csv", "1,2,3\n", "columns"), ("text.csv", "a,b\n", "not a readable"),
             ("label.csv", ",".join(["0"] * 784 + ["12"]) + "\n", "label outside"),
             ("pixel.csv", ",".join(["300"] + ["0"] * 783 + ["1"]) + "\n", "pixel values")]
    for name, text, message in cases:
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            read_mnist5k(tmp_path / name)
    with gzip.open(tmp_path / "ok.csv.gz", "wt") as file:
        file.write(good + "\n" + good + "\n")
    images, labels = read_mnist5k(tmp_path / "ok.csv.gz")
    assert images.shape == (2, 28, 28) and labels.tolist() == [3, 3]

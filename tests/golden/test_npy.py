import pickle

import numpy as np
import pytest

from neuroharden.golden.npy import read_npy


def test_reads_what_numpy_saves(tmp_path):
    array = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    np.save(tmp_path / "a.npy", array)
    assert np.array_equal(read_npy(tmp_path / "a.npy"), array)


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04" + bytes(40), "not a .npy file"),                # numpy: BadZipFile
    (pickle.dumps([1, 2]), "not a .npy file"),
    (b"", "not a .npy file"),
    (b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i1'", "not a readable .npy array"),
])
def test_other_formats_and_damaged_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "x.npy"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_npy(path)
    assert "\n" not in str(error.value)


def test_object_arrays_truncated_bodies_and_trailing_data_are_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "t.npy", np.zeros((100, 100), np.int8))
    (tmp_path / "t.npy").write_bytes((tmp_path / "t.npy").read_bytes()[:-10])
    np.save(tmp_path / "d.npy", np.zeros(3, np.int8))
    with open(tmp_path / "d.npy", "ab") as file:
        file.write(b"more")
    for name in ("o", "t", "d"):
        with pytest.raises(ValueError, match=str(tmp_path / name)):
            read_npy(tmp_path / f"{name}.npy")
    with pytest.raises(ValueError, match="no such file"):
        read_npy(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="is a directory"):
        read_npy(tmp_path)

"""The AXI accelerator's register map: one table, documented in the README verbatim."""

import re
from pathlib import Path

import pytest

from neuroharden.hw.csr import CSRS, CSR, Field, csr, register_map_markdown

README = Path(__file__).resolve().parents[2] / "README.md"
#: The README's copy, between ``<!-- register map ... -->`` and ``<!-- /register map -->``.
COPY = re.compile(r"^<!-- register map[^\n]*-->\n(?P<text>.*?)^<!-- /register map -->$",
                  re.S | re.M)


def test_offsets_are_distinct_and_fields_fit_their_word():
    offsets = [register.offset for register in CSRS]
    assert len(set(offsets)) == len(offsets) and offsets == sorted(offsets)
    for register in CSRS:
        masks = [field.mask for field in register.fields]
        assert all(mask < 1 << 32 for mask in masks), register.name
        assert sum(masks) == _union(masks), f"{register.name}: fields overlap"


def _union(masks):
    union = 0
    for mask in masks:
        union |= mask
    return union


def test_readme_holds_the_generated_register_map():
    copies = COPY.findall(README.read_text())
    assert copies == [register_map_markdown()]


def test_lookups_and_bad_declarations():
    assert csr("K").field("k").mask == 0xFFFF
    with pytest.raises(KeyError, match="no register 'NOPE'"):
        csr("NOPE")
    with pytest.raises(KeyError, match="no field"):
        csr("K").field("x")
    with pytest.raises(ValueError, match="aligned"):
        CSR("X", 0x2, "rw", (Field("x", 0, 1, ""),), "")
    with pytest.raises(ValueError, match="access"):
        CSR("X", 0x0, "wo", (Field("x", 0, 1, ""),), "")

"""Fault models: validation, serialization and the value transformations."""

import pytest
import torch

from neuroharden.golden.faults import Fault, apply_fault_value, target_width
from tests.golden.fi_nets import random_net


def test_roundtrip_json_and_dict():
    faults = [Fault("conv1", "output", 5, (7,)),
              Fault("fc1", "accumulator", 3, (30, 2), "stuck1"),
              Fault("conv2", "weight", 11, (), "crash"),
              Fault("fc2", "output", 0, (), "byzantine", -77)]
    for fault in faults:
        assert Fault.from_json(fault.to_json()) == fault
        assert Fault.from_dict(fault.to_dict()) == fault
    assert Fault.from_dict({"layer": "a", "target": "output", "index": 1,
                            "bits": [0, 3]}).bits == (0, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(layer="x", target="output", index=0, bits=(8,)), "bit 8 out of range"),
    (dict(layer="x", target="accumulator", index=0, bits=(32,)), "bit 32 out of range"),
    (dict(layer="x", target="weight", index=0, bits=(-1,)), "out of range"),
    (dict(layer="x", target="output", index=0, bits=()), "needs at least one bit"),
    (dict(layer="x", target="output", index=0, bits=(1, 1)), "repeated bit"),
    (dict(layer="x", target="register", index=0, bits=(1,)), "unknown fault target"),
    (dict(layer="x", target="output", index=0, bits=(1,), model="melt"), "unknown fault model"),
    (dict(layer="x", target="output", index=-1, bits=(1,)), "negative"),
    (dict(layer="x", target="output", index=0, model="byzantine"), "needs a value"),
    (dict(layer="x", target="output", index=0, model="byzantine", value=128), "range"),
    (dict(layer="x", target="output", index=0, bits=(1,), model="crash"), "takes no bits"),
])
def test_invalid_faults(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Fault(**kwargs)


def test_bad_json():
    with pytest.raises(ValueError, match="not a fault"):
        Fault.from_json("{nope")
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"layer": "a", "target": "output", "index": 0, "bits": [1], "x": 1})
    with pytest.raises(ValueError, match="missing"):
        Fault.from_dict({"layer": "a", "target": "output"})


def test_validate_against_network():
    net, _ = random_net()
    assert Fault("fc1", "output", 11, (0,)).validate(net) == 2
    with pytest.raises(ValueError, match="unknown layer 'fc9'"):
        Fault("fc9", "output", 0, (0,)).validate(net)
    with pytest.raises(ValueError, match="out of range: layer fc1 has 12 neurons"):
        Fault("fc1", "output", 12, (0,)).validate(net)
    with pytest.raises(ValueError, match="weights"):
        Fault("fc2", "weight", 120, (0,)).validate(net)


def test_fault_values():
    v = torch.tensor([0, 5, 127, -128, -1])
    flip7 = Fault("a", "output", 0, (7,))
    assert apply_fault_value(v, flip7).tolist() == [-128, -123, -1, 0, 127]
    assert apply_fault_value(v, Fault("a", "output", 0, (0, 1), "stuck1")).tolist() == [
        3, 7, 127, -125, -1]
    assert apply_fault_value(v, Fault("a", "output", 0, (0,), "stuck0")).tolist() == [
        0, 4, 126, -128, -2]
    assert apply_fault_value(v, Fault("a", "output", 0, (), "crash")).tolist() == [0] * 5
    assert apply_fault_value(v, Fault("a", "output", 0, (), "byzantine", 9)).tolist() == [9] * 5
    acc = torch.tensor([0, (1 << 31) - 1])
    assert apply_fault_value(acc, Fault("a", "accumulator", 0, (31,))).tolist() == [
        -(1 << 31), -1]
    assert target_width("accumulator") == 32 and target_width("weight") == 8
    assert apply_fault_value(5, flip7) == -123  # plain ints too

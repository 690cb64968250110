import pytest

from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.crosscheck import crosscheck
from neuroharden.golden.quantize import weight_scales

#: The three networks; AlexNet (about half a minute to train) only in the slow runs.
NETWORKS = ["mlp7", "lenet5", pytest.param("alexnet", marks=pytest.mark.slow(seconds=44))]


@pytest.mark.parametrize("name", NETWORKS)
def test_integer_model_agrees_with_torch_ao(trained_model, name):
    intnet, net, _, data = quantize_checkpoint(trained_model(name))
    x = intnet.quantize_input(data.x_test[:200])
    results = crosscheck(intnet, weight_scales(net), x)
    assert [r.name for r in results] == [layer.name for layer in intnet.layers]
    for result in results:
        assert result.fraction >= 0.99, result
        assert result.max_difference <= 1, result

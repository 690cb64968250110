from neuroharden.golden.checkpoint import quantize_checkpoint
from neuroharden.golden.evaluation import evaluate_checkpoint, int8_predictions


def test_evaluation_reports_both_accuracies(lenet5_model):
    result = evaluate_checkpoint(lenet5_model)
    intnet, _, metadata, data = quantize_checkpoint(lenet5_model)
    assert result["images"] == len(data.y_test) == len(result["predictions"])
    assert result["float_accuracy"] == metadata["float_accuracy"]
    correct = sum(p == y for p, y in zip(result["predictions"], data.y_test.tolist()))
    assert result["int8_accuracy"] == correct / result["images"]


def test_batched_predictions_equal_one_pass(lenet5_model):
    intnet, _, _, data = quantize_checkpoint(lenet5_model)
    assert int8_predictions(intnet, data.x_test).tolist() == \
        intnet.predict(intnet.quantize_input(data.x_test)).tolist()

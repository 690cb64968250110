"""Paper 003's and paper 004's outcome classes from faulty logits."""

import torch

from neuroharden.golden.outcomes import OUTCOMES, TOLERANCE, classify, detection_class


def test_classify():
    ref = torch.tensor([[10, 0, 0], [0, 20, 0]])
    faulty = torch.stack([
        ref,                                          # masked
        torch.tensor([[10, 0, 1], [0, 20, 0]]),       # tolerable: same top-1, tiny change
        torch.tensor([[10, 0, 9], [0, 20, 0]]),       # critical (003): score drops a lot
        torch.tensor([[0, 10, 0], [0, 20, 0]]),       # critical (003 and 004): top-1 moves
    ])
    labels = torch.tensor([0, 2])
    out = classify(faulty, ref, labels, out_scale=0.5)
    assert [o["outcome"] for o in out] == ["masked", "tolerable", "critical", "critical"]
    assert [o["critical"] for o in out] == [False, False, False, True]
    assert [o["changed"] for o in out] == [0, 0, 0, 1]
    assert [o["correct"] for o in out] == [1, 1, 1, 0]
    assert out[1]["tolerable_images"] == 1 and out[1]["masked_images"] == 1
    assert all(o["masked_images"] + o["tolerable_images"] + o["critical_images"] == 2
               for o in out)


def test_the_score_ratio_bound_is_the_tolerance():
    ref = torch.tensor([[4, 0]])
    faulty = torch.tensor([[[2, 0]]])  # same top-1, a lower top-1 probability
    p = torch.softmax(torch.tensor([[4.0, 0.0], [2.0, 0.0]], dtype=torch.float64), -1)
    ratio = float(p[1, 0] / p[0, 0])
    assert TOLERANCE > ratio  # paper 003's 0.95 calls this drop critical
    assert classify(faulty, ref)[0]["outcome"] == "critical"
    assert classify(faulty, ref, tolerance=ratio)[0]["outcome"] == "tolerable"
    # Logits are dequantized before the softmax: a smaller LSB, a smaller drop.
    assert classify(faulty, ref, out_scale=0.01)[0]["outcome"] == "tolerable"


def test_without_labels_nothing_is_counted_correct():
    ref = torch.tensor([[1, 2, 3]])
    out = classify(ref.unsqueeze(0), ref)
    assert out == [{"outcome": "masked", "critical": False, "changed": 0,
                    "masked_images": 1, "tolerable_images": 0, "critical_images": 0,
                    "correct": None}]
    assert out[0]["outcome"] == OUTCOMES[0]


def test_detection_classes_cross_changed_logits_with_the_hardware_flags():
    assert [detection_class(outcome, detected)
            for outcome, detected in (("masked", 0), ("masked", 3), ("tolerable", 1),
                                      ("critical", 0), ("tolerable", 0))] \
        == ["masked", "corrected", "due", "sdc", "sdc"]

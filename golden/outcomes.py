"""Outcome classes of a fault: paper 003's masked / tolerable / critical and paper 004's.

Per (fault, image), with ``Y`` the fault-free int8 logits and ``Y~`` the faulty ones:

* the *score* of an output is the softmax probability of its top-1 class, computed on the
  dequantized logits (``logit * out_scale`` of the last layer) in float64: paper 003
  compares probability vectors, and a raw int8 logit can be negative or zero, which makes
  its ratio meaningless;
* *masked*: ``Y~ == Y`` exactly (paper 003);
* *critical* (paper 003): top-1 changes, or ``score(Y~) / score(Y) < 0.95``;
* *tolerable*: otherwise (same top-1, ratio ``>= 0.95``; the paper leaves exactly 0.95
  open, the project reads it as "not below 0.95").

Per fault, paper 003's class is the worst class over the images: critical if it is
critical on at least one image, else tolerable if it changes the logits of at least one
image, else masked. Paper 004's *critical fault* is a fault for which the top-1 class
differs from the fault-free top-1 on at least one image; the number of such images is
kept too (``changed``). ``correct`` counts images whose faulty top-1 equals the label,
from which a campaign's accuracy loss (paper 004: fault-free accuracy minus the mean
faulty accuracy over the faults, :func:`golden.campaign.summarize`) is computed. Top-1 is
``argmax`` with ties to the lowest index, as :meth:`golden.intmodel.IntNet.predict`.

Every campaign classifies with :func:`classify`: the model level
(:mod:`golden.injection`), the RTL accelerator and the stuck-at weight experiment.

An RTL campaign also knows whether the hardware *detected* a fault: the protection unit
flagged an output row of the faulty run (an LCU pair whose halves differ, a TMR triple
that is not unanimous; :data:`hw.contract.ERROR_FLAGS`, the AXI accelerator's error
counters). :func:`detection_class` then gives the standard reliability category:
*masked* (logits unchanged, nothing flagged), *corrected* (unchanged, flagged: detected
and corrected), *DUE* (changed, flagged: a detected unrecoverable error) or *SDC*
(changed, nothing flagged: silent data corruption), where "changed" means paper 003's
class is not masked.
"""

import torch

__all__ = ["TOLERANCE", "OUTCOMES", "DETECTION_CLASSES", "classify", "detection_class"]

#: Paper 003's tolerance on the ratio of top-1 scores.
TOLERANCE = 0.95
#: Paper 003's classes, in increasing severity.
OUTCOMES = ("masked", "tolerable", "critical")
#: The reliability categories of a fault the hardware may detect (module docstring).
DETECTION_CLASSES = ("masked", "corrected", "due", "sdc")


def classify(faulty, reference, labels=None, out_scale=1.0, tolerance=TOLERANCE):
    """Classify faults from their logits (see the module docstring).

    Parameters
    ----------
    faulty : torch.Tensor
        int ``[F, B, classes]`` faulty logits.
    reference : torch.Tensor
        int ``[B, classes]`` fault-free logits.
    labels : torch.Tensor, optional
        ``[B]`` labels for the ``correct`` counts.
    out_scale : float
        Real value of one logit LSB (dequantization before the softmax).
    tolerance : float
        Paper 003's bound on the ratio of top-1 scores.

    Returns
    -------
    list of dict
        Per fault: ``outcome`` (paper 003 class), ``critical`` (paper 004, bool),
        ``changed`` (images whose top-1 changed), ``masked_images``,
        ``tolerable_images``, ``critical_images`` and ``correct`` (faulty top-1 equals
        the label; ``None`` without labels).
    """
    same = (faulty == reference.unsqueeze(0)).all(-1)                    # [F, B]
    top_ref = reference.argmax(-1)
    top = faulty.argmax(-1)
    p_ref = torch.softmax(reference.double() * out_scale, -1).amax(-1)
    p = torch.softmax(faulty.double() * out_scale, -1).amax(-1)
    changed = top != top_ref.unsqueeze(0)
    critical_img = (changed | (p / p_ref.unsqueeze(0) < tolerance)) & ~same
    tolerable_img = ~same & ~critical_img
    n_changed = changed.sum(1).tolist()
    n_masked = same.sum(1).tolist()
    n_crit = critical_img.sum(1).tolist()
    n_tol = tolerable_img.sum(1).tolist()
    correct = ((top == labels.unsqueeze(0)).sum(1).tolist() if labels is not None
               else [None] * faulty.shape[0])
    out = []
    for f in range(faulty.shape[0]):
        outcome = ("critical" if n_crit[f] else "tolerable" if n_tol[f] else "masked")
        out.append({"outcome": outcome, "critical": n_changed[f] > 0,
                    "changed": n_changed[f], "masked_images": n_masked[f],
                    "tolerable_images": n_tol[f], "critical_images": n_crit[f],
                    "correct": correct[f]})
    return out


def detection_class(outcome, detected):
    """The reliability category of one fault (see the module docstring).

    Parameters
    ----------
    outcome : str
        Paper 003's class of the fault (:data:`OUTCOMES`).
    detected : int or bool
        Error flags the protection raised in the faulty run (nonzero: detected).

    Returns
    -------
    str
        One of :data:`DETECTION_CLASSES`.
    """
    changed = outcome != "masked"
    if detected:
        return "due" if changed else "corrected"
    return "sdc" if changed else "masked"

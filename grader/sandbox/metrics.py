"""Training-set loss and accuracy for the labs' training loops (harnesses), which run in the
sandbox with the student's module.

They live in the package, not in a lab's ``harness.py``, because a harness ships in the lab's
student edition, and the mean cross-entropy and argmax accuracy of predicted probabilities are
what mlp-backprop asks its students to write (``loss_accuracy``): an edition must not hand them
the answer. The curves they give are shown, never graded (the verdict is the test accuracy the
grader computes).
"""

from __future__ import annotations

from typing import Any


def probability_metrics(probabilities: Any, labels: Any) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of rows of class probabilities against integer labels."""
    import torch

    p = probabilities.detach().double()
    loss = -torch.log(p[torch.arange(len(labels)), labels]).mean()
    return float(loss), float((p.argmax(1) == labels).double().mean())

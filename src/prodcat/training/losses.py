"""Training losses per label format.

- single / path (one class per product): cross-entropy, optionally class-
  weighted ("balanced": a class's weight is n / (n_classes * its count)), or
  focal loss (Lin et al. 2017), which down-weights examples the model already
  gets right so the rare, hard ones drive learning.
- multi (an indicator per class): binary cross-entropy on logits; "balanced"
  sets each class's pos_weight to negatives / positives.

    >>> import torch
    >>> loss = make_loss("single", n_classes=3, targets=np.array([0, 0, 1, 2]), kind="ce")
    >>> round(float(loss(torch.zeros(2, 3), torch.tensor([0, 1]))), 4)
    1.0986
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def balanced_class_weights(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (n_classes_present * count) per class, as scikit-learn's "balanced"; 0 for absent classes."""
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes, dtype=np.float64)
    weights[present] = len(targets) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def balanced_pos_weight(targets: np.ndarray) -> np.ndarray:
    """negatives / positives per label (1 for a label never or always on, where the ratio means nothing)."""
    positives = targets.sum(axis=0).astype(np.float64)
    negatives = len(targets) - positives
    usable = (positives > 0) & (negatives > 0)
    weights = np.ones(targets.shape[1], dtype=np.float64)
    weights[usable] = negatives[usable] / positives[usable]
    return weights.astype(np.float32)


class FocalLoss(torch.nn.Module):
    """Mean of -w_y (1 - p_y)^gamma log p_y over the batch (w: optional class weights)."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=-1).gather(1, target[:, None]).squeeze(1)
        loss = -((1.0 - log_p.exp()) ** self.gamma) * log_p
        if self.weight is not None:
            w = self.weight[target]
            return (loss * w).sum() / w.sum().clamp_min(1e-12)
        return loss.mean()


class _FloatTargetsBCE(torch.nn.Module):
    def __init__(self, pos_weight: torch.Tensor | None):
        super().__init__()
        self.inner = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.inner(logits.float(), target.float())


class _FloatLogitsCE(torch.nn.CrossEntropyLoss):
    # Under fp16/bf16 autocast the logits come in low precision; the loss is
    # computed in float32 either way.
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(logits.float(), target)


def make_loss(
    label_format: str,
    n_classes: int,
    targets: np.ndarray,
    *,
    kind: str = "ce",
    class_weight: str | None = None,
    focal_gamma: float = 2.0,
) -> torch.nn.Module:
    """The loss for a label format; `targets` (the training targets) set the class weights.

    kind: "ce" or "focal" (single / path; multi-label always uses BCE).
    class_weight: None or "balanced".
    """
    if label_format == "multi":
        pos_weight = torch.from_numpy(balanced_pos_weight(targets)) if class_weight == "balanced" else None
        return _FloatTargetsBCE(pos_weight)
    weight = torch.from_numpy(balanced_class_weights(targets, n_classes)) if class_weight == "balanced" else None
    if kind == "focal":
        return FocalLoss(focal_gamma, weight)
    return _FloatLogitsCE(weight=weight)

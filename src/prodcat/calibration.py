"""Calibrated probabilities from a model's raw scores, fitted on held-out data.

- single / path: temperature scaling, softmax(scores / T). One parameter, so
  it cannot overfit a small validation set, and it never changes the argmax.
- multi: Platt scaling, sigmoid(a * score + b), one slope and intercept
  shared by all classes (per-class thresholds are the facade's job).

A calibration is a small JSON-able dict, saved with the model:

    >>> import numpy as np
    >>> scores = np.array([[8.0, 0.0], [0.0, 8.0], [8.0, 0.0], [0.0, 8.0]], dtype=np.float32)
    >>> calibration = calibrate_scores(scores, np.array([0, 1, 1, 1]), multi=False)  # one confident mistake
    >>> calibration["kind"], calibration["temperature"] > 1.0  # so softened
    ('temperature', True)
    >>> apply_calibration(scores, calibration, multi=False).argmax(axis=1)
    array([0, 1, 0, 1])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, log_expit, logsumexp

from prodcat.errors import ModelDirError


def fit_temperature(scores: np.ndarray, y: np.ndarray) -> float:
    """T minimising the NLL of softmax(scores / T) on (scores, y), against targets
    smoothed as Platt's are: the true class (n + 1) / (n + 2) for n products, the
    rest shared by the row's other classes.

    Without the smoothing, a validation split the model gets all right (a small
    catalog whose words give the class away) drove T toward 0: every probability
    became 0 or 1, a product unlike any seen was predicted at confidence 1.0 and
    nothing needed review.

    scores may hold -inf for classes a model could not predict; rows whose true
    class is -inf are the caller's to leave out.
    """
    s = scores.astype(np.float64)
    rows = np.arange(len(y))
    others = np.isfinite(s)
    others[rows, y] = False
    n_others = others.sum(axis=1, keepdims=True)
    spread = 1.0 / (len(y) + 2)
    target = np.where(others, spread / np.maximum(n_others, 1), 0.0)
    target[rows, y] = np.where(n_others[:, 0] > 0, 1.0 - spread, 1.0)
    # sum_k target_k * s_k, where a class of target 0 may score -inf
    target_score = np.where(target > 0, target * np.where(np.isfinite(s), s, 0.0), 0.0).sum(axis=1)

    def nll(log_t: float) -> float:
        inv = math.exp(-log_t)
        return float(np.mean(logsumexp(s * inv, axis=1) - target_score * inv))

    best = minimize_scalar(nll, bounds=(math.log(1e-3), math.log(1e2)), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(best.x))


def fit_platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Shared (a, b) minimising the log loss of sigmoid(a * score + b) over all
    (product, label) pairs given (1-D arrays of equal length)."""
    s, t = scores.astype(np.float64), y.astype(np.float64)
    # Platt's smoothed targets keep a separable validation set from driving the
    # slope to infinity.
    n_pos, n_neg = t.sum(), len(t) - t.sum()
    t = np.where(t > 0, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
        z = ab[0] * s + ab[1]
        value = -np.mean(t * log_expit(z) + (1 - t) * log_expit(-z))
        g = expit(z) - t
        return float(value), np.array([np.mean(g * s), np.mean(g)])

    res = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def identity_calibration(multi: bool) -> dict[str, Any]:
    """No calibration (no held-out data): softmax(scores) or sigmoid(scores) as they are."""
    if multi:
        return {"kind": "platt", "slope": 1.0, "intercept": 0.0, "fitted_on": "none (no validation split)"}
    return {"kind": "temperature", "temperature": 1.0, "fitted_on": "none (no validation split)"}


def calibrate_scores(scores: np.ndarray, y: np.ndarray, multi: bool) -> dict[str, Any]:
    """Fit a calibration on held-out scores (n, n_classes) and targets.

    y: class ids (single / path) or an indicator matrix (multi). Falls back to
    `identity_calibration` when the held-out data cannot fit one (no rows, or
    multi-label targets all equal).
    """
    if len(y) == 0:
        return identity_calibration(multi)
    if multi:
        flat_scores, flat_y = np.asarray(scores).ravel(), np.asarray(y).ravel()
        if flat_y.min() == flat_y.max():
            return identity_calibration(multi)
        a, b = fit_platt(flat_scores, flat_y)
        return {"kind": "platt", "slope": a, "intercept": b, "fitted_on": f"{len(flat_y)} pairs"}
    return {"kind": "temperature", "temperature": fit_temperature(scores, np.asarray(y)), "fitted_on": f"{len(y)} products"}


def checked_calibration(calibration: Any, multi: bool) -> dict[str, Any]:
    """A saved calibration, as a copy, once it holds what `apply_calibration` reads for `multi`.

    Loading calls it: a calibration edited by hand, or of a model whose label
    format was edited, would otherwise load and fail on the first product.
    """
    kind, numbers = ("platt", ("slope", "intercept")) if multi else ("temperature", ("temperature",))
    labels = "multi-label" if multi else "single or path"
    if not isinstance(calibration, dict) or calibration.get("kind", kind) != kind:
        shown = calibration.get("kind") if isinstance(calibration, dict) else calibration
        raise ModelDirError(f"a {labels} model needs a {kind} calibration, the saved one is {shown!r}")
    for name in numbers:
        value = calibration.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ModelDirError(f"the {kind} calibration's {name} must be a finite number, got {value!r}")
    if not multi and calibration["temperature"] <= 0:
        raise ModelDirError(f"the temperature calibration's temperature must be above 0, got {calibration['temperature']!r}")
    return dict(calibration)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax (float64 in, float64 out), stable for large scores."""
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def apply_calibration(scores: np.ndarray, calibration: dict[str, Any], multi: bool) -> np.ndarray:
    """Probabilities (n, n_classes) float32 from raw scores and a calibration dict."""
    s = np.asarray(scores, dtype=np.float64)
    if multi:
        return expit(calibration["slope"] * s + calibration["intercept"]).astype(np.float32)
    return softmax(s / calibration["temperature"]).astype(np.float32)

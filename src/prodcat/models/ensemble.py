"""`ensemble`: several registered models trained together and combined into one.

Any registered models can be members: a text model with an image model
(`tfidf-linear,image-pretrained`), or two text models (`tfidf-linear,bert`).
The ensemble trains every member itself on the training products and saves
them all in its own state, so it is one self-contained model directory that
predicts like any other model.

Two ways to combine the members' probabilities:

- `average` (default): a weighted average. The weights are tuned on the
  validation split by a grid over the simplex (steps of 0.05 for 2 members,
  0.1 for 3, 0.25 beyond), keeping the weights with the lowest validation
  Brier score (see `tune_weights` for why not macro-F1). Without a validation
  split the members weigh the same; `weights` fixes them.
- `stacking`: a meta-model learns how to combine them. Each member is trained
  `folds` times on the other folds of the training products (folds grouped by
  normalized text, so duplicates never sit on both sides; stratified by class)
  and predicts the held-out fold; a logistic regression learns from these
  out-of-fold probabilities (single / path: leaving out the products whose
  class their fold's members never saw, see `_seen_by_fold`); then the
  members are trained again on all the training products. The meta-model's
  probabilities are temperature-scaled (Platt for multi-label) on the
  validation split when there is one.
  single / path: log-linear pooling, one weight per member on its
  log-probabilities plus one bias per class, fitted by cross-entropy
  (unweighted: the members are already class-weighted): few parameters, so
  it holds up on small catalogs with many classes where a full multinomial
  regression over members x classes features over-fits. multi: one binary
  logistic regression per class on the members' logits for that class
  (members x classes features would make one model per class far too wide).

A member that cannot read a product (an image model on a product without a
usable image: its `predict_proba_masked` mask is False) does not count on that
row: `average` gives it weight 0 and renormalizes the others; `stacking`
replaces its block of features by the mean of the available members' blocks
(multi-label: and tells each per-class regression through an availability
indicator). So a product
without an image falls back to its text.

Settings:
    members: registered model names (at least 2), a list or "a,b" text.
    method: "average" or "stacking".
    member_params: {member name: its settings}; members not named get their
        defaults. A repeated name can be told apart as "bow#2".
    folds: stacking's out-of-fold folds (at least 2).
    weights: None (tuned on validation) or one fixed weight per member
        (average only).

    >>> model = Ensemble(members="tfidf-linear,bow", member_params={"bow": {"epochs": 2}})
    >>> model.get_params()["members"], model.get_params()["method"]
    (['tfidf-linear', 'bow'], 'average')
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from prodcat.artifacts import MANIFEST, STATE
from prodcat.calibration import apply_calibration, calibrate_scores, checked_calibration, identity_calibration
from prodcat.catalog.normalize import product_keys
from prodcat.catalog.products import Products
from prodcat.catalog.split import grouped_folds
from prodcat.console import Reporter
from prodcat.errors import ConfigError, ModelDirError, SavedSettingsError
from prodcat.labels import LabelSpace
from prodcat.models import EXPORTED_MODEL, create_model, get_model_class, register
from prodcat.models.base import CategorizerModel, FitContext
from prodcat.thresholds import choose_multilabel_thresholds

STATE_VERSION = 1

DEFAULTS: dict[str, Any] = {
    # Two text models that need nothing but titles, so it trains on any catalog;
    # not a better model: tfidf-linear + bow was below tfidf-linear alone on six of
    # nine splits (docs/benchmarks.md). With photos: "tfidf-linear,image-pretrained".
    "members": ["tfidf-linear", "bow"],
    "method": "average",
    "member_params": {},
    "folds": 3,
    "weights": None,
}
METHODS = ("average", "stacking")

# Inverse regularisation of the stacking meta-model. Its inputs are a few
# strongly informative, standardized columns per class; sklearn's default
# C=1 keeps it from trusting a member's confident mistakes on rare classes.
META_C = 1.0
# An L2 pull on the pooled meta-model's per-class biases: a class seen a few
# times out of fold must not get an extreme prior. With 1e-3 the biases spread
# (std 0.5-1.8) and cost up to 0.03 macro-F1 on flipkart level 2; from 1e-2
# to 1 the results were the same there and on fashion subCategory.
META_L2 = 0.1
META_MAX_ITER = 1000
# Probabilities are clipped before logs: a member's exact 0 (tfidf-linear gives
# it to a class it never saw) must not become -inf in the meta-model's features.
PROBA_FLOOR = 1e-7


def _grid_step(n_members: int) -> float:
    """Step of the weight grid: finer for fewer members (the grid grows as steps ** (members - 1))."""
    return 0.05 if n_members == 2 else 0.1 if n_members == 3 else 0.25


def simplex_grid(n_members: int, step: float) -> np.ndarray:
    """Every weight vector of non-negative multiples of `step` summing to 1, (n_points, n_members).

        >>> simplex_grid(2, 0.5).tolist()
        [[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]]
    """
    steps = round(1 / step)
    # Stars and bars: choosing the positions of n_members - 1 bars among
    # steps + n_members - 1 slots gives each composition of `steps` once.
    points = []
    for bars in itertools.combinations(range(steps + n_members - 1), n_members - 1):
        edges = (-1, *bars, steps + n_members - 1)
        points.append([edges[i + 1] - edges[i] - 1 for i in range(n_members)])
    return np.asarray(points, dtype=np.float64) / steps


# --- settings -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Member:
    """One member's registry name, display key ("bow", "bow#2") and settings."""

    name: str
    key: str
    params: dict[str, Any]
    #: 0 for the first member of its name, 1 for the second, ...: added to the seed
    occurrence: int


def _parse_members(value: Any) -> list[str]:
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
        names = [name for name in names if name]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        names = [v.strip() for v in value]
    else:
        raise ConfigError(f"ensemble: members must be a list of model names or 'a,b' text, got {value!r}")
    if len(names) < 2 or any(not name for name in names):
        raise ConfigError(f"ensemble: members must name at least 2 models, got {value!r}")
    return names


def _member_keys(names: list[str]) -> list[str]:
    """Display keys: the name, then "name#2", "name#3" for repeats."""
    seen: dict[str, int] = {}
    keys = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        keys.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return keys


def _plain(value: Any, what: str) -> Any:
    """`value` as plain JSON data (tuples become lists), or a ConfigError."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        raise ConfigError(f"ensemble: {what} must be plain data (numbers, text, lists, dicts), got {value!r}") from None


def resolve_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[_Member]]:
    """Defaults filled in, every value checked, and the members with their settings.

    ConfigError (one line) names the setting at fault; an unknown member name
    is an UnknownModelError listing the models there are.
    """
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"ensemble: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    names = _parse_members(p["members"])
    keys = _member_keys(names)
    for name in names:
        if name == "ensemble":
            raise ConfigError("ensemble: an ensemble cannot be a member of an ensemble; list its members instead")
        if not get_model_class(name).label_formats:  # raises UnknownModelError for an unknown name
            raise ConfigError(f"ensemble: member {name!r} cannot be trained (an exported model); use its source model")

    method = p["method"]
    if method not in METHODS:
        raise ConfigError(f"ensemble: method must be 'average' or 'stacking', got {method!r}")

    folds = p["folds"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"ensemble: folds must be an integer of at least 2, got {folds!r}")

    member_params = p["member_params"] if p["member_params"] is not None else {}
    if not isinstance(member_params, dict):
        raise ConfigError(f"ensemble: member_params must map member names to settings, got {member_params!r}")
    member_params = _plain(member_params, "member_params")
    for key, settings in member_params.items():
        if key not in names and key not in keys:
            raise ConfigError(f"ensemble: member_params names {key!r}, which is not a member ({', '.join(keys)})")
        if not isinstance(settings, dict):
            raise ConfigError(f"ensemble: member_params[{key!r}] must be a dict of settings, got {settings!r}")

    weights = p["weights"]
    if weights is not None:
        if method != "average":
            raise ConfigError("ensemble: weights apply to method 'average' only (stacking learns its own)")
        if (
            not isinstance(weights, (list, tuple))
            or len(weights) != len(names)
            or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
                       for w in weights)
            or sum(weights) <= 0
        ):
            raise ConfigError(
                f"ensemble: weights must be {len(names)} non-negative numbers (one per member) "
                f"with a positive sum, got {weights!r}"
            )
        weights = [float(w) for w in weights]

    members = []
    for i, (name, key) in enumerate(zip(names, keys)):
        # The name's settings apply to every member of that name; "name#2"'s to that one on top.
        settings = {**member_params.get(name, {}), **(member_params.get(key, {}) if key != name else {})}
        members.append(_Member(name, key, settings, occurrence=names[:i].count(name)))
    resolved = {"members": names, "method": method, "member_params": member_params, "folds": folds,
                "weights": weights}
    return resolved, members


# --- numbers -------------------------------------------------------------------


def _macro_f1(y: np.ndarray, decided: np.ndarray, multi: bool) -> float:
    """Macro-F1 over the classes present in the targets or the decisions (as sklearn's "macro")."""
    if len(y) == 0:
        return float("nan")
    if multi:
        t, p = y.astype(bool), decided.astype(bool)
        tp, fp, fn = (t & p).sum(axis=0), (~t & p).sum(axis=0), (t & ~p).sum(axis=0)
    else:
        n = int(max(y.max(), decided.max())) + 1
        tp = np.bincount(y[y == decided], minlength=n)
        fp = np.bincount(decided, minlength=n) - tp
        fn = np.bincount(y, minlength=n) - tp
    present = (tp + fp + fn) > 0
    f1 = 2 * tp[present] / np.maximum(2 * tp[present] + fp[present] + fn[present], 1)
    return float(f1.mean()) if present.any() else 0.0


# How the fit report's macro-F1 figures decide, as it says in "decisions".
TUNED_CUTS = "per-label thresholds tuned on the products scored"
ARGMAX = "the most probable class"


def _tuned_macro_f1(y: np.ndarray, proba: np.ndarray, label_space: LabelSpace) -> float:
    """Macro-F1 of the decisions the model would make: multi-label at per-label cuts tuned on these products.

    The facade tunes the model's cuts on validation the same way
    (`choose_multilabel_thresholds`) and scores validation with them in the
    manifest: at a plain 0.5 the fit report said 0.83 where the manifest
    said 0.89 for the same model on the same products.
    """
    multi = label_space.is_multi
    cuts = choose_multilabel_thresholds(y, proba) if multi and len(y) else None
    return _macro_f1(y, label_space.decide(proba, cuts), multi)


def _brier_score(y: np.ndarray, proba: np.ndarray, multi: bool) -> float:
    """Mean over products of the squared distance between the probabilities and the true label's 0/1 row."""
    p = proba.astype(np.float64)
    if multi:
        return float(np.mean(np.sum((p - y) ** 2, axis=1)))
    # sum_k (p_k - [k = y])^2 without a products x classes one-hot matrix
    return float(np.mean(np.sum(p * p, axis=1) - 2 * p[np.arange(len(y)), y] + 1))


def _availability(masks: list[np.ndarray | None], n: int) -> np.ndarray:
    """(n_members, n) bool: which member could read which product (None: all)."""
    return np.stack([np.ones(n, bool) if m is None else m for m in masks]) if masks else np.zeros((0, n), bool)


def average_proba(probas: list[np.ndarray], masks: list[np.ndarray | None], weights: np.ndarray,
                  multi: bool) -> np.ndarray:
    """Weighted average of member probabilities, row by row over the members that could read the product.

    On a row where a member's mask is False its weight is 0 and the others are
    renormalized. Where every available member has weight 0 they count
    equally; where no member could read the product, the plain weights
    combine their fallback rows.
    """
    n = probas[0].shape[0]
    available = _availability(masks, n)
    w = np.asarray(weights, np.float64)[:, None] * available  # (members, n)
    total = w.sum(axis=0)
    stuck = total <= 0
    if stuck.any():
        fallback = available[:, stuck].astype(np.float64)
        nobody = fallback.sum(axis=0) == 0
        fallback[:, nobody] = np.asarray(weights, np.float64)[:, None]
        w[:, stuck] = fallback
        total = w.sum(axis=0)
    w /= total
    out = np.einsum("mn,mnk->nk", w, np.stack(probas).astype(np.float64))
    if not multi:
        out /= out.sum(axis=1, keepdims=True)  # exact sums despite float32 inputs
    return out.astype(np.float32)


def tune_weights(probas: list[np.ndarray], masks: list[np.ndarray | None], y: np.ndarray,
                 multi: bool) -> np.ndarray:
    """The point of the simplex grid whose average has the lowest Brier score on (probas, y).

    Not the best macro-F1: macro-F1 of the decisions is a step function of
    the weights, and on a validation split with a handful of products in each
    rare class one product changing its decision moves it by a whole class's
    share. The search then buys that one product with a large weight on a
    weak member: on all 8,237 fashion photos (subCategory) it put 0.55 on
    image-pretrained for one such jump and lost 0.08 test macro-F1 to the text
    member alone. A proper score is smooth in the weights. Brier rather than
    log-loss because it is bounded per product: the members' temperatures
    are fitted on these same validation products, and log-loss let a few
    confident rows decide (on a fashion articleType sample it gave the photo
    member no weight at all, where 0.05 was better on the test products).
    docs/benchmarks.md has the figures.

    Among the points that tie for the lowest score, the one nearest equal
    weights wins, then the first: the score is flat along a member that no
    validation product let count (an image model where no validation product
    has a photo), and the first point of the grid then gave that member all
    the weight (0 / 1), so photos alone decided every product that had one.
    """
    grid = simplex_grid(len(probas), _grid_step(len(probas)))
    losses = np.array([_brier_score(y, average_proba(probas, masks, w, multi), multi) for w in grid])
    best_loss = losses.min()
    tied = np.flatnonzero(losses <= best_loss + 1e-12 * max(1.0, abs(best_loss)))
    spread = np.abs(grid[tied] - 1.0 / len(probas)).sum(axis=1)
    return grid[tied[np.argmin(spread)]]  # argmin: the first of equally near points


# --- the stacking meta-model ----------------------------------------------------


def _seen_by_fold(y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """(n,) bool: whether a product's class was among the training part of the fold that held it out.

    A held-out product of a class its fold's members never saw (a class with
    one or two products) has a true-class probability of about 0 from every
    member. Such rows teach the meta-model nothing about how to weigh the
    members, yet class-balanced weighting makes them count most, and fitting
    them drags the member weights to 0 and inflates rare classes' biases
    (flipkart level 2: stacking at 0.52 macro-F1 against 0.71 for its text
    member). The final members do see those classes, so they stay in the
    meta-model with a neutral bias.
    """
    seen = np.zeros(len(y), bool)
    for train_idx, held_idx in splits:
        seen[held_idx] = np.isin(y[held_idx], y[train_idx])
    return seen


def member_blocks(probas: list[np.ndarray], masks: list[np.ndarray | None], multi: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The meta-model's inputs: (members, n, classes) float64 blocks and the (members, n) availability.

    A block is a member's log-probabilities (single / path) or logits
    (multi). On a row where a member could not read the product its block is
    the mean of the available members' blocks (it then neither pulls towards
    its fallback nor leaves a hole); where no member could, blocks stay as they are.
    """
    n = probas[0].shape[0]
    p = np.stack(probas).astype(np.float64)
    if multi:
        p = np.clip(p, PROBA_FLOOR, 1 - PROBA_FLOOR)
        blocks = np.log(p) - np.log1p(-p)
    else:
        blocks = np.log(np.maximum(p, PROBA_FLOOR))
    available = _availability(masks, n)
    if not available.all():
        count = available.sum(axis=0)
        mean = np.einsum("mn,mnk->nk", available.astype(np.float64), blocks) / np.maximum(count, 1)[:, None]
        replace = ~available & (count > 0)[None, :]
        blocks = np.where(replace[:, :, None], mean[None], blocks)
    return blocks, available


def _standardizer(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=axis)
    scale = x.std(axis=axis)
    scale[scale < 1e-12] = 1.0  # a constant column (an always-available member) stays put
    return mean, scale


def _fit_pooled(blocks: np.ndarray, y: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-linear pooling: logits z_k = sum_m w_m * log p_m,k + b_k, fitted by cross-entropy.

    One weight per member and one bias per class: a multinomial regression on
    all members x classes log-probabilities has K^2 x members coefficients and
    over-fits the out-of-fold rows of a catalog with many classes and few
    products (flipkart level 2: 0.48 macro-F1 against 0.71 for its text
    member); this meta-model learns how far to trust each member and each
    class's prior, which is what stacking needs to learn.

    The rows are not class-weighted: the members were (their probabilities
    already favour rare classes), and weighting again made the rare classes'
    out-of-fold rows, where the photo member is weakest, decide the member
    weights. On the same out-of-fold rows and test products, unweighted
    pooling scored 0.935 against 0.916 macro-F1 on fashion subCategory (2,000
    photos; the image member's weight rose from 0.07 to 0.38) and 0.753
    against 0.729 on flipkart level 2.
    """
    from scipy.optimize import minimize

    n_members, n, n_classes = blocks.shape
    rows = max(n, 1)
    onehot = np.zeros((n, n_classes), np.float64)
    onehot[np.arange(n), y] = 1.0

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:n_members], theta[n_members:]
        z = np.einsum("m,mnk->nk", w, blocks) + b
        z[:, ~active] = -1e9
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -float((log_p * onehot).sum()) / rows + META_L2 * float(b @ b) / 2
        g = (np.exp(log_p) - onehot) / rows
        grad_w = np.einsum("nk,mnk->m", g, blocks)
        grad_b = g.sum(axis=0) + META_L2 * b
        return loss, np.concatenate([grad_w, grad_b])

    # Starting from an equal-weight geometric mean of the members.
    start = np.concatenate([np.full(n_members, 1.0 / n_members), np.zeros(n_classes)])
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": META_MAX_ITER})
    return result.x[:n_members].astype(np.float64), result.x[n_members:].astype(np.float64)


class _Meta:
    """The fitted meta-model as arrays, predicted with numpy (never a pickled sklearn object).

    single / path: weights (M,), intercept (K,), active (K,): log-linear
        pooling of the members' log-probabilities (see `_fit_pooled`).
    multi: coef (K, F), intercept (K,), mean / scale (K, F), active (K,),
        constant (K,) over F = members logits of the class + the indicators.
    """

    def __init__(self, multi: bool, indicators: list[int], arrays: dict[str, np.ndarray],
                 calibration: dict[str, Any]):
        self.multi, self.indicators, self.arrays, self.calibration = multi, indicators, arrays, calibration

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, blocks: np.ndarray, available: np.ndarray, y: np.ndarray, indicators: list[int],
            class_weight: str | None, seed: int, known: np.ndarray | None = None) -> _Meta:
        """known (single / path): the classes the final members are trained on
        (default: those in y); a class known but absent from y keeps bias 0."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression

        n_members, n, n_classes = blocks.shape
        indicator_cols = available[indicators].T.astype(np.float64)  # (n, J)

        def regression() -> LogisticRegression:
            return LogisticRegression(C=META_C, max_iter=META_MAX_ITER, class_weight=class_weight, random_state=seed)

        with warnings.catch_warnings():
            # max_iter reached still leaves a usable model
            warnings.simplefilter("ignore", ConvergenceWarning)
            if y.ndim == 2:
                return cls._fit_multi(blocks, indicator_cols, y, indicators, regression)
        active = np.zeros(n_classes, bool)
        active[np.unique(y) if known is None else known] = True
        weights, intercept = _fit_pooled(blocks, y, active)
        arrays = {"weights": weights, "intercept": intercept, "active": active}
        return cls(False, indicators, arrays, {})

    @classmethod
    def _fit_multi(cls, blocks, indicator_cols, y, indicators, regression) -> _Meta:
        n_members, n, n_classes = blocks.shape
        width = n_members + indicator_cols.shape[1]
        coef = np.zeros((n_classes, width), np.float64)
        intercept = np.zeros(n_classes, np.float64)
        mean = np.zeros((n_classes, width), np.float64)
        scale = np.ones((n_classes, width), np.float64)
        active = np.zeros(n_classes, bool)
        constant = np.zeros(n_classes, np.float64)
        for k in range(n_classes):
            target = y[:, k].astype(np.int64)
            if target.min() == target.max():
                # always (or never) on in training: nothing to learn, that rate it is
                constant[k] = float(target[0]) if len(target) else 0.0
                continue
            x = np.hstack([blocks[:, :, k].T, indicator_cols])
            mean[k], scale[k] = _standardizer(x, axis=0)
            lr = regression().fit((x - mean[k]) / scale[k], target)
            coef[k], intercept[k], active[k] = lr.coef_[0], lr.intercept_[0], True
        arrays = {"coef": coef, "intercept": intercept, "mean": mean, "scale": scale, "active": active,
                  "constant": constant}
        return cls(True, indicators, arrays, {})

    # -------------------------------------------------------------- predict
    def scores(self, blocks: np.ndarray, available: np.ndarray) -> np.ndarray:
        """Meta-model logits (n, K); -inf for classes it never saw (single / path)."""
        a = self.arrays
        n_members, n, n_classes = blocks.shape
        indicator_cols = available[self.indicators].T.astype(np.float64)  # (n, J)
        if not self.multi:
            z = np.einsum("m,mnk->nk", a["weights"], blocks) + a["intercept"]
            z[:, ~a["active"]] = -np.inf
            return z
        # One small regression per class, all classes at once: feature f of class k
        # is blocks[f][:, k] for a member, an indicator column otherwise.
        coef, mean, scale = a["coef"], a["mean"], a["scale"]
        z = np.broadcast_to(a["intercept"], (n, n_classes)).copy()
        for m in range(n_members):
            z += coef[:, m] * (blocks[m] - mean[:, m]) / scale[:, m]
        for j in range(indicator_cols.shape[1]):
            f = n_members + j
            z += coef[:, f] * (indicator_cols[:, j : j + 1] - mean[:, f]) / scale[:, f]
        return z

    def proba(self, blocks: np.ndarray, available: np.ndarray) -> np.ndarray:
        z = self.scores(blocks, available)
        proba = apply_calibration(z, self.calibration, self.multi)
        if self.multi:
            inactive = ~self.arrays["active"]
            proba[:, inactive] = self.arrays["constant"][inactive].astype(np.float32)
        return proba

    def calibrate(self, blocks: np.ndarray, available: np.ndarray, y: np.ndarray) -> None:
        """Temperature (single / path) or a shared Platt sigmoid (multi) on validation."""
        z = self.scores(blocks, available)
        if self.multi:
            active = self.arrays["active"]
            self.calibration = (calibrate_scores(z[:, active], y[:, active], True) if active.any()
                                else identity_calibration(True))
            return
        keep = np.isfinite(z[np.arange(len(y)), y])  # a true class the meta-model never saw cannot be scored
        self.calibration = (calibrate_scores(z[keep], y[keep], False) if keep.any()
                            else identity_calibration(False))

    # -------------------------------------------------------------- state
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"kind": "per-class" if self.multi else "pooled", "indicators": list(self.indicators),
                "calibration": dict(self.calibration)}
        arrays = {k: (v.astype(np.uint8) if v.dtype == bool else v.astype(np.float64)) for k, v in self.arrays.items()}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], n_members: int, label_space: LabelSpace
                   ) -> _Meta:
        multi = label_space.is_multi
        if meta["kind"] != ("per-class" if multi else "pooled"):
            raise ModelDirError(
                f"ensemble: a {meta['kind']!r} meta-model cannot predict {label_space.label_format} labels"
            )
        names = ("coef", "intercept", "mean", "scale", "active", "constant") if multi else ("weights", "intercept", "active")
        loaded = {}
        for name in names:
            if name not in arrays:
                raise ModelDirError(f"ensemble: saved state lacks the meta-model's {name!r}")
            array = np.asarray(arrays[name])
            loaded[name] = array.astype(bool) if name == "active" else array.astype(np.float64)
        indicators = [int(i) for i in meta["indicators"]]
        if multi:
            name, shape = "coef", (label_space.n_classes, n_members + len(indicators))
        else:
            name, shape = "weights", (n_members,)
        if loaded[name].shape != shape:
            raise ModelDirError(f"ensemble: meta-model {name} has shape {loaded[name].shape}, expected {shape}")
        return cls(multi, indicators, loaded, checked_calibration(meta["calibration"], multi))


# --- the model ------------------------------------------------------------------


@register("ensemble")
class Ensemble(CategorizerModel):
    """Registered models trained together, combined by a tuned average or a stacked meta-model.

    See the module docstring for the settings. After `fit`, `fit_report_`
    holds the weights, each member's validation macro-F1 and the ensemble's,
    and under "decisions" how those decide (multi-label: at per-label cuts
    tuned on the products scored, as the manifest's validation figures are).
    """

    def __init__(self, **params: Any):
        super().__init__(**params)
        # Checked here (member names, each member's own settings) so a bad
        # config fails before any data is read.
        self._settings, self._specs = resolve_params(self.params)
        formats = ("single", "multi", "path")
        reads_images = reads_text = resumable = False
        for spec in self._specs:
            member = create_model(spec.name, **spec.params)
            formats = tuple(f for f in formats if f in member.label_formats)
            reads_images = reads_images or member.reads_images
            reads_text = reads_text or member.reads_text
            resumable = resumable or member.resumable
        # The ensemble learns the label formats all its members can, reads
        # photos (texts) when one of its members does, and resumes when one can.
        self.label_formats = formats
        self.reads_images = reads_images
        self.reads_text = reads_text
        self.resumable = resumable
        self.members_: list[CategorizerModel] = []
        self.weights_: np.ndarray | None = None
        self._meta: _Meta | None = None
        self.fit_report_: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        return json.loads(json.dumps(self._settings))

    def check_before_fit(self, label_format: str) -> None:
        """Every member's own check (its settings for this label format), before any member trains."""
        if label_format not in self.label_formats:
            members = ", ".join(s.name for s in self._specs)
            raise ConfigError(f"ensemble: not every member ({members}) can learn {label_format!r} labels")
        for spec in self._specs:
            try:
                create_model(spec.name, **spec.params).check_before_fit(label_format)
            except ConfigError as exc:
                if spec.key == spec.name:
                    raise  # the member's message starts with its name
                raise ConfigError(f"ensemble member {spec.key}: {exc}") from None

    @property
    def member_keys(self) -> list[str]:
        """The members' display keys, as `component_proba` names them."""
        return [spec.key for spec in self._specs]

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        products: Products,
        y: np.ndarray,
        label_space: LabelSpace,
        valid: tuple[Products, np.ndarray] | None = None,
        *,
        seed: int = 0,
        class_weight: str | None = None,
        context: FitContext | None = None,
    ) -> Ensemble:
        context = context or FitContext()
        if class_weight not in (None, "balanced"):
            raise ConfigError(f"ensemble: class_weight must be None or 'balanced', got {class_weight!r}")
        # every member's refusal before the first member trains (minutes, with a neural one)
        self.check_before_fit(label_space.label_format)
        multi = label_space.is_multi
        products, y = self._usable(products, y, label_space, "training")
        if len(products) == 0:
            raise ConfigError("ensemble: no training products with a known label")
        held = None
        if valid is not None:
            v_products, v_y = self._usable(valid[0], valid[1], label_space, "validation")
            if len(v_products):
                held = (v_products, v_y)
        self.label_space = label_space
        say = Reporter(context.quiet)
        started = time.perf_counter()

        # The members, trained on all the training products (the final ones for both methods).
        self.members_ = []
        report: list[dict[str, Any]] = []
        valid_out: list[tuple[np.ndarray, np.ndarray | None]] | None = [] if held is not None else None
        for i, spec in enumerate(self._specs):
            t0 = time.perf_counter()
            member = create_model(spec.name, **spec.params)
            member.fit(products, y, label_space, valid, seed=seed + spec.occurrence, class_weight=class_weight,
                       context=self._member_context(context, i, spec))
            self.members_.append(member)
            entry: dict[str, Any] = {"member": spec.key, "fit_seconds": round(time.perf_counter() - t0, 2)}
            if valid_out is not None:
                proba, mask = self._member_output(i, held[0])
                valid_out.append((proba, mask))
                entry["valid_macro_f1"] = round(_tuned_macro_f1(held[1], proba, label_space), 6)
                if mask is not None:
                    entry["valid_readable"] = int(mask.sum())
                    entry["valid_products"] = len(mask)
            report.append(entry)
            # One line as each member finishes: with image members a run takes long.
            say.note(self._member_line(i, entry))

        self.fit_report_ = {"method": self._settings["method"], "members": report,
                            "decisions": TUNED_CUTS if multi else ARGMAX}
        if self._settings["method"] == "average":
            self._meta = None
            self.weights_ = self._choose_weights(valid_out, held[1] if held else None, multi)
            self.fit_report_["weights"] = {s.key: round(float(w), 6) for s, w in zip(self._specs, self.weights_)}
            self.fit_report_["weights_from"] = (
                "fixed" if self._settings["weights"] is not None else "tuned on validation" if held is not None
                else "equal (no validation split)"
            )
            blind = [spec.key for spec, entry in zip(self._specs, report) if entry.get("valid_readable") == 0]
            if blind and self._settings["weights"] is None and held is not None:
                self.fit_report_["untuned"] = blind
                say.warn(f"ensemble: {', '.join(blind)} could read none of the {len(held[0]):,} validation "
                         "products, so the validation split says nothing of its weight: kept near an equal share")
        else:
            self.weights_ = None
            self._meta = self._fit_stacking(products, y, label_space, valid, seed, class_weight, context, say)
            if held is not None:
                blocks, available = member_blocks([p for p, _ in valid_out], [m for _, m in valid_out], multi)
                self._meta.calibrate(blocks, available, held[1])
            else:
                self._meta.calibration = identity_calibration(multi)
        if held is not None:
            combined = self._combine([p for p, _ in valid_out], [m for _, m in valid_out])
            self.fit_report_["valid_macro_f1"] = round(_tuned_macro_f1(held[1], combined, label_space), 6)
        self.fit_report_["fit_seconds"] = round(time.perf_counter() - started, 2)
        say.note(self._summary_line())
        return self

    @staticmethod
    def _member_folder(index: int, spec: _Member, fold: int | None = None) -> str:
        return f"member-{index + 1}-{spec.name}" + (f"-fold-{fold + 1}" if fold is not None else "")

    def checkpoint_folders(self) -> list[str]:
        folds = range(self._settings["folds"]) if self._settings["method"] == "stacking" else range(0)
        found = []
        for i, spec in enumerate(self._specs):
            for inner in create_model(spec.name, **spec.params).checkpoint_folders():
                for fold in (None, *folds):
                    folder = self._member_folder(i, spec, fold)
                    found.append(folder if inner == "." else str(Path(folder) / inner))
        return found

    def _member_context(self, context: FitContext, index: int, spec: _Member, fold: int | None = None) -> FitContext:
        """The run's context with per-member folders, so TensorBoard runs and checkpoints stay apart (and resume)."""
        folder = self._member_folder(index, spec, fold)
        # dataclasses.replace keeps whatever else the context carries (device, resume, quiet, ...)
        return dataclasses.replace(
            context,
            logdir=Path(context.logdir) / folder if context.logdir else None,
            checkpoint_dir=Path(context.checkpoint_dir) / folder if context.checkpoint_dir else None,
        )

    @staticmethod
    def _usable(products: Products, y: np.ndarray, label_space: LabelSpace, part: str) -> tuple[Products, np.ndarray]:
        """The products with a known target (-1 marks a class the label space lacks)."""
        y = np.asarray(y)
        if len(y) != len(products):
            raise ConfigError(f"ensemble: {len(products)} {part} products but {len(y)} targets")
        if label_space.is_multi:
            if y.ndim != 2 or y.shape[1] != label_space.n_classes:
                raise ConfigError(f"ensemble: multi-label {part} targets must be (n, {label_space.n_classes})")
            return products, y.astype(np.uint8)
        keep = np.flatnonzero(y >= 0)
        if len(keep) == len(y):
            return products, y.astype(np.int64)
        return products.take(keep), y[keep].astype(np.int64)

    def _choose_weights(self, valid_out, y_valid, multi: bool) -> np.ndarray:
        """Fixed weights, else the best point of the simplex grid on validation, else equal weights."""
        n_members = len(self._specs)
        fixed = self._settings["weights"]
        if fixed is not None:
            w = np.asarray(fixed, np.float64)
            return w / w.sum()
        if valid_out is None:
            return np.full(n_members, 1.0 / n_members)
        return tune_weights([p for p, _ in valid_out], [m for _, m in valid_out], y_valid, multi)

    def _fit_stacking(self, products, y, label_space, valid, seed, class_weight, context, say) -> _Meta:
        """Out-of-fold probabilities of fresh members, then the meta-model on them."""
        multi = label_space.is_multi
        n, n_classes = len(products), label_space.n_classes
        # keyed as the split is: by text, else by photo, so a catalog of photos alone has folds too
        keys = product_keys(products.texts, products.images)
        splits = grouped_folds(keys, y, self._settings["folds"], seed, multi, purpose="ensemble: stacking")
        oof = [np.zeros((n, n_classes), np.float32) for _ in self._specs]
        oof_masks: list[np.ndarray | None] = [None] * len(self._specs)
        for f, (train_idx, held_idx) in enumerate(splits):
            t0 = time.perf_counter()
            part, rest = products.take(train_idx), products.take(held_idx)
            for i, spec in enumerate(self._specs):
                member = create_model(spec.name, **spec.params)
                try:
                    member.fit(part, y[train_idx], label_space, valid, seed=seed + spec.occurrence,
                               class_weight=class_weight, context=self._member_context(context, i, spec, fold=f))
                except ConfigError as exc:
                    # "none of the 35 training products has an image" read as the whole catalog's
                    # (which has photos) when only this fold's part had none
                    raise ConfigError(f"ensemble stacking fold {f + 1}/{len(splits)} (members trained on "
                                      f"{len(train_idx):,} of the {n:,} training products): {exc}") from None
                proba, mask = self._check_output(spec, member.predict_proba_masked(rest), len(rest))
                oof[i][held_idx] = proba
                if mask is not None:
                    if oof_masks[i] is None:
                        oof_masks[i] = np.ones(n, bool)
                    oof_masks[i][held_idx] = mask
            say.note(f"ensemble stacking fold {f + 1}/{len(splits)}: members trained on {len(train_idx):,} products, "
                     f"predicted {len(held_idx):,} ({time.perf_counter() - t0:.1f} s)")
        for entry, proba in zip(self.fit_report_["members"], oof):
            entry["oof_macro_f1"] = round(_tuned_macro_f1(y, proba, label_space), 6)
        self.fit_report_["folds"] = len(splits)
        blocks, available = member_blocks(oof, oof_masks, multi)
        # An indicator only for members seen to miss products: for the others it would be a constant column.
        indicators = [i for i in range(len(self._specs)) if not available[i].all()]
        if multi:
            return _Meta.fit(blocks, available, y, indicators, class_weight, seed)
        informative = _seen_by_fold(y, splits)
        if not informative.any():  # every class a singleton: nothing better to learn from
            informative[:] = True
        self.fit_report_["meta_rows"] = int(informative.sum())
        return _Meta.fit(blocks[:, informative], available[:, informative], y[informative], indicators,
                         class_weight, seed, known=np.unique(y))

    def _member_line(self, index: int, entry: dict[str, Any]) -> str:
        line = f"ensemble member {index + 1}/{len(self._specs)} {entry['member']}: "
        line += f"trained in {entry['fit_seconds']:.1f} s"
        if "valid_macro_f1" in entry:
            line += f", validation macro-F1 {entry['valid_macro_f1']:.4f}"
        if "valid_readable" in entry:
            line += f" (could read {entry['valid_readable']:,} of {entry['valid_products']:,} products)"
        return line

    def _summary_line(self) -> str:
        report = self.fit_report_
        if "weights" in report:
            how = ", ".join(f"{key} {w:.2f}" for key, w in report["weights"].items())
            line = f"ensemble (average, weights {report['weights_from']}: {how})"
        else:
            how = ", ".join(f"{m['member']} {m['oof_macro_f1']:.4f}" for m in report["members"])
            line = f"ensemble (stacking over {report['folds']} folds; out-of-fold macro-F1 {how})"
        if "valid_macro_f1" in report:
            line += f": validation macro-F1 {report['valid_macro_f1']:.4f}"
        if report.get("decisions") == TUNED_CUTS:
            line += f" (every figure at {TUNED_CUTS})"
        return line

    # ------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not self.members_ or self.label_space is None:
            raise RuntimeError("Ensemble is not fitted; call fit or from_state first")

    def _check_output(self, spec: _Member, output, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """A member's (proba, mask) as float32 (n, n_classes) and bool (n,) or None; a wrong shape is a bug there."""
        proba, mask = output
        proba = np.asarray(proba, dtype=np.float32)
        expected = (n, self.label_space.n_classes)
        if n == 0:
            return np.zeros(expected, np.float32), None
        if proba.shape != expected:
            raise RuntimeError(f"ensemble: member {spec.key} returned probabilities of shape {proba.shape}, "
                               f"expected {expected}")
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != (n,):
                raise RuntimeError(
                    f"ensemble: member {spec.key} returned a mask of shape {mask.shape}, expected {(n,)}"
                )
        return proba, mask

    def _member_output(self, index: int, products: Products) -> tuple[np.ndarray, np.ndarray | None]:
        member = self.members_[index]
        return self._check_output(self._specs[index], member.predict_proba_masked(products), len(products))

    def _combine(self, probas: list[np.ndarray], masks: list[np.ndarray | None]) -> np.ndarray:
        multi = self.label_space.is_multi
        if self._meta is None:
            return average_proba(probas, masks, self.weights_, multi)
        blocks, available = member_blocks(probas, masks, multi)
        return self._meta.proba(blocks, available)

    def _predict_all(self, products: Products) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        """Combined probabilities, the OR of the members' masks (None: all read), each member's probabilities."""
        self._check_fitted()
        if len(products) == 0:
            empty = np.zeros((0, self.label_space.n_classes), np.float32)
            return empty, None, [empty for _ in self.members_]
        outputs = [self._member_output(i, products) for i in range(len(self.members_))]
        probas, masks = [p for p, _ in outputs], [m for _, m in outputs]
        proba = self._combine(probas, masks)
        if all(m is None for m in masks):
            return proba, None, probas
        return proba, _availability(masks, len(products)).any(axis=0), probas

    def predict_proba_masked(self, products: Products) -> tuple[np.ndarray, np.ndarray | None]:
        """The combined probabilities, and which products at least one member could read (None: all)."""
        proba, mask, _ = self._predict_all(products)
        return proba, mask

    def predict_proba_with_components(self, products: Products) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Combined and per-member probabilities from one prediction by each member."""
        proba, _, probas = self._predict_all(products)
        return proba, {spec.key: p for spec, p in zip(self._specs, probas)}

    def predict_proba(self, products: Products) -> np.ndarray:
        return self.predict_proba_masked(products)[0]

    def image_stats(self):
        # Every member that reads photos read the same ones: one count says it.
        return next((s for s in (m.image_stats() for m in self.members_) if s is not None), None)

    def component_proba(self, products: Products) -> dict[str, np.ndarray]:
        """Each member's own probabilities, keyed "tfidf-linear", "image-pretrained", "bow#2", ..."""
        self._check_fitted()
        return {spec.key: self._member_output(i, products)[0] for i, spec in enumerate(self._specs)}

    # ---------------------------------------------------------- persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        members, arrays = [], {}
        for i, (spec, member) in enumerate(zip(self._specs, self.members_)):
            state, member_arrays = member.get_state()
            entry = {"name": spec.name, "key": spec.key, "params": member.get_params(), "state": state}
            if member.name == EXPORTED_MODEL:
                # `prodcat export` replaced this member's network by its ONNX graph
                entry["runtime"] = EXPORTED_MODEL
            members.append(entry)
            arrays.update({f"member{i}.{k}": v for k, v in member_arrays.items()})
        meta: dict[str, Any] = {}
        if self._meta is not None:
            meta, meta_arrays = self._meta.state()
            arrays.update({f"meta.{k}": v for k, v in meta_arrays.items()})
        state = {
            "version": STATE_VERSION,
            "method": self._settings["method"],
            "members": members,
            "weights": None if self.weights_ is None else [float(w) for w in self.weights_],
            "meta": meta,
            "fit_report": self.fit_report_,
        }
        return state, arrays

    def _check_member_settings(self, index: int, saved_member: dict[str, Any]) -> None:
        """ModelDirError where the manifest's member_params name a setting the member was not trained with.

        A member's saved settings (model_state.json) are what it was built
        and trained with, so they are the truth; the manifest's member_params
        repeat the ones the user chose, and a hand edit there changed nothing
        but what the directory claims. Only the settings the manifest names
        are compared: the saved ones hold every default of their time, and a
        default changed since must not refuse an older directory. A setting
        named as None is one the member resolves at fit (image-pretrained's
        image_size), whatever it saved.
        """
        spec = self._specs[index]
        if not spec.params:
            return
        saved, field = saved_member.get("params"), f"{STATE} members[{index}].params"
        if saved_member.get("runtime") == EXPORTED_MODEL and isinstance(saved, dict):
            # the member's own settings, kept by its export
            saved, field = saved.get("source_params"), f"{field}.source_params"
        if not isinstance(saved, dict):
            raise ModelDirError(f"{field} must be the member's settings, got {saved!r}")
        # through the member's own get_params, so (1, 2) and [1, 2] or 3 and 3.0 read the same
        named = json.loads(json.dumps(create_model(spec.name, **spec.params).get_params()))
        for key in spec.params:
            value = named.get(key, spec.params[key])
            if value is None or value == saved.get(key):
                continue
            where = spec.key if key in (self._settings["member_params"].get(spec.key) or {}) else spec.name
            raise ModelDirError(
                f"{MANIFEST} model.params.member_params[{where!r}][{key!r}] is {value!r}, but member {index + 1} "
                f"({spec.key}) was trained with {saved.get(key)!r} ({field})"
            )

    @classmethod
    def from_state(
        cls, params: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray], label_space: LabelSpace
    ) -> Ensemble:
        model = cls(**params)
        try:
            if state.get("version") != STATE_VERSION:
                raise ModelDirError(f"ensemble: state version {state.get('version')!r} is not {STATE_VERSION}")
            saved = [m["name"] for m in state["members"]]
            expected = [spec.name for spec in model._specs]
            if saved != expected:
                raise ModelDirError(f"ensemble: saved members {saved} do not match the settings' members {expected}")
            if state["method"] != model._settings["method"]:
                raise ModelDirError(f"ensemble: saved method {state['method']!r} does not match the settings")
            model.label_space = label_space
            model.members_ = []
            for i, saved_member in enumerate(state["members"]):
                prefix = f"member{i}."
                member_arrays = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
                member_cls = get_model_class(saved_member["name"])
                runtime = saved_member.get("runtime")
                if runtime is not None:
                    source_model = (saved_member.get("params") or {}).get("source_model")
                    if runtime != EXPORTED_MODEL or source_model != saved_member["name"]:
                        raise ModelDirError(
                            f"ensemble: member {saved_member['name']!r} is saved as runtime {runtime!r} of "
                            f"{source_model!r}; only {EXPORTED_MODEL!r} of the member's own model loads"
                        )
                    member_cls = get_model_class(EXPORTED_MODEL)
                try:
                    member = member_cls.from_state(saved_member["params"], saved_member["state"], member_arrays,
                                                   label_space)
                except SavedSettingsError as exc:
                    # a member's settings are kept in the state file, not in the manifest
                    raise ModelDirError(f"{STATE} members[{i}].params: {exc}") from None
                model._check_member_settings(i, saved_member)
                model.members_.append(member)
            if state["method"] == "average":
                weights = np.asarray(state["weights"], np.float64)
                if weights.shape != (len(model._specs),):
                    raise ModelDirError(f"ensemble: {len(weights)} saved weights for {len(model._specs)} members")
                fixed = model._settings["weights"]
                if fixed is not None and not np.allclose(np.asarray(fixed) / sum(fixed), weights, atol=1e-6):
                    raise ModelDirError(f"{MANIFEST} model.params.weights {fixed} do not match the weights the "
                                        f"ensemble predicts with, {STATE} weights {weights.tolist()}")
                model.weights_, model._meta = weights, None
            else:
                meta_arrays = {k[len("meta."):]: v for k, v in arrays.items() if k.startswith("meta.")}
                model.weights_ = None
                model._meta = _Meta.from_state(state["meta"], meta_arrays, len(model._specs), label_space)
            model.fit_report_ = dict(state.get("fit_report") or {})
        except KeyError as exc:
            raise ModelDirError(f"ensemble: saved state lacks {exc.args[0]!r}") from None
        return model

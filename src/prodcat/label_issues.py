"""Products whose label is probably wrong, across a whole catalog.

A model cannot vouch for a label it learned, so every product is judged by a
model that never saw it: the catalog is cut into `folds` parts grouped like
the train/test split (products with the same normalized text, or the same
photo, share a part, so a copy cannot vouch for its twin), and a fresh model
of the Categorizer's kind and settings trains on the other parts (with a
validation share of its own, for early stopping and calibration, as `fit`
has) and predicts the held-out part. Confident learning (cleanlab's
`find_label_issues`, Northcutt et al. 2021) then flags the products whose
out-of-fold probabilities say another class more confidently than that class's
own products usually are, and `get_label_quality_scores` ranks them: the
out-of-fold probability of the given label (self-confidence), lowest first.

A product whose class (or one of whose tags) its fold's model never saw, a
class of one distinct text (copies of a product share a fold), is not
judged: its label would get probability 0 because the class was absent, not
because it is wrong. Nor is a product with nothing the model reads (no
text; for a model of photos, no photo). Such products stay out of confident
learning and are marked `judged = False`.

    >>> issues = Categorizer(text_cols=["title"], label_col="category").find_label_issues("catalog.csv")  # doctest: +SKIP
    >>> issues[issues["label_issue"]].sort_values("label_quality")                                      # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from prodcat.catalog.normalize import product_keys
from prodcat.catalog.products import Catalog
from prodcat.catalog.split import grouped_folds
from prodcat.console import Reporter
from prodcat.errors import ConfigError, LabelError
from prodcat.labels import LabelSpace, label_name
from prodcat.models import create_model
from prodcat.models.base import FitContext

if TYPE_CHECKING:
    from prodcat.categorizer import Categorizer

#: cleanlab's filter (see benchmarks/bench_label_issues.py for what the choice trades)
FILTER_BY = "prune_by_noise_rate"
#: the columns the table adds to the catalog's id columns (an id column named like one is written `id:NAME`);
#: `photo` only for a catalog with an image column
COLUMNS = ["row", "text", "photo", "label", "suggested", "suggested_probability", "label_quality", "judged",
           "label_issue"]


@dataclass
class OutOfFold:
    """Each product's probabilities from the model of the fold that held it out."""

    proba: np.ndarray  # (n, n_classes) over the whole catalog's classes
    judged: np.ndarray  # (n,) bool: its fold's model had learned the product's class (every tag)
    folds: int


def check_folds(folds: object) -> int:
    # a numpy integer (from np.arange) is the whole number it stands for
    if isinstance(folds, bool) or not isinstance(folds, Integral) or folds < 2:
        raise ConfigError(f"folds must be an integer of at least 2, got {folds!r}")
    return int(folds)


def check_valid_size(valid_size: object) -> None:
    # fit refuses it when splitting; here 1.5 or -0.1 would quietly mean no validation share
    # ("0.1", a string, failed on the comparison with a TypeError)
    if valid_size is not None and (isinstance(valid_size, bool) or not isinstance(valid_size, Real)
                                   or not 0 <= valid_size < 1):
        raise ConfigError(f"valid size must be a fraction from 0 up to (not including) 1, got {valid_size!r}")


def out_of_fold_proba(clf: Categorizer, catalog: Catalog, space: LabelSpace, *, folds: int,
                      class_weight: str | None, say: Reporter) -> OutOfFold:
    """Train `folds` fresh models of the Categorizer's kind, each predicting the part it did not see."""
    multi = space.is_multi
    keys = product_keys(catalog.products.texts, catalog.products.images)
    y = space.encode(catalog.labels)
    splits = grouped_folds(keys, y, folds, clf.seed, multi, purpose="finding label issues")
    index = space.index()
    proba = np.zeros((len(catalog), space.n_classes), np.float32)
    judged = np.zeros(len(catalog), bool)
    warned = False
    for f, (train_idx, held_idx) in enumerate(splits):
        fit_idx, valid_idx = _validation_share(keys, y, train_idx, clf.valid_size, clf.seed, multi)
        part = catalog.take(fit_idx)
        try:
            fold_space = LabelSpace.from_labels(part.labels, space.label_format, where=catalog.source)
        except LabelError:
            # Each class of 2 or more distinct texts is in every fold's training part, so fewer folds
            # would not help: what is too small are the classes held out whole.
            left = {tag for label in part.labels for tag in label} if multi else set(space.names(part.labels))
            gone = [name for name in space.classes if name not in left]
            raise ConfigError(
                f"{catalog.source}: once the products of {', '.join(map(repr, gone[:3]))}"
                f"{' ...' if len(gone) > 3 else ''} are held out, only {', '.join(map(repr, sorted(left)))} is "
                "left to train on; finding label issues needs at least two classes of 2 or more distinct texts"
            ) from None
        valid = None
        if len(valid_idx):
            held_out = catalog.take(valid_idx)
            y_valid = fold_space.encode(held_out.labels)
            known = np.ones(len(held_out), bool) if multi else y_valid >= 0
            if known.any():
                valid = (held_out.products.take(np.flatnonzero(known)), y_valid[known])
        model = create_model(clf.model, **(clf.params or {}))
        if valid is None and model.resumable and not warned:
            # as fit says it: a neural judge would run its whole epoch budget in every fold, unnoticed
            warned = True
            from prodcat.categorizer import no_validation_reason

            say.warn(f"no validation products in a fold ({no_validation_reason(clf.valid_size)}): each {clf.model} trains every epoch of its budget "
                     "without early stopping and is not calibrated")
        with say.step(f"fold {f + 1} of {len(splits)}: training {clf.model} on {len(part):,} products, "
                      f"predicting {len(held_idx):,}"):
            model.fit(part.products, fold_space.encode(part.labels), fold_space, valid=valid, seed=clf.seed,
                      class_weight=class_weight, context=FitContext(device=clf.device, quiet=clf.quiet))
            held = catalog.take(held_idx)
            columns = [index[name] for name in fold_space.classes]
            proba[np.ix_(held_idx, columns)] = model.predict_proba(held.products)
        # a product with nothing the judge reads would be judged by its biases alone (on a
        # skewed catalog: the largest class, certain), and flagged as mislabeled for it
        blank = held.products.reads_nothing(text=model.reads_text, images=model.reads_images)
        judged[held_idx] = fold_space.knows(held.labels) & ~blank
    return OutOfFold(proba, judged, len(splits))


def _validation_share(keys: list[str], y: np.ndarray, train_idx: np.ndarray, valid_size: float | None, seed: int,
                      multi: bool) -> tuple[np.ndarray, np.ndarray]:
    """(fit, validation) indices of a fold's training part: about `valid_size` of its groups held out."""
    if not valid_size or valid_size <= 0:
        return train_idx, train_idx[:0]
    parts = round(1 / valid_size)
    distinct = len(set(keys[i] for i in train_idx))
    if parts < 2 or distinct < 2 * parts:
        return train_idx, train_idx[:0]
    fit, valid = grouped_folds([keys[i] for i in train_idx], y[train_idx], parts, seed + 1, multi)[0]
    # A class whose every product went to validation would be unknown to the model judging its
    # other products: those products go back to training, as the train/test split keeps them.
    if multi:
        taught = y[train_idx[fit]].any(axis=0)
        back = (y[train_idx[valid]] & ~taught).any(axis=1)
    else:
        back = ~np.isin(y[train_idx[valid]], y[train_idx[fit]])
    return np.sort(np.r_[train_idx[fit], train_idx[valid][back]]), train_idx[valid][~back]


def confident_learning(space: LabelSpace, y: np.ndarray, oof: OutOfFold, *, filter_by: str = FILTER_BY
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(label_issue, label_quality) per product from cleanlab; unjudged products: False, NaN."""
    from cleanlab.filter import find_label_issues

    issue = np.zeros(len(y), bool)
    quality = np.full(len(y), np.nan)
    rows = np.flatnonzero(oof.judged)
    proba = oof.proba[rows].astype(np.float64)
    if space.is_multi:
        from cleanlab.multilabel_classification.rank import get_label_quality_scores

        labels = [np.flatnonzero(row).tolist() for row in y[rows]]
        proba = np.clip(proba, 0.0, 1.0)
    else:
        from cleanlab.rank import get_label_quality_scores

        labels = y[rows]
        proba = proba / np.clip(proba.sum(axis=1, keepdims=True), 1e-12, None)
    if len(rows) < 2 or len({c for label in labels for c in np.atleast_1d(label)}) < 2:
        return issue, quality  # one class judged: nothing to confuse it with
    with warnings.catch_warnings():
        # "may not flag all label issues in class: k, it has too few examples": the report
        # counts the products not judged; cleanlab's per-class notes would only repeat it
        warnings.simplefilter("ignore")
        if space.is_multi:
            # cleanlab refuses a tag every judged product has (its yes/no labels hold one value);
            # with no product lacking it, no label of it can be doubted, so the search leaves it out
            searched = np.flatnonzero(~y[rows].all(axis=0))
            if len(searched):
                issue[rows] = find_label_issues([np.flatnonzero(row).tolist() for row in y[rows][:, searched]],
                                                proba[:, searched], filter_by=filter_by, multi_label=True, n_jobs=1)
        else:
            issue[rows] = find_label_issues(labels, proba, filter_by=filter_by, n_jobs=1)
        quality[rows] = get_label_quality_scores(labels, proba)
    return issue, quality


def issues_table(catalog: Catalog, space: LabelSpace, oof: OutOfFold, issue: np.ndarray,
                 quality: np.ndarray) -> pd.DataFrame:
    """One row per product, in catalog order: its id columns, then `COLUMNS`."""
    from prodcat.categorizer import id_output_names

    decided = space.decide(oof.proba)
    if space.is_multi:
        suggested_probability = np.array([float(p[row == 1].min()) for p, row in zip(oof.proba, decided)])
    else:
        suggested_probability = oof.proba[np.arange(len(decided)), decided].astype(np.float64)
    table = pd.DataFrame({name: catalog.frame[column].to_numpy()
                          for column, name in id_output_names(catalog.mapping.id_cols, COLUMNS).items()})
    table["row"] = catalog.row_numbers()  # the file's rows, where rows without label or text were left out
    table["text"] = catalog.products.texts
    if catalog.products.images is not None:
        # the photo as read, for the person checking the label (bytes given in a DataFrame: not shown)
        table["photo"] = [image if isinstance(image, str) else "" for image in catalog.products.images]
    table["label"] = [label_name(label, space.label_format) for label in catalog.labels]
    table["suggested"] = space.decisions_to_names(decided)
    table["suggested_probability"] = np.round(suggested_probability, 6)
    table["label_quality"] = np.round(quality, 6)
    table["judged"] = oof.judged
    table["label_issue"] = issue
    table.attrs.update(folds=oof.folds, source=catalog.source, issues=int(issue.sum()),
                       not_judged=int((~oof.judged).sum()))
    return table


def check_issues_out(out: str | Path, data: object) -> str:
    """The output format of `out`, refused before any work when it cannot be written."""
    from prodcat.categorizer import table_file_format

    return table_file_format(Path(out), Path(data) if isinstance(data, (str, Path)) else None, "label issues")


def write_issues(table: pd.DataFrame, out: str | Path, out_format: str, *, excel: str | None = None) -> None:
    """The table into `out`, appearing only when complete (excel: see `PredictionSink`)."""
    from prodcat.categorizer import PredictionSink

    sink = PredictionSink(Path(out), out_format, excel=excel)
    try:
        sink.write(table)
    except BaseException:
        sink.discard()
        raise
    sink.commit()


def worst_first(table: pd.DataFrame, *, flagged_only: bool = True) -> pd.DataFrame:
    """The flagged products (or every product), the most doubtful label first; not judged last."""
    rows = table[table["label_issue"]] if flagged_only else table
    return rows.sort_values("label_quality", kind="stable", na_position="last").reset_index(drop=True)

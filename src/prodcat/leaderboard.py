"""Several models trained and scored on one split: which is best for this catalog?

Every model gets the same seed, hence the same train / validation / test
split (it depends on the catalog and the seed only), and is scored on the
same test products. One row per model: test macro-F1 and accuracy,
validation macro-F1, training seconds, prediction speed on the test products
and the size of its saved model directory.

    >>> from prodcat.leaderboard import leaderboard
    >>> board = leaderboard("catalog.csv", models=["tfidf-linear", "bow", "lstm"],
    ...                     text_cols=["title"], label_col="category",
    ...                     params_by_model={"lstm": {"epochs": 5}})          # doctest: +SKIP
    >>> board[["model", "test_macro_f1", "products_per_second"]]           # doctest: +SKIP
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from prodcat.artifacts import check_model_dir_target, check_no_interrupted_run, check_output_dir
from prodcat.errors import ConfigError, Interrupted

COLUMNS = (
    "model", "test_macro_f1", "test_accuracy", "validation_macro_f1", "test_n",
    "fit_seconds", "products_per_second", "size_bytes", "path",
)

#: test parts smaller than this are predicted 3 times for the speed column
SPEED_REPEAT_BELOW = 10_000


def model_settings(name: str) -> set[str]:
    """The setting names a registered model takes from a value shared by several models.

    All it accepts but its `unshared_settings` (bow's max_length, which it
    does not use; tfidf-linear's batch_size, which means something else there).
    """
    from prodcat.models import get_model_class

    cls = get_model_class(name)
    return set(cls().get_params()) - cls.unshared_settings


def models_taking(setting: str) -> list[str]:
    """The registered models (not ensemble, which hands it to its members) a shared `setting` goes to.

        >>> models_taking("freeze_embeddings")
        ['bert']
    """
    from prodcat.models import available_models, get_model_class

    return [name for name in available_models()
            if name != "ensemble" and get_model_class(name).label_formats and setting in model_settings(name)]


#: settings whose value names something of one model's own: a checkpoint is a text model
#: for bert and an image model for image-pretrained, freeze_layers counts transformer
#: layers for one and backbone blocks for the other. One value cannot go to two models.
ONE_MODELS_VALUE = ("checkpoint", "freeze_layers")


def split_shared_params(models: Sequence[str], shared: dict[str, Any],
                        own_value: str = "--param NAME.SETTING=VALUE") -> dict[str, dict[str, Any]]:
    """Give each shared setting (e.g. epochs) to the models that have it.

    A setting no model has is an error (a typo would otherwise do nothing), and
    so is one of ONE_MODELS_VALUE that several models have: the second would
    fail on it, after the first had trained. `own_value` says how to give each
    model its own value instead.
    """
    known = {name: model_settings(name) for name in models}
    unused = sorted(k for k in shared if not any(k in keys for keys in known.values()))
    if unused:
        raise ConfigError(f"no model among {', '.join(models)} has the setting(s) {', '.join(map(repr, unused))}")
    for key in ONE_MODELS_VALUE:
        takers = [name for name in models if key in known[name]]
        if key in shared and len(takers) > 1:
            raise ConfigError(f"--{key.replace('_', '-')} would go to both {takers[0]} and {takers[1]}, which read it "
                              f"differently; give each its own with {own_value}")
    return {name: {k: v for k, v in shared.items() if k in known[name]} for name in models}


def leaderboard(
    data: Any,
    models: Sequence[str] | str = ("tfidf-linear", "bow"),
    *,
    params_by_model: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    quiet: bool = False,
    **categorizer_options: Any,
) -> Any:
    """Train each model on the same split and return one row per model (a pandas DataFrame).

    models: registered model names, a list or one comma-separated string.
    params_by_model: settings per model name, e.g. {"bow": {"epochs": 5}}.
    out: save each model to out/NAME (else to a temporary directory, only to
        measure its size).
    categorizer_options: anything `Categorizer` takes (text_cols, label_col,
        preset, valid_size, test_size, class_weight, device, ...).

    Rows are sorted by test macro-F1, best first. products_per_second is the
    speed of `predict_proba` on the test products, read from memory.

    A model that refuses to train (a ConfigError: no usable photo, a run that
    diverged) is left off the board, which goes on with the others;
    `board.attrs["failed"]` maps each such model to its error. When every
    model fails, the first one's error is raised.

    Ctrl-C once a model is on the board raises `prodcat.errors.Interrupted`, its
    `result` the board of the models finished (those are saved in `out`).
    """
    from prodcat.catalog.split import check_fractions
    from prodcat.categorizer import Categorizer, check_categorizer_options
    from prodcat.console import Reporter
    from prodcat.models import get_model_class

    if isinstance(models, str):
        # "tfidf-linear,bow", as --models takes it; list() would make it letters
        models = [name.strip() for name in models.split(",") if name.strip()]
    try:
        models = list(models)
    except TypeError:  # None, a number
        raise ConfigError(f"models must be a list of model names or one comma-separated string, got {models!r}") from None
    named_otherwise = [m for m in models if not isinstance(m, str)]
    if named_otherwise:
        raise ConfigError(f"a model is named by a string, got {named_otherwise[0]!r} among models")
    if not models:
        raise ConfigError("--models needs at least one model name")
    if len(set(models)) != len(models):
        raise ConfigError(f"--models lists a model twice: {', '.join(models)}")
    for name in models:
        get_model_class(name)  # unknown names fail before any training
    if params_by_model is not None and not isinstance(params_by_model, dict):
        raise ConfigError(f"params_by_model must be a dict of settings per model name, e.g. {{'bow': {{'epochs': 5}}}}; "
                          f"got {params_by_model!r}")
    params_by_model = dict(params_by_model or {})
    stray = sorted(set(params_by_model) - set(models))
    if stray:
        raise ConfigError(f"settings given for {', '.join(stray)}, which --models does not list")
    for fixed in ("model", "params", "seed", "quiet"):
        if fixed in categorizer_options:
            raise ConfigError(f"leaderboard sets {fixed!r} itself; pass it as leaderboard's own argument")
    check_categorizer_options(categorizer_options, "leaderboard")
    # the sizes' types before the comparison below ("0.1" failed on it with a TypeError)
    check_fractions(categorizer_options.get("valid_size", 0.1), categorizer_options.get("test_size") or 0.0)
    # Without test products every score column is empty and the order of the rows means nothing.
    test_size = categorizer_options.get("test_size")  # None: the Categorizer's default share
    if test_size is not None and test_size <= 0:
        raise ConfigError("the leaderboard scores every model on the test split: test_size must be above 0")
    if out is not None:
        # Every target before the first model trains: a refusal at the second
        # save would throw away the first model's training.
        check_output_dir(out, "folder of model directories")
        for name in models:
            check_model_dir_target(Path(out) / name)
            check_no_interrupted_run(Path(out) / name)

    # Every model's settings against the label format and fields before the first
    # trains: a refusal at the third model would throw the first two away.
    for name in models:
        Categorizer(model=name, params=params_by_model.get(name), seed=seed, quiet=True,
                    **categorizer_options).check_setup()

    say = Reporter(quiet)
    rows: list[dict[str, Any]] = []
    failed: dict[str, ConfigError] = {}
    try:
        _train_each(models, rows, failed, say, data, params_by_model, seed, out, quiet, categorizer_options)
    except KeyboardInterrupt:
        if not rows:
            raise
        # Ctrl-C in a long model (bert on a CPU) must not throw away the board of those before it.
        board = _board(rows, failed)
        saved = f"; saved in {out}" if out is not None else ""
        stop = Interrupted(f"after {len(rows)} of {len(models)} models ({', '.join(board['model'])}){saved}")
        stop.result = board  # what the board holds so far, for the caller to show
        raise stop from None
    if not rows:
        raise next(iter(failed.values()))
    return _board(rows, failed)


def _board(rows: list[dict[str, Any]], failed: dict[str, ConfigError]) -> Any:
    import pandas as pd

    board = pd.DataFrame(rows, columns=list(COLUMNS))
    board = board.sort_values("test_macro_f1", ascending=False, kind="stable", na_position="last").reset_index(drop=True)
    board.attrs["failed"] = {name: str(exc) for name, exc in failed.items()}
    return board


def _train_each(models, rows, failed, say, data, params_by_model, seed, out, quiet, categorizer_options) -> None:
    """Train, time and save each model in turn, a row in `rows` each, or its refusal in `failed`."""
    import numpy as np

    from prodcat.categorizer import Categorizer
    from prodcat.console import TrainingStatus, watching

    with tempfile.TemporaryDirectory(prefix="prodcat-leaderboard-") as scratch:
        for name in models:
            clf = Categorizer(model=name, params=params_by_model.get(name), seed=seed, quiet=True,
                              **categorizer_options)
            # the catalog's warnings once, with the first model: every model reads the same catalog
            clf._warnings_when_quiet = say if not quiet and not rows else False
            try:
                # the fits are quiet (progress bars would tear the board apart): the spinner says how far one is
                with say.step(f"training {name}") as show, watching(TrainingStatus(f"training {name}", show)):
                    started = time.perf_counter()
                    clf.fit(data)
                    fit_seconds = time.perf_counter() - started
            except ConfigError as exc:
                # One model's refusal (no usable photo, a run that diverged) must not
                # throw away the models trained before it, nor stop those after it.
                # A catalog's fault (CatalogError) is every model's: it stops the board.
                failed[name] = exc
                say.warn(f"{name} failed, the board goes on without it: {exc}")
                continue
            test = clf._test_catalog
            test_metrics = clf.metrics_.get("test", {})
            if not test_metrics:
                raise ConfigError("the catalog is too small for a test split to score the models on")
            speed = None
            if test is not None and len(test):
                clf._proba(test.products.take(np.arange(min(len(test), 64))))  # warm-up: lazy imports, threads
                best = math.inf
                # the quickest of a few runs on a small test part: one run is mostly noise
                for _ in range(3 if len(test) < SPEED_REPEAT_BELOW else 1):
                    started = time.perf_counter()
                    clf._proba(test.products)
                    best = min(best, time.perf_counter() - started)
                speed = len(test) / max(best, 1e-9)
            target = Path(out) / name if out is not None else Path(scratch) / name
            clf.save(target)
            rows.append({
                "model": name,
                "test_macro_f1": test_metrics.get("macro_f1"),
                "test_accuracy": test_metrics.get("accuracy"),
                "validation_macro_f1": clf.metrics_.get("validation", {}).get("macro_f1"),
                "test_n": test_metrics.get("n", 0),
                "fit_seconds": round(fit_seconds, 2),
                "products_per_second": None if speed is None else round(speed),
                "size_bytes": sum(p.stat().st_size for p in target.rglob("*") if p.is_file()),
                "path": str(target) if out is not None else None,
            })


def render(board: Any) -> str:
    """The leaderboard as an aligned text table."""
    shown = board.drop(columns=["path"]) if board["path"].isna().all() else board
    table = shown.copy()
    for column in ("test_macro_f1", "test_accuracy", "validation_macro_f1"):
        table[column] = table[column].map(lambda v: "" if v is None or v != v else f"{v:.4f}")
    table["size_bytes"] = table["size_bytes"].map(_human_size)
    table = table.rename(columns={"size_bytes": "size"})
    return table.to_string(index=False)


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"

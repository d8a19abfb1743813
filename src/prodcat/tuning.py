"""Hyperparameter search with Optuna, scored on the validation split.

Every trial fits a Categorizer with the trial's settings on the same split
(the split depends on the seed only) and is scored by its validation
macro-F1. The test split takes no part in the search: its scores are reported
once, for the best model only. The best trial's fitted Categorizer is kept as
it is (no refit: it was trained on exactly the data a refit would use, with
the same seed) and returned, or saved with the trial log.

    >>> from prodcat.tuning import tune
    >>> clf, summary = tune("catalog.csv", model="tfidf-linear", trials=20,
    ...                     text_cols=["title"], label_col="category")          # doctest: +SKIP
    >>> summary["best"]["params"], summary["best"]["validation"]["macro_f1"]  # doctest: +SKIP
    ({'C': 0.61, ...}, 0.93)

Search spaces live in SEARCH_SPACES: a model name -> function(trial) -> the
model's params. A space may also choose "class_weight", which is a
Categorizer option rather than a model setting.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from prodcat.artifacts import check_model_dir_target, check_no_interrupted_run
from prodcat.errors import ConfigError, Interrupted, ProdcatError

#: trials when neither a count nor a time budget is given
DEFAULT_TRIALS = 20
#: what is maximized
OBJECTIVE = "validation macro_f1"


def _tfidf_linear(trial: Any) -> dict[str, Any]:
    return {
        "C": trial.suggest_float("C", 0.05, 10.0, log=True),
        "char_ngrams": [2, trial.suggest_int("char_ngrams_max", 3, 6)],
        "word_ngrams": [1, trial.suggest_int("word_ngrams_max", 1, 3)],
        "min_df": trial.suggest_int("min_df", 1, 3),
        "sublinear_tf": trial.suggest_categorical("sublinear_tf", [True, False]),
        "class_weight": trial.suggest_categorical("class_weight", ["balanced", "none"]),
    }


def _bow(trial: Any) -> dict[str, Any]:
    minn = trial.suggest_categorical("minn", [0, 2, 3])
    params = {
        "dim": trial.suggest_categorical("dim", [32, 64, 100, 200]),
        "lr": trial.suggest_float("lr", 1e-3, 1e-1, log=True),
        "word_ngrams": trial.suggest_int("word_ngrams", 1, 3),
        "minn": minn,
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
    }
    if minn:
        params["maxn"] = trial.suggest_int("maxn", max(minn, 4), 6)
    return params


def _word_network(trial: Any) -> dict[str, Any]:
    return {
        "embedding_dim": trial.suggest_categorical("embedding_dim", [64, 128, 256]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "lr": trial.suggest_float("lr", 5e-4, 5e-3, log=True),
        "min_freq": trial.suggest_int("min_freq", 1, 3),
        "word_dropout": trial.suggest_float("word_dropout", 0.0, 0.3),
        # LSA starts helped lstm and hurt cnn on flipkart level 2 (docs/benchmarks.md)
        "embedding_init": trial.suggest_categorical("embedding_init", ["random", "lsa"]),
    }


def _lstm(trial: Any) -> dict[str, Any]:
    return {
        **_word_network(trial),
        "hidden_size": trial.suggest_categorical("hidden_size", [64, 128, 256]),
        "pooling": trial.suggest_categorical("pooling", ["max", "last"]),
        "dense_size": trial.suggest_categorical("dense_size", [64, 128, 256]),
    }


# Optuna's categorical choices must be plain values, so lists go by name.
KERNEL_SIZES = {"1-2-3": [1, 2, 3], "2-3-4": [2, 3, 4], "2-3-4-5": [2, 3, 4, 5]}


def _cnn(trial: Any) -> dict[str, Any]:
    return {
        **_word_network(trial),
        "filters": trial.suggest_categorical("filters", [64, 128, 256]),
        "kernel_sizes": KERNEL_SIZES[trial.suggest_categorical("kernel_sizes", list(KERNEL_SIZES))],
    }


def _transformer(trial: Any) -> dict[str, Any]:
    return {
        # both widths divide by both head counts
        "d_model": trial.suggest_categorical("d_model", [64, 128]),
        "num_heads": trial.suggest_categorical("num_heads", [2, 4]),
        "num_layers": trial.suggest_int("num_layers", 1, 3),
        "feedforward_size": trial.suggest_categorical("feedforward_size", [128, 256, 512]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
        "lr": trial.suggest_float("lr", 3e-4, 3e-3, log=True),
        "min_freq": trial.suggest_int("min_freq", 1, 3),
        "word_dropout": trial.suggest_float("word_dropout", 0.0, 0.3),
        "embedding_init": trial.suggest_categorical("embedding_init", ["random", "lsa"]),
    }


def _bert(trial: Any) -> dict[str, Any]:
    return {
        "lr": trial.suggest_float("lr", 1e-5, 1e-4, log=True),
        "head_lr": trial.suggest_float("head_lr", 1e-4, 1e-2, log=True),
        "pooling": trial.suggest_categorical("pooling", ["mean", "cls"]),
        # 0 or 2 layers: every BERT-family checkpoint has at least 2
        "freeze_layers": trial.suggest_categorical("freeze_layers", [0, 2]),
        "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2),
    }


#: model name -> function(optuna trial) -> params (small, sensible ranges)
SEARCH_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "tfidf-linear": _tfidf_linear,
    "bow": _bow,
    "lstm": _lstm,
    "cnn": _cnn,
    "transformer": _transformer,
    "bert": _bert,
}

#: settings a search space asks Optuna for under another name
SEARCHED_AS = {"char_ngrams_max": "char_ngrams", "word_ngrams_max": "word_ngrams"}


class _LeavingOutFixed:
    """An Optuna trial that does not search the settings fixed by the user.

    A fixed setting must not be sampled: the sampler would learn from values
    that were never used, and the trial log would show them. The space still
    gets a value back for it (the fixed one where it is a valid choice, so a
    space that branches on it, as bow's maxn on minn, follows the fixed
    value); the fixed value replaces it in the settings afterwards.
    """

    def __init__(self, trial: Any, fixed: dict[str, Any]):
        self._trial, self._fixed = trial, fixed

    def _is_fixed(self, name: str) -> bool:
        return SEARCHED_AS.get(name, name) in self._fixed

    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        if not self._is_fixed(name):
            return self._trial.suggest_float(name, low, high, **kwargs)
        value = self._fixed.get(name)
        return value if isinstance(value, (int, float)) and low <= value <= high else low

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        if not self._is_fixed(name):
            return self._trial.suggest_int(name, low, high, **kwargs)
        value = self._fixed.get(name)
        return value if isinstance(value, int) and low <= value <= high else low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        if not self._is_fixed(name):
            return self._trial.suggest_categorical(name, choices)
        value = self._fixed.get(name)
        return value if value in choices else choices[0]


TRIAL_COLUMNS = (
    "trial", "validation_macro_f1", "validation_accuracy", "validation_n", "fit_seconds", "best_so_far", "params",
)


def tune(
    data: Any,
    *,
    model: str = "tfidf-linear",
    trials: int | None = None,
    timeout: float | None = None,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    out: str | Path | None = None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
    quiet: bool = False,
    **categorizer_options: Any,
) -> tuple[Any, dict[str, Any]]:
    """Search `model`'s settings on the validation split; return (best Categorizer, summary).

    trials / timeout: stop after this many trials and/or once this many
        seconds have passed (a running trial finishes); neither: 20 trials.
    seed: seeds the split (the same for every trial), the models and the
        TPE sampler, so a search is reproducible.
    params: settings fixed for every trial: left out of the search space
        ("class_weight" among them sets the Categorizer option, as does
        class_weight passed as a Categorizer option).
    out: save the best model there, with `tuning/trials.csv` and `tuning/best.json`.
    on_trial: called with each finished trial's row (default: a line on stderr).
    categorizer_options: anything `Categorizer` takes (text_cols, label_col,
        preset, valid_size, class_weight, device, ...).

    The summary holds the objective, the number of trials, why the search
    stopped, every trial's row and the best trial (params, validation and
    test headline metrics).

    A setting refused in the first trial (a bad fixed setting, a catalog too
    small) ends the search as that error. Once a trial has finished, a trial
    whose drawn settings are refused together with the fixed ones is skipped
    with a warning (its number in `skipped_trials`) and counts against the
    trial budget.

    Ctrl-C once a trial has finished keeps the search's work: the best model
    so far is saved to `out` as usual (stopped_by "interrupted"), then
    `prodcat.errors.Interrupted` is raised, its `result` holding what tune
    would have returned.
    """
    import optuna

    from prodcat.catalog.split import check_fractions
    from prodcat.categorizer import Categorizer, check_categorizer_options, check_seed
    from prodcat.console import Reporter, TrainingStatus, watching
    from prodcat.models import get_model_class

    get_model_class(model)  # an unknown name fails here, before any data is read
    if model not in SEARCH_SPACES:
        raise ConfigError(f"no search space for model {model!r}; tunable: {', '.join(sorted(SEARCH_SPACES))}")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        raise ConfigError(f"--trials must be 1 or more, got {trials!r}")
    if timeout is not None and (not isinstance(timeout, (int, float)) or not timeout > 0 or not math.isfinite(timeout)):
        raise ConfigError(f"--timeout must be a number of seconds above 0, got {timeout!r}")
    if trials is None and timeout is None:
        trials = DEFAULT_TRIALS
    check_seed(seed)  # before Optuna's sampler, which would fail on it with a traceback
    for fixed in ("model", "params", "seed", "quiet"):
        if fixed in categorizer_options:
            raise ConfigError(f"tune sets {fixed!r} itself; pass it as tune's own argument")
    check_categorizer_options(categorizer_options, "tune")
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"params must be a dict of fixed settings, e.g. {{'C': 0.5}}; got {params!r}")
    if on_trial is not None and not callable(on_trial):
        raise ConfigError(f"on_trial must be a function taking each trial's row, got {on_trial!r}")
    # the sizes' types before the comparison below ("0.1" failed on it with a TypeError)
    check_fractions(categorizer_options.get("valid_size", 0.1), categorizer_options.get("test_size") or 0.0)
    if categorizer_options.get("valid_size", 0.1) <= 0:
        raise ConfigError("tuning scores trials on the validation split: valid_size must be above 0")
    if out is not None:
        # not after the trials: saving would refuse it then, and the search would be lost
        check_model_dir_target(out)
        check_no_interrupted_run(out)
    fixed_params = dict(params or {})
    if "class_weight" in categorizer_options:
        # A class_weight the user chose is fixed, as in params: a space that
        # searches it (tfidf-linear's) would otherwise override it unsaid.
        chosen = categorizer_options.pop("class_weight")
        if fixed_params.setdefault("class_weight", chosen) != chosen:
            raise ConfigError(f"class_weight is given twice: {chosen!r} and {fixed_params['class_weight']!r} in params")
    space = SEARCH_SPACES[model]
    say = Reporter(quiet)
    report = on_trial or (lambda row: say.note(_trial_line(row)))

    rows: list[dict[str, Any]] = []
    kept: dict[str, Any] = {}

    failed: list[ProdcatError] = []
    skipped: list[int] = []  # trials whose draws the settings refused, after one had finished
    interrupted = False  # by Ctrl-C, in a trial or between two

    def objective(trial: Any) -> float:
        nonlocal interrupted
        try:
            return run_trial(trial)
        except ProdcatError as exc:
            if rows:
                # Settings that worked refuse this trial's draws (a fixed d_model that the drawn num_heads
                # does not divide): the search goes on, and the finished trials stay.
                skipped.append(trial.number)
                say.warn(f"trial {trial.number} skipped: {exc}")
                raise optuna.TrialPruned() from None
            # A user's mistake (a bad setting, a catalog too small) ends the
            # search as one line: raised through Optuna, it would first be
            # logged with Optuna's traceback. Pruned trials are not logged.
            failed.append(exc)
            trial.study.stop()
            raise optuna.TrialPruned() from None
        except KeyboardInterrupt:
            # Ctrl-C: the finished trials' best is kept (below). Raised through Optuna,
            # it would first log the trial as failed, with its settings, on stderr.
            interrupted = True
            trial.study.stop()
            raise optuna.TrialPruned() from None

    def run_trial(trial: Any) -> float:
        # what the trial uses, fixed settings included: the log shows that, not Optuna's draws
        used = {**space(_LeavingOutFixed(trial, fixed_params)), **fixed_params}
        options = dict(categorizer_options)
        trial_params = dict(used)
        if "class_weight" in trial_params:
            options["class_weight"] = trial_params.pop("class_weight")
        started = time.perf_counter()
        clf = Categorizer(model=model, params=trial_params, seed=seed, quiet=True, **options)
        # the catalog's warnings once, with the first trial: every trial reads the same catalog
        clf._warnings_when_quiet = say if not quiet and not rows else False
        # The trials are quiet (their progress bars would tear the trial table apart), and one
        # trial of a neural model can take many minutes on a CPU: a line that says how far it is.
        heading = f"trial {trial.number}"
        with say.status(f"{heading}: reading and preparing the catalog") as show:
            with watching(TrainingStatus(heading, show)):
                clf.fit(data)
        seconds = time.perf_counter() - started
        validation = clf.metrics_.get("validation")
        if not validation:
            raise ConfigError("the catalog is too small for a validation split to score trials on")
        score = float(validation["macro_f1"])
        if "clf" not in kept or score > kept["score"]:
            kept.update(clf=clf, score=score, trial=trial.number, params=trial_params, searched=dict(trial.params),
                        class_weight=options.get("class_weight", "balanced"))
        row = {
            "trial": trial.number,
            "validation_macro_f1": round(score, 6),
            "validation_accuracy": round(float(validation.get("accuracy", float("nan"))), 6),
            "validation_n": int(validation.get("n", 0)),
            "fit_seconds": round(seconds, 2),
            "best_so_far": round(kept["score"], 6),
            "params": json.dumps(used, sort_keys=True),
        }
        rows.append(row)
        report(row)
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    started = time.perf_counter()
    try:
        study.optimize(objective, n_trials=trials, timeout=timeout, gc_after_trial=False, show_progress_bar=False)
    except KeyboardInterrupt:  # between trials, outside the objective
        interrupted = True
    if interrupted and "clf" not in kept:
        raise KeyboardInterrupt
    # After Ctrl-C, the finished trials' best model is saved rather than lost.
    seconds = time.perf_counter() - started
    if failed:
        raise failed[0]
    if "clf" not in kept:
        raise ConfigError(f"no trial finished within the timeout of {timeout} s; give more time")

    best: Any = kept["clf"]
    stopped_by = ("interrupted" if interrupted else
                  "trials" if trials is not None and len(rows) + len(skipped) >= trials else "timeout")
    summary = {
        "model": model,
        "objective": OBJECTIVE,
        "seed": seed,
        "trials": len(rows),
        "skipped_trials": skipped,
        "stopped_by": stopped_by,
        "seconds": round(seconds, 2),
        "best": {
            "trial": kept["trial"],
            "params": best._fitted.get_params(),
            "searched": kept["searched"],
            "class_weight": kept["class_weight"],
            "validation": best.metrics_.get("validation", {}),
            # the only time the test split is looked at: the chosen model's score
            "test": best.metrics_.get("test", {}),
        },
        "history": rows,
    }
    best.training_ = {**best.training_, "tuning": {k: v for k, v in summary.items() if k != "history"}}
    if out is not None:
        save_tuning(best, summary, out)
    if interrupted:
        where = f"saved in {out}" if out is not None else "not saved (no out given)"
        stop = Interrupted(f"after {len(rows)} trial{'s' if len(rows) != 1 else ''}; the best so far (trial "
                           f"{kept['trial']}, validation macro-F1 {kept['score']:.4f}) is {where}")
        stop.result = (best, summary)  # for a notebook: what tune would have returned
        raise stop
    return best, summary


def save_tuning(clf: Any, summary: dict[str, Any], out: str | Path) -> Path:
    """Save the best model to `out` with its trial log in `out/tuning/`, all or nothing."""

    def write_trial_log(model_dir: Path) -> None:
        folder = model_dir / "tuning"
        folder.mkdir()
        with open(folder / "trials.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(TRIAL_COLUMNS))
            writer.writeheader()
            writer.writerows(summary["history"])
        best = {k: v for k, v in summary.items() if k != "history"}
        (folder / "best.json").write_text(json.dumps(best, indent=2, ensure_ascii=False), encoding="utf-8")

    # In the save, not after it: a log that failed to write (a full disk, Ctrl-C)
    # would leave a tuned model whose search cannot be read back.
    return clf.save(out, also_write=write_trial_log)


def _trial_line(row: dict[str, Any]) -> str:
    return (
        f"trial {row['trial']:>3}  validation macro_f1={row['validation_macro_f1']:.4f}  "
        f"accuracy={row['validation_accuracy']:.4f}  {row['fit_seconds']:.1f} s  "
        f"best={row['best_so_far']:.4f}  {row['params']}"
    )

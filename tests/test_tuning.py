"""`prodcat tune`: Optuna on the validation split, a trial log, the best model saved."""

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from prodcat import Categorizer
from cli_runner import run
from prodcat.errors import ConfigError, Interrupted, UnknownModelError
from prodcat.models import create_model
from prodcat.tuning import SEARCH_SPACES, TRIAL_COLUMNS, save_tuning, tune

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo_catalog.csv"
FIELDS = dict(text_cols=["title", "description"], label_col="category", label_format="path")
CLI_FIELDS = ["--text-cols", "title,description", "--label-col", "category", "--label-format", "path"]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "best"
    clf, summary = tune(DEMO, model="tfidf-linear", trials=3, seed=0, out=out, quiet=True, **FIELDS)
    return clf, summary, out


def test_three_trials_are_logged_and_the_best_is_saved(tuned):
    clf, summary, out = tuned
    assert summary["trials"] == 3 and summary["stopped_by"] == "trials"
    trials = pd.read_csv(out / "tuning" / "trials.csv")
    assert list(trials.columns) == list(TRIAL_COLUMNS)
    assert trials["trial"].tolist() == [0, 1, 2]
    # every trial is scored on the same validation products
    assert trials["validation_n"].nunique() == 1 and trials["validation_n"].iloc[0] > 0
    # the trials differ: the sampler moved C
    assert len({json.loads(p)["C"] for p in trials["params"]}) == 3

    best = json.loads((out / "tuning" / "best.json").read_text())
    winner = trials.loc[trials["validation_macro_f1"].idxmax()]
    assert best["best"]["trial"] == winner["trial"]
    assert best["best"]["validation"]["macro_f1"] == pytest.approx(trials["validation_macro_f1"].max(), abs=1e-6)
    assert best["best"]["params"]["C"] == pytest.approx(json.loads(winner["params"])["C"])
    assert 0 < best["best"]["test"]["macro_f1"] <= 1  # reported for the best model only

    loaded = Categorizer.load(out)
    assert loaded.manifest_["model"]["params"]["C"] == pytest.approx(best["best"]["params"]["C"])
    assert loaded.metrics_["validation"]["macro_f1"] == pytest.approx(best["best"]["validation"]["macro_f1"])
    assert loaded.training_["tuning"]["trials"] == 3
    assert loaded.predict(["Anti-Ageing Green Tea Gel Cleanser"]) == clf.predict(["Anti-Ageing Green Tea Gel Cleanser"])


def test_trial_rows_hold_no_test_scores(tuned):
    _, summary, _ = tuned
    assert all(not any("test" in key for key in row) for row in summary["history"])


def test_the_same_seed_repeats_the_search():
    runs = [tune(DEMO, model="tfidf-linear", trials=2, seed=7, quiet=True, **FIELDS)[1]["history"] for _ in range(2)]
    strip = [[{k: v for k, v in row.items() if k not in ("fit_seconds",)} for row in run] for run in runs]
    assert strip[0] == strip[1]


def test_a_timeout_stops_the_search():
    started = time.perf_counter()
    _, summary = tune(DEMO, model="tfidf-linear", trials=None, timeout=1.0, seed=0, quiet=True, **FIELDS)
    elapsed = time.perf_counter() - started
    assert summary["stopped_by"] == "timeout"
    assert summary["trials"] >= 1
    # Optuna starts no trial after the timeout; the one running finishes
    slowest = max(row["fit_seconds"] for row in summary["history"])
    assert elapsed < 1.0 + slowest + 3.0


def test_each_trial_is_reported_as_it_finishes():
    seen = []
    tune(DEMO, model="tfidf-linear", trials=2, seed=0, quiet=True, on_trial=seen.append, **FIELDS)
    assert [row["trial"] for row in seen] == [0, 1]
    assert set(seen[0]) == set(TRIAL_COLUMNS)


def test_fixed_params_are_not_searched_and_the_log_shows_them():
    fixed = {"C": 0.123, "char_ngrams": [2, 4], "class_weight": "none"}
    clf, summary = tune(DEMO, model="tfidf-linear", trials=3, seed=0, params=fixed, quiet=True, **FIELDS)
    assert clf._fitted.get_params()["C"] == pytest.approx(0.123)
    assert clf._fitted.get_params()["char_ngrams"] == [2, 4]
    assert summary["best"]["class_weight"] == "none"
    for row in summary["history"]:
        used = json.loads(row["params"])
        assert {k: used[k] for k in fixed} == fixed
    # Optuna sampled only what was left free
    assert set(summary["best"]["searched"]) == {"word_ngrams_max", "min_df", "sublinear_tf"}
    # and the free settings still vary between trials
    assert len({row["params"] for row in summary["history"]}) > 1



def test_a_chosen_class_weight_is_fixed_not_overridden_by_the_search(tmp_path, capsys):
    # tfidf-linear's space searches class_weight: a user's own choice used to be
    # replaced by the sampler's in every trial, with nothing said.
    _, summary = tune(DEMO, model="tfidf-linear", trials=3, seed=0, class_weight="none", quiet=True, **FIELDS)
    assert [json.loads(row["params"])["class_weight"] for row in summary["history"]] == ["none"] * 3
    assert summary["best"]["class_weight"] == "none" and "class_weight" not in summary["best"]["searched"]

    code, _, err = run(capsys, "tune", "--data", DEMO, *CLI_FIELDS, "--trials", "2", "--class-weight", "none",
                       "--out", tmp_path / "m", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "m" / "tuning" / "best.json").read_text())["best"]["class_weight"] == "none"
    assert set(pd.read_csv(tmp_path / "m" / "tuning" / "trials.csv")["params"].map(
        lambda p: json.loads(p)["class_weight"])) == {"none"}

def test_a_fixed_setting_a_space_branches_on_is_followed():
    import optuna

    from prodcat.tuning import _LeavingOutFixed

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = SEARCH_SPACES["bow"](_LeavingOutFixed(trial, {"minn": 3}))
    assert "minn" not in trial.params and "maxn" in trial.params  # maxn is searched because minn is 3
    assert params["minn"] == 3 and params["maxn"] >= 4


@pytest.mark.parametrize("name", sorted(SEARCH_SPACES))
def test_every_search_space_gives_settings_its_model_accepts(name):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(8):
        params = SEARCH_SPACES[name](study.ask())
        assert params.pop("class_weight", "balanced") in ("balanced", "none")
        create_model(name, **params)  # raises ConfigError on a bad setting


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"model": "nope"}, UnknownModelError, "unknown model 'nope'"),
        ({"model": "onnx"}, ConfigError, "no search space for model 'onnx'"),
        ({"trials": 0}, ConfigError, "--trials must be 1 or more"),
        ({"timeout": -5}, ConfigError, "--timeout must be a number of seconds above 0"),
        ({"valid_size": 0.0}, ConfigError, "valid_size must be above 0"),
        # each of these was a TypeError, the first two from inside the first trial, logged by Optuna
        ({"text_col": "title"}, ConfigError, "tune: unknown Categorizer option.s. text_col; known: class_weight"),
        ({"on_trial": "print"}, ConfigError, "on_trial must be a function taking each trial's row, got 'print'"),
        ({"params": [("C", 1.0)]}, ConfigError, r"params must be a dict of fixed settings"),
        ({"valid_size": "0.2"}, ConfigError, "valid size must be a fraction from 0 up to .*got '0.2'"),
        ({"model": ["tfidf-linear"]}, UnknownModelError, r"a model is named by a string, got \['tfidf-linear'\]"),
    ],
)
def test_bad_options_fail_before_any_training(kwargs, error, message):
    options = {"model": "tfidf-linear", "trials": 1, **kwargs}
    with pytest.raises(error, match=message):
        tune(DEMO, quiet=True, **options, **FIELDS)


def test_cli_tune_prints_the_trials_and_saves_the_best(tmp_path, capsys):
    out = tmp_path / "best"
    code, stdout, err = run(capsys, "tune", "--data", DEMO, *CLI_FIELDS, "--model", "tfidf-linear",
                            "--trials", "2", "--seed", "1", "--out", out, "--quiet")
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0].split() == list(TRIAL_COLUMNS)
    assert lines[1].startswith("0 ") and lines[2].startswith("1 ")
    assert "best trial" in stdout and "test: n=" in stdout
    assert (out / "manifest.json").is_file() and (out / "tuning" / "trials.csv").is_file()
    assert len(pd.read_csv(out / "tuning" / "trials.csv")) == 2


def test_cli_tune_unknown_model_is_one_line(tmp_path, capsys):
    code, _, err = run(capsys, "tune", "--data", DEMO, *CLI_FIELDS, "--model", "xgboost", "--out", tmp_path / "m")
    assert code == 2
    assert err.strip().startswith("prodcat: error: unknown model 'xgboost'") and len(err.strip().splitlines()) == 1


def test_cli_tune_refuses_an_out_inside_a_model_directory_before_any_trial(tmp_path, capsys):
    outer = tmp_path / "outer"
    Categorizer(quiet=True, **FIELDS).fit(DEMO).save(outer)
    code, stdout, err = run(capsys, "tune", "--data", DEMO, *CLI_FIELDS, "--trials", "2",
                            "--out", outer / "tuned", "--quiet")
    assert code == 2 and stdout == ""
    assert err.strip().startswith("prodcat: error: ") and "is inside model directory" in err
    assert not (outer / "tuned").exists()


@pytest.mark.parametrize("extra, says", [
    (["--param", "nope=1"], "tfidf-linear: unknown setting(s) 'nope'"),
    (["--valid-size", "0.01"], "the catalog is too small for a validation split"),
])
def test_cli_tune_a_mistake_found_in_the_first_trial_is_one_line(tmp_path, capfd, extra, says):
    # Optuna logs a failed trial with its traceback before raising it again:
    # the user gets prodcat's one line, not Optuna's stack.
    catalog = tmp_path / "small.csv"
    pd.read_csv(DEMO).head(40).to_csv(catalog, index=False)
    code = 0
    try:
        from prodcat.cli import main

        main(["tune", "--data", str(catalog), *CLI_FIELDS, "--trials", "2", "--out", str(tmp_path / "m"), *extra])
    except SystemExit as exc:
        code = exc.code
    lines = capfd.readouterr().err.strip().splitlines()
    assert code == 2
    # the first trial's findings about the catalog may come first, each one line
    assert lines[-1].startswith(f"prodcat: error: {says}"), lines
    assert all(line.startswith("warning: ") for line in lines[:-1]), lines


def test_a_trial_log_that_fails_to_write_leaves_no_model_behind(tmp_path, monkeypatch):
    # The log used to be written into the model directory after it appeared:
    # a full disk or Ctrl-C there left a tuned model without its search.
    clf, summary = tune(DEMO, model="tfidf-linear", trials=1, seed=0, quiet=True, **FIELDS)
    out = tmp_path / "best"

    write_text = Path.write_text

    def disk_full_at_the_log(path, *args, **kwargs):
        if path.name == "best.json":  # the model's own files are written by now
            raise OSError(28, "No space left on device")
        return write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full_at_the_log)
    with pytest.raises(OSError, match="No space left"):
        save_tuning(clf, summary, out)
    monkeypatch.undo()
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left either

    save_tuning(clf, summary, out)
    assert len(pd.read_csv(out / "tuning" / "trials.csv")) == 1 and (out / "tuning" / "best.json").is_file()


def _interrupt_at_fit(monkeypatch, number: int) -> None:
    """Ctrl-C during the `number`-th trial's fit (1-based)."""
    fit, calls = Categorizer.fit, []

    def fit_until(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Categorizer, "fit", fit_until)


def test_ctrl_c_keeps_the_best_model_of_the_finished_trials(tmp_path, monkeypatch):
    # It used to lose every finished trial: a long search stopped by hand left nothing.
    _interrupt_at_fit(monkeypatch, 3)
    out = tmp_path / "best"
    with pytest.raises(Interrupted, match=r"^after 2 trials; the best so far \(trial \d, validation macro-F1 "
                                          rf"0\.\d{{4}}\) is saved in {out}$") as caught:
        tune(DEMO, model="tfidf-linear", trials=5, seed=0, out=out, quiet=True, **FIELDS)
    best, summary = caught.value.result
    assert summary["stopped_by"] == "interrupted" and summary["trials"] == 2
    assert len(pd.read_csv(out / "tuning" / "trials.csv")) == 2
    saved = Categorizer.load(out)
    assert saved.training_["tuning"]["stopped_by"] == "interrupted"
    assert saved.predict(["linen duvet cover"]) == best.predict(["linen duvet cover"])


def test_ctrl_c_in_the_first_trial_is_a_plain_interrupt(tmp_path, monkeypatch, capsys):
    _interrupt_at_fit(monkeypatch, 1)
    code, _, err = run(capsys, "tune", "--data", DEMO, *CLI_FIELDS, "--model", "tfidf-linear", "--trials", "3",
                       "--out", tmp_path / "best", "--quiet")
    assert code == 130 and err.strip() == "prodcat: interrupted"
    assert not (tmp_path / "best").exists()


def test_cli_ctrl_c_says_where_the_best_so_far_is(tmp_path, monkeypatch, capsys):
    _interrupt_at_fit(monkeypatch, 2)
    out = tmp_path / "best"
    code, _, err = run(capsys, "tune", "--data", DEMO, *CLI_FIELDS, "--model", "tfidf-linear", "--trials", "3",
                       "--out", out, "--quiet")
    assert code == 130
    assert err.strip().startswith("prodcat: interrupted; after 1 trial; the best so far (trial 0, validation ")
    assert err.strip().endswith(f"is saved in {out}") and (out / "manifest.json").is_file()


def test_a_later_trial_whose_draws_the_fixed_settings_refuse_is_skipped_not_the_end(monkeypatch, tmp_path):
    # The whole search ended with that trial's error, losing the finished ones:
    # here a fixed d_model=6 that a drawn num_heads of 4 does not divide.
    from prodcat import tuning

    draws = iter([2, 4, 2])

    def space(trial):  # the draws, in order, as a sampler might make them
        return {"num_heads": next(draws), "epochs": 1}

    monkeypatch.setitem(tuning.SEARCH_SPACES, "transformer", space)
    clf, summary = tune(DEMO, model="transformer", trials=3, seed=0, quiet=True,
                        params={"d_model": 6, "num_layers": 1, "feedforward_size": 8, "num_threads": 1},
                        out=tmp_path / "best", **FIELDS)
    assert [row["trial"] for row in summary["history"]] == [0, 2]
    assert summary["skipped_trials"] == [1] and summary["stopped_by"] == "trials"
    assert summary["best"]["params"]["num_heads"] == 2 and (tmp_path / "best" / "tuning" / "trials.csv").exists()


def test_a_trial_of_a_neural_model_says_how_far_it_has_come_while_it_trains(tmp_path, record_progress):
    # Trials train quietly, and an lstm trial took over 20 minutes on a CPU with nothing on
    # the screen until its line: the user could not tell whether the search was working.
    from tiny_catalogs import tiny_frame

    shown = record_progress("status")
    data = tmp_path / "cat.csv"
    tiny_frame().to_csv(data, index=False)
    tune(data, model="bow", trials=1, params={"epochs": 2, "dim": 8, "num_threads": 1},
         text_cols=["title"], label_col="leaf")
    assert shown[0] == "trial 0: reading and preparing the catalog"
    assert any(line.startswith("trial 0: bow epoch 1/2, step ") for line in shown)
    assert any(line.startswith("trial 0: bow epoch 1/2 done, validation macro-F1 ") for line in shown)
    assert shown[-1].startswith("trial 0: bow trained; calibrating and scoring")



def test_a_warning_about_the_catalog_is_not_glued_to_the_trial_status_line(tmp_path, monkeypatch):
    # On a terminal the first trial's findings were printed from the model's own console while the
    # search's status line was on screen: each ended up on that line, after its text.
    import io
    import re

    import rich.console

    import prodcat.console
    from tiny_catalogs import tiny_frame

    screen = io.StringIO()
    real = rich.console.Console
    monkeypatch.setattr(prodcat.console, "Console", lambda **kwargs: real(
        file=screen, force_terminal=True, width=400, quiet=kwargs.get("quiet", False)))
    frame = tiny_frame()
    frame.loc[[2, 5], "category"] = frame.loc[[2, 5], "category"].str.replace(" > ", " / ")
    data = tmp_path / "cat.csv"
    frame.to_csv(data, index=False)
    tune(data, model="tfidf-linear", trials=1, text_cols=["title"], label_col="category", label_format="path",
         label_sep=" > ")
    # what each line of the terminal shows: the text after the last carriage return
    shown = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line.rsplit("\r", 1)[-1]) for line in screen.getvalue().split("\n")]
    warnings = [line for line in shown if "warning:" in line]
    assert warnings and all(line.startswith("warning: ") for line in warnings), warnings

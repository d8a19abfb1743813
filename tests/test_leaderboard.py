"""`prodcat leaderboard`: several models, one split, one table."""

import json
from pathlib import Path

import pytest

from prodcat import Categorizer
from prodcat.cli import main
from prodcat.errors import ConfigError, UnknownModelError
from prodcat.leaderboard import COLUMNS, leaderboard, models_taking, render, split_shared_params

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo_catalog.csv"
FIELDS = dict(text_cols=["title", "description"], label_col="category", label_format="path")
CLI_FIELDS = ["--text-cols", "title,description", "--label-col", "category", "--label-format", "path"]
# word n-grams only and a few epochs: bow learns the demo catalog in about a second
TINY_BOW = {"dim": 16, "epochs": 4, "batch_size": 16, "lr": 0.05, "minn": 0, "num_threads": 1}


@pytest.fixture(scope="module")
def board_and_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("board")
    board = leaderboard(DEMO, models=["tfidf-linear", "bow"], params_by_model={"bow": TINY_BOW}, seed=3, out=out,
                        quiet=True, **FIELDS)
    return board, out


def test_one_row_per_model_scored_on_the_same_test_rows(board_and_dir):
    board, out = board_and_dir
    assert list(board.columns) == list(COLUMNS)
    assert sorted(board["model"]) == ["bow", "tfidf-linear"]
    assert board["test_n"].nunique() == 1 and board["test_n"].iloc[0] > 0
    for column in ("test_macro_f1", "test_accuracy", "validation_macro_f1"):
        assert board[column].between(0, 1).all()
    assert (board["fit_seconds"] > 0).all() and (board["products_per_second"] > 0).all()
    assert (board["size_bytes"] > 1000).all()
    assert board["test_macro_f1"].is_monotonic_decreasing  # best first


def test_models_are_saved_with_the_same_split(board_and_dir):
    board, out = board_and_dir
    splits = [Categorizer.load(out / name).training_["split"] for name in board["model"]]
    assert splits[0] == splits[1]
    for _, row in board.iterrows():
        assert row["path"] == str(out / row["model"])
        assert row["size_bytes"] == sum(p.stat().st_size for p in Path(row["path"]).rglob("*") if p.is_file())
        assert Categorizer.load(row["path"]).metrics_["test"]["macro_f1"] == pytest.approx(row["test_macro_f1"])


def test_render_is_one_line_per_model(board_and_dir):
    board, _ = board_and_dir
    lines = render(board).splitlines()
    assert len(lines) == 3 and "test_macro_f1" in lines[0] and "size" in lines[0]


def test_shared_settings_go_to_the_models_that_have_them():
    assert split_shared_params(["tfidf-linear", "bow"], {"epochs": 3, "C": 2.0}) == {
        "tfidf-linear": {"C": 2.0},
        "bow": {"epochs": 3},
    }
    with pytest.raises(ConfigError, match="no model among tfidf-linear, bow has the setting\\(s\\) 'epoch'"):
        split_shared_params(["tfidf-linear", "bow"], {"epoch": 3})


def test_a_value_that_names_one_models_own_thing_is_not_shared_between_two():
    # bert would load the checkpoint as a text model and image-pretrained as an image model: the second
    # failed on it after the first had trained. One model taking it is fine.
    for key in ("checkpoint", "freeze_layers"):
        with pytest.raises(ConfigError, match=rf"^--{key.replace('_', '-')} would go to both bert and image-pretrained, "
                                              r"which read it differently; give each its own with --param NAME"):
            split_shared_params(["tfidf-linear", "bert", "image-pretrained"], {key: 2})
    assert split_shared_params(["tfidf-linear", "bert"], {"freeze_layers": 2}) == {
        "tfidf-linear": {}, "bert": {"freeze_layers": 2}}


def test_a_shared_setting_skips_the_models_where_it_does_nothing_or_means_something_else():
    # bow accepts max_length (every neural model has it) but does not use it; tfidf-linear's
    # batch_size is rows featurized at once when predicting: 8 would only slow its speed column.
    assert split_shared_params(["tfidf-linear", "bow", "lstm"], {"max_length": 16, "batch_size": 8}) == {
        "tfidf-linear": {},
        "bow": {"batch_size": 8},
        "lstm": {"max_length": 16, "batch_size": 8},
    }
    assert models_taking("freeze_embeddings") == ["bert"]
    assert models_taking("max_length") == ["bert", "cnn", "lstm", "transformer"]


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"models": ["tfidf-linear", "nope"]}, UnknownModelError, "unknown model 'nope'"),
        ({"models": []}, ConfigError, "at least one model"),
        ({"models": ["bow", "bow"]}, ConfigError, "lists a model twice"),
        ({"models": ["tfidf-linear"], "params_by_model": {"lstm": {}}}, ConfigError, "settings given for lstm"),
        # no test products: every score would be empty and the ranking arbitrary
        ({"models": ["tfidf-linear"], "test_size": 0.0}, ConfigError, "test_size must be above 0"),
        # each of these was a TypeError
        ({"models": None}, ConfigError, "models must be a list of model names or one comma-separated string, got None"),
        ({"models": [["bow"]]}, ConfigError, r"a model is named by a string, got \['bow'\] among models"),
        ({"models": ["bow"], "params_by_model": [("bow", {})]}, ConfigError, "params_by_model must be a dict"),
        ({"models": ["bow"], "params_by_model": {"bow": 3}}, ConfigError, "params must be a dict of the model's settings"),
        ({"models": ["bow"], "test_size": "0.2"}, ConfigError, "test size must be a fraction from 0 up to .*got '0.2'"),
        ({"models": ["bow"], "text_col": "title"}, ConfigError, "leaderboard: unknown Categorizer option.s. text_col"),
    ],
)
def test_bad_options_fail_before_any_training(kwargs, error, message):
    with pytest.raises(error, match=message):
        leaderboard(DEMO, quiet=True, **kwargs, **FIELDS)


def test_cli_leaderboard_json(capsys):
    argv = ["leaderboard", "--data", str(DEMO), *CLI_FIELDS, "--models", "tfidf-linear,bow", "--epochs", "3",
            "--param", "bow.dim=16", "--param", "bow.minn=0", "--param", "C=0.5", "--seed", "1", "--json", "--quiet"]
    try:
        main(argv)
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    rows = json.loads(capsys.readouterr().out)
    assert sorted(r["model"] for r in rows) == ["bow", "tfidf-linear"]
    assert len({r["test_n"] for r in rows}) == 1
    assert all(r["path"] is None for r in rows)


def test_cli_leaderboard_unknown_setting_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "--data", str(DEMO), *CLI_FIELDS, "--models", "tfidf-linear", "--param", "epoch=3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prodcat: error: no model among tfidf-linear has the setting(s) 'epoch'")


@pytest.mark.parametrize("option, value", [("--models", ","), ("--members", " , ")])
def test_cli_leaderboard_no_model_names_is_one_line_naming_the_option(option, value, capsys):
    # It said "no column names in ','": these options list models, not columns.
    extra = [] if option == "--models" else ["--models", "ensemble"]
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "--data", str(DEMO), *CLI_FIELDS, *extra, option, value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"prodcat: error: {option} needs at least one model name, got {value!r}"


def test_cli_leaderboard_gives_named_options_to_the_ensembles_members(tmp_path, capsys):
    # As train does. --epochs was refused here ("none of tfidf-linear, ensemble takes it")
    # though the ensemble's bow member takes it; beside a listed bow, the member trained
    # for its default epochs instead.
    out = tmp_path / "board"
    try:
        main(["leaderboard", "--data", str(DEMO), *CLI_FIELDS, "--models", "tfidf-linear,ensemble", "--epochs", "1",
              "--batch-size", "16", "--param", "ensemble.member_params={\"bow\": {\"dim\": 16}}", "--out", str(out),
              "--quiet"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr().err
    ensemble = Categorizer.load(out / "ensemble")._fitted.get_params()
    assert ensemble["member_params"] == {"bow": {"dim": 16, "epochs": 1, "batch_size": 16}}


def test_models_may_be_one_comma_separated_string_as_on_the_command_line():
    from tiny_catalogs import FORMATS, tiny_frame

    board = leaderboard(tiny_frame(), models="tfidf-linear", quiet=True, **FORMATS["multi"])
    assert board["model"].tolist() == ["tfidf-linear"]
    with pytest.raises(UnknownModelError, match="unknown model 'bo'"):
        leaderboard(tiny_frame(), models="tfidf-linear, bo", quiet=True, **FORMATS["multi"])


def test_a_setting_the_labels_refuse_stops_the_board_before_any_model_trains(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr(Categorizer, "fit", lambda self, *a, **k: trained.append(self.model))
    # focal loss means nothing for multi-label: bow refuses it, and tfidf-linear, first, must not train meanwhile
    with pytest.raises(ConfigError, match="loss='focal' is for single and path labels"):
        leaderboard(DEMO, models=["tfidf-linear", "bow"], params_by_model={"bow": {"loss": "focal"}}, out=tmp_path / "b",
                    quiet=True, text_cols=["title"], label_col="tags", label_format="multi")
    assert trained == [] and not (tmp_path / "b").exists()


def test_a_test_size_of_none_is_the_categorizers_default():
    from tiny_catalogs import FORMATS, tiny_frame

    board = leaderboard(tiny_frame(), models="tfidf-linear", test_size=None, quiet=True, **FORMATS["single"])
    assert board["test_n"].iloc[0] > 0


def test_a_catalog_too_small_for_a_test_split_is_refused_not_ranked():
    from tiny_catalogs import FORMATS, tiny_frame

    # two products per class: the split leaves no test products to score on
    with pytest.raises(ConfigError, match="too small for a test split"):
        leaderboard(tiny_frame(n_per_class=2), models="tfidf-linear", quiet=True, **FORMATS["single"])


def test_a_model_that_refuses_to_train_is_left_off_and_the_others_are_kept(tmp_path, capsys):
    # image-cnn finds no photo (the folder is not there): tfidf-linear, trained first, must not be thrown away.
    from tiny_catalogs import FORMATS, tiny_frame

    catalog = tmp_path / "shop.csv"
    tiny_frame().assign(image=lambda f: f["sku"] + ".png").to_csv(catalog, index=False)
    fields = dict(FORMATS["single"], image_col="image", image_root=str(tmp_path / "no-photos-here"))
    board = leaderboard(catalog, models=["tfidf-linear", "image-cnn"], out=tmp_path / "board", quiet=True, **fields)
    assert board["model"].tolist() == ["tfidf-linear"]
    assert list(board.attrs["failed"]) == ["image-cnn"]
    assert "has an image file that exists" in board.attrs["failed"]["image-cnn"]
    assert Categorizer.load(tmp_path / "board" / "tfidf-linear").predict(["oxford shirt"])

    argv = ["leaderboard", "--data", str(catalog), "--text-cols", "title,description", "--label-col", "leaf",
            "--image-col", "image", "--image-root", str(tmp_path / "no-photos-here"),
            "--models", "tfidf-linear,image-cnn", "--quiet"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1  # a partial board is not a complete one
    out, err = capsys.readouterr()
    assert "tfidf-linear" in out and "image-cnn" not in out
    assert err.strip().startswith("prodcat: error: image-cnn failed and is not on the board: image-cnn: none of")

    with pytest.raises(ConfigError, match="image-cnn: none of"):
        leaderboard(catalog, models=["image-cnn"], quiet=True, **fields)


def test_ctrl_c_keeps_the_board_of_the_models_finished_before_it(tmp_path, monkeypatch, capsys):
    # Ctrl-C in the second model (bert on a CPU can take an hour) said only "interrupted":
    # the first model's row was lost, though its model was saved.
    from tiny_catalogs import FORMATS, tiny_frame

    from prodcat.errors import Interrupted

    catalog = tmp_path / "shop.csv"
    tiny_frame().to_csv(catalog, index=False)
    fit, calls = Categorizer.fit, []

    def interrupted_in_the_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(Categorizer, "fit", interrupted_in_the_second)
    out = tmp_path / "board"
    with pytest.raises(Interrupted, match=rf"^after 1 of 2 models \(tfidf-linear\); saved in {out}$") as caught:
        leaderboard(catalog, models=["tfidf-linear", "bow"], out=out, quiet=True, **FORMATS["single"])
    assert caught.value.result["model"].tolist() == ["tfidf-linear"]

    calls.clear()
    code = 0
    try:
        main(["leaderboard", "--data", str(catalog), "--text-cols", "title,description", "--label-col", "leaf",
              "--models", "tfidf-linear,bow", "--quiet"])
    except SystemExit as exc:
        code = exc.code
    stdout, err = capsys.readouterr()
    assert code == 130
    assert stdout.splitlines()[0].split()[:2] == ["model", "test_macro_f1"] and "tfidf-linear" in stdout
    assert err.strip() == "prodcat: interrupted; after 1 of 2 models (tfidf-linear)"


def test_a_model_training_on_the_board_says_how_far_it_has_come(tmp_path, record_progress):
    # The fits are quiet: a spinner alone stood for an hour of bert on a CPU.
    from tiny_catalogs import FORMATS, tiny_frame

    shown = record_progress("step")
    catalog = tmp_path / "shop.csv"
    tiny_frame().to_csv(catalog, index=False)
    leaderboard(catalog, models=["bow"], params_by_model={"bow": {**TINY_BOW, "epochs": 2}}, **FORMATS["single"])
    assert shown[0] == "training bow"
    assert any(line.startswith("training bow: bow epoch 1/2, step ") for line in shown)
    assert any(line.startswith("training bow: bow epoch 1/2 done, validation macro-F1 ") for line in shown)

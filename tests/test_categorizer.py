import numpy as np
import pandas as pd
import pytest

from prodcat import Categorizer
from prodcat.catalog.normalize import normalize_text
from prodcat.errors import CatalogError, ColumnError, ConfigError, ProdcatError
from tiny_catalogs import FORMATS, tiny_frame


@pytest.fixture(scope="module")
def fitted():
    return Categorizer(quiet=True, **FORMATS["path"]).fit(tiny_frame())


def test_predict_accepts_texts_dicts_frames_and_paths(fitted, tmp_path):
    text = "cotton oxford shirt with button collar"
    expected = fitted.predict([text])
    assert fitted.predict(text) == expected
    assert fitted.predict({"title": "cotton oxford shirt with button collar"}) == expected
    assert fitted.predict(pd.DataFrame({"title": [text], "description": [""]})) == expected
    path = tmp_path / "new.csv"
    pd.DataFrame({"title": [text], "description": [""]}).to_csv(path, index=False)
    from pathlib import Path

    assert fitted.predict(Path(path)) == expected
    assert expected == ["Apparel > Shirts"]


def test_a_file_lacking_one_text_column_predicts_from_python_as_from_the_cli(fitted, tmp_path, capsys):
    # predict_file (the CLI) reads a missing description as empty, as a frame
    # or dicts without it are read; predict(Path) refused the same file.
    text = "cotton oxford shirt with button collar"
    path = tmp_path / "titles.csv"
    pd.DataFrame({"sku": ["A1"], "title": [text]}).to_csv(path, index=False)
    loud = Categorizer.load(fitted.save(tmp_path / "model"))
    assert loud.predict(path) == fitted.predict(pd.DataFrame({"title": [text]})) == ["Apparel > Shirts"]
    assert f"{path} has no column description; those fields are read as empty" in capsys.readouterr().err
    np.testing.assert_array_equal(fitted.predict_proba(path).to_numpy(),
                                  fitted.predict_proba([{"title": text}]).to_numpy())
    pd.DataFrame({"sku": ["A1"], "name": [text]}).to_csv(path, index=False)
    with pytest.raises(ColumnError, match="titles.csv has none of the model's text columns"):
        fitted.predict(path)



def test_a_json_lines_key_first_seen_after_a_thousand_records_is_read(fitted, tmp_path, capsys):
    # Exporters leave out empty keys: the description first appears at record
    # 1,001, past the records whose keys name the columns, and predict_file
    # read every description as empty, warning that the file had none.
    import json

    frame = tiny_frame()
    records = [{"sku": f"{i:05d}", "title": frame["title"].iloc[i % len(frame)]} for i in range(1002)]
    records[1000]["description"] = "a fine duvet, linen quilt and pillow for every bed"
    records[1001]["description"] = "a fine skillet and chef knife for every kitchen"
    sparse, full = tmp_path / "sparse.jsonl", tmp_path / "full.jsonl"
    sparse.write_text("".join(json.dumps(r) + "\n" for r in records))
    full.write_text("".join(json.dumps({"description": "", **r}) + "\n" for r in records))

    loud = Categorizer.load(fitted.save(tmp_path / "model"))
    loud.predict_file(sparse, tmp_path / "sparse.csv")
    assert "has no column description" not in capsys.readouterr().err
    loud.predict_file(full, tmp_path / "full.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sparse.csv", dtype=str),
                                  pd.read_csv(tmp_path / "full.csv", dtype=str))
    assert loud.predict(sparse) == loud.predict(full)


def test_predict_table_ranks_top_k(fitted):
    table = fitted.predict_table(["steel chef knife", "linen duvet"], top_k=3)
    assert list(table.columns) == [
        "prediction", "confidence", "needs_review", "label_1", "prob_1", "label_2", "prob_2", "label_3", "prob_3",
        "confident_path", "confident_level",  # a path model's
    ]
    assert (table["prediction"] == table["label_1"]).all()
    assert (table["prob_1"] >= table["prob_2"]).all() and (table["prob_2"] >= table["prob_3"]).all()
    assert table["prediction"].tolist() == ["Home > Kitchen", "Home > Bedding"]


def test_path_metrics_have_every_level(fitted):
    levels = fitted.metrics_["test"]["levels"]
    assert [level["level"] for level in levels] == [1, 2]
    assert levels[0]["accuracy"] >= levels[1]["accuracy"] - 1e-9  # a coarser level is never harder


@pytest.mark.parametrize("model, params", [
    ("bow", {"loss": "focal"}),
    ("ensemble", {"members": "tfidf-linear,bow", "member_params": {"bow": {"sampler": "balanced"}}}),
])
def test_settings_the_label_format_refuses_fail_before_the_catalog_is_read(tmp_path, model, params):
    # A missing catalog file would be the error if the catalog were read first.
    clf = Categorizer(model, params=params, quiet=True, **FORMATS["multi"])
    with pytest.raises(ConfigError, match="^bow: (loss='focal'|sampler='balanced') "):
        clf.fit(tmp_path / "no-such-catalog.csv")


@pytest.mark.parametrize("model, params, warned", [
    ("tfidf-linear", None, True),
    ("ensemble", {"members": "tfidf-linear,tfidf-linear"}, True),
    ("ensemble", {"members": "tfidf-linear,bow", "member_params": {"bow": {"epochs": 1, "dim": 8}}}, False),
])
def test_resume_with_a_model_trained_in_one_go_says_it_has_nothing_to_continue(tmp_path, capsys, model, params,
                                                                             warned):
    # It used to do nothing special, silently: the user thought an interrupted run continued.
    Categorizer(model, params=params, **FORMATS["single"]).fit(tiny_frame(), checkpoint_dir=tmp_path / "ckpt",
                                                               resume=True)
    line = f"warning: {model} trains in one go: resume has nothing to continue; training from the start"
    lines = capsys.readouterr().err.splitlines()
    assert lines.count(line) == (1 if warned else 0), lines


BOW_MEMBER = {"epochs": 1, "dim": 8, "num_threads": 1}
ENSEMBLE_WITH_BOW = ("ensemble", {"members": "tfidf-linear,bow", "member_params": {"bow": BOW_MEMBER}})


@pytest.mark.parametrize("first, then, stray", [
    (("bow", BOW_MEMBER), ("tfidf-linear", None), ""),
    (("bow", BOW_MEMBER), ENSEMBLE_WITH_BOW, ""),
    (ENSEMBLE_WITH_BOW, ("bow", BOW_MEMBER), "member-2-bow"),
    (ENSEMBLE_WITH_BOW, ("ensemble", {"members": "tfidf-linear,cnn",
                                      "member_params": {"cnn": {"epochs": 1, "embedding_dim": 8}}}), "member-2-bow"),
], ids=["bow, then tfidf-linear", "bow, then an ensemble", "an ensemble, then bow", "other members"])
def test_resuming_another_models_checkpoint_is_refused_before_training_and_keeps_it(tmp_path, first, then, stray):
    # The model resumed looked for its checkpoint elsewhere, started fresh, and saving dropped
    # the interrupted run's checkpoint.
    checkpoints = tmp_path / "checkpoints"
    Categorizer(first[0], params=first[1], quiet=True, **FORMATS["single"]).fit(tiny_frame(), checkpoint_dir=checkpoints)
    before = {p: p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()}
    assert before
    with pytest.raises(ConfigError, match=f"^{checkpoints / stray if stray else checkpoints} holds the checkpoint of "
                                          f"an interrupted run, which {then[0]} cannot continue"):
        Categorizer(then[0], params=then[1], quiet=True, **FORMATS["single"]).fit(
            tmp_path / "no-such-catalog.csv", checkpoint_dir=checkpoints, resume=True)
    assert {p: p.read_bytes() for p in checkpoints.rglob("*") if p.is_file()} == before


def test_an_interrupted_ensemble_resumes_its_members(tmp_path, capsys):
    # the other side of the refusal above: the checkpoints the ensemble's members look for are its own
    checkpoints = tmp_path / "checkpoints"
    for resume in (False, True):
        clf = Categorizer(ENSEMBLE_WITH_BOW[0], params=ENSEMBLE_WITH_BOW[1], quiet=not resume, **FORMATS["single"])
        clf.fit(tiny_frame(), checkpoint_dir=checkpoints, resume=resume)
    assert f"resuming from the checkpoint in {checkpoints / 'member-2-bow'}" in capsys.readouterr().err


def test_no_duplicate_text_leaks_from_training_into_test():
    frame = tiny_frame()
    frame = pd.concat([frame, frame.assign(title=frame["title"].str.upper() + "!")], ignore_index=True)
    clf = Categorizer(quiet=True, **FORMATS["single"]).fit(frame)
    test_texts = {normalize_text(t) for t in clf._test_catalog.products.texts}
    seen = set(np.asarray(clf.seen_fingerprints_).tolist())
    from prodcat.categorizer import text_fingerprints

    assert not set(text_fingerprints(list(test_texts)).tolist()) & seen


def test_evaluate_leaves_out_products_seen_in_training(fitted):
    frame = tiny_frame()
    no_test_split = Categorizer(quiet=True, test_size=0, **FORMATS["path"]).fit(frame)
    with pytest.raises(CatalogError, match="every product in <dataframe> was seen in training"):
        no_test_split.evaluate(frame)
    kept = no_test_split.evaluate(frame, keep_seen=True)
    assert kept["n"] == len(frame) and kept["excluded_seen_in_training"] == 0
    fresh = tiny_frame(seed=5)
    fresh["title"] = fresh["title"] + " new"
    mixed = pd.concat([frame.head(10), fresh], ignore_index=True)
    metrics = no_test_split.evaluate(mixed)
    assert metrics["excluded_seen_in_training"] == 10 and metrics["n"] == len(fresh)
    assert metrics["kept_seen_in_training"] == 0


def test_evaluate_with_keep_seen_says_how_many_products_are_scored_in_sample(tmp_path, capsys):
    # Products the model trained on are scored right from memory: a mislabeled
    # one is not among the confident mistakes, so the report must say so.
    frame = tiny_frame()
    clf = Categorizer(test_size=0, **FORMATS["single"]).fit(frame)
    fresh = tiny_frame(seed=5)
    fresh["title"] = fresh["title"] + " new"
    capsys.readouterr()
    metrics = clf.evaluate(pd.concat([frame.head(10), fresh], ignore_index=True), keep_seen=True,
                           report_dir=tmp_path / "report")
    assert metrics["kept_seen_in_training"] == 10 and metrics["excluded_seen_in_training"] == 0
    assert "10 of 106 products were seen in training and are scored anyway" in capsys.readouterr().err
    report = (tmp_path / "report" / "report.md").read_text()
    assert "10 of these products were seen in training and scored anyway" in report
    assert clf.evaluate(fresh, keep_seen=True)["kept_seen_in_training"] == 0


def test_evaluate_writes_a_report(fitted, tmp_path):
    fresh = tiny_frame(seed=9)
    fresh["title"] = fresh["title"] + " other"
    metrics = fitted.evaluate(fresh, report_dir=tmp_path / "report")
    assert (tmp_path / "report" / "metrics.json").is_file()
    assert (tmp_path / "report" / "report.md").is_file()
    assert metrics["accuracy"] > 0.8


def test_confident_mistakes_leave_out_products_of_classes_the_model_never_learned(fitted, tmp_path):
    # A class new in the test file is wrong whatever the model says: its products, all confident
    # "mistakes", used to fill the list of probably mislabeled products and push the real ones out.
    fresh = tiny_frame(seed=9)
    fresh["title"] = fresh["title"] + " other"
    fresh.loc[fresh.index[:30], "category"] = "Garden > Tools"
    mislabeled = fresh.index[fresh["leaf"] == "Shirts"][-1]
    fresh.loc[mislabeled, "category"] = "Home > Kitchen"
    metrics = fitted.evaluate(fresh, report_dir=tmp_path / "report")
    assert metrics["unseen_classes"] == {"Garden > Tools": 30}
    report = (tmp_path / "report" / "report.md").read_text()
    mistakes = report[report.index("## Confident mistakes"):]
    assert "Garden" not in mistakes
    assert fresh.loc[mislabeled, "title"] in mistakes
    assert "classes the model never learned are not listed here" in mistakes


def test_evaluate_at_a_coarser_level_scores_the_cut_paths(fitted):
    fresh = tiny_frame(seed=9)
    fresh["title"] = fresh["title"] + " other"
    full = fitted.evaluate(fresh)
    top = fitted.evaluate(fresh, label_level=1)
    assert top["level"] == 1 and top["n_classes"] == 2 and top["n"] == full["n"]
    assert top["accuracy"] == full["levels"][0]["accuracy"] > 0.9
    assert set(top["per_class"]) == {"Apparel", "Home"}
    with pytest.raises(ConfigError, match=r"paths of at most 2 level\(s\); --label-level 3"):
        fitted.evaluate(fresh, label_level=3)


def test_evaluate_refuses_a_label_format_other_than_the_models(tmp_path):
    frame = tiny_frame()
    multi = Categorizer(quiet=True, **FORMATS["multi"]).fit(frame)
    with pytest.raises(ConfigError, match="predicts multi labels; --label-format single cannot score it"):
        multi.evaluate(frame, label_format="single", keep_seen=True, report_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()
    single = Categorizer(quiet=True, **FORMATS["single"]).fit(frame)
    with pytest.raises(ConfigError, match="predicts single labels; --label-format multi"):
        single.evaluate(frame, label_format="multi", keep_seen=True)


def test_multilabel_thresholds_are_chosen_on_validation():
    clf = Categorizer(quiet=True, **FORMATS["multi"]).fit(tiny_frame())
    assert clf.thresholds_.shape == (len(clf.classes_),)
    assert ((clf.thresholds_ > 0) & (clf.thresholds_ < 1)).all()
    predicted = clf.predict(["oxford cotton shirt collar"])
    assert "shirts" in predicted[0]


def test_class_weight_and_seed_are_validated():
    with pytest.raises(ConfigError, match="class weight must be 'balanced' or 'none'"):
        Categorizer(class_weight="heavy", quiet=True, **FORMATS["single"]).fit(tiny_frame())
    a = Categorizer(quiet=True, seed=3, **FORMATS["single"]).fit(tiny_frame())
    b = Categorizer(quiet=True, seed=3, **FORMATS["single"]).fit(tiny_frame())
    assert a.metrics_["test"] == b.metrics_["test"]


def test_unfitted_categorizer_says_so():
    with pytest.raises(ProdcatError, match="not fitted yet"):
        Categorizer().predict(["x"])


def test_separate_test_file(tmp_path):
    frame = tiny_frame()
    held_out = tiny_frame(seed=4)
    held_out["title"] = held_out["title"] + " held"
    clf = Categorizer(quiet=True, **FORMATS["single"]).fit(frame, test_data=held_out)
    assert clf.metrics_["test"]["n"] == len(held_out)


def test_a_test_size_given_with_test_data_is_refused_not_ignored():
    # No test share is split off when test_data is given: a test_size did nothing and said nothing.
    with pytest.raises(ConfigError, match="^test_size splits a test share off the training catalog; with test data"):
        Categorizer(quiet=True, test_size=0.3, **FORMATS["single"]).fit(tiny_frame(), test_data=tiny_frame(seed=4))
    assert Categorizer().test_size is None  # unset: 0.1 of the catalog, or none with test_data


def test_a_separate_test_file_leaves_out_products_the_model_trains_on(capsys):
    # It used to score them: a test file sharing titles with the catalog flattered the model.
    frame = tiny_frame()
    held_out = tiny_frame(seed=4)
    held_out["title"] = held_out["title"] + " held"
    with_copies = pd.concat([held_out, frame.iloc[:5]], ignore_index=True)
    clf = Categorizer(**FORMATS["single"]).fit(frame, test_data=with_copies)
    assert clf.metrics_["test"]["n"] == len(held_out)
    assert clf.test_metrics_["excluded_seen_in_training"] == 5
    assert f"left out 5 of {len(with_copies)} products whose text the model trains on" in capsys.readouterr().err
    with pytest.raises(CatalogError, match="every product in <dataframe> was seen in training"):
        Categorizer(quiet=True, **FORMATS["single"]).fit(frame, test_data=frame)


def test_review_threshold_reaches_the_target_precision_on_validation(fitted):
    review = fitted.review_
    assert review["target_precision"] == 0.95
    if review["threshold"] is not None:
        assert review["precision"] >= 0.95 and 0 < review["coverage"] <= 1
    # A stricter target never lowers the threshold; an unreachable one flags everything.
    loose, strict = fitted.review_threshold(0.5), fitted.review_threshold(0.999)
    assert loose is not None and (strict is None or strict >= loose)
    table = fitted.predict_table(["steel chef knife", "zzz"], target_precision=0.5)
    assert table["needs_review"].tolist() == (table["confidence"] < loose).tolist()


def test_review_threshold_picks_the_largest_coverage():
    from prodcat.thresholds import review_threshold

    confidence = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 0, 1, 0])
    assert review_threshold(confidence, correct, 0.8) == {
        "target_precision": 0.8, "threshold": 0.7, "coverage": round(5 / 6, 6), "precision": 0.8
    }
    assert review_threshold(confidence, correct, 1.0)["threshold"] == 0.9
    assert review_threshold(confidence, np.zeros(6), 0.5)["threshold"] is None


def test_predict_file_writes_review_rows_separately(fitted, tmp_path):
    data = tmp_path / "new.csv"
    frame = tiny_frame(seed=11).drop(columns=["category"])
    frame.to_csv(data, index=False)
    summary = fitted.predict_file(data, tmp_path / "all.parquet", review_out=tmp_path / "review.csv",
                                  target_precision=0.999, chunk_size=16)
    everything = pd.read_parquet(tmp_path / "all.parquet")
    review = pd.read_csv(tmp_path / "review.csv")
    assert len(everything) == len(frame) and summary["needs_review"] == int(everything["needs_review"].sum())
    assert len(review) == summary["needs_review"]
    assert review["confidence"].tolist() == everything.loc[everything["needs_review"], "confidence"].tolist()
    # Nothing to review still gives a file with the header.
    fitted.predict_file(data, tmp_path / "all2.csv", review_out=tmp_path / "none.parquet", target_precision=0.01)
    assert "needs_review" in pd.read_parquet(tmp_path / "none.parquet").columns


def test_multilabel_thresholds_cut_midway_below_the_last_positive():
    from prodcat.thresholds import choose_multilabel_thresholds

    y = np.array([[1], [1], [0], [0]])
    proba = np.array([[0.9], [0.7], [0.5], [0.1]])
    # Best F1 keeps the two positives; the cut lies between 0.7 and 0.5.
    assert choose_multilabel_thresholds(y, proba)[0] == pytest.approx(0.6)
    # All positive: the cut lies below the lowest score.
    assert choose_multilabel_thresholds(np.ones((2, 1)), np.array([[0.8], [0.4]]))[0] == pytest.approx(0.2)
    # No positive in validation: the default.
    assert choose_multilabel_thresholds(np.zeros((2, 1)), np.array([[0.8], [0.4]]))[0] == 0.5
    # A lone positive scored below every other product: its best F1 is a cut under all of them, which
    # would tag every product; the cut stops at the floor.
    y = np.array([[0], [0], [0], [1]])
    assert choose_multilabel_thresholds(y, np.array([[0.06], [0.05], [0.04], [0.01]]))[0] == pytest.approx(0.1)


# ------------------------------------------------- the Python API, as a data scientist uses it
def test_a_frame_with_integer_column_names_trains_saves_and_loads(tmp_path):
    # pd.read_csv(header=None) names columns 0, 1, ...
    frame = tiny_frame()[["title", "leaf"]]
    frame.columns = [0, 1]
    clf = Categorizer(quiet=True, text_cols=[0], label_col=1).fit(frame)
    assert clf.fields_.text_cols == ("0",) and clf.fields_.label_cols == ("1",)
    expected = clf.predict(frame.head(4))
    assert expected == frame[1].head(4).tolist()
    loaded = Categorizer.load(clf.save(tmp_path / "model"))
    assert loaded.predict(frame.head(4)) == expected
    assert loaded.evaluate(tiny_frame(seed=3)[["title", "leaf"]].set_axis([0, 1], axis=1))["n"] == len(frame)


def test_list_cells_of_a_frame_are_read_as_a_file_reads_json_lists(tmp_path):
    frame = tiny_frame()
    frame["tag_list"] = frame["tags"].str.split("|")
    frame["path_list"] = frame["category"].str.split(" > ")
    multi = Categorizer(quiet=True, text_cols=["title"], label_col="tag_list", label_format="multi").fit(frame)
    assert multi.classes_ == ["apparel", "bedding", "black", "blue", "home", "kitchen", "red", "shirts", "shoes"]
    # pandas reads a Parquet list column as numpy arrays
    path = tmp_path / "lists.parquet"
    frame.to_parquet(path, index=False)
    from_parquet = pd.read_parquet(path)
    assert isinstance(from_parquet["tag_list"].iloc[0], np.ndarray)
    assert Categorizer(quiet=True, text_cols=["title"], label_col="tag_list",
                       label_format="multi").fit(from_parquet).classes_ == multi.classes_
    # a list of a path's levels, in a frame or in the file
    for data in (frame, path):
        paths = Categorizer(quiet=True, text_cols=["title"], label_col="path_list", label_format="path").fit(data)
        assert paths.classes_ == ["Apparel > Shirts", "Apparel > Shoes", "Home > Bedding", "Home > Kitchen"]


def test_missing_values_read_as_empty_text_in_every_form_of_products(fitted):
    text = "cotton oxford shirt with button collar"
    expected = fitted.predict_proba([{"title": text}]).to_numpy()
    for products in (
        [{"title": text, "description": float("nan")}],
        [{"title": text, "description": None}],
        pd.DataFrame({"title": [text], "description": [np.nan]}),
    ):
        np.testing.assert_array_equal(fitted.predict_proba(products).to_numpy(), expected)
    # a list or Series of texts with a gap: the gap is a product without text
    empty = fitted.predict([""])
    assert fitted.predict([text, None, float("nan")]) == fitted.predict([text]) + empty + empty
    series = pd.Series([text, None], index=[10, 20])
    assert fitted.predict(series) == fitted.predict([text]) + empty
    assert fitted.predict_proba(series).index.tolist() == [10, 20]
    assert fitted.predict(np.array([text])) == fitted.predict([text])


def test_a_series_of_numbers_reads_as_the_same_column_of_a_frame(fitted):
    # pandas reads a title column of EANs as int64 (a gap makes it float64); the
    # DataFrame was predicted, its column was refused as "not a list (or Series) of texts".
    frame = pd.DataFrame({"title": [4006381333931, 4006381333932, np.nan]})
    assert fitted.predict(frame["title"]) == fitted.predict(frame)
    assert fitted.predict(frame["title"].to_numpy()) == fitted.predict(frame)
    assert fitted.predict(pd.Series([4006381333931])) == fitted.predict(["4006381333931"])


def test_a_catalog_that_is_neither_a_file_nor_a_frame_is_one_line(fitted):
    records = tiny_frame().to_dict("records")
    with pytest.raises(CatalogError, match=r"a catalog is a file path or a pandas DataFrame, not a list"):
        Categorizer(quiet=True, **FORMATS["path"]).fit(records)
    with pytest.raises(CatalogError, match="pandas DataFrame, not a list"):
        fitted.evaluate(records)


@pytest.mark.parametrize("top_k", [0, -1, 2.5])
def test_predict_table_refuses_a_top_k_that_is_not_1_or_more(fitted, top_k):
    with pytest.raises(ConfigError, match="top-k must be a whole number, 1 or more"):
        fitted.predict_table(["oxford shirt"], top_k=top_k)


def test_evaluate_of_the_held_out_split_scores_a_coarser_level_and_refuses_reading_options(fitted, tmp_path):
    # Both were ignored without a word: leaf figures came back for label_level=1.
    top = fitted.evaluate(label_level=1, report_dir=tmp_path / "report")
    assert top["level"] == 1 and set(top["per_class"]) <= {"Apparel", "Home"}
    assert top["accuracy"] == fitted.evaluate()["levels"][0]["accuracy"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| Apparel > " not in report[report.index("## Confident mistakes"):]
    with pytest.raises(ConfigError, match="^text_cols: an option for reading a catalog, but the held-out test split"):
        fitted.evaluate(text_cols=["title"])


def test_predict_table_keeps_the_index_of_a_frame_or_series_as_predict_proba_does(fitted):
    # A filtered frame's predictions are joined back by index: numbered 0..n-1
    # instead, they landed on other products (or on none) without a word.
    frame = tiny_frame().iloc[[5, 2, 40]].drop(columns=["category", "leaf", "tags"])
    table = fitted.predict_table(frame)
    assert table.index.tolist() == fitted.predict_proba(frame).index.tolist() == [5, 2, 40]
    assert frame.join(table)["prediction"].tolist() == fitted.predict(frame)
    series = pd.Series(frame["title"].tolist(), index=["a", "b", "c"])
    assert fitted.predict_table(series).index.tolist() == ["a", "b", "c"]
    assert fitted.predict_table(frame["title"].tolist()).index.tolist() == [0, 1, 2]


def test_predict_file_given_a_frame_points_to_predict_table(fitted, tmp_path):
    with pytest.raises(CatalogError, match=r"predict_file reads a catalog file, not a DataFrame: .*predict_table"):
        fitted.predict_file(tiny_frame(), tmp_path / "out.csv")
    assert not list(tmp_path.iterdir())


def test_evaluate_warns_when_no_label_is_a_class_the_model_knows(capsys):
    # int labels, then a frame where a gap made pandas turn them into floats: "1.0" is not "1"
    codes = {"Shirts": 1, "Shoes": 2, "Kitchen": 3, "Bedding": 4}
    clf = Categorizer(text_cols=["title"], label_col="code").fit(tiny_frame().assign(code=lambda f: f.leaf.map(codes)))
    new = tiny_frame(seed=4).assign(code=lambda f: f.leaf.map(codes).astype(float))
    capsys.readouterr()
    metrics = clf.evaluate(new)
    err = capsys.readouterr().err
    assert metrics["accuracy"] == 0
    assert "no label in <dataframe> is a class this model knows" in err
    assert "'1.0'" in err and "'1'" in err
    # some unknown classes among known ones: counted, and said
    clf.evaluate(tiny_frame(seed=4).assign(code=lambda f: f.leaf.map({**codes, "Shoes": 9})))
    assert "24 of 96 labels in <dataframe> are classes this model never learned ('9')" in capsys.readouterr().err


def test_a_frame_with_a_column_named_twice_is_one_line():
    frame = pd.concat([tiny_frame()[["title", "leaf"]], tiny_frame()[["title"]]], axis=1)
    with pytest.raises(ColumnError, match="column 'title' appears more than once in <dataframe>"):
        Categorizer(quiet=True, text_cols=["title"], label_col="leaf").fit(frame)


def test_predict_given_a_file_name_as_text_says_to_pass_a_path(tmp_path, monkeypatch, capsys):
    clf = Categorizer(**FORMATS["path"]).fit(tiny_frame())
    tiny_frame(seed=3).to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert len(clf.predict("new.csv")) == 1  # still the text it was given, as documented
    assert "'new.csv' is classified as a product's text; it names a file: pass Path('new.csv')" in capsys.readouterr().err
    clf.predict(["missing.csv", "cotton shirt"])
    clf.predict("other.csv")  # no such file: a text like any other
    assert "names a file" not in capsys.readouterr().err


def test_a_frame_without_the_columns_names_them_and_those_it_has():
    clf = Categorizer(quiet=True, **FORMATS["single"]).fit(tiny_frame())
    with pytest.raises(ColumnError) as caught:
        clf.predict(pd.DataFrame({"titel": ["oxford shirt"], "price": [3]}))
    assert str(caught.value) == ("columns 'title', 'description' not found in input; did you mean 'titel' for 'title'? "
                                 "columns are: titel, price")


def test_a_product_with_nothing_to_read_needs_review_however_confident(tmp_path, capsys):
    # Where one class is most of the catalog, tfidf-linear answered an empty title with
    # that class at confidence 1.0, passing review: a Shopify export's variant rows
    # (no title) were categorized automatically, from nothing.
    rng = np.random.default_rng(0)
    words = {"Shirts": "oxford shirt", "Shoes": "running shoe", "Mugs": "coffee mug"}
    leaves = rng.choice(list(words), size=300, p=[0.85, 0.1, 0.05])
    frame = pd.DataFrame({"title": [f"{words[leaf]} {i}" for i, leaf in enumerate(leaves)], "leaf": leaves})
    clf = Categorizer(text_cols=["title"], label_col="leaf", quiet=True).fit(frame)
    table = clf.predict_table([{"title": ""}, {"title": "oxford shirt 7000"}, {"title": None}])
    assert table["needs_review"].tolist() == [True, False, True]
    new = tmp_path / "new.csv"
    pd.DataFrame({"sku": ["a", "b", "c"], "title": ["oxford shirt 7001", "", ""]}).to_csv(new, index=False)
    clf.quiet = False
    summary = clf.predict_file(new, tmp_path / "out.csv")
    assert summary["needs_review"] == 2
    assert f"2 product(s) of {new} have no text in title (first: row 2)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(model=["tfidf-linear"]), r"a model is named by a string, got \['tfidf-linear'\]; available: .*tfidf-linear"),
        (dict(params=[("C", 0.5)]), r"params must be a dict of the model's settings"),
        (dict(valid_size="0.1"), "valid size must be a fraction from 0 up to .*got '0.1'"),
        (dict(valid_size=None), "valid size must be a fraction from 0 up to .*got None"),
        (dict(test_size="0.2"), "test size must be a fraction from 0 up to .*got '0.2'"),
        (dict(target_precision="0.9"), "target precision must be above 0 and at most 1, got '0.9'"),
        (dict(target_precision=None), "target precision must be above 0 and at most 1, got None"),
    ],
)
def test_fit_refuses_settings_of_the_wrong_type_before_reading(tmp_path, options, message):
    # Each was a TypeError (unhashable, not a mapping, '<' between str and int) from deep inside;
    # the split's sizes were only checked once the catalog had been read.
    options = {**FORMATS["single"], **options}
    with pytest.raises(ConfigError, match=message):
        Categorizer(quiet=True, **options).fit(tmp_path / "not-read.csv")


def test_another_target_precision_or_top_k_of_the_wrong_type_is_refused_by_name(fitted, tmp_path):
    with pytest.raises(ConfigError, match="target precision must be above 0 and at most 1, got '0.9'"):
        fitted.predict_table(["oxford shirt"], target_precision="0.9")
    catalog = tmp_path / "catalog.csv"
    tiny_frame(2).to_csv(catalog, index=False)
    for top_k in ("2", None):
        with pytest.raises(ConfigError, match="top-k must be a whole number, 1 or more"):
            fitted.predict_file(catalog, tmp_path / "out.csv", top_k=top_k)
    assert not (tmp_path / "out.csv").exists()


def test_a_dict_of_columns_is_refused_rather_than_read_as_one_product(fitted):
    # {"title": [...], ...} gave one prediction for the whole dict, its lists read as JSON text
    columns = {"title": ["oxford shirt", "chef knife"], "description": ["cotton", "steel"]}
    with pytest.raises(ProdcatError, match=r"dict of lists \(columns\) would read as one product: pass "
                                           r"pandas.DataFrame\(that dict\)"):
        fitted.predict(columns)
    assert len(fitted.predict(pd.DataFrame(columns))) == 2
    # a product with one field written as a list is still one product
    assert len(fitted.predict({"title": "oxford shirt", "description": ["cotton", "button"]})) == 1


def test_a_frame_with_multiindex_columns_is_refused_by_name(fitted):
    frame = tiny_frame(4)
    frame.columns = pd.MultiIndex.from_tuples([(c, "") for c in frame.columns])
    message = r"the DataFrame's columns have several levels \(a MultiIndex\): give each column one name"
    with pytest.raises(ColumnError, match=message):
        fitted.predict(frame)
    with pytest.raises(ColumnError, match=message):
        Categorizer(quiet=True, **FORMATS["path"]).fit(frame)


def test_paths_starting_with_a_tilde_mean_the_home_folder_as_a_catalog_path_does(fitted, tmp_path, monkeypatch):
    # save("~/models/x") wrote into a folder named "~" under the current directory
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    tiny_frame(2).to_csv(home / "catalog.csv", index=False)
    assert fitted.save("~/models/shirts") == home / "models" / "shirts"
    loaded = Categorizer.load("~/models/shirts", quiet=True)
    loaded.predict_file("~/catalog.csv", "~/out.csv", review_out="~/review.csv")
    fitted.evaluate("~/catalog.csv", report_dir="~/report", keep_seen=True)
    assert {"models", "out.csv", "review.csv", "report"} <= {p.name for p in home.iterdir()}
    assert not any(elsewhere.iterdir())


def test_a_path_argument_that_is_no_path_is_refused_by_name(fitted, tmp_path):
    # each was a bare TypeError from pathlib
    with pytest.raises(ConfigError, match=r"the model directory must be a path \(a str or pathlib.Path\), got None"):
        fitted.save(None)
    with pytest.raises(ConfigError, match="the model directory must be a path .*got 5"):
        Categorizer.load(5)
    catalog = tmp_path / "catalog.csv"
    tiny_frame(2).to_csv(catalog, index=False)
    with pytest.raises(ConfigError, match="the predictions file must be a path .*got None"):
        fitted.predict_file(catalog, None)
    with pytest.raises(ConfigError, match="the report directory must be a path .*got 5"):
        fitted.evaluate(report_dir=5)
    with pytest.raises(ConfigError, match="the TensorBoard log directory must be a path .*got 5"):
        Categorizer(quiet=True, **FORMATS["path"]).fit(catalog, logdir=5)


def test_text_and_labels_given_as_utf8_bytes_read_as_the_text_they_encode(tmp_path):
    # str(b"Shirts") made the class "b'Shirts'" and the title's first word "b'oxford"
    frame = tiny_frame(8)
    as_bytes = frame.assign(title=frame["title"].str.encode("utf-8"), leaf=frame["leaf"].str.encode("utf-8"))
    clf = Categorizer(quiet=True, **FORMATS["single"]).fit(as_bytes)
    assert clf.classes_ == sorted(set(frame["leaf"]))
    texts = Categorizer(quiet=True, **FORMATS["single"]).fit(frame)
    assert clf.predict(frame) == texts.predict(frame)
    assert clf.predict({"title": "oxford shirt".encode(), "description": b"cotton"}) == ["Shirts"]
    broken = frame.assign(title=[b"\xff\xfe oxford"] + frame["title"].tolist()[1:])
    with pytest.raises(CatalogError, match=r"<dataframe>: column 'title', row 1: a text cell holds bytes that are not "
                                           r"UTF-8 text \(b'\\xff\\xfe oxford'\.\.\.\): decode them into text first"):
        Categorizer(quiet=True, **FORMATS["single"]).fit(broken)
    with pytest.raises(CatalogError, match="a text cell holds bytes that are not UTF-8 text"):
        clf.predict([{"title": b"\xff"}])


def test_a_refused_fit_leaves_a_loaded_model_saving_its_own_report(fitted, tmp_path):
    # the refused fit had already dropped the loaded model's report: saving it back deleted report/
    fitted.save(tmp_path / "model")
    loaded = Categorizer.load(tmp_path / "model", quiet=True)
    with pytest.raises(ColumnError, match="column 'category' not found"):
        loaded.fit(tiny_frame(4).drop(columns="category"))
    loaded.save(tmp_path / "model")
    assert (tmp_path / "model" / "report" / "report.md").is_file()


def test_evaluate_splits_labels_on_the_separator_training_found(tmp_path):
    # Detected again on a holdout of one tag each, the separator would be the comma inside
    # "Sale, Clearance", scoring two tags the model never knew instead of its own class.
    frame = tiny_frame()
    frame["tags"] = frame["tags"].str.replace("red", "Sale, Clearance")
    clf = Categorizer(model="tfidf-linear", text_cols=["title"], label_col="tags", label_format="multi",
                      quiet=True).fit(frame)
    assert "Sale, Clearance" in clf.label_space_.classes
    holdout = frame.assign(tags=[tags.split("|")[1] for tags in frame["tags"]])
    assert holdout["tags"].str.contains(",").any() and not holdout["tags"].str.contains("|", regex=False).any()
    clf.save(tmp_path / "model")
    for model in (clf, Categorizer.load(tmp_path / "model", quiet=True)):
        metrics = model.evaluate(holdout, keep_seen=True)
        assert metrics["unseen_classes"] == {}
        # a holdout written otherwise still reads with its own separator, given
        other = holdout.assign(tags=[tags.replace("|", ";") for tags in frame["tags"]])
        assert model.evaluate(other, keep_seen=True, label_sep=";")["unseen_classes"] == {}


def test_a_path_holdout_written_with_another_separator_is_read_with_its_own(tmp_path):
    # Paths are detected per file: a holdout exported by another system ("Apparel>>Shirts")
    # scored every product wrong when the training file's " > " was kept with the model.
    frame = tiny_frame()
    clf = Categorizer(model="tfidf-linear", text_cols=["title"], label_col="category", label_format="path",
                      quiet=True).fit(frame)
    holdout = frame.assign(category=frame["category"].str.replace(" > ", ">>"))
    clf.save(tmp_path / "model")
    for model in (clf, Categorizer.load(tmp_path / "model", quiet=True)):
        metrics = model.evaluate(holdout, keep_seen=True)
        assert metrics["unseen_classes"] == {} and metrics["accuracy"] >= 0.8


def test_train_splits_a_test_files_labels_on_the_separator_of_its_training_file():
    frame = tiny_frame()
    frame["tags"] = frame["tags"].str.replace("red", "Sale, Clearance")
    holdout = frame.assign(tags=[tags.split("|")[1] for tags in frame["tags"]],
                           title=frame["title"] + " anew")  # unseen texts: none left out as seen in training
    clf = Categorizer(model="tfidf-linear", text_cols=["title"], label_col="tags", label_format="multi",
                      quiet=True).fit(frame, test_data=holdout)
    assert clf.test_metrics_["unseen_classes"] == {}


def test_the_test_report_says_which_classes_it_cannot_cover(tmp_path):
    # Two classes of one product each cannot be split: a report of the other classes alone
    # read as the model's figures for all of them.
    frame = tiny_frame()
    frame.loc[0, "leaf"], frame.loc[1, "leaf"] = "Odd", "Rare"
    clf = Categorizer(quiet=True, **FORMATS["single"]).fit(frame)
    assert "Odd" in clf.classes_ and clf.test_metrics_["per_class"].keys().isdisjoint({"Odd", "Rare"})
    assert clf.test_metrics_["train_only_classes"] == clf.evaluate()["train_only_classes"] == 2
    report = (clf.save(tmp_path / "model") / "report" / "report.md").read_text()
    assert ("2 of the model's 6 classes had too few distinct texts to split: kept in training only, they have "
            "no test products, and these figures do not cover them.") in report
    plain = Categorizer(quiet=True, **FORMATS["single"]).fit(tiny_frame())
    assert "train_only_classes" not in plain.test_metrics_

"""Finding probably mislabeled products: out-of-fold judgement, then confident learning."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import run
from prodcat import Categorizer
from prodcat.errors import ConfigError
from tiny_catalogs import FORMATS, tiny_frame

# Each flipped product keeps its words and gets the next leaf (sorted) as its label.
FLIPPED = [3, 17, 50, 90]
LEAVES = ["Bedding", "Kitchen", "Shirts", "Shoes"]
PATHS = {"Shirts": "Apparel > Shirts", "Shoes": "Apparel > Shoes", "Kitchen": "Home > Kitchen",
         "Bedding": "Home > Bedding"}


def flipped_frame() -> tuple[pd.DataFrame, dict[int, str]]:
    frame = tiny_frame(40)
    truth = {}
    for row in FLIPPED:
        truth[row] = frame.loc[row, "leaf"]
        wrong = LEAVES[(LEAVES.index(truth[row]) + 1) % len(LEAVES)]
        frame.loc[row, ["leaf", "category"]] = [wrong, PATHS[wrong]]
    return frame, truth


@pytest.mark.parametrize("label_format", ["single", "path"])
def test_the_flipped_products_have_the_least_credible_labels_and_only_they_are_flagged(label_format):
    frame, truth = flipped_frame()
    table = Categorizer(**FORMATS[label_format], id_cols=["sku"], quiet=True).find_label_issues(frame)

    assert len(table) == len(frame) and table["row"].tolist() == list(range(1, len(frame) + 1))
    assert table["sku"].tolist() == frame["sku"].tolist()  # catalog order, ids kept
    assert table["judged"].all() and table.attrs["not_judged"] == 0
    least_credible = table.sort_values("label_quality").index[: len(FLIPPED)]
    assert sorted(least_credible) == FLIPPED
    flagged = set(table.index[table["label_issue"]])
    assert flagged and flagged <= set(FLIPPED) and table.attrs["issues"] == len(flagged)
    for row in FLIPPED:  # the suggestion is the class the product's words say
        assert table.loc[row, "suggested"] == (truth[row] if label_format == "single" else PATHS[truth[row]])
        assert table.loc[row, "label_quality"] < 0.2 < table.loc[row, "suggested_probability"]
    credible = table.drop(index=FLIPPED)
    assert (credible["label"] == credible["suggested"]).mean() > 0.95


def test_a_multi_label_product_with_tags_of_another_product_is_flagged():
    frame = tiny_frame(40)
    kitchen = frame.index[frame["leaf"] == "Kitchen"][0]
    frame.loc[kitchen, "tags"] = "apparel|red|shirts"
    table = Categorizer(**FORMATS["multi"], quiet=True).find_label_issues(frame)
    assert table.index[table["label_issue"]].tolist() == [kitchen]
    assert table["label_quality"].idxmin() == kitchen
    assert set(table.loc[kitchen, "suggested"].split("|")) >= {"home", "kitchen"}


def test_a_class_too_small_for_every_fold_is_not_judged_nor_flagged():
    # Out of its fold, a class of one product (and its copies) is missing from
    # training: it would get probability 0 for a class that is merely rare.
    frame = tiny_frame(40)
    frame.loc[0, "leaf"] = "Teapots"
    frame = pd.concat([frame, frame.loc[[0]].assign(sku="COPY")], ignore_index=True)
    frame.loc[[1, 2], "leaf"] = "Mugs"  # two products: each is judged by a model that learned the other
    table = Categorizer(**FORMATS["single"], quiet=True).find_label_issues(frame)
    teapots = table.index[table["label"] == "Teapots"]
    assert len(teapots) == 2 and not table.loc[teapots, "judged"].any()
    assert table.loc[teapots, "label_quality"].isna().all() and not table.loc[teapots, "label_issue"].any()
    assert table.attrs["not_judged"] == 2 and table.drop(index=teapots)["judged"].all()


def test_copies_of_a_product_share_a_fold_so_a_twin_cannot_vouch_for_a_wrong_label():
    # Five listings of one mislabeled product: if its copies trained the model
    # judging it, they would vouch for the wrong label.
    frame = tiny_frame(40)
    kitchen = frame[frame["leaf"] == "Kitchen"].iloc[0]
    twins = pd.DataFrame([{**kitchen.to_dict(), "sku": f"TWIN-{i}", "leaf": "Shirts"} for i in range(5)])
    frame = pd.concat([frame, twins], ignore_index=True)
    table = Categorizer(**FORMATS["single"], id_cols=["sku"], quiet=True).find_label_issues(frame)
    twins_rows = table.index[table["sku"].str.startswith("TWIN")]
    assert (table.loc[twins_rows, "suggested"] == "Kitchen").all()
    assert (table.loc[twins_rows, "label_quality"] < 0.2).all()


def test_any_registered_model_can_judge():
    frame, _ = flipped_frame()
    clf = Categorizer("bow", **FORMATS["single"], params={"epochs": 3, "dim": 16, "num_threads": 1}, quiet=True)
    table = clf.find_label_issues(frame, folds=3)
    assert table.attrs["folds"] == 3
    assert np.isfinite(table["label_quality"]).all()
    assert clf._fitted is None  # judging the catalog does not fit the Categorizer


def test_a_neural_judge_without_a_validation_share_is_warned_about_once(capsys):
    frame, _ = flipped_frame()
    clf = Categorizer("bow", **FORMATS["single"], params={"epochs": 2, "dim": 8, "num_threads": 1}, valid_size=0)
    clf.find_label_issues(frame, folds=3)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "no validation products" in line]
    assert warnings == ["warning: no validation products in a fold (valid size 0): each bow trains every epoch of "
                        "its budget without early stopping and is not calibrated"]


@pytest.mark.parametrize("folds", [1, 0, 2.5, True])
def test_folds_must_be_an_integer_of_at_least_two(folds):
    with pytest.raises(ConfigError, match="folds must be an integer of at least 2"):
        Categorizer(**FORMATS["single"], quiet=True).find_label_issues(tiny_frame(), folds=folds)


def test_folds_given_as_a_numpy_integer_are_taken():
    # np.int64(2) was refused as "not an integer"
    from prodcat.label_issues import check_folds

    assert check_folds(np.int64(3)) == 3 and type(check_folds(np.int64(3))) is int


def test_the_command_writes_the_flagged_products_worst_first_and_names_them(tmp_path, capsys):
    frame, truth = flipped_frame()
    data, out = tmp_path / "cat.csv", tmp_path / "issues.csv"
    frame.to_csv(data, index=False)
    code, stdout, err = run(capsys, "label-issues", "--data", data, "--text-cols", "title,description",
                            "--label-col", "leaf", "--id-cols", "sku", "--out", out, "-q")
    assert code == 0, err
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["sku", "row", "text", "label", "suggested", "suggested_probability",
                                     "label_quality", "judged", "label_issue"]
    assert set(written["label_issue"]) == {"True"} and 1 <= len(written) <= len(FLIPPED)
    assert written["label_quality"].astype(float).is_monotonic_increasing
    assert set(written["sku"]) <= set(frame.loc[FLIPPED, "sku"])
    lines = stdout.strip().splitlines()
    assert lines[0] == f"{len(written)} of {len(frame)} products are probably mislabeled"
    first = written.iloc[0]
    assert lines[1].startswith(f"  row {first['row']}: '{first['label']}' -> '{first['suggested']}' (label quality")
    assert lines[-1] == f"wrote {out}"

    every = tmp_path / "all.parquet"
    code, _, err = run(capsys, "label-issues", "--data", data, "--text-cols", "title,description",
                       "--label-col", "leaf", "--out", every, "--all", "-q")
    assert code == 0, err
    assert len(pd.read_parquet(every)) == len(frame)


def test_the_command_writes_a_csv_for_excel_on_request(tmp_path, capsys):
    # label issues are read by a person, most often in a spreadsheet: as predict does, --excel writes
    # the byte-order mark Excel needs to show accents, and ';' with decimal commas for European Excel
    frame, _ = flipped_frame()
    data, out = tmp_path / "cat.csv", tmp_path / "issues.csv"
    frame.assign(sku="Küche-" + frame["sku"]).to_csv(data, index=False)
    code, _, err = run(capsys, "label-issues", "--data", data, "--text-cols", "title,description",
                       "--label-col", "leaf", "--id-cols", "sku", "--out", out, "--excel", ";", "-q")
    assert code == 0, err
    assert out.read_bytes().startswith("\ufeffsku;row;text;".encode())
    written = pd.read_csv(out, sep=";", decimal=",", encoding="utf-8-sig")
    assert written["sku"].str.startswith("Küche-").all() and written["label_quality"].is_monotonic_increasing


def test_the_command_refuses_an_output_it_cannot_write_before_any_work(tmp_path, capsys):
    data = tmp_path / "cat.csv"
    tiny_frame().to_csv(data, index=False)
    fields = ["--text-cols", "title,description", "--label-col", "leaf"]
    for out, message in [
        (tmp_path / "issues.xlsx", f"cannot write label issues to {tmp_path / 'issues.xlsx'}: use a .csv, .tsv, "
                                   ".jsonl or .parquet file name"),
        (data, f"refusing to overwrite the input catalog {data} with label issues"),
        (tmp_path, f"cannot write label issues to {tmp_path}: use a .csv, .tsv, .jsonl or .parquet file name"),
    ]:
        code, _, err = run(capsys, "label-issues", "--data", data, *fields, "--out", out, "-q")
        assert code == 2 and err.strip().splitlines() == [f"prodcat: error: {message}"], err
    code, _, err = run(capsys, "label-issues", "--data", data, *fields, "--out", tmp_path / "i.csv", "--folds", "1")
    assert code == 2 and err.strip().splitlines() == ["prodcat: error: folds must be an integer of at least 2, got 1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.csv"]


@pytest.mark.parametrize("valid_size", [1.5, 1.0, -0.1, "0.1"])
def test_a_valid_size_that_is_no_fraction_is_refused_as_fit_refuses_it(valid_size):
    with pytest.raises(ConfigError, match="valid size must be a fraction from 0 up to"):
        Categorizer(**FORMATS["single"], valid_size=valid_size, quiet=True).find_label_issues(tiny_frame())


def test_two_classes_one_of_a_single_text_are_refused_without_asking_for_fewer_folds(capsys, tmp_path):
    # Out of its fold the single Shoes product leaves Shirts alone to learn: no number of folds helps.
    frame = tiny_frame(10)
    frame = pd.concat([frame[frame["leaf"] == "Shirts"], frame[frame["leaf"] == "Shoes"].head(1)])
    data = tmp_path / "cat.csv"
    frame.to_csv(data, index=False)
    code, _, err = run(capsys, "label-issues", "--data", data, "--text-cols", "title,description",
                       "--label-col", "leaf", "--out", tmp_path / "issues.csv", "--folds", "2", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {data}: once the products of 'Shoes' are held out, only 'Shirts' is left to train on; "
        "finding label issues needs at least two classes of 2 or more distinct texts"], err


def test_a_tag_every_product_has_is_no_crash_and_the_other_tags_are_still_judged():
    # cleanlab refuses a tag column holding one value; a tag on every product is common ("new", "in stock").
    frame = tiny_frame(40)
    kitchen = frame.index[frame["leaf"] == "Kitchen"][0]
    frame.loc[kitchen, "tags"] = "apparel|red|shirts"
    frame["tags"] += "|catalog"
    table = Categorizer(**FORMATS["multi"], quiet=True).find_label_issues(frame)
    assert table.index[table["label_issue"]].tolist() == [kitchen]
    assert table["label_quality"].notna().all()


def test_a_rare_tag_of_two_distinct_texts_is_learned_by_every_fold_model():
    # Dealt at random, both products of a tag could share a fold and neither would be judged.
    for seed in range(8):
        frame = tiny_frame(10)
        silk = frame.index[frame["leaf"] == "Shirts"][:2]
        frame.loc[silk, "tags"] += "|silk"
        frame.loc[silk, "title"] += " silk"
        table = Categorizer(**FORMATS["multi"], seed=seed, quiet=True).find_label_issues(frame)
        assert table["judged"].all(), seed


def test_classes_spelled_apart_are_warned_about_as_train_warns(capsys):
    frame = tiny_frame(10)
    shirts = frame.index[frame["leaf"] == "Shirts"]
    frame.loc[shirts[::2], "leaf"] = "shirts"
    Categorizer(**FORMATS["single"]).find_label_issues(frame)
    assert "has 1 class(es) written in more than one way" in capsys.readouterr().err


def test_a_catalog_with_photos_names_each_products_photo_for_the_person_checking(dummies, shop):
    path, frame = shop
    table = Categorizer("image-dummy", **FORMATS["single"], image_col="image", image_root="photos",
                        quiet=True).find_label_issues(path, folds=3)
    assert list(table.columns[:4]) == ["row", "text", "photo", "label"]
    assert [Path(photo).name for photo in table["photo"]] == frame["image"].tolist()
    assert all(Path(photo).is_file() for photo in table["photo"])


def test_help_says_the_id_columns_go_to_the_issues_file(capsys):
    code, out, _ = run(capsys, "label-issues", "--help")
    assert code == 0
    assert "prediction files" not in out and "Id columns copied to the --out file" in out


def test_no_flagged_product_still_writes_the_columns_with_their_types(tmp_path, capsys):
    data, out = tmp_path / "cat.csv", tmp_path / "issues.parquet"
    tiny_frame(40).to_csv(data, index=False)
    code, stdout, err = run(capsys, "label-issues", "--data", data, "--text-cols", "title,description",
                            "--label-col", "leaf", "--out", out, "-q")
    assert code == 0, err
    assert stdout.startswith("0 of 160 products are probably mislabeled")
    written = pd.read_parquet(out)
    assert written.empty and list(written.columns)[:2] == ["row", "text"]
    assert written["row"].dtype.kind == "i" and written["label_quality"].dtype.kind == "f"
    assert written["label_issue"].dtype == bool and pd.api.types.is_string_dtype(written["label"])


def test_a_product_with_no_text_is_not_judged_by_a_model_of_text(tmp_path, capsys):
    # Its judge answered it from its biases alone (the largest class, certain), so every
    # product without a title filed under a small class was flagged as mislabeled.
    rng = np.random.default_rng(0)
    words = {"Shirts": "oxford shirt", "Shoes": "running shoe", "Mugs": "coffee mug"}
    leaves = rng.choice(list(words), size=300, p=[0.85, 0.1, 0.05])
    titled = pd.DataFrame({"title": [f"{words[leaf]} {i}" for i, leaf in enumerate(leaves)], "leaf": leaves})
    frame = pd.concat([titled, pd.DataFrame({"title": [""] * 5, "leaf": ["Mugs"] * 5})], ignore_index=True)
    table = Categorizer(text_cols=["title"], label_col="leaf", quiet=True).find_label_issues(frame)
    untitled = table[table["text"] == ""]
    assert len(untitled) == 5 and not untitled["judged"].any() and not untitled["label_issue"].any()
    assert table.loc[table["text"] != "", "judged"].all()
    data = tmp_path / "catalog.csv"
    frame.to_csv(data, index=False)
    code, out, _ = run(capsys, "label-issues", "--data", data, "--text-cols", "title", "--label-col", "leaf",
                       "--out", tmp_path / "issues.csv", "-q")
    assert code == 0 and "(5 not judged: no other product of their class to learn it from, or nothing the model reads)" in out

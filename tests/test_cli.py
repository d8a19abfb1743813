"""The CLI end to end, through the real entry point: outputs, and one clear
line with a non-zero exit for every user mistake."""

import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import run, run_ok
from prodcat.errors import ConfigError
from tiny_catalogs import tiny_frame, tiny_image_frame

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo_catalog.csv"
DEMO_FIELDS = ["--text-cols", "title,description", "--label-col", "category", "--label-format", "path"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "model"
    run_ok("train", "--data", DEMO, *DEMO_FIELDS, "--id-cols", "sku", "--out", out, "--quiet")
    return out


def test_train_writes_model_and_report(model_dir):
    assert (model_dir / "manifest.json").is_file()
    metrics = json.loads((model_dir / "report" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.75


def test_evaluate_uses_the_saved_field_mapping(model_dir, tmp_path, capsys):
    code, out, err = run(capsys, "evaluate", model_dir, "--data", DEMO, "--out", tmp_path / "r", "--keep-seen")
    assert code == 0, err
    assert "macro_f1=" in out
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["n"] == 630 and len(metrics["levels"]) == 2


def test_evaluate_scores_a_coarser_level_and_refuses_another_label_format(model_dir, tmp_path, capsys):
    code, out, err = run(capsys, "evaluate", model_dir, "--data", DEMO, "--out", tmp_path / "r", "--keep-seen",
                         "--label-level", "1", "-q")
    assert code == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["level"] == 1 and metrics["accuracy"] > 0.9
    assert "Scored at level 1" in (tmp_path / "r" / "report.md").read_text()
    code, out, err = run(capsys, "evaluate", model_dir, "--data", DEMO, "--out", tmp_path / "r2", "--keep-seen",
                         "--label-format", "single", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: model {model_dir} predicts path labels; --label-format single cannot score it "
        "(leave --label-format out to read the labels as path)"
    ]
    assert not (tmp_path / "r2").exists()


def test_predict_streams_in_input_order_with_ids(model_dir, tmp_path, capsys):
    out_csv = tmp_path / "pred.csv"
    code, out, err = run(capsys, "predict", model_dir, "--data", DEMO, "--out", out_csv, "--top-k", "2",
                         "--chunk-size", "100", "--quiet")
    assert code == 0, err
    # the mode of any file the user writes, not the owner-only one of the temporary file it was
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out_csv.stat().st_mode) == 0o666 & ~umask
    predictions = pd.read_csv(out_csv, dtype=str, keep_default_na=False)
    source = pd.read_csv(DEMO, dtype=str, keep_default_na=False)
    assert predictions["sku"].tolist() == source["sku"].tolist()
    assert list(predictions.columns) == [
        "sku", "prediction", "confidence", "needs_review", "label_1", "prob_1", "label_2", "prob_2",
        "confident_path", "confident_level",  # a path model's
    ]
    assert (predictions["prediction"] == source["category"]).mean() > 0.85  # it saw these in training

    out_parquet = tmp_path / "pred.parquet"
    code, _, err = run(capsys, "predict", model_dir, "--data", DEMO, "--out", out_parquet, "--chunk-size", "64", "-q")
    assert code == 0, err
    assert pd.read_parquet(out_parquet)["prediction"].tolist() == predictions["prediction"].tolist()


def test_predict_without_id_column_numbers_rows(model_dir, tmp_path, capsys):
    data = tmp_path / "new.jsonl"
    pd.DataFrame({"title": ["oxford shirt", "chef knife", "yoga mat"]}).to_json(data, orient="records", lines=True)
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", tmp_path / "p.jsonl", "-q")
    assert code == 0, err
    rows = pd.read_json(tmp_path / "p.jsonl", lines=True)
    assert rows["row"].tolist() == [1, 2, 3]


def test_inspect_terminal_and_json(capsys):
    code, out, err = run(capsys, "inspect", "--data", DEMO, *DEMO_FIELDS)
    assert code == 0, err
    assert "630" in out
    code, out, err = run(capsys, "inspect", "--data", DEMO, *DEMO_FIELDS, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"] == 630 and report["classes"] == 10


def test_inspect_refuses_a_top_below_one(capsys):
    # a negative --top sliced the lists from their far end: all but the rarest few
    code, out, err = run(capsys, "inspect", "--data", DEMO, *DEMO_FIELDS, "--top", "-2", "--json")
    assert code == 2 and err.strip().splitlines() == ["prodcat: error: --top must be 1 or more, got -2"]
    assert out == ""


def test_models_and_version(capsys):
    assert "tfidf-linear" in run(capsys, "models")[1]
    assert run(capsys, "--version")[1].startswith("prodcat 0.")


def test_python_dash_m_prodcat_runs_the_command():
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "prodcat", "--version"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("prodcat 0.")


# --- bad input: one line, non-zero exit, nothing written -------------------
def _catalog(tmp_path, frame=None, name="cat.csv"):
    path = tmp_path / name
    (frame if frame is not None else tiny_frame()).to_csv(path, index=False)
    return path


def bad_inputs(tmp_path):
    """(case, argv, expected fragment of the error line)."""
    good = _catalog(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("title,leaf\nchemise blanche,Shirts\ncaf\xe9 cup,Kitchen\n".encode("latin-1"))
    binary = tmp_path / "binary.csv"
    tiny_frame().to_parquet(binary)
    one_class = _catalog(tmp_path, tiny_frame().assign(leaf="Shirts"), "one.csv")
    empty_labels = _catalog(tmp_path, tiny_frame().assign(leaf=lambda f: f["leaf"].where(f.index != 3, "")), "nolab.csv")
    no_text = _catalog(tmp_path, tiny_frame().assign(title="", description=""), "notext.csv")
    fields = ["--text-cols", "title", "--label-col", "leaf"]
    return [
        ("missing file", ["train", "--data", tmp_path / "nope.csv", *fields], "catalog file not found"),
        ("empty file", ["train", "--data", empty, *fields], "is empty"),
        ("misspelled column", ["train", "--data", good, "--text-cols", "titel", "--label-col", "leaf"],
         "did you mean 'title'"),
        ("empty label", ["train", "--data", empty_labels, *fields], "is empty in 1 row(s): row 4"),
        ("not utf-8", ["train", "--data", latin, *fields], "not UTF-8"),
        ("binary as csv", ["train", "--data", binary, *fields], "not a text"),
        ("single class", ["train", "--data", one_class, *fields], "only one class"),
        ("every text empty", ["train", "--data", no_text, *fields], "is empty"),
        ("unknown model", ["train", "--data", good, *fields, "--model", "gpt"], "unknown model 'gpt'"),
        ("param without value", ["train", "--data", good, *fields, "--param", "C"], "--param needs KEY=VALUE, got 'C'"),
        ("unknown param", ["train", "--data", good, *fields, "--param", "Cee=1"], "unknown setting(s) 'Cee'"),
        ("missing model dir", ["predict", tmp_path / "no-model", "--data", good, "--out", tmp_path / "p.csv"],
         "model directory not found"),
        ("not a model dir", ["evaluate", tmp_path, "--data", good, "--out", tmp_path / "r"], "manifest.json is missing"),
    ]


def test_every_bad_input_gives_one_clear_line(tmp_path, capsys):
    for case, argv, fragment in bad_inputs(tmp_path):
        out_dir = tmp_path / f"out-{case.replace(' ', '-')}"
        extra = ["--out", out_dir, "--quiet"] if argv[0] == "train" else ["--quiet"]
        code, out, err = run(capsys, *argv, *extra)
        assert code != 0, case
        lines = err.strip().splitlines()
        assert len(lines) == 1, (case, err)
        assert lines[0].startswith("prodcat: error: ") and fragment in lines[0], (case, lines[0])
        assert "Traceback" not in err
        assert not out_dir.exists(), f"{case}: something was written"


def test_a_damaged_model_directory_gives_one_line(model_dir, tmp_path, capsys):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(model_dir, damaged)
    manifest = json.loads((damaged / "manifest.json").read_text())
    manifest["review"]["threshold"] = "high"
    (damaged / "manifest.json").write_text(json.dumps(manifest))
    code, out, err = run(capsys, "predict", damaged, "--data", DEMO, "--out", tmp_path / "p.csv", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f'prodcat: error: {damaged / "manifest.json"} is damaged: review.threshold must be a number or null, got "high"'
    ]
    assert not (tmp_path / "p.csv").exists()


def test_inspect_reports_empty_labels_that_train_refuses(tmp_path, capsys):
    frame = tiny_frame()
    frame.loc[[3, 7, 11], "leaf"] = ""
    data = _catalog(tmp_path, frame)
    code, out, err = run(capsys, "inspect", "--data", data, "--text-cols", "title", "--label-col", "leaf", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["empty_labels"] == {"column": "leaf", "rows": 3, "first_rows": [4, 8, 12], "without_text": 0}
    assert sum(report["class_counts"].values()) == len(frame) - 3
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "leaf",
                       "--out", tmp_path / "m", "-q")
    assert code == 2 and "is empty in 3 row(s): row 4, 8, 12" in err


def test_rows_without_label_or_text_are_left_out_as_a_shop_exports_variant_rows(tmp_path, capsys):
    # A Shopify export repeats a product's handle on one row per variant, with its title, description
    # and category on the first row only. train refused the whole file over those rows, so every user
    # had to clean it first; now they are left out, each command saying so, and rows stay the file's.
    frame = tiny_frame()
    variants = frame.iloc[:4].assign(title="", description="", category="", leaf="")
    frame = pd.concat([frame.iloc[:3], variants, frame.iloc[3:]], ignore_index=True)  # rows 4 to 7
    frame.loc[12, "category"] = "Home / Decor"  # a finding that names its row
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title,description", "--label-col", "category", "--label-format", "path"]
    left_out = (f"warning: {data}: 4 row(s) with an empty label and no text or photo are left out (row 4, 5, 6, 7): "
                "a shop export's variant rows, most likely (Shopify writes a product's title, description and "
                "category on its first row only)")
    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["empty_labels"]["without_text"] == 4 and report["mixed_separators"]["first_rows"] == [13]
    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert ("none has text or a photo either (a shop export's variant rows?): train, evaluate and label-issues "
            "leave them out") in " ".join(out.split())

    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    warnings = [" ".join(line.split()) for line in err.splitlines()]
    assert " ".join(left_out.split()) in " ".join(warnings)
    assert "(row 13; e.g. 'Home / Decor')" in " ".join(warnings)  # the file's row, not the 9th product's
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["training"]["rows"] == len(frame) - 4
    from prodcat import Categorizer

    judged = Categorizer(text_cols=["title", "description"], label_col="category", label_format="path",
                         quiet=True).find_label_issues(str(data))
    assert judged["row"].tolist() == [1, 2, 3, *range(8, len(frame) + 1)]  # as the file numbers them

    # A row with text and no label is still refused: the user may have forgotten it.
    frame.loc[0, "category"] = ""
    data = _catalog(tmp_path, frame)
    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m2", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {data}: label column 'category' is empty in 1 row(s): row 1 (and 4 with no text or photo "
        "either, a shop export's variant rows, which are left out); fill them in, or pass --skip-unlabelled to "
        "leave them out too"
    ]
    assert not (tmp_path / "m2").exists()


def test_skip_unlabelled_leaves_out_the_products_not_yet_categorized_naming_them(tmp_path, capsys):
    # A shop exports every product, categorized or not: one had to split the file to train on the first
    # and predict the others; train, evaluate and label-issues refused it whole
    frame = tiny_frame()
    frame.loc[[2, 40, 41], "category"] = ""
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title,description", "--label-col", "category", "--label-format", "path"]
    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m", "-q")
    assert code == 2 and err.strip().endswith(
        "is empty in 3 row(s): row 3, 41, 42; fill them in, or pass --skip-unlabelled to leave them out")
    left_out = f"warning: {data}: 3 row(s) with an empty label are left out: products not yet categorized (row 3, 41, 42)"
    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m", "--skip-unlabelled")
    assert code == 0, err
    assert left_out in err.splitlines()
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["training"]["rows"] == len(frame) - 3
    code, out, err = run(capsys, "evaluate", tmp_path / "m", "--data", data, "--out", tmp_path / "r", "--keep-seen",
                         "--skip-unlabelled")
    assert code == 0 and left_out in err.splitlines() and f"n={len(frame) - 3}" in out
    code, _, err = run(capsys, "label-issues", "--data", data, *fields, "--out", tmp_path / "i.csv",
                       "--skip-unlabelled", "--folds", "2")
    assert code == 0 and left_out in err.splitlines()


def test_classes_differing_only_in_case_or_spacing_are_a_finding_and_a_training_warning(tmp_path, capsys):
    # They used to be learned silently as classes of their own, splitting one class's products.
    frame = tiny_frame()
    shirts = frame.index[frame["leaf"] == "Shirts"]
    frame.loc[shirts[:3], "leaf"] = "shirts"
    frame.loc[shirts[3:4], "leaf"] = "SHIRTS"
    bedding = frame.index[frame["leaf"] == "Bedding"]
    frame.loc[bedding, "leaf"] = "Bed Linen"
    frame.loc[bedding[:2], "leaf"] = "Bed  Linen"  # two spaces
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title", "--label-col", "leaf"]
    expected = (f"{data}: label column 'leaf' has 2 class(es) written in more than one way, differing only in "
                "case, spacing or Unicode form: 'Bed Linen' (22) / 'Bed  Linen' (2); 'Shirts' (20) / 'shirts' (3) / 'SHIRTS' (1): "
                "each spelling is learned as a class of its own; write each class one way")

    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0, err
    # both have 24 products: the first in alphabetical order comes first
    assert json.loads(out)["spelled_apart"] == {"column": "leaf", "groups": 2, "rows": 6, "first": [
        [["Bed Linen", 22], ["Bed  Linen", 2]], [["Shirts", 20], ["shirts", 3], ["SHIRTS", 1]]]}
    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert code == 0, err
    assert f"Classes spelled apart: {' '.join(expected.split())}" in " ".join(out.split())

    code, out, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "written in more than one way" in line]
    assert len(warnings) == 1 and " ".join(warnings[0].split()) == f"warning: {' '.join(expected.split())}"
    # Each class written one way: nothing to say.
    data = _catalog(tmp_path, tiny_frame(), name="clean.csv")
    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0 and json.loads(out)["spelled_apart"] is None
    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m2")
    assert code == 0 and "more than one way" not in err


def test_label_columns_with_an_empty_middle_level_are_refused_naming_the_row(tmp_path, capsys):
    # ("Apparel", "", "Shirts") used to train a class "Apparel >  > Shirts", a level named ""
    frame = tiny_frame()
    frame["top"], frame["middle"] = frame["category"].str.split(" > ").str[0], "Any"
    frame.loc[4, "middle"] = ""
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path, frame), "--text-cols", "title",
                       "--label-col", "top,middle,leaf", "--label-format", "path", "--out", tmp_path / "m")
    example = [frame.loc[4, "top"], "", frame.loc[4, "leaf"]]
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {tmp_path / 'cat.csv'}: label column 'top,middle,leaf': a level is empty while a level "
        f"after it is not, in 1 row(s): row 5 (levels {example}); fill it, or empty the levels after it"]


def test_a_json_list_of_levels_with_an_empty_middle_level_is_refused_naming_the_row(tmp_path, capsys):
    # ["Home", "", "Curtains"] used to train "Home > Curtains": the empty level vanished and the leaf moved
    # up a level, where label columns with the same gap are refused
    frame = tiny_frame()
    frame["category"] = [json.dumps(path.split(" > ")) for path in frame["category"]]
    levels = json.loads(frame.loc[6, "category"])
    frame.loc[6, "category"] = json.dumps([levels[0], "", *levels[1:]])
    frame.loc[7, "category"] = json.dumps([*json.loads(frame.loc[7, "category"]), ""])  # a trailing one: no gap
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path, frame), "--text-cols", "title",
                       "--label-col", "category", "--label-format", "path", "--out", tmp_path / "m")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {tmp_path / 'cat.csv'}: label column 'category': a level is empty while a level "
        f"after it is not, in 1 row(s): row 7 (levels {[levels[0], '', *levels[1:]]}); fill it, or empty the "
        "levels after it"]


def test_taxonomy_ids_beside_paths_are_a_training_warning(tmp_path, capsys):
    # A Merchant Center feed's google_product_category holds ids and paths alike: "1604" was learned as
    # a one-level class beside "Apparel > Shirts" with nothing said
    frame = tiny_frame()
    shirts = frame.index[frame["leaf"] == "Shirts"][:6]
    frame.loc[shirts, "category"] = "1604"
    data = _catalog(tmp_path, frame)
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "category",
                       "--label-format", "path", "--out", tmp_path / "m")
    assert code == 0, err
    assert (f"warning: {data}: label column 'category' holds numeric ids (6 of {len(frame)} labels; e.g. '1604') "
            f"beside {len(frame) - 6} paths: a category written as its id and as its path is two classes"
            ) in " ".join(err.split())


def test_a_path_column_with_two_separators_is_a_finding_and_a_training_warning(tmp_path, capsys):
    frame = tiny_frame()
    frame.loc[[2, 5], "category"] = frame.loc[[2, 5], "category"].str.replace(" > ", " / ")
    frame.loc[9, "category"] = frame.loc[9, "category"].replace(" > ", ">>")
    frame.loc[10, "category"] = "Home > Kitchen/Dining"  # a "/" inside a level: no mistake
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title", "--label-col", "category", "--label-format", "path", "--label-sep", " > "]
    examples = frame.loc[2, "category"]
    expected = (f"{data}: label column 'category' is split on ' > ', but 3 row(s) use ' / ' or '>>' instead "
                f"(row 3, 6, 10; e.g. {examples!r}): each such label is learned as a class of its own; "
                "write them with ' > '")

    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0, err
    assert json.loads(out)["mixed_separators"] == {
        "column": "category", "separator": " > ", "others": {" / ": 2, ">>": 1}, "rows": 3, "first_rows": [3, 6, 10],
        "example": examples, "separator_unused": False}
    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert code == 0, err
    assert f"Mixed separators: {expected}" in " ".join(out.split())

    code, out, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "label column 'category'" in line]
    assert len(warnings) == 1 and " ".join(warnings[0].split()) == f"warning: {expected}"
    # One column of proper paths: nothing to say.
    frame.loc[[2, 5, 9], "category"] = "Apparel > Shirts"
    data = _catalog(tmp_path, frame, name="clean.csv")
    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0 and json.loads(out)["mixed_separators"] is None
    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m2")
    assert code == 0 and "split on" not in err


@pytest.mark.parametrize("command", [["leaderboard", "--models", "tfidf-linear,bow", "--epochs", "1"],
                                     ["tune", "--model", "tfidf-linear", "--trials", "2"]])
def test_leaderboard_and_tune_warn_about_the_catalog_once(command, tmp_path, capsys):
    frame = tiny_frame()
    frame.loc[[2, 5], "category"] = frame.loc[[2, 5], "category"].str.replace(" > ", " / ")
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title", "--label-col", "category", "--label-format", "path", "--label-sep", " > "]
    out = ["--out", tmp_path / "tuned"] if command[0] == "tune" else []
    code, _, err = run(capsys, command[0], "--data", data, *fields, *command[1:], *out)
    assert code == 0, err
    assert len([line for line in err.splitlines() if "label column 'category' is split on" in line]) == 1
    out = ["--out", tmp_path / "tuned-quietly"] if command[0] == "tune" else []
    code, _, err = run(capsys, command[0], "--data", data, *fields, *command[1:], *out, "-q")
    assert code == 0 and "split on" not in err


def test_a_separator_that_no_label_holds_is_a_finding_and_a_training_warning(tmp_path, capsys):
    frame = tiny_frame()
    frame["category"] = frame["category"].str.replace(" > ", " / ")
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title", "--label-col", "category", "--label-format", "path", "--label-sep", ">"]
    expected = (f"{data}: label column 'category' is split on '>', which no cell holds, but {len(frame)} row(s) "
                f"use ' / ' (row 1, 2, 3, 4, 5 and {len(frame) - 5} more; e.g. {frame.loc[0, 'category']!r}): "
                "every label is read as a one-level path; pass --label-sep ' / '")

    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0, err
    finding = json.loads(out)["mixed_separators"]
    assert finding["separator_unused"] and finding["others"] == {" / ": len(frame)}
    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert code == 0, err
    shown = " ".join(out.split())  # inspect lists the first 10 rows
    first_ten = f"(row 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and {len(frame) - 10} more;"
    assert f"Wrong separator: {expected.split(' (row ')[0]} {first_ten}" in shown
    assert shown.endswith("every label is read as a one-level path; pass --label-sep ' / '")

    code, out, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "label column 'category'" in line]
    assert len(warnings) == 1 and " ".join(warnings[0].split()) == f"warning: {expected}"
    # A flat column read as paths: one level is what it holds, nothing to say.
    flat = ["--text-cols", "title", "--label-col", "leaf", "--label-format", "path", "--label-sep", ">"]
    code, out, err = run(capsys, "inspect", "--data", data, *flat, "--json")
    assert code == 0 and json.loads(out)["mixed_separators"] is None
    code, _, err = run(capsys, "train", "--data", data, *flat, "--out", tmp_path / "m2")
    assert code == 0 and "split on" not in err


# --- user text is printed as written, never read as rich markup -------------
def _bracketed_catalog(tmp_path, name="cat[new].csv"):
    """A catalog whose file name, text column and labels hold square brackets; "[/bold] Odd" is a
    class too small to split, so training warns with its name."""
    frame = tiny_frame().rename(columns={"title": "[title]"})
    frame["leaf"] = frame["leaf"].replace("Shirts", "[sale] Shirts")
    frame.loc[[0, 1], "leaf"] = "[/bold] Odd"
    return _catalog(tmp_path, frame, name), ["--text-cols", "[title],description", "--label-col", "leaf"]


def test_names_with_brackets_show_up_intact_in_train_inspect_and_predict(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")  # no path folded over two lines
    data, fields = _bracketed_catalog(tmp_path)
    code, out, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    assert f"reading {data} (" in err
    assert "kept in training only and are not scored: [/bold] Odd\n" in err

    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert code == 0, err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    assert f"Source {data}" in lines
    assert "[sale] Shirts │ 24 │ 25.0%" in lines and "[/bold] Odd │ 2 │ 2.1%" in lines
    assert "[title] │ 0 │ 0.0%" in lines
    assert "Rarest: [/bold] Odd (2), Kitchen (22), Bedding (24), Shoes (24), [sale] Shirts (24)" in lines

    new = _catalog(tmp_path, tiny_frame().drop(columns="title"), "new[new].csv")
    code, out, err = run(capsys, "predict", tmp_path / "m", "--data", new, "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert f"warning: {new} has no column [title]; those fields are read as empty" in err.splitlines()
    assert "predicting new[new].csv" in err


def test_a_label_like_a_closing_tag_does_not_stop_quiet_training_or_a_leaderboard(tmp_path, capsys):
    # quiet output is still rendered (then dropped): "[/bold]" used to raise MarkupError there too
    data, fields = _bracketed_catalog(tmp_path)
    code, out, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m", "-q")
    assert code == 0 and err == "", err
    code, out, err = run(capsys, "leaderboard", "--data", data, *fields, "--models", "tfidf-linear")
    assert code == 0, err
    assert "✓ training tfidf-linear (" in err and out.splitlines()[1].split()[0] == "tfidf-linear"


def test_the_error_names_the_file(tmp_path, capsys):
    _, _, err = run(capsys, "inspect", "--data", tmp_path / "missing.tsv", "--text-cols", "t")
    assert "missing.tsv" in err


def test_latin1_catalog_reads_with_encoding_option(tmp_path, capsys):
    path = tmp_path / "latin.csv"
    path.write_bytes("title,leaf\nchemise blanche,Shirts\ncaf\xe9 cup,Kitchen\n".encode("latin-1"))
    code, out, err = run(capsys, "inspect", "--data", path, "--text-cols", "title", "--label-col", "leaf",
                         "--encoding", "latin-1", "--json")
    assert code == 0, err
    assert json.loads(out)["rows"] == 2


def test_predict_refuses_to_overwrite_its_input(model_dir, tmp_path, capsys):
    data = _catalog(tmp_path)
    before = data.read_bytes()
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", data)
    assert code != 0 and "refusing to overwrite the input" in err
    assert data.read_bytes() == before



def test_predict_given_a_folder_points_to_the_engine_that_reads_one(model_dir, tmp_path, capsys):
    folder = tmp_path / "catalog"
    folder.mkdir()
    _catalog(folder)
    code, _, err = run(capsys, "predict", model_dir, "--data", folder, "--out", tmp_path / "p.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{folder} is a folder; the local engine predicts one file: --engine ray predicts a folder of files" in err


def test_a_headerless_file_without_the_label_column_is_told_the_model_reads_columns_by_position(tmp_path, capsys):
    # kaggle-ecommerce's files are label, text without a header: a file of texts
    # alone was refused as having only a column 'label', which it does not hold.
    frame = tiny_frame()
    frame[["leaf", "title"]].to_csv(tmp_path / "train.csv", header=False, index=False)
    frame[["title"]].to_csv(tmp_path / "texts.csv", header=False, index=False)
    run_ok("train", "--data", tmp_path / "train.csv", "--preset", "kaggle-ecommerce", "--out", tmp_path / "m", "-q")
    code, _, err = run(capsys, "predict", tmp_path / "m", "--data", tmp_path / "texts.csv", "--out", tmp_path / "p.csv")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "read as the model's columns label, text in that order (leave a column you lack empty" in err
    frame[["title"]].assign(label="")[["label", "title"]].to_csv(tmp_path / "texts.csv", header=False, index=False)
    run_ok("predict", tmp_path / "m", "--data", tmp_path / "texts.csv", "--out", tmp_path / "p.csv", "-q")
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(frame)


def test_an_unwritable_review_out_folder_is_named_and_leaves_nothing_beside_out(model_dir, tmp_path, capsys,
                                                                               monkeypatch):
    # The predictions file's hidden .part was made first and stayed behind, and
    # the error named the review file's .part, a file the user never asked for.
    import tempfile

    data, locked, real_mkstemp = _catalog(tmp_path), tmp_path / "locked", tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if Path(dir) == locked:
            raise PermissionError(13, "Permission denied", str(locked / ".review.csv.x1y2.part"))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", tmp_path / "out" / "p.csv",
                       "--review-out", locked / "review.csv")
    assert code == 1 and err.strip().splitlines() == [f"prodcat: error: Permission denied: {locked / 'review.csv'}"]
    assert list((tmp_path / "out").iterdir()) == []


# --- --out and --logdir: refused before any work, never written into --------
BOW = ["--model", "bow", "--epochs", "1", "--param", "dim=8", "--param", "num_threads=1"]
FIELDS = ["--text-cols", "title,description", "--label-col", "leaf"]


@pytest.fixture
def no_work(monkeypatch):
    """Reading a catalog fails the test: a refused output must be refused before any."""
    import prodcat.categorizer

    def read(*args, **kwargs):
        raise AssertionError("a catalog was read before the output was checked")

    for name in ("load_catalog", "read_columns"):
        monkeypatch.setattr(prodcat.categorizer, name, read)


def _user_folder(tmp_path):
    folder = tmp_path / "userdir"
    folder.mkdir()
    (folder / "notes.txt").write_text("important")
    return folder


@pytest.mark.parametrize("command", [["train", *BOW], ["tune", "--trials", "1"]])
def test_a_user_folder_is_refused_before_training_and_left_as_it_was(command, tmp_path, capsys, no_work):
    folder = _user_folder(tmp_path)
    code, _, err = run(capsys, command[0], "--data", _catalog(tmp_path), *FIELDS, *command[1:], "--out", folder, "-q")
    assert code == 2
    assert err.strip() == f"prodcat: error: {folder} exists and is not a prodcat model directory; refusing to overwrite it"
    # no checkpoints/ or tensorboard/ left behind in it
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "important"


@pytest.mark.parametrize("command", [["train"], ["tune", "--trials", "1"]])
def test_an_unwritable_out_is_refused_before_training(command, tmp_path, capsys, monkeypatch, no_work):
    # It failed at the save, with "Permission denied", once the whole training was done.
    locked, real_access = tmp_path / "locked", os.access
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and real_access(path, mode, **kw))
    code, _, err = run(capsys, command[0], "--data", _catalog(tmp_path), *FIELDS, *command[1:],
                       "--out", locked / "models" / "m", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: cannot save a model to {locked / 'models' / 'm'}: {locked} is not writable"]
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("where", ["user folder", "model directory", "model's report", "new folder in a model"])
def test_evaluate_refuses_a_folder_that_is_not_a_report_before_loading_the_model(model_dir, where, tmp_path, capsys,
                                                                                 monkeypatch):
    from prodcat.categorizer import Categorizer

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    # A new folder inside a model directory would vanish with the next save there.
    out = {"user folder": _user_folder(tmp_path), "model directory": model_dir,
           "model's report": model_dir / "report", "new folder in a model": model_dir / "holdout"}[where]
    def files():
        return {p: p.read_bytes() for root in (out, model_dir) for p in root.rglob("*") if p.is_file()}

    before = files()
    monkeypatch.setattr(Categorizer, "load", load)
    code, _, err = run(capsys, "evaluate", model_dir, "--data", DEMO, "--out", out, "--keep-seen", "-q")
    assert code == 2
    expected = {
        "model's report": f"{out} is the test report of model {model_dir}; write the evaluation elsewhere",
        "new folder in a model": f"{out} is inside model directory {model_dir.resolve()}, which saving a model there "
                                 "replaces whole; write the evaluation elsewhere",
    }.get(where, f"{out} exists and is not a prodcat report directory; refusing to write into it")
    assert err.strip() == f"prodcat: error: {expected}"
    assert files() == before
    assert not (model_dir / "holdout").exists()


def test_evaluate_replaces_an_earlier_report_whole(model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()  # an empty folder is taken too
    code, _, err = run(capsys, "evaluate", model_dir, "--data", DEMO, "--out", out, "--keep-seen", "-q")
    assert code == 0, err
    assert (out / "levels.png").is_file()  # a path model's figure
    (out / ".metrics.json.4242.0badcafe.tmp").write_text("left by a crash")
    single = tmp_path / "single"
    run_ok("train", "--data", _catalog(tmp_path), *FIELDS, "--out", single, "-q")

    code, _, err = run(capsys, "evaluate", single, "--data", _catalog(tmp_path), "--out", out, "--keep-seen", "-q")
    assert code == 0, err
    # Nothing of the path model's report stays beside the new metrics.
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (single / "report").iterdir())
    assert "levels" not in json.loads((out / "metrics.json").read_text())
    assert not list(tmp_path.glob(".report.*"))  # no staging or retired folder left beside it
    # As a folder made by hand: the staging folder's mode, not mkdtemp's private one.
    (tmp_path / "plain").mkdir()
    assert out.stat().st_mode == (tmp_path / "plain").stat().st_mode


def _commands_with_a_file_as_out(tmp_path, model_dir, afile):
    data = _catalog(tmp_path)
    lb = tmp_path / "board"
    (lb / "bow").mkdir(parents=True)
    (lb / "bow" / "mine.txt").write_text("mine")
    folder = tmp_path / "pred.csv"
    folder.mkdir()
    return [
        (["train", "--data", data, *FIELDS, *BOW, "--out", afile], f"{afile} exists and is a file, not a model directory"),
        (["train", "--data", data, *FIELDS, "--out", afile / "m"], f"{afile / 'm'} cannot be created: {afile} is a file"),
        (["train", "--data", data, *FIELDS, *BOW, "--out", tmp_path / "m", "--logdir", afile],
         f"{afile} exists and is a file, not a TensorBoard log directory"),
        (["tune", "--data", data, *FIELDS, "--trials", "1", "--out", afile],
         f"{afile} exists and is a file, not a model directory"),
        (["leaderboard", "--data", data, *FIELDS, "--models", "tfidf-linear", "--out", afile],
         f"{afile} exists and is a file, not a folder of model directories"),
        # the second model's folder is checked before the first model trains
        (["leaderboard", "--data", data, *FIELDS, "--models", "tfidf-linear,bow", "--out", lb],
         f"{lb / 'bow'} exists and is not a prodcat model directory; refusing to overwrite it"),
        (["evaluate", model_dir, "--data", data, "--out", afile], f"{afile} exists and is a file, not a report directory"),
        (["export", model_dir, "--out", afile], f"{afile} exists and is a file, not a model directory"),
        (["predict", model_dir, "--data", data, "--out", folder], f"cannot write predictions to {folder}: it is a directory"),
        (["predict", model_dir, "--data", data, "--out", tmp_path / "p.csv", "--review-out", folder],
         f"cannot write the rows to review to {folder}: it is a directory"),
        (["predict", model_dir, "--data", data, "--out", afile / "p.csv"],
         f"cannot write predictions to {afile / 'p.csv'}: {afile} is a file, not a directory"),
    ]


def test_a_file_inside_a_model_directory_is_refused_before_any_work(model_dir, tmp_path, capsys, no_work):
    # The next train or save into that directory replaces it whole: the file would be lost.
    for argv, what, out in [
        (["predict", model_dir, "--data", DEMO], "predictions", model_dir / "predictions.csv"),
        (["predict", model_dir, "--data", DEMO], "predictions", model_dir / "report" / "p.parquet"),
        (["label-issues", "--data", DEMO, *DEMO_FIELDS], "label issues", model_dir / "issues.csv"),
    ]:
        code, _, err = run(capsys, *argv, "--out", out, "-q")
        assert code == 2 and err.strip().splitlines() == [
            f"prodcat: error: cannot write {what} to {out}: it is inside model directory {model_dir.resolve()}, "
            "which saving a model there replaces whole; write them elsewhere"
        ], err
        assert not out.exists()


def test_an_output_of_the_wrong_kind_gets_one_line_naming_it_before_any_work(model_dir, tmp_path, capsys, no_work):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for argv, message in _commands_with_a_file_as_out(tmp_path, model_dir, afile):
        code, out, err = run(capsys, *argv, "-q")
        assert code == 2, (argv, err)
        assert err.startswith(f"prodcat: error: {message}") and len(err.strip().splitlines()) == 1, (argv, err)
        assert afile.read_text() == "keep me"
    assert not (tmp_path / "m").exists()
    assert sorted(p.name for p in (tmp_path / "board").rglob("*")) == ["bow", "mine.txt"]


def test_an_interrupted_run_still_resumes_into_its_folder(tmp_path, capsys, monkeypatch):
    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "model"

    def interrupted(self, path):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Categorizer, "save", interrupted)
        code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)
    assert code == 130
    # typer turns Ctrl-C into a silent exit 130; the user is told what happened, and how to go on
    assert err.strip().splitlines()[-1] == (
        f"prodcat: interrupted; its last checkpoint is in {out / 'checkpoints'}: run the same command with "
        "--resume to continue from there")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "tensorboard"]
    interrupted_curves = sorted((out / "tensorboard").glob("events.out.tfevents.*"))
    assert interrupted_curves
    # predicting with it says what the folder is, and how to make it a model
    code, _, err = run(capsys, "predict", out, "--data", data, "--out", tmp_path / "p.csv")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {out} holds an unfinished training run, not a model yet: run the same `prodcat train` "
        "again with --resume to finish it"
    ]
    # the same command without --resume would have deleted the checkpoint and started over
    checkpoint_files = sorted((out / "checkpoints").rglob("*"))
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {out} holds the checkpoint of an interrupted run: add --resume to continue it, or "
        f"delete {out / 'checkpoints'} to train from the start"
    ]
    assert sorted((out / "checkpoints").rglob("*")) == checkpoint_files

    code, stdout, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out, "--resume")
    assert code == 0, err
    assert f"resuming from the checkpoint in {out / 'checkpoints'}" in err
    assert (out / "manifest.json").is_file() and not (out / "checkpoints").exists()
    # the resumed run's curves go on from the interrupted run's event files, which stay
    assert set(interrupted_curves) <= set((out / "tensorboard").glob("events.out.tfevents.*"))


def test_sigterm_stops_a_prediction_as_ctrl_c_does_leaving_no_file_behind(tmp_path, capsys, monkeypatch):
    # A job scheduler stops a run with SIGTERM: Python died at once, leaving a hidden
    # temporary file beside the output, and the scheduler no word of what happened.
    import os
    import signal

    from prodcat.categorizer import Categorizer

    data, model = _catalog(tmp_path), tmp_path / "model"
    assert run(capsys, "train", "--data", data, *FIELDS, "--out", model, "--quiet")[0] == 0
    out = tmp_path / "predictions" / "p.csv"
    table, calls = Categorizer._table, []

    def killed_on_the_second_chunk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return table(self, *args, **kwargs)

    def not_handled_by_prodcat(signum, frame):  # stands in for Python's default, which would end pytest
        raise AssertionError("SIGTERM reached the caller's handler")

    monkeypatch.setattr(Categorizer, "_table", killed_on_the_second_chunk)
    before = signal.signal(signal.SIGTERM, not_handled_by_prodcat)
    try:
        code, _, err = run(capsys, "predict", model, "--data", data, "--out", out, "--chunk-size", "10")
        assert signal.getsignal(signal.SIGTERM) is not_handled_by_prodcat  # the caller's handler is back
    finally:
        signal.signal(signal.SIGTERM, before)
    assert code == 143 and err.strip().splitlines()[-1] == "prodcat: stopped by SIGTERM"
    assert len(calls) == 2
    assert not out.exists() and list(out.parent.iterdir()) == []  # no hidden temporary file either


def test_sigterm_during_training_says_where_the_checkpoint_is(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "model"

    def not_handled_by_prodcat(signum, frame):
        raise AssertionError("SIGTERM reached the caller's handler")

    monkeypatch.setattr(Categorizer, "save", lambda self, path: os.kill(os.getpid(), signal.SIGTERM))
    before = signal.signal(signal.SIGTERM, not_handled_by_prodcat)
    try:
        code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert code == 143
    assert err.strip().splitlines()[-1] == (
        f"prodcat: stopped by SIGTERM; its last checkpoint is in {out / 'checkpoints'}: run the same command "
        "with --resume to continue from there")


def test_a_run_interrupted_before_its_first_checkpoint_does_not_offer_to_resume(tmp_path, capsys, monkeypatch):
    from prodcat.categorizer import Categorizer

    def interrupted(self, data, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Categorizer, "fit", interrupted)
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, *BOW, "--out", tmp_path / "model")
    assert code == 130 and err.strip().splitlines()[-1] == "prodcat: interrupted"


def _files_of(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("stop", [ConfigError("a mistake found in the first epoch"), KeyboardInterrupt()],
                         ids=["user error", "ctrl-c"])
@pytest.mark.parametrize("where", ["new folder", "earlier model"])
def test_a_run_stopped_before_its_first_checkpoint_leaves_its_out_as_it_was(stop, where, tmp_path, capsys,
                                                                            monkeypatch):
    # It left tensorboard/ (and, stopped after a checkpoint, checkpoints/) behind: a new --out
    # was no longer new, and the corrected rerun was refused as an interrupted run's.
    from prodcat.training.trainer import Trainer

    data, out = _catalog(tmp_path), tmp_path / "runs" / "model"
    if where == "earlier model":
        assert run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out, "-q")[0] == 0
    before = _files_of(out) if out.exists() else None

    def stopped(self, *args, **kwargs):
        raise stop

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_end_epoch", stopped)
        code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)
    assert code == (2 if isinstance(stop, ConfigError) else 130)
    assert "--resume" not in err
    if before is None:
        assert not (tmp_path / "runs").exists()
    else:
        assert _files_of(out) == before
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out, "-q")
    assert code == 0, err


@pytest.mark.parametrize("command", ["tune", "leaderboard", "export"])
def test_a_command_saving_where_a_training_run_was_interrupted_is_refused_and_keeps_the_checkpoint(
        command, model_dir, tmp_path, capsys, monkeypatch):
    # tune saved its best model there and, with the folder, dropped the interrupted run's checkpoint unsaid.
    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "board" / "tfidf-linear"  # where the leaderboard saves one
    with monkeypatch.context() as patch:
        patch.setattr(Categorizer, "save", lambda self, path, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
        assert run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)[0] == 130
    checkpoint_files = sorted((out / "checkpoints").rglob("*"))
    argv = {
        "tune": ["tune", "--data", data, *FIELDS, "--trials", "1", "--out", out],
        "leaderboard": ["leaderboard", "--data", data, *FIELDS, "--models", "tfidf-linear", "--out", out.parent],
        "export": ["export", model_dir, "--out", out],
    }[command]
    code, _, err = run(capsys, *argv, "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {out} holds the checkpoint of an interrupted training run, which saving a model there "
        f"would delete: finish it with the same `prodcat train` and --resume, save elsewhere, or delete "
        f"{out / 'checkpoints'}"
    ]
    assert sorted((out / "checkpoints").rglob("*")) == checkpoint_files


def test_a_mistake_found_after_a_member_trained_keeps_its_checkpoint_and_says_how_to_go_on(tmp_path, capsys):
    # The image member finds no photo once the text member has trained: the error said nothing of the
    # training kept, and the corrected rerun was refused as the rerun of an interrupted run.
    frame = tiny_image_frame(tmp_path / "images")
    data = _catalog(tmp_path, frame.assign(image="nowhere/" + frame["image"]))
    out = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, "--image-col", "image", "--model", "ensemble",
                       "--members", "bow,image-cnn", "--epochs", "1", "--image-size", "16",
                       "--param", 'member_params={"bow": {"dim": 8, "num_threads": 1}}', "--out", out, "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("prodcat: error: image-cnn: none of the 76 training products has an image file that exists")
    assert err.strip().endswith(
        f"check the image column and --image-root; the training done so far is kept in {out / 'checkpoints'}: "
        f"once that is fixed, add --resume to go on from there (or delete {out / 'checkpoints'} to start over)")
    assert (out / "checkpoints" / "member-1-bow" / "checkpoint.json").is_file()


def test_resuming_with_other_flags_or_an_edited_catalog_is_refused_until_the_run_is_the_same(tmp_path, capsys,
                                                                                            monkeypatch):
    # It used to go on silently: half a run on one setting or catalog, half on another.
    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(Categorizer, "save", lambda self, path: (_ for _ in ()).throw(KeyboardInterrupt))
        assert run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)[0] == 130
    edited = tiny_frame()
    edited["title"] = edited["title"].str.replace("blue", "navy")
    refusals = [
        ([*FIELDS, *BOW, "--epochs", "2"], "was trained with other settings (epochs 1, this run 2)"),
        ([*FIELDS, *BOW, "--param", "dropout=0.5"], "was trained with other settings (dropout 0.0, this run 0.5)"),
        ([*FIELDS, *BOW, "--class-weight", "none"], "has class weight 'balanced', this run 'none'"),
        ([*FIELDS, "--model", "cnn", "--epochs", "1"], "was trained with other settings (model 'bow', this run 'cnn'"),
    ]
    for flags, message in refusals:
        code, _, err = run(capsys, "train", "--data", data, *flags, "--out", out, "--resume", "-q")
        assert code == 2 and len(err.strip().splitlines()) == 1, (flags, err)
        assert message in err, (flags, err)
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path, edited, "edited.csv"), *FIELDS, *BOW,
                       "--out", out, "--resume", "-q")
    assert code == 2 and "was trained on other products (was the catalog changed?)" in err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "tensorboard"]

    code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out, "--resume")
    assert code == 0 and "resuming from the checkpoint" in err


def test_resuming_an_interrupted_run_with_a_model_trained_in_one_go_is_refused_and_keeps_the_checkpoint(
        tmp_path, capsys, monkeypatch):
    # tfidf-linear has nothing to continue: it used to warn, train, and save, and saving dropped
    # the interrupted bow run's checkpoint with it.
    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(Categorizer, "save", lambda self, path: (_ for _ in ()).throw(KeyboardInterrupt))
        assert run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out)[0] == 130
    checkpoint_files = sorted((out / "checkpoints").rglob("*"))
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, "--model", "tfidf-linear", "--out", out,
                       "--resume", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {out / 'checkpoints'} holds the checkpoint of an interrupted run, which tfidf-linear "
        "cannot continue (it trains in one go): resume with the interrupted run's model, or delete "
        f"{out / 'checkpoints'} to train tfidf-linear"
    ]
    assert sorted((out / "checkpoints").rglob("*")) == checkpoint_files
    assert not (out / "manifest.json").exists()


@pytest.mark.parametrize("setting", ["loss=focal", "sampler=balanced"])
def test_multi_label_training_refuses_focal_loss_and_the_balanced_sampler_before_training(tmp_path, capsys, setting):
    data, out = _catalog(tmp_path), tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "tags",
                       "--label-format", "multi", *BOW, "--param", setting, "--out", out, "-q")
    assert code == 2 and len(err.strip().splitlines()) == 1
    key, value = setting.split("=")
    assert err.startswith(f"prodcat: error: bow: {key}='{value}' ")
    assert not out.exists()  # refused before a checkpoint or a log was written


@pytest.mark.parametrize("command, option, message", [
    (["train", "--model", "bow"], ["--freeze-embeddings"],
     "--freeze-embeddings is a setting of bert; model bow does not take it"),
    (["train", "--model", "lstm"], ["--freeze-layers", "2"],
     "--freeze-layers is a setting of bert and image-pretrained; model lstm does not take it"),
    (["train", "--model", "bow"], ["--checkpoint", "x"],
     "--checkpoint is a setting of bert and image-pretrained; model bow does not take it"),
    # bow and the image models accept max_length (every neural model has it) but do not use it
    (["train", "--model", "bow"], ["--max-length", "16"],
     "--max-length is a setting of bert, cnn, lstm and transformer; model bow does not take it"),
    (["train", "--model", "tfidf-linear"], ["--image-size", "32"],
     "--image-size is a setting of image-cnn, image-pretrained and image-resnet; model tfidf-linear does not take it"),
    # tfidf-linear's batch_size is how many rows it featurizes at once, not products per step
    (["tune", "--model", "tfidf-linear"], ["--batch-size", "8"],
     "--batch-size is a setting of bert, bow, cnn, image-cnn, image-pretrained, image-resnet, lstm and transformer; "
     "model tfidf-linear does not take it"),
    (["train", "--model", "ensemble", "--members", "tfidf-linear,bow"], ["--freeze-embeddings"],
     "--freeze-embeddings is a setting of bert; no member of the ensemble (tfidf-linear, bow) takes it"),
    (["leaderboard", "--models", "tfidf-linear,bow"], ["--checkpoint", "x"],
     "--checkpoint is a setting of bert and image-pretrained; none of tfidf-linear, bow takes it"),
    (["train", "--model", "bow"], ["--method", "stacking"], "--method applies to --model ensemble only, not bow"),
    # a text checkpoint for bert is no image checkpoint for image-pretrained: refused before bert trains
    (["train", "--model", "ensemble", "--members", "bert,image-pretrained"], ["--freeze-layers", "2"],
     "--freeze-layers would go to both bert and image-pretrained, which read it differently; give each its own with "
     """--param member_params='{"NAME": {"SETTING": VALUE}}'"""),
    (["leaderboard", "--models", "bert,image-pretrained"], ["--checkpoint", "x"],
     "--checkpoint would go to both bert and image-pretrained, which read it differently; give each its own with "
     "--param NAME.SETTING=VALUE"),
])
def test_an_option_of_other_models_says_which_models_take_it(tmp_path, capsys, no_work, command, option, message):
    # It used to print the model's whole list of known settings, which does not say whose option it is.
    out = [] if command[0] == "leaderboard" else ["--out", tmp_path / "model"]
    code, _, err = run(capsys, *command, *option, "--data", _catalog(tmp_path), *FIELDS, *out)
    assert code == 2 and err.strip().splitlines() == [f"prodcat: error: {message}"]
    assert not (tmp_path / "model").exists()


@pytest.mark.parametrize("command", [["train", "--out", "model"], ["train", *BOW, "--out", "model"],
                                     ["tune", "--trials", "1", "--out", "model"],
                                     ["leaderboard", "--models", "tfidf-linear,bow"]])
@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_no_model_can_take_is_one_line_before_the_catalog_is_read(tmp_path, capsys, no_work, command, seed):
    # -1 was a numpy traceback from the split, 2**32 one from scikit-learn's LinearSVC after the split
    argv = [str(tmp_path / a) if a == "model" else a for a in command]
    code, _, err = run(capsys, *argv, "--seed", seed, "--data", _catalog(tmp_path), *FIELDS)
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: seed must be a whole number from 0 to 4294967295, got {seed}"]
    assert not (tmp_path / "model").exists()


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA device")
def test_device_cuda_without_one_is_refused_before_the_catalog_is_read(tmp_path, capsys, no_work):
    # it was refused only once the trainer started: after reading, splitting and building the vocabulary
    code, _, err = run(capsys, "train", *BOW, "--device", "cuda", "--data", _catalog(tmp_path), *FIELDS,
                       "--out", tmp_path / "model")
    assert code == 2 and err.strip().splitlines() == [
        "prodcat: error: device 'cuda' was requested but there is no CUDA device; use --device cpu or auto"]
    assert not (tmp_path / "model").exists()


def test_device_cuda_with_a_model_trained_on_the_cpu_is_warned_about(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--device", "cuda", "--data", _catalog(tmp_path), *FIELDS,
                       "--out", tmp_path / "model")
    assert code == 0, err
    assert "tfidf-linear trains on the CPU: device 'cuda' means nothing for it" in err


@pytest.mark.parametrize("catalog, options, why", [
    ("full", ["--valid-size", "0"], "valid size 0"),
    # 6 products a class: none to spare for a validation share of 0.1, the default
    ("small", [], "too few products for a validation share of 0.1"),
])
def test_training_without_validation_products_says_what_is_lost(tmp_path, capsys, catalog, options, why):
    # It trained silently: a neural model ran all its epochs (300 on a small catalog) and stayed uncalibrated.
    frame = tiny_frame(6) if catalog == "small" else tiny_frame()
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path, frame), *FIELDS, *BOW, *options,
                       "--out", tmp_path / "model")
    assert code == 0, err
    assert (f"no validation products ({why}): bow trains every epoch of its budget without early stopping and "
            "is not calibrated; no review threshold is chosen") in " ".join(err.split())
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path, frame), *FIELDS, *options,
                       "--out", tmp_path / "linear")
    # tfidf-linear calibrates on out-of-fold scores: only the threshold is lost
    assert code == 0 and f"no validation products ({why}): no review threshold is chosen" in " ".join(err.split())


def test_a_model_with_validation_products_is_not_warned_about_them(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, *BOW, "--out", tmp_path / "model")
    assert code == 0 and "no validation products" not in err


def test_the_largest_seed_trains(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--seed", "4294967295", "--data", _catalog(tmp_path), *FIELDS,
                       "--out", tmp_path / "model", "-q")
    assert code == 0, err


@pytest.mark.parametrize("model, why", [
    ("bow", "its n-grams are hashed from the whole text"),
    ("image-cnn", "a photo has no tokens"),
])
def test_a_setting_the_model_never_reads_is_refused_when_given_directly(tmp_path, capsys, no_work, model, why):
    # `--param max_length=16` used to be accepted, saved with the model and ignored.
    code, _, err = run(capsys, "train", "--model", model, "--param", "max_length=16", "--data", _catalog(tmp_path),
                       *FIELDS, "--out", tmp_path / "model")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {model}: max_length means nothing for this model ({why}); leave it out"]
    assert not (tmp_path / "model").exists()


def test_a_model_saved_with_an_unused_setting_still_loads():
    from prodcat.models import create_model
    # models saved before the check carry the ignored value; loading builds them from their settings
    assert create_model("bow", max_length=16).get_params()["max_length"] == 16


def test_resume_with_tfidf_linear_warns_that_it_has_nothing_to_continue(tmp_path, capsys):
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, "--out", tmp_path / "model", "--resume")
    assert code == 0, err
    assert "warning: tfidf-linear trains in one go: resume has nothing to continue; training from the start" in \
        err.splitlines()


def test_an_ensemble_refuses_a_members_multi_label_setting_before_any_member_trains(tmp_path, capsys):
    # It used to train tfidf-linear (and with a neural member first, for minutes), then refuse at bow.
    data, out = _catalog(tmp_path), tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "tags",
                       "--label-format", "multi", "--model", "ensemble", "--members", "tfidf-linear,bow",
                       "--param", 'member_params={"bow": {"loss": "focal"}}', "--out", out)
    assert code == 2 and err.strip().splitlines() == [
        "prodcat: error: bow: loss='focal' is for single and path labels; multi-label training uses binary "
        "cross-entropy, whose class_weight 'balanced' (the default) weighs each label's rare positives up"
    ]
    assert not out.exists()


@pytest.mark.parametrize("members, checkpoint, message", [
    ("tfidf-linear,bert", "./no/such/minilm", "bert: checkpoint directory './no/such/minilm' does not exist"),
    ("tfidf-linear,image-pretrained", "./no/such/vit",
     "image-pretrained: checkpoint directory './no/such/vit' does not exist"),
])
def test_an_ensemble_refuses_a_members_missing_checkpoint_before_any_member_trains(tmp_path, capsys, members,
                                                                                   checkpoint, message):
    # It used to train tfidf-linear first and find the missing folder when the next member started.
    data, out = _catalog(tmp_path), tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, "--image-col", "title", "--model", "ensemble",
                       "--members", members, "--checkpoint", checkpoint, "--out", out)
    assert code == 2 and err.strip().splitlines() == [f"prodcat: error: {message}"]
    assert not out.exists()


@pytest.mark.parametrize("where", [".", "checkpoints", "report", "report/tb"])
def test_a_logdir_inside_the_model_directory_that_saving_replaces_is_refused_before_training(tmp_path, capsys,
                                                                                             no_work, where):
    # --logdir equal to --out used to train to the end, then refuse to save over the event files.
    out = tmp_path / "model"
    logdir = out / where
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, *BOW, "--out", out, "--logdir", logdir)
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: --logdir {logdir} is inside the model directory {out}, which saving replaces but for "
        f"its tensorboard/ folder: leave --logdir out (logs go to {out / 'tensorboard'}), or give a folder under "
        "it or outside the model directory"
    ]
    assert not out.exists()


def test_an_empty_logdir_is_refused_not_taken_for_the_current_folder(tmp_path, capsys, no_work, monkeypatch):
    # `--logdir "$LOGS"` with LOGS unset wrote event files into the folder the command ran in.
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "model"
    for empty in ("", "  "):
        code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, *BOW, "--out", out, "--logdir", empty)
        assert code == 2 and err.strip().splitlines() == ["prodcat: error: --logdir is an empty path"]
    assert [p.name for p in tmp_path.iterdir()] == ["cat.csv"]


def test_logs_under_the_model_directorys_tensorboard_folder_or_outside_it_are_kept(tmp_path, capsys):
    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "model"
    model_files = ["manifest.json", "model_state.json", "report", "weights.safetensors"]
    for logdir, kept in ((out / "tensorboard" / "run-2", ["tensorboard"]), (tmp_path / "runs", [])):
        code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out, "--logdir", logdir, "-q")
        assert code == 0, err
        assert list(logdir.glob("events.out.tfevents.*"))
        # the second model's curves are in runs/: the first one's would pass for its own in the model directory
        assert sorted(p.name for p in out.iterdir()) == sorted(model_files + kept)
        Categorizer.load(out).predict(["oxford cotton shirt"])


def test_a_retrained_ensemble_keeps_only_its_own_members_curves(tmp_path, capsys):
    # The replaced ensemble's member-2-bow/ folder used to stay beside the new member-2-lstm/.
    data, out = _catalog(tmp_path), tmp_path / "model"
    neural = ["--epochs", "1"]
    for second in ("bow", "lstm"):
        code, _, err = run(capsys, "train", "--data", data, *FIELDS, "--model", "ensemble",
                           "--members", f"tfidf-linear,{second}", *neural, "--out", out, "-q")
        assert code == 0, err
        assert sorted(p.name for p in (out / "tensorboard").iterdir()) == [f"member-2-{second}"]
        assert len(list((out / "tensorboard" / f"member-2-{second}").glob("events.out.tfevents.*"))) == 1
    # a fresh run of the same model replaces the event file its run before wrote
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, "--model", "ensemble",
                       "--members", "tfidf-linear,lstm", *neural, "--out", out, "-q")
    assert code == 0, err
    assert len(list((out / "tensorboard" / "member-2-lstm").glob("events.out.tfevents.*"))) == 1


def test_a_model_that_logs_nothing_does_not_keep_the_curves_of_the_model_it_replaces(tmp_path, capsys):
    from prodcat.categorizer import Categorizer

    data, out = _catalog(tmp_path), tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, *BOW, "--out", out, "-q")
    assert code == 0 and list((out / "tensorboard").glob("events.out.tfevents.*")), err
    report = (out / "report" / "report.md").read_text()
    Categorizer.load(out).save(out)  # saved again as it is: its curves and its test report stay
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert (out / "report" / "report.md").read_text() == report
    Categorizer.load(out).save(tmp_path / "copy")  # a copy is the same model: the same report
    assert (tmp_path / "copy" / "report" / "report.md").read_text() == report
    refit = Categorizer.load(out)
    refit.test_size, refit.quiet, refit.text_cols, refit.label_col = 0.0, True, ["title", "description"], "leaf"
    refit.fit(data).save(tmp_path / "refit")  # another model, with no test split: no report of the old one
    assert not (tmp_path / "refit" / "report").exists()
    code, _, err = run(capsys, "train", "--data", data, *FIELDS, "--model", "tfidf-linear", "--out", out, "-q")
    assert code == 0, err
    assert not (out / "tensorboard").exists()
    assert Categorizer.load(out).manifest_["model"]["name"] == "tfidf-linear"


def test_test_data_scores_that_file_and_refuses_a_test_size_it_would_ignore(tmp_path, capsys, no_work):
    holdout = _catalog(tmp_path, tiny_frame(seed=7), "holdout.csv")
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, "--test-data", holdout,
                       "--test-size", "0.3", "--out", tmp_path / "model")
    assert code == 2 and err.strip().splitlines() == [
        "prodcat: error: test_size splits a test share off the training catalog; with test data the test products "
        "are that file's: give one or the other"]
    assert not (tmp_path / "model").exists()


def test_test_data_is_what_the_test_report_scores(tmp_path, capsys):
    holdout = tiny_frame(seed=7)
    code, _, err = run(capsys, "train", "--data", _catalog(tmp_path), *FIELDS, "--test-data",
                       _catalog(tmp_path, holdout, "holdout.csv"), "--out", tmp_path / "model", "-q")
    assert code == 0, err
    metrics = json.loads((tmp_path / "model" / "report" / "metrics.json").read_text())
    assert metrics["n"] + metrics.get("excluded_seen_in_training", 0) == len(holdout)


def test_a_path_cell_holding_several_paths_is_a_finding_and_a_training_warning(tmp_path, capsys):
    # WooCommerce lists a product's categories in one cell: read as one path, it
    # made a level "Shirts, Home" and classes no one meant, without a word.
    frame = tiny_frame()
    frame.loc[[4, 7], "category"] = frame.loc[[4, 7], "category"] + ", Home > Kitchen"
    frame.loc[11, "category"] = "Apparel > Shirts, Tops"  # a comma inside a level: no mistake
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title", "--label-col", "category", "--label-format", "path"]
    example = frame.loc[4, "category"]
    expected = (f"{data}: label column 'category' has 2 row(s) holding several paths in one cell (row 5, 8; "
                f"e.g. {example!r}): a path label is one path, so their levels join into classes of their own; "
                "keep one path per cell, or pass --label-format multi")

    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0, err
    assert json.loads(out)["several_paths"] == {"column": "category", "separator": " > ", "rows": 2,
                                                "first_rows": [5, 8], "example": example}
    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert code == 0, err
    assert f"Several paths in a cell: {expected}" in " ".join(out.split())
    code, out, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    assert f"warning: {expected}" in [" ".join(line.split()) for line in err.splitlines()]


def test_training_refuses_a_multi_label_tag_that_a_prediction_file_could_not_give_back(tmp_path, capsys):
    frame = tiny_frame()
    frame["tags"] = [json.dumps(["T-shirts|Tops" if tag == "shirts" else tag for tag in tags.split("|")])
                     for tags in frame["tags"]]
    data = tmp_path / "tags.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "tags",
                       "--label-format", "multi", "--out", out)
    assert code != 0 and "Traceback" not in err
    assert err.startswith(f"prodcat: error: {data}: label column 'tags': a tag holds '|', which joins a product's tags")
    assert not out.exists()


def test_train_refuses_a_label_separator_without_a_label_format_that_splits(tmp_path, capsys):
    # Forgetting --label-format multi learned each "apparel|red|shirts" as one class of its own
    data = tmp_path / "tags.csv"
    tiny_frame().to_csv(data, index=False)
    out = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "tags",
                       "--label-sep", "|", "--out", out)
    assert (code, err) == (2, "prodcat: error: --label-sep applies to multi-label and path labels "
                              "(--label-format multi or path)\n")
    assert not out.exists()


def test_train_warns_of_a_path_column_read_as_multi_label(tmp_path, capsys):
    data = tmp_path / "catalog.csv"
    tiny_frame().to_csv(data, index=False)
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "category",
                       "--label-format", "multi", "--out", tmp_path / "model")
    assert code == 0
    assert (f"warning: {data}: label column 'category' is read as multi-label, but no product holds more than one "
            "tag (e.g. ") in err
    assert "most cells are paths written with ' > ': pass --label-format path" in err
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "tags",
                       "--label-format", "multi", "--out", tmp_path / "tags")
    assert code == 0 and "no product holds more than one tag" not in err


def test_multi_label_headlines_name_their_accuracy_subset_accuracy(dummies, tmp_path, capsys):
    # beside top3_accuracy (one tag among the top 3), a bare "accuracy" read as the top-1 rate
    data = tmp_path / "tags.csv"
    tiny_frame(n_per_class=12).to_csv(data, index=False)
    fields = ["--text-cols", "title,description", "--label-col", "tags", "--label-format", "multi"]
    code, out, err = run(capsys, "train", "--data", data, *fields, "--model", "parts-dummy", "--out",
                         tmp_path / "model", "-q")
    assert code == 0, err
    code, evaluated, err = run(capsys, "evaluate", tmp_path / "model", "--data", data, "--keep-seen",
                               "--out", tmp_path / "report", "-q")
    assert code == 0, err
    lines = [line for line in (out + evaluated).splitlines() if "macro_f1=" in line]
    assert len(lines) == 5  # train's test line; evaluate's two parts, combined, and its own line
    assert all("subset_accuracy=" in line and " accuracy=" not in line for line in lines)


def test_placeholder_labels_meaning_no_category_are_a_finding_and_a_training_warning(tmp_path, capsys):
    # A WooCommerce export files every product without a category under "Uncategorized"; others
    # write "N/A": each trained as a class of its own, and was predicted for real products.
    frame = tiny_frame()
    frame.loc[frame.index[:5], "category"] = "Uncategorized"
    frame.loc[frame.index[5:7], "category"] = "N/A"
    data = _catalog(tmp_path, frame)
    fields = ["--text-cols", "title", "--label-col", "category", "--label-format", "path"]
    line = (f"{data}: label column 'category' holds labels that mean no category: 'Uncategorized' (5), "
            "'N/A' (2): each is learned as a class and predicted for products like theirs; fill in their "
            "categories, or leave those rows out")
    code, out, err = run(capsys, "inspect", "--data", data, *fields, "--json")
    assert code == 0, err
    assert json.loads(out)["placeholder_labels"] == {"column": "category", "labels": {"Uncategorized": 5, "N/A": 2}}
    code, out, err = run(capsys, "inspect", "--data", data, *fields)
    assert line in " ".join(out.split())
    code, _, err = run(capsys, "train", "--data", data, *fields, "--out", tmp_path / "m")
    assert code == 0, err
    assert f"warning: {line}" in err.splitlines()
    code, out, _ = run(capsys, "inspect", "--data", _catalog(tmp_path, tiny_frame(), "clean.csv"), *fields, "--json")
    assert json.loads(out)["placeholder_labels"] is None


def test_paths_or_json_lists_read_as_single_labels_are_a_finding_naming_the_format_to_pass(tmp_path, capsys):
    # Without --label-format a shop's "Apparel > Shirts" trained a flat model of whole paths (no
    # per-level scores, no confident paths), and an API's ["Apparel", "Shirts"] classes named in JSON.
    frame = tiny_frame()
    lists = frame.assign(category=[json.dumps(c.split(" > ")) for c in frame["category"]])
    for name, data_frame, line in [
        ("paths.csv", frame, "label column 'category' holds paths (e.g. {!r}) read as single labels: each whole "
                             "path is one class; pass --label-format path for scores per level and confident paths"),
        ("lists.csv", lists, "label column 'category' holds JSON lists (e.g. {!r}) read as single labels: each "
                             "list's JSON text is one class; pass --label-format path (a path or its levels) or multi "
                             "(a list of tags)"),
    ]:
        data = _catalog(tmp_path, data_frame, name)
        line = f"{data}: " + line.format(data_frame["category"].iloc[0])
        code, out, err = run(capsys, "inspect", "--data", data, "--text-cols", "title", "--label-col", "category")
        assert code == 0 and line in " ".join(out.split()), err
        code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "category",
                           "--out", tmp_path / name.replace(".csv", ""))
        assert code == 0 and f"warning: {line}" in err.splitlines(), err
    code, _, err = run(capsys, "train", "--data", data, "--text-cols", "title", "--label-col", "category",
                       "--label-format", "path", "--out", tmp_path / "as-path")
    assert code == 0 and "read as single labels" not in err
    code, out, _ = run(capsys, "inspect", "--data", data, "--text-cols", "title", "--label-col", "leaf", "--json")
    assert json.loads(out)["paths_as_single"] is None

"""bench_text's pure helpers: --systems with settings, --seeds, the summary and its table."""

import argparse
import math

import pytest

import bench_text
from bench_text import _ft_label, _ft_text, markdown_table, parse_seeds, parse_system, summarize


# --- --systems ------------------------------------------------------------------------
@pytest.mark.parametrize("system, expected", [
    ("prodcat-tfidf-linear", ("prodcat-tfidf-linear", {})),
    ("fasttext-tuned", ("fasttext-tuned", {})),
    ("prodcat-lstm[batch_size=16;word_dropout=0]", ("prodcat-lstm", {"batch_size": 16, "word_dropout": 0})),
    # values are JSON where they parse as JSON, text otherwise; blanks and a trailing ";" are fine
    ("prodcat-lstm[ embedding_init=random ; lr=1e-3; max_length=null;]",
     ("prodcat-lstm", {"embedding_init": "random", "lr": 0.001, "max_length": None})),
    ("prodcat-bert[freeze_embeddings=true]", ("prodcat-bert", {"freeze_embeddings": True})),
])
def test_a_system_and_its_settings(system, expected):
    assert parse_system(system) == expected


@pytest.mark.parametrize("system, message", [
    ("prodcat-lstm[lr=0.001", "settings go in one pair of brackets"),
    ("prodcat-lstm[lr=0.001][epochs=2]", "settings go in one pair of brackets"),
    ("prodcat-lstm]", "settings go in one pair of brackets"),
    ("fasttext-tuned[lr=0.5]", "only prodcat systems take settings"),
    ("prodcat-lstm[]", "empty brackets"),
    ("prodcat-lstm[ ; ]", "empty brackets"),
    ("prodcat-lstm[lr]", "a setting needs KEY=VALUE, got 'lr'"),
])
def test_a_malformed_system_is_a_value_error_naming_it(system, message):
    with pytest.raises(ValueError) as error:
        parse_system(system)
    assert str(error.value).startswith(repr(system)) and message in str(error.value)


# --- --seeds --------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="bench_text.py")


@pytest.mark.parametrize("text, seeds", [("0,1,2", (0, 1, 2)), ("3", (3,)), (" 4, 5 ,", (4, 5)), ("2,0", (2, 0))])
def test_seeds_keep_their_order(text, seeds):
    assert parse_seeds(parser(), text) == seeds


@pytest.mark.parametrize("text, message", [
    ("0,one", "--seeds takes comma-separated integers, got '0,one'"),
    ("1.5", "--seeds takes comma-separated integers"),
    ("", "--seeds is empty"), (" , ", "--seeds is empty"),
    ("0,1,0", "--seeds names a seed twice: '0,1,0'"),
])
def test_bad_seeds_are_a_usage_error(text, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_seeds(parser(), text)
    assert exited.value.code == 2 and message in capsys.readouterr().err


# --- main: what it refuses before the first (hour-long) run ---------------------------
@pytest.mark.parametrize("argv, message", [
    (["--tasks", "fashion-colour"], "unknown task/system: fashion-colour"),
    (["--systems", "prodcat-svm"], "unknown task/system: prodcat-svm"),
    (["--systems", "prodcat-bow,prodcat-bow"], "a system is named twice"),
    (["--systems", "prodcat-lstm[lr]"], "'prodcat-lstm[lr]': a setting needs KEY=VALUE"),
    (["--systems", "prodcat-tfidf-linear[colour=1]"], "prodcat-tfidf-linear[colour=1]: "),
])
def test_main_refuses_bad_options_before_any_run(argv, message, tmp_path, capsys, monkeypatch):
    def run(*args, **kwargs):
        raise AssertionError("a worker ran before the options were checked")

    monkeypatch.setattr(bench_text.subprocess, "run", run)
    with pytest.raises(SystemExit) as exited:
        bench_text.main([*argv, "--data-root", str(tmp_path), "--out", str(tmp_path / "out.json")])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


def test_main_says_where_the_catalogs_were_looked_for(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_text.main(["--tasks", "flipkart-level1", "--data-root", str(tmp_path)])
    assert f"{tmp_path / 'flipkart' / 'products.csv'} not found (use --data-root)" in capsys.readouterr().err


# --- the summary and its table --------------------------------------------------------
def run(task, system, seed, macro_f1, **extra):
    return {"task": task, "system": system, "seed": seed, "macro_f1": macro_f1, "accuracy": macro_f1 + 0.05,
            "fit_s": 10.0 + seed, "products_per_s": 1000.0 * (seed + 1), "peak_rss_mb": 300.0, **extra}


RUNS = [
    run("flipkart-level1", "prodcat-lstm[lr=0.001]", 0, 0.90, model_mb=2.0),
    run("flipkart-level1", "fasttext-tuned", 0, 0.80),
    run("fashion-articleType", "prodcat-lstm[lr=0.001]", 0, 0.70, model_mb=4.0, onnx_int8_products_per_s=5000.0),
    run("flipkart-level1", "prodcat-lstm[lr=0.001]", 1, 0.80, model_mb=3.0),
    run("flipkart-level1", "fasttext-tuned", 1, 0.80),
]


def test_summary_rows_are_mean_and_sample_std_over_seeds_in_task_then_run_order():
    rows = summarize(RUNS)
    # tasks in TASKS order, systems in the order they ran
    assert [(r["task"], r["system"]) for r in rows] == [
        ("fashion-articleType", "prodcat-lstm[lr=0.001]"),
        ("flipkart-level1", "prodcat-lstm[lr=0.001]"), ("flipkart-level1", "fasttext-tuned")]
    lstm = rows[1]
    assert lstm["seeds"] == [0, 1]
    assert lstm["macro_f1"] == pytest.approx(0.85) and lstm["macro_f1_std"] == pytest.approx(math.sqrt(0.005))
    assert lstm["fit_s"] == pytest.approx(10.5) and lstm["products_per_s"] == pytest.approx(1500.0)
    assert lstm["model_mb"] == pytest.approx(2.5) and lstm["onnx_int8_products_per_s"] is None
    # one seed: no spread rather than an error
    assert rows[0]["macro_f1_std"] == 0.0 and rows[0]["onnx_int8_products_per_s"] == 5000.0
    assert rows[2]["macro_f1_std"] == 0.0 and rows[2]["model_mb"] is None


def test_the_table_has_a_row_per_summary_row_and_dashes_for_what_was_not_measured():
    table = markdown_table(summarize(RUNS)).splitlines()
    assert len(table) == 2 + 3
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:3] == ["task", "system", "macro-F1"] and len(header) == 10
    assert all(line.count("|") == 11 for line in table)
    lstm = [c.strip() for c in table[3].strip("|").split("|")]
    assert lstm[:5] == ["flipkart-level1", "prodcat-lstm[lr=0.001]", "0.850 ± 0.071", "0.900 ± 0.071", "10.5 ± 0.7"]
    assert lstm[5:] == ["1,500", "300", "2.5", "–", "–"]


def test_fasttext_lines_hold_one_example_each():
    assert _ft_label(" Home  Decor ") == "__label__Home_Decor"
    assert _ft_text(" red\nshirt\r\n\r\nfor\u2028men\x85 ") == "red shirt for men"
    assert len(_ft_text("a\vb\fc").splitlines()) == 1


# --- --sample ---------------------------------------------------------------------------
def test_a_sample_is_drawn_with_the_split_seed_under_the_tasks_own_path(tmp_path):
    import pandas as pd

    root = tmp_path / "data"
    (root / "shop").mkdir(parents=True)
    pd.DataFrame({"title": [f"product {i}" for i in range(50)], "label": ["a", "b"] * 25}).to_csv(
        root / "shop" / "products.csv", index=False)
    task = {"file": "shop/products.csv"}
    first = bench_text.sampled_data_root(task, root, tmp_path / "one", sample=10, seed=3)
    again = bench_text.sampled_data_root(task, root, tmp_path / "two", sample=10, seed=3)
    other = bench_text.sampled_data_root(task, root, tmp_path / "three", sample=10, seed=4)
    rows = [pd.read_csv(r / "shop" / "products.csv")["title"].tolist() for r in (first, again, other)]
    assert first == tmp_path / "one" and len(rows[0]) == 10 and len(set(rows[0])) == 10
    assert rows[0] == rows[1] and rows[0] != rows[2]
    whole = bench_text.sampled_data_root(task, root, tmp_path / "all", sample=500, seed=3)
    assert len(pd.read_csv(whole / "shop" / "products.csv")) == 50

"""bench_images' pure helpers: the catalog of products with photos, merging a
partial rerun into the results file, and the tables."""

import pandas as pd
import pytest

from bench_images import SYSTEMS, TASKS, _catalog_file, markdown_table, merge_runs


def run(task, system, seed=0, macro_f1=0.5, **extra):
    return {"task": task, "system": system, "seed": seed, "macro_f1": macro_f1, "accuracy": 0.6, "fit_s": 12.4,
            "products_per_s": 1234.5, "model_mb": 3.25, "n_train": 700, "n_valid": 100, "n_test": 200, **extra}


def test_a_partial_rerun_replaces_what_it_measured_and_keeps_the_rest_in_table_order():
    previous = [run("flipkart-level1", "image: image-cnn", macro_f1=0.1),
                run("fashion-subCategory", "ensemble: average", seed=1),
                run("flipkart-level1", "text: tfidf-linear", macro_f1=0.2),
                run("an-old-task", "text: tfidf-linear")]
    fresh = [run("flipkart-level1", "text: tfidf-linear", macro_f1=0.9),
             run("fashion-subCategory", "image: image-pretrained", seed=1)]
    merged = merge_runs(previous, fresh)
    assert [(r["task"], r["seed"], r["system"]) for r in merged] == [
        ("fashion-subCategory", 1, "image: image-pretrained"),  # tasks, then seeds, then systems in their order
        ("fashion-subCategory", 1, "ensemble: average"),
        ("flipkart-level1", 0, "text: tfidf-linear"),
        ("flipkart-level1", 0, "image: image-cnn"),
        ("an-old-task", 0, "text: tfidf-linear"),  # a task no longer known is kept, last
    ]
    assert merged[2]["macro_f1"] == 0.9  # the new measurement, not the old one
    assert merge_runs([], fresh) == sorted(fresh, key=lambda r: list(TASKS).index(r["task"]))
    assert list(SYSTEMS)[0] == "text: tfidf-linear"


def test_the_tables_show_runs_parts_and_the_gain_over_the_best_part():
    parts = {"text": {"macro_f1": 0.8, "accuracy": 0.85}, "combined": {"macro_f1": 0.9, "accuracy": 0.91}}
    versus = {"best_part": "text", "changed": 40, "fixed": 30, "broken": 10, "headroom": 55,
              "macro_f1_gain": 0.1, "gain_interval": [0.05, 0.15]}
    lines = markdown_table([run("flipkart-level1", "text: tfidf-linear"),
                            run("flipkart-level1", "ensemble: average", components=parts,
                                versus_best_part=versus)]).splitlines()
    assert lines[2] == "| flipkart-level1 | 0 | 1,000 | text: tfidf-linear | 0.500 | 0.600 | 12 | 1,234 | 3.2 |"
    assert "| flipkart-level1 | 0 | ensemble: average | combined | 0.900 | 0.910 |" in lines
    assert ("| flipkart-level1 | 0 | ensemble: average | text | 40 | 30 | 10 | 55 | +0.100 | [+0.050, +0.150] |"
            in lines)
    # no parts, no part tables
    assert len(markdown_table([run("flipkart-level1", "text: tfidf-linear")]).splitlines()) == 3


@pytest.fixture
def fashion_root(tmp_path):
    """A data root shaped like ../shared/data's fashion folder: 6 products, photos of 4."""
    root = tmp_path / "data"
    (root / "fashion" / "images").mkdir(parents=True)
    pd.DataFrame({"id": ["1", "2", "3", "4", "5", "6"], "productDisplayName": list("abcdef"),
                  "subCategory": ["x", "y"] * 3}).to_csv(root / "fashion" / "styles.csv", index=False)
    for name in ("1.jpg", "3.jpg", "4.jpg", "6.jpg", "2.png"):  # a .png is no photo the preset names
        (root / "fashion" / "images" / name).write_bytes(b"")
    return root


def test_fashion_tasks_train_on_the_products_with_a_photo(fashion_root, tmp_path):
    path, fields = _catalog_file(TASKS["fashion-subCategory"], fashion_root, tmp_path)
    assert path.parent == tmp_path  # a copy, never in the data root
    assert pd.read_csv(path, dtype=str)["id"].tolist() == ["1", "3", "4", "6"]
    assert fields == {"preset": "fashion", "label_format": "single", "label_col": "subCategory",
                      "image_root": str(fashion_root / "fashion" / "images")}
    assert "image_root" not in TASKS["fashion-subCategory"]["fields"]  # the task itself is left as it was


def test_a_sample_is_drawn_with_the_seed_and_other_tasks_read_their_file_as_it_is(fashion_root, tmp_path):
    def sample(seed):
        path, _ = _catalog_file(TASKS["fashion-articleType"], fashion_root, tmp_path, sample=2, seed=seed)
        return pd.read_csv(path, dtype=str)["id"].tolist()

    assert len(sample(0)) == 2 and sample(0) == sample(0)
    assert set(sample(0)) <= {"1", "3", "4", "6"}
    assert {tuple(sample(seed)) for seed in range(6)} != {tuple(sample(0))}
    path, fields = _catalog_file(TASKS["flipkart-level1"], fashion_root, tmp_path)
    assert path == fashion_root / "flipkart" / "products.csv" and fields == {"preset": "flipkart", "label_level": 1}

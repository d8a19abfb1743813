"""The image and ensemble options of the CLI parse, reach the field mapping and
the model's settings, and fail with one line where they do not apply."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cli_runner import run
from prodcat.categorizer import Categorizer

FIELDS = ["--text-cols", "title,description", "--label-col", "leaf"]




def test_train_then_predict_with_an_image_root_override(dummies, shop, tmp_path, capsys):
    path, frame = shop
    model_dir = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", path, *FIELDS, "--model", "image-dummy", "--image-col", "image",
                       "--image-root", "photos", "--image-size", "32", "--out", model_dir, "-q")
    assert code == 0, err
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["fields"]["image_col"] == "image" and manifest["fields"]["image_root"] == "photos"
    assert manifest["model"]["params"] == {"image_size": 32}
    assert all(Path(ref).parent == path.parent / "photos" for ref in dummies[0])

    # the same photos, moved: --image-root points predict at them
    moved = tmp_path / "moved"
    (path.parent / "photos").rename(moved)
    dummies.clear()
    code, out, err = run(capsys, "predict", model_dir, "--data", path, "--out", tmp_path / "pred.csv",
                         "--image-root", moved, "-q")
    assert code == 0, err
    assert dummies[-1] == [str(moved / name) for name in frame["image"]]
    assert all(Path(ref).is_file() for ref in dummies[-1])

    dummies.clear()
    code, out, err = run(capsys, "evaluate", model_dir, "--data", path, "--out", tmp_path / "report", "--keep-seen",
                         "--image-root", moved)
    assert code == 0, err
    assert dummies[-1][0] == str(moved / frame["image"][0])


def test_evaluate_prints_each_part_and_what_combining_changed(dummies, shop, tmp_path, capsys):
    path, frame = shop
    model_dir = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", path, *FIELDS, "--model", "parts-dummy", "--out", model_dir, "-q")
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", model_dir, "--data", path, "--out", tmp_path / "report", "--keep-seen")
    assert code == 0, err
    assert "  prior: " in out and "  combined: " in out
    line = next(line for line in out.splitlines() if line.startswith("  combined vs "))
    assert line.startswith("  combined vs tfidf-linear: ") and f" of {len(frame)} decisions changed" in line
    assert "95% bootstrap [" in line


@pytest.fixture
def captured_fit(monkeypatch):
    """Categorizer.fit and save replaced by a recorder: what the CLI would train, without training."""
    seen = {}

    def fake_fit(self, data, **kwargs):
        seen.update(model=self.model, params=self.params, fields=self.fields, data=data)
        return self

    monkeypatch.setattr(Categorizer, "fit", fake_fit)
    monkeypatch.setattr(Categorizer, "save", lambda self, out: Path(out))
    monkeypatch.setattr(Categorizer, "metrics_", {}, raising=False)
    return seen


def test_the_ensemble_command_line_of_the_issue_parses(shop, tmp_path, capsys, captured_fit):
    path, _ = shop
    code, _, err = run(capsys, "train", "--model", "ensemble", "--members", "tfidf-linear,image-pretrained",
                       "--method", "stacking", "--data", path, *FIELDS, "--image-col", "image",
                       "--image-root", "photos", "--out", tmp_path / "model")
    assert code == 0, err
    assert captured_fit["model"] == "ensemble"
    assert captured_fit["params"] == {"members": ["tfidf-linear", "image-pretrained"], "method": "stacking"}
    assert captured_fit["fields"].image_col == "image" and captured_fit["fields"].image_root == "photos"


def test_named_options_go_to_the_ensemble_members_that_have_them(shop, tmp_path, capsys, captured_fit):
    path, _ = shop
    code, _, err = run(capsys, "train", "--model", "ensemble", "--members", "tfidf-linear,bow", "--epochs", "2",
                       "--param", 'member_params={"bow": {"dim": 16}}', "--data", path, *FIELDS,
                       "--out", tmp_path / "model")
    assert code == 0, err
    assert captured_fit["params"] == {"members": ["tfidf-linear", "bow"], "member_params": {"bow": {"dim": 16, "epochs": 2}}}
    code, _, err = run(capsys, "train", "--model", "ensemble", "--members", "tfidf-linear,bow", "--checkpoint", "x",
                       "--data", path, *FIELDS, "--out", tmp_path / "model")
    assert code != 0
    assert "--checkpoint is a setting of bert and image-pretrained; no member of the ensemble (tfidf-linear, bow) " \
           "takes it" in err


@pytest.mark.parametrize("command", [
    ["train", "--model", "tfidf-linear", "--out", "OUT"],
    ["tune", "--model", "tfidf-linear", "--out", "OUT"],
    ["leaderboard", "--models", "tfidf-linear,bow"],
])
def test_members_and_method_need_the_ensemble(shop, tmp_path, capsys, command):
    path, _ = shop
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in command]
    code, _, err = run(capsys, *argv, "--data", path, *FIELDS, "--members", "tfidf-linear,bow", "--method", "average")
    assert code != 0
    assert err.strip().splitlines() == [
        f"prodcat: error: --members and --method apply to --model ensemble only, not {'tfidf-linear, bow' if 'leaderboard' in command else 'tfidf-linear'}"
    ]


def test_an_image_model_without_an_image_column_is_one_line(dummies, shop, tmp_path, capsys):
    path, _ = shop
    code, _, err = run(capsys, "train", "--data", path, *FIELDS, "--model", "image-dummy", "--out", tmp_path / "m")
    assert code != 0
    assert err.strip() == "prodcat: error: model 'image-dummy' learns from product photos: pass --image-col (and --image-root)"


def test_a_catalog_of_photos_alone_trains_an_image_model(shop, tmp_path, capsys):
    path, frame = shop
    photos_only = path.parent / "photos_only.csv"
    frame[["sku", "image", "leaf"]].to_csv(photos_only, index=False)
    fields = ["--label-col", "leaf", "--image-col", "image", "--image-root", "photos"]
    model_dir = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", photos_only, *fields, "--model", "image-cnn", "--epochs", "1",
                       "--image-size", "16", "--param", "num_threads=1", "--out", model_dir, "-q")
    assert code == 0, err
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["fields"]["text_cols"] == []
    sizes = manifest["training"]["split"]["sizes"]  # split by photo, not one group of empty texts
    assert 0 < sizes["test"] and sizes["train"] < len(frame)

    code, _, err = run(capsys, "predict", model_dir, "--data", photos_only, "--out", tmp_path / "p.csv", "-q")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(frame)
    # the photos it trained on are recognised as seen, as texts are
    code, _, err = run(capsys, "evaluate", model_dir, "--data", photos_only, "--out", tmp_path / "r", "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["excluded_seen_in_training"] == (
        sizes["train"] + sizes["valid"])

    no_photos = tmp_path / "no_photos.csv"
    frame[["sku", "leaf"]].to_csv(no_photos, index=False)
    code, _, err = run(capsys, "predict", model_dir, "--data", no_photos, "--out", tmp_path / "q.csv", "-q")
    assert code == 2 and err.strip() == (
        f"prodcat: error: {no_photos} has no image column 'image', and model 'image-cnn' reads nothing but photos: "
        "pass --image-col with the column that names them")
    # a model that reads text still needs a text column
    code, _, err = run(capsys, "train", "--data", photos_only, *fields, "--out", tmp_path / "m2", "-q")
    assert code == 2 and "no text column: pass --text-cols" in err


def test_help_names_the_image_options(capsys):
    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    for option in ("--image-col", "--image-root", "--image-size", "--members", "--method", "image-pretrained"):
        assert option in out
    for command in ("evaluate", "predict", "inspect", "tune", "leaderboard"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and "--image-col" in out and "--image-root" in out, command


def test_inspect_counts_readable_photos(shop, capsys):
    path, frame = shop
    photos = path.parent / "photos"
    (photos / frame["image"][0]).write_bytes(b"\x89PNG\r\n\x1a\n not really")  # corrupt
    (photos / frame["image"][1]).unlink()  # missing
    frame.loc[2, "image"] = ""  # no photo at all
    frame.to_csv(path, index=False)
    code, out, err = run(capsys, "inspect", "--data", path, *FIELDS, "--image-col", "image", "--image-root", "photos",
                         "--json")
    assert code == 0, err
    images = json.loads(out)["images"]
    assert images["column"] == "image"
    assert images["with_reference"] == len(frame) - 1
    assert (images["read"], images["missing"], images["unreadable"], images["absent"]) == (len(frame) - 3, 1, 1, 1)
    assert {Path(ref).name for ref, _ in images["failures"]} == {frame["image"][0], frame["image"][1]}

    code, out, err = run(capsys, "inspect", "--data", path, *FIELDS, "--image-col", "image", "--image-root", "photos")
    assert code == 0, err
    assert "Images (column image)" in out
    assert "readable" in out and f"{len(frame) - 3}" in out
    assert frame["image"][1] in out.replace("\n", "")  # the missing one is named among the failures (folded)

"""The encoding belongs to a file, not to a model: a model trained on a
latin-1 file reads later files as UTF-8 unless `--encoding` says otherwise."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cli_runner import run, run_ok
from prodcat import Categorizer
from tiny_catalogs import tiny_frame

FIELDS = ["--text-cols", "title,description", "--label-col", "leaf", "--id-cols", "sku"]
ACCENTED = ["Küche café crème brûlée 日本 pan", "Hémd chemise à fleurs oxford"]


@pytest.fixture(scope="module")
def latin_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoding")
    frame = tiny_frame(n_per_class=6)
    frame.loc[:3, "title"] = frame.loc[:3, "title"] + " café crème"
    latin = folder / "latin.csv"
    latin.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    model_dir = folder / "model"
    run_ok("train", "--data", latin, *FIELDS, "--encoding", "latin-1", "--out", model_dir, "-q")
    return latin, model_dir


def test_the_model_does_not_keep_its_training_files_encoding(latin_model):
    _, model_dir = latin_model
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["fields"]["encoding"] == "utf-8"
    # a model saved before keeping it out still reads later files as UTF-8
    manifest["fields"]["encoding"] = "latin-1"
    (model_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    try:
        assert Categorizer.load(model_dir).fields_.encoding == "utf-8"
    finally:
        manifest["fields"]["encoding"] = "utf-8"
        (model_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_utf8_file_is_read_as_utf8_by_a_model_trained_on_latin1(latin_model, tmp_path, capsys):
    _, model_dir = latin_model
    data = tmp_path / "utf8.csv"
    skus = ["KÜCHE-日本-1", "hémd-2"]
    pd.DataFrame({"sku": skus, "title": ACCENTED, "description": ["", ""]}).to_csv(data, index=False)
    code, _, err = run(capsys, "predict", model_dir, "--data", data, "--out", tmp_path / "p.jsonl", "-q")
    assert code == 0, err
    # read as latin-1, "Ü" would come back as "Ã\x9c"
    assert pd.read_json(tmp_path / "p.jsonl", lines=True)["sku"].tolist() == skus
    clf = Categorizer.load(model_dir)
    from_file = clf.predict_proba(data).to_numpy()
    from_python = clf.predict_proba([{"title": t} for t in ACCENTED]).to_numpy()
    assert from_file == pytest.approx(from_python, rel=1e-5, abs=1e-30)


def test_predict_and_evaluate_read_a_latin1_file_only_when_told(latin_model, tmp_path, capsys):
    latin, model_dir = latin_model
    for command in (["predict", model_dir, "--data", latin, "--out", tmp_path / "p.csv"],
                    ["evaluate", model_dir, "--data", latin, "--out", tmp_path / "report", "--keep-seen"]):
        code, out, err = run(capsys, *command)
        assert code == 2 and out == ""
        assert err.strip().splitlines() == [
            f"prodcat: error: {latin} is not UTF-8 text: byte 0xE9 at line 2; re-save it as UTF-8 or pass "
            "--encoding cp1252"
        ]
        code, _, err = run(capsys, *command, "--encoding", "latin-1", "-q")
        assert code == 0, err
    predictions = pd.read_csv(tmp_path / "p.csv", dtype=str)
    assert len(predictions) == 24 and predictions["sku"].str.len().gt(0).all()

import json
import pickle

import numpy as np
import pytest

from prodcat import Categorizer
from prodcat.artifacts import FORMAT_VERSION, MANIFEST, WEIGHTS, atomic_directory, read_model_dir, write_model_dir
from prodcat.errors import ModelDirError
from tiny_catalogs import FORMATS, tiny_frame


@pytest.fixture(scope="module")
def fitted():
    return Categorizer(quiet=True, **FORMATS["path"]).fit(tiny_frame())


def test_model_directory_holds_data_only(fitted, tmp_path):
    model_dir = fitted.save(tmp_path / "m")
    names = sorted(p.name for p in model_dir.iterdir())
    assert names == ["manifest.json", "model_state.json", "report", "weights.safetensors"]
    manifest = json.loads((model_dir / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["model"]["name"] == "tfidf-linear"
    assert manifest["fields"]["label_format"] == "path"
    assert set(manifest["metrics"]) == {"train", "validation", "test"}
    assert {"python", "numpy", "scikit-learn"} <= set(manifest["libraries"])
    assert (model_dir / "report" / "metrics.json").is_file()


def test_loading_never_unpickles(fitted, tmp_path, monkeypatch):
    model_dir = fitted.save(tmp_path / "m")

    def refuse(*args, **kwargs):
        raise AssertionError("a model directory must not be unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(np, "load", refuse)
    Categorizer.load(model_dir).predict(["oxford cotton shirt"])


def test_save_replaces_a_previous_model(fitted, tmp_path):
    model_dir = tmp_path / "m"
    fitted.save(model_dir)
    fitted.save(model_dir)
    assert Categorizer.load(model_dir).classes_ == fitted.classes_
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging leftovers


def test_crash_mid_save_keeps_the_previous_model(fitted, tmp_path):
    model_dir = fitted.save(tmp_path / "m")
    before = (model_dir / WEIGHTS).read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_directory(model_dir) as staging:
            (staging / WEIGHTS).write_bytes(b"half")
            raise RuntimeError("power cut")
    assert (model_dir / WEIGHTS).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    Categorizer.load(model_dir)


def test_an_interrupt_between_the_two_renames_of_the_swap_puts_the_previous_model_back(fitted, tmp_path,
                                                                                        monkeypatch):
    # Ctrl+C after the old folder was moved aside and before the new one took its
    # place used to leave no model at all, the old one (and a run's checkpoints)
    # hidden in .m.old-*.
    import os

    model_dir = fitted.save(tmp_path / "m")
    (model_dir / "checkpoints").mkdir()
    (model_dir / "checkpoints" / "checkpoint.json").write_text("{}")
    real_rename, renames = os.rename, []

    def rename(source, target):
        renames.append(target)
        if len(renames) == 2:
            raise KeyboardInterrupt
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(model_dir)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
    assert (model_dir / "checkpoints" / "checkpoint.json").is_file()
    Categorizer.load(model_dir)


def test_crash_during_first_save_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "new") as staging:
            (staging / "manifest.json").write_text("{}")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_folder_that_is_not_a_model(fitted, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ModelDirError, match="is not a prodcat model directory; refusing to overwrite"):
        fitted.save(folder)
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


def test_missing_files_and_newer_versions_are_clear_errors(fitted, tmp_path):
    model_dir = fitted.save(tmp_path / "m")
    with pytest.raises(ModelDirError, match="model directory not found"):
        Categorizer.load(tmp_path / "nope")
    with pytest.raises(ModelDirError, match="not a prodcat model directory: manifest.json is missing"):
        Categorizer.load(tmp_path)

    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    manifest["prodcat_version"] = "9.0.0"
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelDirError, match=r"written by prodcat 9.0.0 .* upgrade prodcat"):
        Categorizer.load(model_dir)

    model_dir = fitted.save(tmp_path / "m2")
    (model_dir / WEIGHTS).unlink()
    with pytest.raises(ModelDirError, match="incomplete: weights.safetensors missing"):
        Categorizer.load(model_dir)


def _edited(model_dir, edit):
    manifest = json.loads((model_dir / MANIFEST).read_text())
    edit(manifest)
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    return model_dir


DAMAGED_MANIFESTS = {
    "threshold not a number": (lambda m: m["review"].update(threshold="high"),
                               'review.threshold must be a number or null, got "high"'),
    "text columns null": (lambda m: m["fields"].update(text_cols=None),
                          "fields.text_cols must be a list of strings, got null"),
    "params not an object": (lambda m: m["model"].update(params=[1]), "model.params must be an object, got [1]"),
    "unknown label format": (lambda m: m["labels"].update(label_format="tree"),
                             "labels.label_format must be one of single, multi, path, got 'tree'"),
    "formats disagree": (lambda m: m["fields"].update(label_format="single"),
                         "fields.label_format 'single' differs from labels.label_format 'path'"),
    "one class": (lambda m: m["labels"].update(classes=["A", "A"]), "two or more different classes"),
    "format version text": (lambda m: m.update(format_version="1"), "format_version must be a positive integer"),
    "no files": (lambda m: m.pop("files"), "files is missing"),
    "files empty": (lambda m: m.update(files={}), "files has no checksum of model_state.json"),
    "file outside": (lambda m: m["files"].update({"../x": {"sha256": "0" * 64}}), "which is not a file of the model"),
    "checksum not hex": (lambda m: m["files"].update({"weights.safetensors": {"sha256": None}}),
                         "files.weights.safetensors must hold the sha256"),
}


@pytest.mark.parametrize("case", DAMAGED_MANIFESTS)
def test_a_damaged_manifest_is_one_line_naming_it(fitted, tmp_path, case):
    edit, fragment = DAMAGED_MANIFESTS[case]
    model_dir = _edited(fitted.save(tmp_path / "m"), edit)
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    message = str(caught.value)
    assert message.startswith(f"{model_dir / MANIFEST} is damaged: ") and fragment in message
    assert "\n" not in message


def test_weights_without_a_checksum_in_the_manifest_do_not_load(fitted, tmp_path):
    # Dropping the checksums must not be a way to load changed weights.
    model_dir = _edited(fitted.save(tmp_path / "m"), lambda m: m["files"].pop(WEIGHTS))
    data = bytearray((model_dir / WEIGHTS).read_bytes())
    data[-10] ^= 0xFF
    (model_dir / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="files has no checksum of weights.safetensors"):
        Categorizer.load(model_dir)


def test_weights_that_do_not_fit_the_manifest_name_the_directory(fitted, tmp_path):
    model_dir = _edited(fitted.save(tmp_path / "m"), lambda m: m["labels"].update(classes=["A > a", "B > b"]))
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value).startswith(f"{model_dir} has an inconsistent manifest or model state: tfidf-linear: coef")


def test_the_format_not_the_prodcat_version_decides_what_loads(fitted, tmp_path):
    model_dir = _edited(fitted.save(tmp_path / "m"), lambda m: m.update(prodcat_version="9.0.0"))
    assert Categorizer.load(model_dir).predict(["oxford cotton shirt"]) == fitted.predict(["oxford cotton shirt"])


def test_damaged_weights_are_detected(fitted, tmp_path):
    model_dir = fitted.save(tmp_path / "m")
    data = bytearray((model_dir / WEIGHTS).read_bytes())
    data[-10] ^= 0xFF
    (model_dir / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelDirError, match="does not match its checksum"):
        Categorizer.load(model_dir)


def test_zero_dimensional_arrays_keep_their_shape(tmp_path):
    # BatchNorm's num_batches_tracked is a 0-d tensor; loading checks shapes exactly.
    arrays = {"count": np.array(7, dtype=np.int64), "matrix": np.ones((2, 3), np.float32)}
    manifest = {"model": {"name": "x", "params": {}}, "labels": {"label_format": "single", "classes": ["a", "b"]},
                "fields": {}}
    with atomic_directory(tmp_path / "m") as staging:
        write_model_dir(staging, manifest, {}, arrays)
    _, _, loaded = read_model_dir(tmp_path / "m")
    assert loaded["count"].shape == () and int(loaded["count"]) == 7
    assert loaded["matrix"].shape == (2, 3)

import json
import pickle
import re
import stat

import numpy as np
import pytest

from prodcat import Categorizer
from prodcat.artifacts import (
    FORMAT_VERSION, MANIFEST, STATE, WEIGHTS, atomic_directory, read_model_dir, write_model_dir,
)
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


def test_every_model_file_has_the_mode_of_a_file_written_by_hand(fitted, tmp_path):
    # safetensors writes its file for its owner alone (0600): a model trained by one user (or a
    # training job) was readable by a server running as another except for its weights.
    model_dir = fitted.save(tmp_path / "m")
    (tmp_path / "plain").write_text("x")
    usual = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in model_dir.iterdir() if p.is_file()}
    assert modes == {name: usual for name in ("manifest.json", "model_state.json", "weights.safetensors")}


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


def test_refuses_to_save_a_model_inside_another_model_directory(fitted, tmp_path):
    # It used to save there: the next save into the outer model, which replaces its
    # folder whole, then deleted the inner model without a word.
    outer = fitted.save(tmp_path / "outer")
    with pytest.raises(ModelDirError, match=r"outer/inner is inside model directory .*outer, which saving"):
        fitted.save(outer / "inner")
    assert not (outer / "inner").exists()
    assert Categorizer.load(outer).predict(["linen duvet"]) == fitted.predict(["linen duvet"])


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


def _rewritten(model_dir, edit_state=None, edit_arrays=None):
    """model_dir with its state or arrays edited and the manifest's checksums made to match,
    as someone editing a model by hand would leave it."""
    import hashlib

    from safetensors.numpy import load_file, save_file

    if edit_state is not None:
        state = json.loads((model_dir / STATE).read_text())
        state = edit_state(state) or state
        (model_dir / STATE).write_text(json.dumps(state))
    if edit_arrays is not None:
        arrays = load_file(str(model_dir / WEIGHTS))
        edit_arrays(arrays)
        save_file(arrays, str(model_dir / WEIGHTS))

    def rechecksum(manifest):
        for name in (STATE, WEIGHTS):
            manifest["files"][name]["sha256"] = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()

    return _edited(model_dir, rechecksum)


TAMPERED_MODELS = {
    "state not an object": (dict(edit_state=lambda s: [s]), "model_state.json must hold an object"),
    "calibration emptied": (dict(edit_state=lambda s: s.update(calibration={})), "temperature"),
    "temperature a text": (dict(edit_state=lambda s: s["calibration"].update(temperature="1.0")), "temperature"),
    "a multi-label calibration": (dict(edit_state=lambda s: s["calibration"].update(kind="platt", slope=1.0, intercept=0.0)),
                            "temperature"),
    "review arrays of two lengths": (dict(edit_arrays=lambda a: a.update({
        "prodcat.review_confidence": np.zeros(5, np.float32)})), "review"),
    "review confidence a matrix": (dict(edit_arrays=lambda a: a.update({
        "prodcat.review_confidence": np.zeros((2, 6), np.float32), "prodcat.review_correct": np.zeros((2, 6), np.uint8)})),
        "review"),
}


@pytest.mark.parametrize("case", TAMPERED_MODELS)
def test_a_model_edited_by_hand_with_matching_checksums_is_refused_when_it_loads(fitted, tmp_path, case):
    # Checksums only catch accidents: what loads must also be usable, or the
    # first prediction (or --target-precision) fails with a traceback.
    edits, fragment = TAMPERED_MODELS[case]
    model_dir = _rewritten(fitted.save(tmp_path / "m"), **edits)
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    message = str(caught.value)
    assert str(model_dir) in message and fragment in message and "\n" not in message


def test_a_neural_model_with_a_weight_that_is_not_a_finite_number_is_refused_when_it_loads(tmp_path):
    # Training never saves a diverged network; a NaN here (a hand edit, a damaged copy) loaded and gave
    # NaN probabilities, and in a photo model's fallback row to every product without a photo.
    clf = Categorizer(model="bow", params={"dim": 8, "epochs": 1, "num_threads": 1}, quiet=True,
                      **FORMATS["single"]).fit(tiny_frame())
    model_dir = clf.save(tmp_path / "bow")
    from safetensors.numpy import load_file

    weight = next(k for k in load_file(str(model_dir / WEIGHTS)) if k.startswith("model.") and k.endswith("weight"))

    def poisoned(arrays):
        arrays[weight] = arrays[weight].copy()
        arrays[weight].flat[0] = np.nan

    _rewritten(model_dir, edit_arrays=poisoned)
    with pytest.raises(ModelDirError, match=rf"weight '{weight[len('model.'):]}' holds nan, not a finite number"):
        Categorizer.load(model_dir)


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


# --- what a killed save leaves ------------------------------------------------------

_SAVE_THEN_HANG = """
import sys, time
from prodcat.artifacts import atomic_directory
with atomic_directory(sys.argv[1]) as staging:
    (staging / "weights.safetensors").write_bytes(b"half")
    print(staging, flush=True)
    time.sleep(120)
"""


def _start_a_save(target):
    """A process in the middle of saving into `target`, and its staging folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    process = subprocess.Popen([sys.executable, "-c", _SAVE_THEN_HANG, str(target)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return process, Path(process.stdout.readline().strip())


def _dead_pid():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_next_save_removes_what_a_killed_save_left_but_never_a_running_saves_folder(fitted, tmp_path):
    # SIGKILL cannot be handled: the killed save used to leave its hidden .m.saving-* folder for good.
    import signal

    model_dir = fitted.save(tmp_path / "m")
    killed, left = _start_a_save(model_dir)
    running, in_use = _start_a_save(model_dir)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert left.is_dir() and in_use.is_dir()
        fitted.save(model_dir)
        assert not left.exists()
        assert in_use.is_dir() and (in_use / WEIGHTS).read_bytes() == b"half"  # its process still runs
    finally:
        for process in (killed, running):
            process.kill()
            process.wait()
            process.stdout.close()
    Categorizer.load(model_dir)


def test_a_staging_folder_whose_lock_is_held_is_kept_though_its_pid_runs_nowhere_here(fitted, tmp_path):
    # A save in another PID namespace (a container with this host name): its PID means nothing here, its lock does.
    import fcntl
    import os

    from prodcat.artifacts import _staging_prefix

    model_dir = fitted.save(tmp_path / "m")
    locked = tmp_path / f"{_staging_prefix(model_dir)}{_dead_pid()}-0123abcd"
    free = tmp_path / f"{_staging_prefix(model_dir)}{_dead_pid()}-4567cdef"
    other_host = tmp_path / f".m.saving-00000000-{_dead_pid()}-89abcdef"
    older_prodcat = tmp_path / ".m.saving-0123456789ab"  # an older prodcat's name says nothing of its owner
    other_target = tmp_path / f"{_staging_prefix(tmp_path / 'm2')}{_dead_pid()}-0123abcd"
    for folder in (locked, free, other_host, older_prodcat, other_target):
        folder.mkdir()
    fd = os.open(locked, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fitted.save(model_dir)
    finally:
        os.close(fd)
    assert not free.exists()
    assert locked.is_dir() and other_host.is_dir() and older_prodcat.is_dir() and other_target.is_dir()


def test_a_save_killed_mid_swap_keeps_the_previous_model_and_loading_says_where(fitted, tmp_path):
    # Killed between moving the model aside and renaming the new one into place: .m.old-* holds
    # the only copy of the previous model. It is never removed, and loading points at it.
    model_dir = fitted.save(tmp_path / "m")
    aside = tmp_path / ".m.old-0123abcd"
    model_dir.rename(aside)
    message = (f"model directory not found: {model_dir}; a save killed while replacing it left the previous model in "
               f"{aside}: rename that folder to m to use it")
    with pytest.raises(ModelDirError, match=re.escape(message)):
        Categorizer.load(model_dir)
    fitted.save(model_dir)
    assert aside.is_dir()
    Categorizer.load(aside)


# --- settings edited by hand in the manifest -------------------------------------------
#
# The manifest is not covered by a checksum, so anyone can change model.params. The
# network used to be built from them before the weights were compared with it: a huge
# size ended in torch's allocator (a traceback), a huge layer count in a build that never ended.

TINY_NETWORKS = {
    "bow": {"dim": 8, "hidden": 4, "buckets": 1 << 12, "minn": 0},
    "lstm": {"embedding_dim": 8, "hidden_size": 8, "dense_size": 8, "embedding_init": "random"},
    "cnn": {"embedding_dim": 8, "filters": 8, "kernel_sizes": [1, 2]},
    "image-cnn": {"image_size": 16, "width": 0.25, "augment": False},
}


@pytest.fixture(scope="module")
def tiny_networks(tmp_path_factory):
    """A saved model of each kind in TINY_NETWORKS, trained for one epoch on a few products."""
    from tiny_catalogs import tiny_image_frame

    root = tmp_path_factory.mktemp("networks")
    saved = {}
    for name, params in TINY_NETWORKS.items():
        settings = {**params, "epochs": 1, "batch_size": 8, "num_threads": 1}
        if name.startswith("image"):
            frame = tiny_image_frame(root / "photos", n_per_class=4)
            images = {"image_col": "image", "image_root": str(root / "photos")}
        else:
            frame, images = tiny_frame(4), {}
        model = Categorizer(model=name, params=settings, quiet=True, **FORMATS["single"], **images).fit(frame)
        saved[name] = model.save(root / name)
    return saved


def _with_setting(tiny_networks, tmp_path, name, key, value):
    """A copy of the saved `name` model whose manifest says `key` is `value`."""
    import shutil

    model_dir = tmp_path / name
    shutil.copytree(tiny_networks[name], model_dir)
    return _edited(model_dir, lambda m: m["model"]["params"].update({key: value}))


SETTINGS_THAT_DO_NOT_FIT = {
    "bow dim huge": ("bow", "dim", 10**12, "bow setting 'dim' is 1000000000000 but the saved weights say 8"),
    "bow hidden huge": ("bow", "hidden", 10**12, "bow setting 'hidden' is 1000000000000 but the saved weights say 4"),
    "bow hidden layer dropped": ("bow", "hidden", 0, "bow setting 'hidden' is 0 but the saved weights say 4"),
    "bow dim past torch's sizes": ("bow", "dim", 10**30, "bow setting 'dim' is " + "1" + "0" * 30),
    # no weight shows these: the n-grams would be hashed to other rows, silently
    "bow buckets": ("bow", "buckets", 1 << 13, "bow setting 'buckets' is 8192 but the saved n-gram rows were hashed "
                    "with 4096"),
    "bow case kept": ("bow", "lowercase", False, "bow setting 'lowercase' is false but the saved n-gram rows were "
                      "hashed with true"),
    "lstm wider": ("lstm", "hidden_size", 16, "lstm setting 'hidden_size' is 16 but the saved weights say 8"),
    "lstm one direction": ("lstm", "bidirectional", False,
                           "lstm setting 'bidirectional' is false but the saved weights say true"),
    "cnn fewer filters": ("cnn", "filters", 7, "cnn setting 'filters' is 7 but the saved weights say 8"),
    "image-cnn wider": ("image-cnn", "width", 0.5, "image-cnn settings do not fit the saved weights ('width' is 0.5): "
                        "weight 'net.features.0.0.weight' has shape (8, 3, 3, 3), the settings make (16, 3, 3, 3)"),
}


@pytest.mark.parametrize("case", SETTINGS_THAT_DO_NOT_FIT)
def test_a_setting_that_does_not_fit_the_saved_weights_is_named_with_its_file(tiny_networks, tmp_path, case):
    name, key, value, expected = SETTINGS_THAT_DO_NOT_FIT[case]
    model_dir = _with_setting(tiny_networks, tmp_path, name, key, value)
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    message = str(caught.value)
    assert message.startswith(f"{model_dir / MANIFEST}: {expected}") and "\n" not in message


@pytest.mark.parametrize("key", ["word_ngrams", "char_ngrams"])
def test_a_tfidf_model_counting_absurdly_long_ngrams_is_refused_when_it_loads(fitted, tmp_path, key):
    # The saved terms do not bound the range from above: at [1, 100000] one text of the
    # 20,000 characters a server takes needed more memory than a machine has.
    model_dir = _edited(fitted.save(tmp_path / "m"), lambda m: m["model"]["params"].update({key: [2, 100_000]}))
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value).startswith(f"{model_dir / MANIFEST}: tfidf-linear: {key} must be two integers")
    assert "high <= 16, got [2, 100000]" in str(caught.value)


@pytest.mark.parametrize("key", ["word_ngrams", "maxn"])
def test_a_bow_model_counting_absurdly_long_ngrams_is_refused_when_it_loads(tiny_networks, tmp_path, key):
    model_dir = _with_setting(tiny_networks, tmp_path, "bow", key, 100_000)
    _rewritten(model_dir, edit_state=lambda s: s["preprocessor"]["hashing"].update({key: 100_000}))
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value) == f"{model_dir / MANIFEST}: bow: {key} must be at most 16, got 100000"


def test_a_saved_thread_count_above_the_cores_starts_no_more_threads_than_cores(tiny_networks, tmp_path):
    # A thread each: at a hand-edited 10**6 the process ran out of threads. Cores + 50 shows it safely.
    import os

    import torch

    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        model = Categorizer.load(_with_setting(tiny_networks, tmp_path, "bow", "num_threads", cores + 50))
        model.predict(["oxford cotton shirt"])
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


@pytest.mark.timeout(30)
def test_a_huge_layer_count_is_refused_without_building_the_layers(tiny_networks, tmp_path):
    # On the meta device a billion layers cost no memory, but making them would still take days.
    model_dir = _with_setting(tiny_networks, tmp_path, "lstm", "num_layers", 10**9)
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value) == (f"{model_dir / MANIFEST}: lstm setting 'num_layers' is 1000000000 "
                                 "but the saved weights say 1")


@pytest.mark.parametrize("value, fragment", [
    ("8", "bow: dim must be an integer, got '8'"),
    (1.5, "bow: dim must be an integer, got 1.5"),
    (-3, "bow: dim must be at least 1, got -3"),
])
def test_a_setting_of_the_wrong_kind_is_named_with_its_file(tiny_networks, tmp_path, value, fragment):
    model_dir = _with_setting(tiny_networks, tmp_path, "bow", "dim", value)
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value) == f"{model_dir / MANIFEST}: {fragment}"


def test_predict_with_a_huge_setting_is_one_line_and_writes_nothing(tiny_networks, tmp_path, capsys):
    from cli_runner import run

    model_dir = _with_setting(tiny_networks, tmp_path, "bow", "dim", 10**12)
    catalog = tmp_path / "new.csv"
    tiny_frame(2).drop(columns=["leaf", "category", "tags"]).to_csv(catalog, index=False)
    code, out, err = run(capsys, "predict", model_dir, "--data", catalog, "--out", tmp_path / "p.csv", "-q")
    assert code == 2 and err.strip().splitlines() == [
        f"prodcat: error: {model_dir / MANIFEST}: bow setting 'dim' is 1000000000000 but the saved weights say 8"
    ]
    assert not (tmp_path / "p.csv").exists()



def test_an_ensemble_member_setting_that_does_not_fit_names_the_state_file(tmp_path):
    # A member's settings are kept in model_state.json, beside its state, not in the manifest.
    params = {"members": ["tfidf-linear", "bow"], "method": "average",
              "member_params": {"bow": {**TINY_NETWORKS["bow"], "epochs": 1, "num_threads": 1}}}
    model = Categorizer(model="ensemble", params=params, quiet=True, **FORMATS["single"]).fit(tiny_frame(4))

    def huge_dim(state):
        state["members"][1]["params"]["dim"] = 10**12

    model_dir = _rewritten(model.save(tmp_path / "m"), edit_state=huge_dim)
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value) == (f"{model_dir} has an inconsistent manifest or model state: {STATE} members[1].params: "
                                 "bow setting 'dim' is 1000000000000 but the saved weights say 8")


@pytest.mark.parametrize("key, value, expected", [
    ("word_ngrams", [3, 3], "tfidf-linear setting 'word_ngrams' is [3, 3] but the saved vocabulary holds terms of "
                            "1 to 2 words"),
    ("char_ngrams", [1, 3], "tfidf-linear setting 'char_ngrams' is [1, 3] but the saved vocabulary holds terms of "
                            "2 to 5 characters"),
])
def test_an_ngram_range_that_cannot_make_the_saved_terms_is_refused(fitted, tmp_path, key, value, expected):
    # It used to load, and then never count the terms outside the range: predictions from part of the features.
    model_dir = _edited(fitted.save(tmp_path / "m"), lambda m: m["model"]["params"].update({key: value}))
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    assert str(caught.value) == f"{model_dir / MANIFEST}: {expected}"


def test_a_bow_model_saved_before_its_hashing_settings_were_kept_still_loads(tiny_networks, tmp_path):
    import shutil

    model_dir = tmp_path / "bow"
    shutil.copytree(tiny_networks["bow"], model_dir)

    def saved_before(state):
        del state["preprocessor"]["hashing"]

    _rewritten(model_dir, edit_state=saved_before)
    products = ["red oxford shirt", "steel chef knife"]
    assert Categorizer.load(model_dir).predict(products) == Categorizer.load(tiny_networks["bow"]).predict(products)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("edit, fragment", [
    ({"hidden_size": 10**12}, "Storage size calculation overflowed"),
    ({"num_hidden_layers": 10**9}, "it would be far larger than the saved weights"),
])
def test_a_saved_network_config_edited_to_a_huge_size_fails_with_one_line(tmp_path, edit, fragment):
    # bert's architecture is in model_state.json: an edit (checksum redone) used to
    # reach torch's allocator, or loop building a billion layers.
    from tiny_bert import tiny_checkpoint

    params = {"checkpoint": tiny_checkpoint(), "epochs": 1, "batch_size": 16, "num_threads": 1}
    model = Categorizer(model="bert", params=params, quiet=True, **FORMATS["single"]).fit(tiny_frame(4))
    model_dir = _rewritten(model.save(tmp_path / "m"),
                           edit_state=lambda state: state["network_config"]["config"].update(edit))
    with pytest.raises(ModelDirError) as caught:
        Categorizer.load(model_dir)
    message = str(caught.value)
    assert message.startswith(f"{model_dir} has an inconsistent manifest or model state: bert: the saved network "
                              "cannot be built (") and fragment in message and "\n" not in message


def test_saving_copies_no_file_a_symbolic_link_in_the_model_directory_points_at(tmp_path):
    # report/ and tensorboard/ are not checksummed: a hand-edited directory could link a file of the machine
    # into them, and a save (or an export) of the loaded model wrote that file's bytes into the new directory.
    secret = tmp_path / "secret.txt"
    secret.write_text("the machine's own")
    model_dir = Categorizer(quiet=True, **FORMATS["single"]).fit(tiny_frame()).save(tmp_path / "m")
    (model_dir / "report" / "notes.txt").symlink_to(secret)
    (model_dir / "report" / "linked").symlink_to(tmp_path, target_is_directory=True)
    (model_dir / "tensorboard").mkdir()
    (model_dir / "tensorboard" / "events.out.tfevents.1").write_bytes(b"run")
    (model_dir / "tensorboard" / "events.out.tfevents.2").symlink_to(secret)
    Categorizer.load(model_dir).save(tmp_path / "again")
    copied = sorted(p.name for p in (tmp_path / "again" / "report").iterdir())
    assert "notes.txt" not in copied and "linked" not in copied and "metrics.json" in copied
    with atomic_directory(model_dir, keep_run_logs=True) as staging:
        write_model_dir(staging, {"model": {"name": "x", "params": {}}}, {}, {})
    assert [p.name for p in (model_dir / "tensorboard").iterdir()] == ["events.out.tfevents.1"]


def test_a_model_directory_whose_run_folders_are_symbolic_links_is_not_trained_into(tmp_path):
    # A run writes its logs and checkpoints there: through the link, into another folder.
    from prodcat.artifacts import check_model_dir_target

    model_dir = Categorizer(quiet=True, **FORMATS["single"]).fit(tiny_frame()).save(tmp_path / "m")
    (tmp_path / "elsewhere").mkdir()
    (model_dir / "tensorboard").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ModelDirError, match=r"tensorboard is a symbolic link, which prodcat does not follow"):
        check_model_dir_target(model_dir)


@pytest.mark.parametrize("depth", [100, 5_000])
def test_a_manifest_nested_absurdly_deep_fails_to_load_in_one_line(tmp_path, depth):
    # 5,000 levels raised a bare RecursionError from json; 100 loaded, and the server's /v1/model then
    # answered a 500 for any depth near the recursion limit.
    model_dir = Categorizer(quiet=True, **FORMATS["single"]).fit(tiny_frame()).save(tmp_path / "m")
    manifest = json.loads((model_dir / MANIFEST).read_text())
    manifest["metrics"] = {}
    text = json.dumps(manifest).replace('"metrics": {}', '"metrics": {"x": ' + "[" * depth + "]" * depth + "}")
    (model_dir / MANIFEST).write_text(text)
    with pytest.raises(ModelDirError, match=rf"^{re.escape(str(model_dir / MANIFEST))} is damaged: (nested too "
                                            r"deeply to read|it nests objects and lists more than 32 levels deep)$"):
        Categorizer.load(model_dir)

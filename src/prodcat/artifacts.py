"""The model directory: a manifest, the model's state as JSON, weights as safetensors.

    MODEL_DIR/
      manifest.json        what the model is, how to read catalogs, metrics, versions
      model_state.json     the model's own JSON state (vocabularies, settings)
      weights.safetensors  every array (coefficients, idf, thresholds, ...)
      report/              the evaluation report on the held-out test split

Loading reads JSON and safetensors only: nothing in the directory is ever
unpickled or executed. It refuses a manifest that lacks what loading relies
on (`check_manifest`) and model files that do not match their checksums; the
manifest's settings, which no checksum covers, are checked against the saved
weights by the model before it builds anything (`TorchModel.from_state`).
Saving builds the directory beside its target and
swaps it in, so a crash leaves the previous model or nothing, never half one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import stat
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Collection, Iterator

import numpy as np

from prodcat import __version__
from prodcat.catalog.fields import LABEL_FORMATS
from prodcat.errors import ConfigError, ModelDirError, ProdcatError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STATE = "model_state.json"
WEIGHTS = "weights.safetensors"
REQUIRED_FILES = (MANIFEST, STATE, WEIGHTS)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def user_path(path: Any, what: str) -> Path:
    """A path a user gave for `what` ("model directory"), with "~" expanded as a catalog's path is.

    A ConfigError for what is no path (None, a number, bytes): Path() raised a bare TypeError.
    Unexpanded, save("~/models/shirts") wrote into a folder named "~" in the current directory.
    """
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        # a DataFrame's repr would take many lines
        shown = repr(path) if path is None or isinstance(path, (int, float, bytes)) else f"a {type(path).__name__}"
        raise ConfigError(f"{what} must be a path (a str or pathlib.Path), got {shown}")
    if isinstance(path, str) and not path.strip():
        # Path("") is the current folder: `--logdir ""` (an unset shell variable) wrote logs there
        raise ConfigError(f"{what} is an empty path")
    # os.path.expanduser leaves "~unknown" as it is, where Path.expanduser raises
    return Path(os.path.expanduser(path))


def is_model_dir(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


# What a training run writes into MODEL_DIR before the model exists: TensorBoard
# logs (kept across the swap, so a user follows and keeps one run) and
# resumable checkpoints (dropped once the model is saved).
RUN_KEPT = ("tensorboard",)
RUN_DROPPED = ("checkpoints",)
#: the file that makes a folder a training checkpoint (the trainer's commit point),
#: named here so that checking for one does not import torch
CHECKPOINT_STATE_FILE = "checkpoint.json"


def holds_checkpoint(folder: str | Path) -> bool:
    """Whether a checkpoint folder holds an interrupted run's checkpoint (an ensemble's
    members checkpoint in folders of their own under it)."""
    return bool(checkpoint_places(folder))


def checkpoint_places(folder: str | Path) -> list[str]:
    """The folders under a checkpoint folder that hold a checkpoint, relative to it ("." for itself)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(path.parent.relative_to(folder).as_posix() for path in folder.rglob(CHECKPOINT_STATE_FILE))


def model_dir_entry(model_dir: str | Path, *parts: str) -> Path | None:
    """MODEL_DIR/PARTS, or None where it or a folder on the way below MODEL_DIR is a symbolic link.

    The report and the TensorBoard logs are no checksummed model files: a
    hand-edited directory could link them to any file of the machine that
    reads it, which the app would then show and a save (or an export) copy
    into a new model directory. prodcat writes no links, so none is followed.
    """
    path = Path(model_dir)
    for part in parts:
        path = path / part
        if path.is_symlink():
            return None
    return path


def copy_model_files(source: Path, target: Path, ignore: Callable[[str, list[str]], list[str]] | None = None) -> None:
    """`shutil.copytree` of a model directory's folder, leaving out symbolic links (see `model_dir_entry`)
    and what `ignore` leaves out; nothing is copied when `source` itself is a link."""
    if source.is_symlink():
        return

    def left_out(folder: str, names: list[str]) -> list[str]:
        links = [name for name in names if os.path.islink(os.path.join(folder, name))]
        return links + (ignore(folder, names) if ignore is not None else [])

    shutil.copytree(source, target, ignore=left_out)


def _is_run_only(path: Path) -> bool:
    return all(entry.name in RUN_KEPT + RUN_DROPPED for entry in path.iterdir())


def _file_among_parents(path: Path) -> Path | None:
    """The nearest existing parent of `path` when it is a file (no folder can be made under it)."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _refuse_a_file_in_the_way(path: Path, what: str, error: type[ProdcatError]) -> None:
    """A folder cannot be made at `path` when a file is there, or where one of its parents goes."""
    if path.exists() and not path.is_dir():
        raise error(f"{path} exists and is a file, not a {what}")
    blocker = _file_among_parents(path)
    if blocker is not None:
        raise error(f"{path} cannot be created: {blocker} is a file, not a directory")


def _refuse_unwritable(target: Path) -> None:
    """A model is saved beside `target` and renamed into place, and a run writes into it: a
    folder that cannot be written (a read-only mount, another user's) failed only at the save,
    after the training (tfidf-linear) or after the catalog was read and prepared (the others)."""
    existing = next(folder for folder in (target, *target.parents) if folder.exists())
    places = [existing] if existing != target else [target, target.parent]
    for folder in places:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ModelDirError(f"cannot save a model to {target}: {folder} is not writable")


def check_model_dir_target(target: str | Path) -> None:
    """Refuse a target that saving a model there would refuse (see `atomic_directory`).

    Commands call it before any work: a run writes its checkpoints and logs
    into the target while it trains, so a late refusal would cost the
    training and leave those files in the user's folder.
    """
    target = Path(target)
    _refuse_a_file_in_the_way(target, "model directory", ModelDirError)
    # Saving a model replaces its directory whole: a model saved inside another
    # would vanish, unsaid, with the next `train --out` into the outer one.
    holder = next((parent for parent in target.resolve().parents if is_model_dir(parent)), None)
    if holder is not None:
        raise ModelDirError(f"{target} is inside model directory {holder}, which saving a model there replaces "
                            "whole; save this model elsewhere")
    if target.is_dir() and not is_model_dir(target) and not _is_run_only(target):
        raise ModelDirError(f"{target} exists and is not a prodcat model directory; refusing to overwrite it")
    _refuse_unwritable(target)
    for name in RUN_KEPT + RUN_DROPPED:
        if (target / name).is_symlink():
            # a run would write its logs or checkpoints through it, and saving would not carry it over
            raise ModelDirError(f"{target / name} is a symbolic link, which prodcat does not follow in a model "
                                "directory; remove it (or give --logdir a folder of its own)")


def check_no_interrupted_run(target: str | Path) -> None:
    """Refuse a target holding an interrupted `train`'s checkpoint, for a command that saves a
    model there without continuing that run (tune, leaderboard, export): saving drops
    `checkpoints/`, and the hours of training it holds would go unsaid."""
    checkpoints = Path(target) / RUN_DROPPED[0]
    if holds_checkpoint(checkpoints):
        raise ModelDirError(f"{target} holds the checkpoint of an interrupted training run, which saving a model "
                            f"there would delete: finish it with the same `prodcat train` and --resume, save "
                            f"elsewhere, or delete {checkpoints}")


def check_logdir_target(logdir: str | Path, model_dir: str | Path) -> None:
    """Refuse a TensorBoard folder inside the model directory that saving would not keep.

    Saving replaces MODEL_DIR whole but for its `tensorboard/` (`RUN_KEPT`):
    logs written to MODEL_DIR itself would make it a folder saving refuses at
    the end of the run, and logs in `checkpoints/` or `report/` would be lost.
    """
    logdir, model_dir = Path(logdir), Path(model_dir)
    inside, out = logdir.resolve(), model_dir.resolve()
    if inside != out and out not in inside.parents:
        return
    kept = [out / name for name in RUN_KEPT]
    if any(inside == folder or folder in inside.parents for folder in kept):
        return
    raise ConfigError(
        f"--logdir {logdir} is inside the model directory {model_dir}, which saving replaces but for its "
        f"{RUN_KEPT[0]}/ folder: leave --logdir out (logs go to {model_dir / RUN_KEPT[0]}), or give a folder "
        "under it or outside the model directory"
    )


def is_report_dir(path: str | Path) -> bool:
    """Whether `path` is a report folder `write_report` wrote: metrics.json, and nothing it does not write."""
    from prodcat.evaluation.report import REPORT_FILES

    path = Path(path)
    if not (path / "metrics.json").is_file():
        return False
    # A crash of an older prodcat could leave write_report's hidden temporary files.
    return all(entry.name in REPORT_FILES or _is_report_leftover(entry.name) for entry in path.iterdir())


def _is_report_leftover(name: str) -> bool:
    from prodcat.evaluation.report import REPORT_FILES

    return name.endswith(".tmp") and any(name.startswith(f".{file}.") for file in REPORT_FILES)


def check_report_dir_target(target: str | Path) -> None:
    """Refuse a report folder that writing a report there would mix with other files.

    The rule of `check_model_dir_target` for `evaluate --out`: a new or empty
    folder, or an earlier report (replaced whole, so no figure of it is
    left beside the new metrics). A user's folder, a model directory, or
    a folder inside one (its test report, which its manifest's metrics
    describe, or any other) is refused before any work.
    """
    target = Path(target)
    _refuse_a_file_in_the_way(target, "report directory", ConfigError)
    if is_model_dir(target.parent) and target.name == "report":
        raise ConfigError(f"{target} is the test report of model {target.parent}; write the evaluation elsewhere")
    # Saving a model replaces its directory whole: a report inside one would
    # vanish with the next `train --out` there, or pass for the model's own.
    holder = next((parent for parent in target.resolve().parents if is_model_dir(parent)), None)
    if holder is not None:
        raise ConfigError(f"{target} is inside model directory {holder}, which saving a model there replaces whole; "
                          "write the evaluation elsewhere")
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not is_report_dir(target):
        raise ConfigError(f"{target} exists and is not a prodcat report directory; refusing to write into it")


def check_output_dir(path: str | Path, what: str) -> None:
    """Refuse, before any work, an output folder (a report, TensorBoard logs) a file stands in the way of."""
    _refuse_a_file_in_the_way(Path(path), what, ConfigError)


def check_output_file(path: str | Path, what: str) -> None:
    """Refuse, before any work, an output file path that is a folder, lies under a file, or lies in a model directory."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"cannot write {what} to {path}: it is a directory")
    blocker = _file_among_parents(path)
    if blocker is not None:
        raise ConfigError(f"cannot write {what} to {path}: {blocker} is a file, not a directory")
    model = next((parent for parent in path.resolve().parents if is_model_dir(parent)), None)
    if model is not None:
        # saving a model replaces its folder whole: the next train into it would delete the file
        raise ConfigError(f"cannot write {what} to {path}: it is inside model directory {model}, which saving "
                          "a model there replaces whole; write them elsewhere")


# --- staging folders a killed save leaves -------------------------------------
#
# A save builds `.NAME.saving-HOST-PID-RANDOM` beside its target. An exception
# or an interrupt removes it; SIGKILL (or a power cut) cannot, so the next save
# into the same target removes those a dead process left. Only when all of it
# holds: HOST is this machine (a PID says nothing about another one sharing the
# folder), no process PID runs here, and the folder's lock is free (the saving
# process holds an flock on it until it ends; the kernel drops it when it dies,
# SIGKILL included, and it also guards a save in another PID namespace, say a
# container with this host name). Where locks are unavailable nothing is
# removed. A `.NAME.old-*` folder is never removed: a save killed between its two
# renames leaves the previous model there, its only copy (`read_manifest`
# points at it when NAME is missing).


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _staging_prefix(target: Path) -> str:
    return f".{target.name}.saving-{_host_tag()}-"


def _lock(folder: Path) -> int | None:
    """An open descriptor of `folder` holding its exclusive flock, or None when it cannot be had."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, and no folder is ever judged abandoned
        return None
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by a running save, or no locks on this file system
        os.close(fd)
        return None
    return fd


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or nothing this check can tell: assume it runs
    return True


def remove_abandoned_staging(target: str | Path) -> list[Path]:
    """Remove the staging folders of saves into `target` whose process died; return them."""
    target = Path(target)
    prefix = _staging_prefix(target)
    removed = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        # the whole rest: another target's staging may start with this prefix ("m" and "m.saving-...")
        owner = re.fullmatch(r"([0-9]+)-[0-9a-f]{8}", entry.name[len(prefix):])
        if owner is None or entry.is_symlink() or not entry.is_dir():
            continue
        pid = int(owner.group(1))
        if pid == os.getpid() or _pid_running(pid):
            continue
        fd = _lock(entry)
        if fd is None:
            continue
        try:
            shutil.rmtree(entry, ignore_errors=True)
        finally:
            os.close(fd)
        removed.append(entry)
    return removed


def moved_aside(target: str | Path) -> list[Path]:
    """`.NAME.old-*` folders beside a missing `target`: a save killed mid-swap left the previous model there."""
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return []
    prefix = f".{target.name}.old-"
    found = [p for p in target.parent.iterdir() if p.name.startswith(prefix) and p.is_dir() and is_model_dir(p)]
    return sorted(found, key=lambda p: p.stat().st_mtime)  # the newest last


def _remove_empty_folders(top: Path) -> None:
    """Remove the folders under `top` that hold no file, deepest first (`top` stays)."""
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


@contextmanager
def atomic_directory(
    target: str | Path, check: Callable[[str | Path], None] = check_model_dir_target, *, keep_run_logs: bool = True,
    run_logs_left_out: Collection[Path] = (),
) -> Iterator[Path]:
    """Yield an empty staging directory that replaces `target` on success.

    Refuses to replace anything that is not a prodcat model directory (or the
    logs and checkpoints of a run training into it), so a mistyped --out never
    deletes a user's folder. check: the rule for what may be replaced
    (`check_report_dir_target` for an evaluation report). keep_run_logs:
    whether the target's TensorBoard folder (`RUN_KEPT`) is carried over, as
    it is when it holds the curves of the run being saved. run_logs_left_out:
    files in it that are not (a replaced run's), with the folders they empty.

    Staging folders that earlier saves into `target` left when killed are
    removed first (`remove_abandoned_staging`).
    """
    target = Path(target)
    check(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(target)
    # mkdir rather than mkdtemp: the folder keeps the usual permissions (mkdtemp's are its owner's alone).
    # The name carries this host and process, so a later save can tell whether it was abandoned.
    staging = target.parent / f"{_staging_prefix(target)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    lock = _lock(staging)  # held until this save ends: the sign that the folder is in use
    try:
        yield staging
        left_out = {Path(f).resolve() for f in run_logs_left_out}
        for name in RUN_KEPT if keep_run_logs else ():
            if (target / name).is_dir() and not (target / name).is_symlink() and not (staging / name).exists():
                copy_model_files(target / name, staging / name,
                                 ignore=lambda folder, names: [n for n in names
                                                               if Path(folder, n).resolve() in left_out])
                if left_out:
                    _remove_empty_folders(staging / name)
        _fsync_tree(staging)
        if target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(target, retired)
            try:
                os.rename(staging, target)
            except BaseException:
                # interrupted mid-swap: the previous model (and a run's checkpoints) go back in place
                os.rename(retired, target)
                raise
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            os.close(lock)


def write_model_dir(
    staging: Path, manifest: dict[str, Any], state: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Write the three model files into a staging directory from `atomic_directory`."""
    from safetensors.numpy import save_file

    # ascontiguousarray turns a 0-d array (BatchNorm's num_batches_tracked) into shape (1,): keep the shape
    save_file({k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in arrays.items()}, str(staging / WEIGHTS))
    (staging / STATE).write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
    # safetensors makes its file its owner's alone (0600): a server running as another user could
    # read the manifest but not the weights. They get the mode of a file written the usual way.
    os.chmod(staging / WEIGHTS, stat.S_IMODE((staging / STATE).stat().st_mode))
    manifest = {
        "format_version": FORMAT_VERSION,
        "prodcat_version": __version__,
        **manifest,
        "files": {name: {"sha256": _sha256(staging / name)} for name in (STATE, WEIGHTS)},
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


# What loading relies on in a manifest: each entry's key path, whether it is
# required, and the JSON types it may have. Checked in one place, so a damaged
# or hand-edited manifest is refused with one line here instead of failing
# deep inside a model, or worse, loading. An optional object's entries are
# checked when the object is there.
MANIFEST_ENTRIES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "prodcat_version": (True, ("a string",)),
    "created": (False, ("a string",)),
    "model": (True, ("an object",)),
    "model.name": (True, ("a string",)),
    "model.params": (True, ("an object",)),
    "labels": (True, ("an object",)),
    "labels.label_format": (True, ("a string",)),
    "labels.classes": (True, ("a list of strings",)),
    "fields": (True, ("an object",)),
    "fields.text_cols": (False, ("a list of strings",)),
    "fields.label_cols": (False, ("a list of strings",)),
    "fields.label_format": (False, ("a string",)),
    "fields.label_sep": (False, ("a string", "null")),
    "fields.label_level": (False, ("an integer", "null")),
    "fields.id_cols": (False, ("a list of strings",)),
    "fields.image_col": (False, ("a string", "null")),
    "fields.image_root": (False, ("a string", "null")),
    "fields.image_template": (False, ("a string", "null")),
    "fields.header": (False, ("true or false",)),
    "fields.column_names": (False, ("a list of strings", "null")),
    "fields.file_format": (False, ("a string", "null")),
    "fields.encoding": (False, ("a string",)),
    "review": (False, ("an object",)),
    "review.target_precision": (False, ("a number",)),
    "review.threshold": (False, ("a number", "null")),
    "review.coverage": (False, ("a number", "null")),
    "review.precision": (False, ("a number", "null")),
    "training": (False, ("an object",)),
    "metrics": (False, ("an object",)),
    "libraries": (False, ("an object",)),
    "files": (True, ("an object",)),
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _is(value: Any, kind: str) -> bool:
    # JSON's true and false are no numbers, though Python's bool is an int
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "a string": isinstance(value, str),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
        "a number": number,
        "true or false": isinstance(value, bool),
        "an object": isinstance(value, dict),
        "a list of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        "null": value is None,
    }[kind]


def check_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """A ModelDirError naming PATH/manifest.json unless the manifest holds what loading relies on."""

    def damaged(detail: str) -> ModelDirError:
        return ModelDirError(f"{path / MANIFEST} is damaged: {detail}")

    for key, (required, kinds) in MANIFEST_ENTRIES.items():
        *parents, name = key.split(".")
        holder: Any = manifest
        for part in parents:  # checked before their entries: objects, or absent and optional
            holder = holder.get(part)
        if holder is None:
            continue
        if name not in holder:
            if required:
                raise damaged(f"{key} is missing")
            continue
        if not any(_is(holder[name], kind) for kind in kinds):
            shown = json.dumps(holder[name], ensure_ascii=False)
            shown = shown if len(shown) <= 60 else shown[:59] + "…"
            raise damaged(f"{key} must be {' or '.join(kinds)}, got {shown}")

    label_format = manifest["labels"]["label_format"]
    if label_format not in LABEL_FORMATS:
        raise damaged(f"labels.label_format must be one of {', '.join(LABEL_FORMATS)}, got {label_format!r}")
    read_as = manifest["fields"].get("label_format", "single")
    if read_as != label_format:
        raise damaged(f"fields.label_format {read_as!r} differs from labels.label_format {label_format!r}")
    classes = manifest["labels"]["classes"]
    if len(set(classes)) < 2 or len(set(classes)) != len(classes):
        raise damaged(f"labels.classes must be two or more different classes, got {len(classes)} "
                      f"with {len(set(classes))} different")
    # Without a checksum for each model file, a changed weights file would load unnoticed.
    files = manifest["files"]
    for name in (STATE, WEIGHTS):
        if name not in files:
            raise damaged(f"files has no checksum of {name}")
    for name, info in files.items():
        if Path(name).name != name or name in (".", ".."):
            raise damaged(f"files names {name!r}, which is not a file of the model directory")
        if not isinstance(info, dict) or not isinstance(info.get("sha256"), str) or not _SHA256.fullmatch(info["sha256"]):
            raise damaged(f"files.{name} must hold the sha256 of the file, 64 hex digits")


def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        aside = moved_aside(path)
        if aside:
            raise ModelDirError(f"model directory not found: {path}; a save killed while replacing it left the "
                                f"previous model in {aside[-1]}: rename that folder to {path.name} to use it")
        raise ModelDirError(f"model directory not found: {path}")
    if not path.is_dir():
        raise ModelDirError(f"{path} is not a model directory (it is a file)")
    if not (path / MANIFEST).is_file():
        if (path / RUN_DROPPED[0]).is_dir():
            raise ModelDirError(f"{path} holds an unfinished training run, not a model yet: run the same "
                                "`prodcat train` again with --resume to finish it")
        raise ModelDirError(f"{path} is not a prodcat model directory: {MANIFEST} is missing")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{path / MANIFEST} is corrupt: {exc}") from None
    except RecursionError:
        raise ModelDirError(f"{path / MANIFEST} is damaged: nested too deeply to read") from None
    if _nesting(manifest) > MAX_MANIFEST_NESTING:
        # What reads a manifest walks it recursively (the server's /v1/model, the app's settings
        # view): one that loads but nests several hundred levels deep failed there with a RecursionError.
        raise ModelDirError(f"{path / MANIFEST} is damaged: it nests objects and lists more than "
                            f"{MAX_MANIFEST_NESTING} levels deep")
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise ModelDirError(f"{path / MANIFEST} is not a prodcat manifest")
    version = manifest["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelDirError(f"{path / MANIFEST} is damaged: format_version must be a positive integer, got {version!r}")
    # The format, not prodcat's version, says whether this prodcat can read a
    # model: a newer prodcat that writes the same format makes readable models.
    if version > FORMAT_VERSION:
        raise ModelDirError(
            f"{path} was written by prodcat {manifest.get('prodcat_version', '?')} (model format {version}); "
            f"this prodcat {__version__} reads format {FORMAT_VERSION} at most: upgrade prodcat"
        )
    check_manifest(path, manifest)
    return manifest


#: far deeper than prodcat writes (an ensemble's per-member, per-class test metrics nest 7 levels)
MAX_MANIFEST_NESTING = 32


def _nesting(value: Any) -> int:
    """How many levels of objects and lists `value` nests, counted without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            depth += 1
            deepest = max(deepest, depth)
            pending.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_model_dir(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
    """(manifest, model state, arrays) of a model directory, verified against its checksums."""
    from safetensors.numpy import load_file

    path = Path(path)
    manifest = read_manifest(path)
    missing = [name for name in (STATE, WEIGHTS) if not (path / name).is_file()]
    if missing:
        raise ModelDirError(f"{path} is incomplete: {', '.join(missing)} missing")
    for name, info in manifest["files"].items():
        if not (path / name).is_file():
            raise ModelDirError(f"{path} is incomplete: {name} missing")
        if _sha256(path / name) != info["sha256"]:
            raise ModelDirError(f"{path / name} does not match its checksum in {MANIFEST}: the file is corrupt or was changed")
    try:
        state = json.loads((path / STATE).read_text(encoding="utf-8"))
        arrays = load_file(str(path / WEIGHTS))
    except Exception as exc:  # any decoding failure means a damaged file
        raise ModelDirError(f"{path} has an unreadable model file: {exc}") from None
    if not isinstance(state, dict):
        raise ModelDirError(f"{path / STATE} is damaged: {STATE} must hold an object, got {type(state).__name__}")
    return manifest, state, arrays

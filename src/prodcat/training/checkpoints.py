"""Resumable training checkpoints without pickle.

A checkpoint is two files in the checkpoint directory:

    checkpoint-<step>.safetensors   every tensor: network weights, best weights
                                    so far, AdamW moments, torch RNG states
    checkpoint.json                 everything else: epoch, step in epoch,
                                    global step, best metric, patience counter,
                                    history, optimizer hyperparameters, and
                                    which tensors file belongs to it

Both are written to a temporary name and renamed into place (os.replace is
atomic), tensors first: checkpoint.json is the commit point, so a run killed
at any moment leaves the previous complete checkpoint. Loading reads JSON and
safetensors only.

    >>> import tempfile, torch
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = save_checkpoint(folder, {"w": torch.ones(2)}, {"global_step": 3})
    >>> state, tensors = load_checkpoint(folder)
    >>> state["global_step"], tensors["w"].tolist()
    (3, [1.0, 1.0])
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from prodcat.artifacts import CHECKPOINT_STATE_FILE as STATE_FILE
from prodcat.errors import ConfigError

TENSORS_PATTERN = "checkpoint-*.safetensors"
FORMAT = "prodcat-trainer-checkpoint"
FORMAT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        with open(tmp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(directory: str | Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write tensors + JSON state as the directory's current checkpoint; older ones are removed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"checkpoint-{int(state.get('global_step', 0)):09d}.safetensors"
    # safetensors refuses views and shared storage: give it plain contiguous copies.
    plain = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}
    _atomic_write(directory / name, lambda tmp: save_file(plain, tmp))
    document = {"format": FORMAT, "format_version": FORMAT_VERSION, "tensors": name, **state}
    text = json.dumps(document, indent=1, allow_nan=False)
    _atomic_write(directory / STATE_FILE, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    for old in directory.glob(TENSORS_PATTERN):
        if old.name != name:
            old.unlink(missing_ok=True)
    return directory / STATE_FILE


def unreadable(directory: str | Path, why: object) -> ConfigError:
    """The one error of a checkpoint that cannot be resumed as it is (damaged, or edited by hand)."""
    return ConfigError(f"cannot resume: the checkpoint in {directory} is unreadable ({why}); "
                       f"delete {directory} to train from the start")


def load_checkpoint(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """(state, tensors) of the directory's checkpoint, or None when it has none."""
    directory = Path(directory)
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise unreadable(directory, exc) from None
    if not isinstance(state, dict):
        raise unreadable(directory, f"{path.name} holds no JSON object")
    if state.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a prodcat training checkpoint")
    version = state.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise unreadable(directory, f"format_version is {version!r}, not a whole number")
    if version > FORMAT_VERSION:
        raise ConfigError(f"{path} was written by a newer prodcat (checkpoint format {version})")
    name = state.get("tensors")
    # a bare name of the folder's own pattern: the tensors belong to this checkpoint, not to another folder's
    if not isinstance(name, str) or Path(name).name != name or not fnmatch.fnmatchcase(name, TENSORS_PATTERN):
        raise unreadable(directory, f"it names no tensors file of its own: tensors is {name!r}")
    try:
        tensors = load_file(directory / name)
    except (OSError, ValueError, SafetensorError) as exc:
        raise unreadable(directory, f"{name}: {exc}") from None
    return state, tensors


def clear_checkpoints(directory: str | Path) -> None:
    """Remove this trainer's checkpoint files (only those) from the directory."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    (directory / STATE_FILE).unlink(missing_ok=True)
    for old in directory.glob(TENSORS_PATTERN):
        old.unlink(missing_ok=True)


# --- optimizer and RNG state as tensors + JSON ---------------------------------


def optimizer_to_plain(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer's state dict split into tensors (moments, step counts) and JSON (hyperparameters)."""
    state_dict = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state_dict["state"].items():
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_plain(
    optimizer: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], plain: dict[str, Any]
) -> None:
    """Load what `optimizer_to_plain` produced into an optimizer built on the same parameters."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for index, values in plain["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in plain["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_tensors() -> dict[str, torch.Tensor]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return tensors


def restore_rng(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda][: torch.cuda.device_count()])

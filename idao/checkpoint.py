"""Checkpoints: plain dicts of tensors and Python values, saved atomically, loaded without pickle code.

``load_checkpoint`` uses ``torch.load(weights_only=True)``, so a file carrying
arbitrary pickled objects is refused instead of executed. A checkpoint records
the model name and the data settings it was trained with; ``check_compatible``
turns a mismatch into a clear error instead of a tensor-shape traceback.

The models shipped in the repository are in formats that hold no code at all:
``<name>_best.safetensors`` (the weights) beside ``<name>_best.json`` (the
rest: config, objective, history, provenance), written by ``save_safe``. Where
``<name>_best.pt`` is absent, ``load_checkpoint`` reads that pair instead, so a
retrained ``.pt`` takes precedence over the shipped model.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic import atomic_path, write_text
from .errors import CheckpointError
from .schema import check_readable

RESUME_ONLY = ("optimizer", "scheduler")  # not shipped: only resuming a training reads them

def save_checkpoint(state: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def safe_pair(path: str | Path) -> tuple[Path, Path]:
    """The shipped (weights, everything else) files standing for checkpoint ``path``."""
    path = Path(path)
    return path.with_suffix(".safetensors"), path.with_suffix(".json")


def is_shipped(path: str | Path) -> bool:
    """Checkpoint ``path`` is a shipped pair (no ``.pt`` of a training of one's own)."""
    return not Path(path).exists() and all(p.exists() for p in safe_pair(path))


def checkpoint_exists(path: str | Path) -> bool:
    return Path(path).exists() or is_shipped(path)


SHIPPED = ("*_best.safetensors", "*_best.json", "*_model_card.md")  # what idao-ship leaves in a folder


def retire_shipped(folder: Path) -> None:
    """Before a training writes into ``folder``: its shipped models go, all of them, so that a submission never
    mixes a retrained model with a shipped one (a shipped classifier beside a new light model)."""
    shipped = [p for pattern in SHIPPED for p in Path(folder).glob(pattern)]
    if shipped:
        print(f"train.py replaces the shipped models in {folder} (`git checkout {folder}` brings them back)")
    for path in shipped:
        path.unlink(missing_ok=True)


def save_safe(state: dict, path: str | Path) -> tuple[Path, Path]:
    """``state`` as the safetensors + JSON pair of ``path``, without what only resuming needs."""
    weights, rest = safe_pair(path)
    with atomic_path(weights) as tmp:  # contiguous copies: safetensors refuses views and shared storage
        save_file({k: v.detach().contiguous().clone() for k, v in state["model"].items()}, str(tmp))
    write_text(rest, json.dumps({k: v for k, v in state.items() if k not in ("model", *RESUME_ONLY)}, indent=1))
    return weights, rest


def load_safe(path: str | Path) -> dict:
    """The shipped pair of checkpoint ``path`` as a checkpoint dict."""
    weights, rest = safe_pair(path)
    try:
        state = json.loads(rest.read_text())
        state["model"] = load_file(str(weights))
    except (OSError, ValueError, SafetensorError) as e:
        raise CheckpointError(f"{weights} / {rest.name}: not a readable shipped model (corrupt?): {e}") from e
    if not isinstance(state.get("config"), dict):
        raise CheckpointError(f"{rest}: not an idao model description (no config inside)")
    return state


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if is_shipped(path):
        return load_safe(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found; run train.py first (or check train.checkpoint_dir)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused: the file holds pickled objects that are not plain tensors or values "
            "(loading it could run code); only load checkpoints written by idao"
        ) from e
    except (RuntimeError, EOFError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (corrupt or truncated?): {e}") from e
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not an idao checkpoint (no model weights or config inside)")
    return state


def check_compatible(state: dict, path: str | Path, model_name: str, settings: dict[str, dict]) -> None:
    """Refuse a checkpoint made for another model or other input settings (``{section: {key: value}}``)."""
    saved_model = state.get("model_name")
    if saved_model != model_name:
        raise CheckpointError(f"{path}: checkpoint is a {saved_model!r} model but the config asks for "
                              f"{model_name!r}; set the model name back or retrain")
    for section, values in settings.items():
        saved = state["config"].get(section, {})
        for key, value in values.items():
            if key in saved and saved[key] != value:
                raise CheckpointError(f"{path}: trained with {section}.{key} = {saved[key]!r} but the config has "
                                      f"{value!r}; use the same setting or retrain")


def load_weights(model: torch.nn.Module, state: dict, path: str | Path) -> None:
    weights = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        rebuild = f"; a shipped model made by older code: rebuild it with `{state['rebuild']}`" if "rebuild" in state else ""
        raise CheckpointError(f"{path}: weights do not fit the model ({str(e).splitlines()[0]}){rebuild}") from e


def check_checkpoint(path: str | Path) -> Path:
    """A checkpoint a job needs, present and readable (checked before any work): the ``.pt``, or the shipped pair."""
    if is_shipped(path):
        for part in safe_pair(path):
            check_readable(part, "train.checkpoint_dir", "shipped model")
        return Path(path)
    return check_readable(path, "train.checkpoint_dir", "checkpoint (run train.py first)")

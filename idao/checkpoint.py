"""Checkpoints: plain dicts of tensors and Python values, saved atomically, loaded without pickle code.

``load_checkpoint`` uses ``torch.load(weights_only=True)``, so a file carrying
arbitrary pickled objects is refused instead of executed. A checkpoint records
the model name and the data settings it was trained with; ``check_compatible``
turns a mismatch into a clear error instead of a tensor-shape traceback.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from .atomic import atomic_path
from .errors import CheckpointError
from .schema import check_readable

def save_checkpoint(state: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
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
        raise CheckpointError(f"{path}: weights do not fit the model ({str(e).splitlines()[0]})") from e


def check_checkpoint(path: str | Path) -> Path:
    """A checkpoint a job needs, present and readable (checked before any work)."""
    return check_readable(path, "train.checkpoint_dir", "checkpoint (run train.py first)")

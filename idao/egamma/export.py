"""The deliverable model: weights as ``.safetensors`` with everything needed to use them in its metadata.

Metadata (strings): ``architecture`` (a registered name or a timm name),
``objective`` (JSON: the channel standardisation), ``config`` (the training
config, INI text) and ``format``. Loading reads tensors and JSON only: no code
from the file runs. Typical use::

    from idao.egamma.export import load_exported, score_file
    model, objective = load_exported("results/egamma/model.safetensors")
    p_electron = score_file(model, objective, "photons.hdf5")
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import CheckpointError
from ..models import build_model
from .io import read_images
from .objective import EgammaObjective

FORMAT = "idao.egamma/1"


def export(model: torch.nn.Module, objective: EgammaObjective, architecture: str, config_ini: str, path) -> Path:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "architecture": architecture, "objective": json.dumps(dataclasses.asdict(objective)),
            "config": config_ini}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_exported(path) -> tuple[torch.nn.Module, EgammaObjective]:
    """The model (eval mode, CPU) and its objective from an exported file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for a bad header
        raise CheckpointError(f"{path}: not a readable .safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an idao e/gamma export (format {meta.get('format')!r})")
    objective = EgammaObjective(**json.loads(meta["objective"]))
    model = build_model(meta["architecture"], num_outputs=objective.num_outputs, in_chans=objective.in_chans)
    model.load_state_dict(tensors)
    return model.eval(), objective


@torch.inference_mode()
def score_file(model, objective: EgammaObjective, path, batch_size: int = 1024) -> np.ndarray:
    """P(electron) for every image of an HDF5 file (labels not needed), streamed block by block."""
    data = read_images(str(path), labelled=False)
    out = [model(objective.standardise(data.read(np.arange(s, min(s + batch_size, len(data)))))).float()
           for s in range(0, len(data), batch_size)]
    return objective.predict(torch.cat(out)[:, 0].numpy())

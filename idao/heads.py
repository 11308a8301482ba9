"""The IDAO models' heads: what the ER/NR classifier and the energy regressor each learn.

A head is everything about one model that is not the training loop: how a
batch of crops becomes an input tensor (binning, flips and turns, light
scaling), the target, the loss, the output transform and the validation
metric. ``engine.fit`` trains any object with these methods; the DAMIC task
has its own (``idao/damic/head.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit

from .data import CropSet, augment, scale_light, to_input
from .engine import load_trained
from .errors import ConfigError
from .metrics import mae, roc_auc

KINDS = ("classifier", "regressor")
DATA_KEYS = ("crop", "crop_mode", "pedestal", "bin")  # settings that change what the weights mean


@dataclass(frozen=True)
class Head:
    kind: str  # "classifier" (ER logit) or "regressor" (energy)
    target: str = "log"  # regressor: "log" or "linear" keV
    loss: str = "l1"
    augment: bool = True
    light_min: float = 1.0
    light_max: float = 1.0
    bin: int = 1
    num_outputs: int = 1

    @property
    def metric_name(self) -> str:
        return "AUC" if self.kind == "classifier" else "MAE keV"

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Per-item random draws of one global batch: (symmetry 0-7, light factor in [0, 1))."""
        symmetry = torch.randint(0, 8, (n,), generator=generator)
        return torch.stack([symmetry.double(), torch.rand(n, generator=generator).double()], 1)

    def inputs(self, data: CropSet, idx, rt, draws: torch.Tensor | None = None) -> torch.Tensor:
        """The model input for items ``idx``; augmented when training draws are given."""
        x = to_input(data.images[idx], self.bin, rt.device, rt.fmt)
        if draws is None:
            return x
        if self.augment:
            x = augment(x, draws[:, 0].long())
        return scale_light(x, draws[:, 1].float(), self.light_min, self.light_max, self.bin)

    def targets(self, data: CropSet, idx, draws: torch.Tensor | None = None) -> torch.Tensor:
        if self.kind == "classifier":
            return torch.from_numpy(data.is_er[idx].astype(np.float32))
        energy = data.energy[idx].astype(np.float32)
        return torch.from_numpy(np.log(energy) if self.target == "log" else energy)

    def initial_bias(self, data: CropSet) -> list[float]:
        """Output bias the model starts from: 0 for the logit, the mean target for the regressor."""
        return [0.0 if self.kind == "classifier" else float(self.targets(data, np.arange(len(data))).mean())]

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.kind == "classifier":
            return F.binary_cross_entropy_with_logits(out, y)
        return {"l1": F.l1_loss, "mse": F.mse_loss, "huber": F.smooth_l1_loss}[self.loss](out, y)

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Model outputs -> ER probability (classifier) or keV (regressor)."""
        if self.kind == "classifier":
            return expit(out)
        return np.exp(np.clip(out, -3.0, 6.0)) if self.target == "log" else out  # clip: 0.05-400 keV

    def metric(self, pred: np.ndarray, data: CropSet) -> float:
        """Validation metric: ROC-AUC (higher is better) or MAE in keV (lower is better)."""
        return roc_auc(data.is_er, pred) if self.kind == "classifier" else mae(data.energy, pred)

    def better(self, new: float, best: float | None) -> bool:
        if best is None:
            return True
        return new > best if self.kind == "classifier" else new < best


def make_head(kind: str, cfg) -> Head:
    """The head the config asks for (training); inference rebuilds it from the checkpoint instead."""
    model_cfg = getattr(cfg, kind)
    if kind == "regressor" and (model_cfg.target not in ("log", "linear") or model_cfg.loss not in ("l1", "mse", "huber")):
        raise ConfigError("regressor.target must be log|linear and regressor.loss l1|mse|huber")
    extra = dict(target=model_cfg.target, loss=model_cfg.loss) if kind == "regressor" else {}
    return Head(kind, augment=model_cfg.augment, light_min=model_cfg.light_min, light_max=model_cfg.light_max,
                bin=cfg.data.bin, **extra)


def compat_settings(cfg) -> dict:
    """What a checkpoint must have been trained with to be used under ``cfg``."""
    return {"data": {k: getattr(cfg.data, k) for k in DATA_KEYS}}


def load_heads(cfg, rt, kinds=KINDS) -> dict:
    """``{kind: (model, head)}`` from the best checkpoints, ready for inference."""
    return {kind: load_trained(kind, cfg, getattr(cfg, kind), compat_settings(cfg), Head, rt) for kind in kinds}

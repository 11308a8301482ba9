"""What CYGNO's two models learn: the ER/NR classifier and the energy regressor.

Both read the same crops the same way (``CropObjective``: binning, the 8
flips/turns, light scaling when training); they differ in target, loss,
output transform and validation metric. Objectives are saved in the
checkpoint, so inference rebuilds exactly the trained preprocessing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import expit

from . import models  # noqa: F401  (registers densenet_tiny, which the objectives' models may be)
from .data import CropSet, augment, scale_light, to_input
from .metrics import mae, roc_auc

DATA_KEYS = ("crop", "crop_mode", "pedestal", "bin")  # settings that change what the weights mean
LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss, "huber": F.smooth_l1_loss}


@dataclass(frozen=True)
class CropObjective:
    """The input side shared by both models: crops -> binned, normalised, augmented tensors."""

    augment: bool = True
    light_min: float = 1.0
    light_max: float = 1.0
    bin: int = 1
    views: int = 1  # test-time augmentation: average the outputs over this many of the 8 symmetries ...
    first_view: int = 0  # ... from this one on (1: all but the identity, already scored)

    num_outputs = 1

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

    def examples(self, data: CropSet, idx, pred: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Crops captioned with the prediction (``caption``) and the truth, for TensorBoard."""
        return data.images[idx], [f"{self.caption(p)}\ntrue {data.particle[i]} {data.energy[i]} keV"
                                  for p, i in zip(pred, idx)]

    def test_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Symmetries ``first_view`` to ``views`` - 1 of the square (identity, the 90-degree turns, the flips)."""
        turns = {k: torch.rot90(x, k % 4, dims=(2, 3)) for k in range(self.first_view, self.views)}
        return [torch.flip(t, dims=(3,)) if k >= 4 else t for k, t in turns.items()]


@dataclass(frozen=True)
class Classifier(CropObjective):
    """ER (positive) vs NR: one logit, BCE, validated by ROC-AUC."""

    metric_name = "AUC"
    higher_is_better = True

    def targets(self, data: CropSet, idx, draws=None) -> torch.Tensor:
        return torch.from_numpy(data.is_er[idx].astype(np.float32))

    def initial_bias(self, data: CropSet) -> list[float]:
        return [0.0]

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out, y)

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Logits -> ER probability."""
        return expit(out)

    def caption(self, p: float) -> str:
        return f"ER {p:.2f}"

    def metric(self, pred: np.ndarray, data: CropSet) -> float:
        return roc_auc(data.is_er, pred)



@dataclass(frozen=True)
class Regressor(CropObjective):
    """Energy in keV, regressed as log(keV) (errors relative across 1-30 keV) or keV; validated by MAE."""

    target: str = "log"
    loss: str = "l1"

    metric_name = "MAE keV"
    higher_is_better = False

    def targets(self, data: CropSet, idx, draws=None) -> torch.Tensor:
        energy = data.energy[idx].astype(np.float32)
        return torch.from_numpy(np.log(energy) if self.target == "log" else energy)

    def initial_bias(self, data: CropSet) -> list[float]:
        """The mean target: the model starts at the average energy."""
        return [float(self.targets(data, np.arange(len(data))).mean())]

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return LOSSES[self.loss](out, y)

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Outputs -> keV (log target clipped to 0.05-400 keV)."""
        return np.exp(np.clip(out, -3.0, 6.0)) if self.target == "log" else out

    def caption(self, p: float) -> str:
        return f"{p:.1f} keV"

    def metric(self, pred: np.ndarray, data: CropSet) -> float:
        return mae(data.energy, pred)



OBJECTIVES = {"classifier": Classifier, "regressor": Regressor}


def make_objective(kind: str, cfg):
    """The objective the config asks for (training); inference rebuilds it from the checkpoint instead."""
    section = cfg.section(f"cygno.{kind}")
    common = dict(augment=section.augment, light_min=section.light_min, light_max=section.light_max,
                  bin=cfg.cygno.bin)
    if kind == "classifier":
        return Classifier(**common)
    return Regressor(**common, target=section.target, loss=section.loss)


def compat_settings(cfg) -> dict:
    """What a checkpoint must have been trained with to be used under ``cfg``."""
    return {"cygno": {k: getattr(cfg.cygno, k) for k in DATA_KEYS}}


def load_models(cfg, rt, kinds=tuple(OBJECTIVES)) -> dict:
    """``{kind: (model, objective)}`` from the best checkpoints, ready for inference; the classifier averages
    its outputs over ``cygno.submission.tta`` symmetries of each image."""
    from ..engine import ModelSettings, RunSettings, load_trained, with_fields

    run = RunSettings.from_config(cfg, "cygno")
    loaded = {}
    for kind in kinds:
        model, objective = load_trained(run.members(kind), ModelSettings.from_section(cfg.section(f"cygno.{kind}"), f"cygno.{kind}"),
                                        compat_settings(cfg), OBJECTIVES[kind], rt)
        if kind == "classifier":
            objective = with_fields(objective, views=cfg.section("cygno.submission").tta)
        loaded[kind] = (model, objective)
    return loaded

"""What the electron / photon model learns: one logit (electron positive), BCE, ROC-AUC on validation.

Each channel is standardised with the mean and std measured once on the
training set (stored in the checkpoint and the export, never per batch).
``energy_threshold`` re-applies zero suppression (hits below it cleared in
both channels) before anything else, in training and prediction alike: a
model that never sees hits below, say, 0.3 GeV cannot be moved by a change of
electronic noise that stays below it.
Augmentation: flips of either axis; the physics is symmetric under both (the
bending side depends on the charge, eta on the event).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import models  # noqa: F401  (registers egamma_cnn, resnet15)
from ..errors import DataError
from ..metrics import binary_auc
from .io import ImageSet


def suppress(x: np.ndarray, threshold: float) -> np.ndarray:
    """(B, 2, H, W) with hits below ``threshold`` GeV cleared in both channels (0: unchanged)."""
    return x * (x[:, :1] >= threshold) if threshold > 0 else x


@dataclass(frozen=True)
class EgammaObjective:
    channel_mean: tuple[float, ...] = (0.0, 0.0)
    channel_std: tuple[float, ...] = (1.0, 1.0)
    augment: bool = True
    energy_threshold: float = 0.0  # GeV: hits below are cleared (0: as in the file)
    in_chans: int = 2

    metric_name = "AUC"
    higher_is_better = True
    num_outputs = 1

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n, 2, generator=generator)

    def suppress(self, x: np.ndarray) -> np.ndarray:
        return suppress(x, self.energy_threshold)

    def standardise(self, x: np.ndarray) -> torch.Tensor:
        """File images -> the model's input: zero suppression, then per-channel standardisation."""
        x = self.suppress(x)
        mean = torch.tensor(self.channel_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.channel_std, dtype=torch.float32).view(1, -1, 1, 1)
        return (torch.from_numpy(x) - mean) / std

    def inputs(self, data: ImageSet, idx, rt, draws=None) -> torch.Tensor:
        x = self.standardise(data.read(idx))
        if draws is not None and self.augment:
            flip_rows, flip_cols = draws[:, 0] < 0.5, draws[:, 1] < 0.5
            x[flip_rows] = x[flip_rows].flip(2)
            x[flip_cols] = x[flip_cols].flip(3)
        return x.to(rt.device).contiguous(memory_format=rt.fmt)

    def targets(self, data: ImageSet, idx, draws=None) -> torch.Tensor:
        return torch.from_numpy(data.label[np.asarray(idx)])

    def initial_bias(self, data: ImageSet) -> list[float]:
        p = float(np.clip(data.label.mean(), 1e-3, 1 - 1e-3))
        return [math.log(p / (1 - p))]

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(out, y)

    def scores(self, out: torch.Tensor, y: torch.Tensor) -> dict:
        """Per-epoch accuracy (cut at p = 0.5) and loss, logged for training batches and validation."""
        return {"accuracy": float(((out > 0).float() == y).float().mean()), "loss": float(self.loss_fn(out, y))}

    def predict(self, out: np.ndarray) -> np.ndarray:
        """P(electron)."""
        return 1.0 / (1.0 + np.exp(-out.astype(np.float64)))

    def metric(self, pred: np.ndarray, data: ImageSet) -> float:
        return binary_auc(data.label == 1, pred)


def fit_channel_stats(data: ImageSet, energy_threshold: float = 0.0,
                      batch: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std over every training image (after zero suppression at ``energy_threshold``),
    streamed block by block (this pass also checks every training image for NaN before any training)."""
    order = np.argsort(data.block_of, kind="stable")
    total = total_sq = 0.0
    count = 0
    for start in range(0, len(order), batch):
        x = suppress(data.read(order[start : start + batch]), energy_threshold).astype(np.float64)
        total = total + x.sum(axis=(0, 2, 3))
        total_sq = total_sq + (x * x).sum(axis=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0))
    if not (std > 0).all():
        raise DataError(f"{data.sources[0].path}: channel {int(np.argmin(std))} is constant over the training "
                        "images; nothing to learn from it")
    return tuple(mean.tolist()), tuple(std.tolist())

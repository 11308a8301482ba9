"""What the direction model learns: a 3-vector per event, von Mises-Fisher loss, mean angular error.

An event is a variable-length list of pulses; ``inputs`` pads a batch into
``{"x": (B, P, 6), "mask": (B, P)}`` (the engine's dict-input hook). Each
pulse: position / 500 m, time relative to the event's median / 3000 ns,
log10 charge, auxiliary flag. An event keeps at most ``max_pulses`` pulses:
non-auxiliary ones first (auxiliary pulses are more often noise), then the
earliest (the direct light); the cap is part of the checkpoint.

The output v is read as a von Mises-Fisher distribution on the sphere: mean
direction v / |v|, concentration kappa = |v| (GraphNeT's convention), so the
model also says how sure it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import models  # noqa: F401  (registers pulse_transformer)
from .io import PulseSet, angular_error

FEATURES = 6


def select_pulses(time: np.ndarray, auxiliary: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the pulses kept: non-auxiliary first, then by time; returned in time order."""
    if len(time) <= cap:
        return np.argsort(time, kind="stable")
    keep = np.lexsort((time, auxiliary))[:cap]
    return keep[np.argsort(time[keep], kind="stable")]


def log_c3(kappa: torch.Tensor) -> torch.Tensor:
    """log of the 3-D von Mises-Fisher normaliser kappa / (4 pi sinh kappa), stable for all kappa > 0."""
    return torch.log(kappa) - math.log(2 * math.pi) - kappa - torch.log1p(-torch.exp(-2 * kappa))


@dataclass(frozen=True)
class DirectionObjective:
    max_pulses: int = 64

    metric_name = "mean angular error (rad)"
    higher_is_better = False
    num_outputs = 3

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.zeros(n, 0)  # no augmentation: the detector is not symmetric under rotations

    def event_features(self, data: PulseSet, i: int) -> np.ndarray:
        pos, time, charge, aux = data.pulses(i)
        keep = select_pulses(time, aux, self.max_pulses)
        t = time[keep]
        return np.column_stack([pos[keep] / 500.0, (t - np.median(t)) / 3000.0, np.log10(np.maximum(charge[keep], 1e-3)),
                                aux[keep].astype(np.float32)]).astype(np.float32)

    def inputs(self, data: PulseSet, idx, rt, draws=None) -> dict:
        events = [self.event_features(data, int(i)) for i in np.asarray(idx)]
        width = max(len(e) for e in events)
        x = np.zeros((len(events), width, FEATURES), np.float32)
        mask = np.zeros((len(events), width), bool)
        for j, e in enumerate(events):
            x[j, : len(e)] = e
            mask[j, : len(e)] = True
        return {"x": torch.from_numpy(x).to(rt.device), "mask": torch.from_numpy(mask).to(rt.device)}

    def targets(self, data: PulseSet, idx, draws=None) -> torch.Tensor:
        return torch.from_numpy(data.direction[np.asarray(idx)])

    def initial_bias(self, data: PulseSet) -> list[float]:
        """The training set's mean direction at concentration 1 (a non-zero start: kappa = |v| must be > 0)."""
        mean = data.direction.mean(0)
        norm = np.linalg.norm(mean)
        return (mean / norm).tolist() if norm > 1e-3 else [0.0, 0.0, 1.0]

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """von Mises-Fisher negative log-likelihood of the true direction y."""
        kappa = out.norm(dim=1).clamp_min(1e-4)
        return (-log_c3(kappa) - (out * y).sum(1)).mean()

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Unit direction vectors (N, 3)."""
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def metric(self, pred: np.ndarray, data: PulseSet) -> float:
        return float(angular_error(pred, data.direction).mean())


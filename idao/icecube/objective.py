"""What the direction model learns: a 3-vector per event, von Mises-Fisher loss, mean angular error.

An event is a variable-length list of pulses; ``inputs`` pads a batch into
``{"x": (B, P, 6), "mask": (B, P), "seed": (B, 8)}`` (the engine's dict-input
hook), built with array operations over the whole batch (``PulseSet.gather``);
``seed`` holds the two baselines' answers (``baselines.py``). Each
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

from .baselines import dot_displacements, from_motion, line_velocities
from .io import PulseSet, angular_error
from .models import FEATURES  # (importing models registers pulse_transformer)



def select_pulses(event: np.ndarray, time: np.ndarray, auxiliary: np.ndarray, cap: int) -> np.ndarray:
    """Indices of the pulses kept, at most ``cap`` per event (``event``: each pulse's event, grouped):
    non-auxiliary first, then the earliest; returned grouped by event and in time order within each."""
    order = np.lexsort((time, auxiliary, event))
    counts = np.bincount(event)
    first = np.cumsum(counts) - counts
    kept = order[np.arange(len(order)) - first[event[order]] < cap]
    return kept[np.lexsort((time[kept], event[kept]))]


def seeds(event, pos, time, charge, auxiliary, n: int) -> np.ndarray:
    """(n, models.SEED_FEATURES): the line fit's and 2 dots' directions and lengths on all pulses. Tracks carry
    their direction in their timing, which these two read directly; given them, the network learns when to
    follow them (tracks) and when the light pattern says more (cascades)."""
    velocity = line_velocities(event, pos, time, charge, auxiliary, n)
    dots = dot_displacements(event, pos, time, charge, auxiliary, n)
    return np.column_stack([from_motion(velocity), np.minimum(np.linalg.norm(velocity, axis=1), 1.0),
                            from_motion(dots), np.linalg.norm(dots, axis=1) / 500.0]).astype(np.float32)


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

    def batch(self, data: PulseSet, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x`` (B, P, FEATURES) and ``mask`` (B, P) of events ``idx``, P the most pulses kept in one of them,
        and the events' ``seeds`` (B, SEED_FEATURES)."""
        event, sensor, time, charge, aux = data.gather(idx)
        seed = seeds(event, data.geometry[sensor], time, charge, aux, len(idx))  # on every pulse, before the cap
        keep = select_pulses(event, time, aux, self.max_pulses)
        event, sensor, time, charge, aux = event[keep], sensor[keep], time[keep], charge[keep], aux[keep]
        n = np.bincount(event, minlength=len(idx))
        first = np.cumsum(n) - n
        median = 0.5 * (time[first + (n - 1) // 2] + time[first + n // 2])  # times are sorted within each event
        slot = np.arange(len(event)) - first[event]
        x = np.zeros((len(idx), max(int(n.max(initial=0)), 1), FEATURES), np.float32)
        mask = np.zeros(x.shape[:2], bool)
        x[event, slot, :3] = data.geometry[sensor] / 500.0
        x[event, slot, 3] = (time - median[event]) / 3000.0
        x[event, slot, 4] = np.log10(np.maximum(charge, 1e-3))
        x[event, slot, 5] = aux
        mask[event, slot] = True
        return x, mask, seed

    item_inputs = ("x", "mask")  # their axis 1 is the pulse count: variable in an export (idao-export)

    def inputs(self, data: PulseSet, idx, rt, draws=None) -> dict:
        x, mask, seed = self.batch(data, np.asarray(idx))
        return {"x": torch.from_numpy(x).to(rt.device), "mask": torch.from_numpy(mask).to(rt.device),
                "seed": torch.from_numpy(seed).to(rt.device)}

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


"""What the DAMIC-M model learns: window padding, scaling, standardisation, and class + box outputs.

Preprocessing follows the thesis with its flaw fixed: each track (cropped to
its box) is placed in a common window, at a random offset when training and
centred when predicting, optionally with its frame's noise added; the window
is summed over ``bin`` x ``bin`` pixels, optionally log-scaled
(``log1p(eV / 3.77)``: energies span 3.77 eV to MeV) and standardised with one
mean and std measured on the *training set* and stored in the checkpoint,
never per batch. Outputs: one logit per class, then the track's box,
regressed as its centre and log size (``centre_log``) or as the thesis'
corner and size (``corner``), all as fractions of the window. Loss:
``(1 - box_weight) * cross-entropy + box_weight * L2(box)``, the box term only
for events with a track (not for noise-only frames).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax

from .models import BOX_OUTPUTS  # (importing models registers track_cnn and the others)
from ..errors import DataError
from ..trees import log_loss
from .features import NAMES as FEATURE_NAMES, event_features
from .io import EV_PER_ELECTRON, Events


@dataclass(frozen=True)
class TrackObjective:
    classes: tuple[str, ...]
    window: tuple[int, int]  # pixels, a multiple of bin
    bin: int = 2
    log_scale: bool = True
    add_noise: bool = False
    augment: bool = True
    box_weight: float = 0.13
    box_target: str = "corner"  # corner: (row, col, h, w) fractions; centre_log: (centre row, centre col, log h, log w)
    mean: float = 0.0
    std: float = 1.0
    class_fractions: tuple[float, ...] = ()  # the prior the probabilities carry (uniform when class-balanced)
    class_weights: tuple[float, ...] = ()  # per class, in the loss and the validation log-loss (empty: all 1)
    reads: str = "image"  # what the model reads: image, features, image+features or features+box (models.INPUTS)
    feature_mean: tuple[float, ...] = ()  # standardisation of the physics features (training set)
    feature_std: tuple[float, ...] = ()

    higher_is_better = False

    @property
    def metric_name(self) -> str:  # with class weights the validation log-loss is weighted as the loss is
        return "log-loss (classes weighted)" if self.class_weights else "log-loss"

    def __post_init__(self):  # a checkpoint of a version that measured other features cannot be fed these
        if self.feature_mean and len(self.feature_mean) != len(FEATURE_NAMES):
            raise TypeError(f"trained on {len(self.feature_mean)} track features, this version measures "
                            f"{len(FEATURE_NAMES)}")

    @property
    def num_outputs(self) -> int:
        return len(self.classes) + BOX_OUTPUTS

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Per item: row and column position in [0, 1), vertical and horizontal flip bits."""
        return torch.rand(n, 4, generator=generator, dtype=torch.float64)

    def placement(self, data: Events, idx, draws) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where each track's crop goes: (crop start in the track, size kept, offset in the window), each (B, 2).

        A track that fits is placed at a random (training) or centred offset; a
        larger one (only possible at prediction time, or with a fixed window)
        is cut to the window, at a random or centred start.
        """
        size = data.boxes[idx, 2:]
        win = np.array(self.window)
        kept = np.minimum(size, win)
        if draws is None:  # centred
            return (size - kept) // 2, kept, (win - kept) // 2
        u = np.asarray(draws[:, :2])
        return np.floor(u * (size - kept + 1)).astype(int), kept, np.floor(u * (win - kept + 1)).astype(int)

    def raw_windows(self, data: Events, idx, draws=None) -> np.ndarray:
        """(B, H, W) float32 eV windows before binning and scaling."""
        idx = np.asarray(idx)
        draws = None if draws is None else np.asarray(draws)
        start, kept, offset = self.placement(data, idx, draws)
        out = np.zeros((len(idx), *self.window), np.float32)
        for j, i in enumerate(idx):
            track = data.tracks[i]
            if draws is not None and self.augment:
                if draws[j, 2] < 0.5:
                    track = track[::-1]
                if draws[j, 3] < 0.5:
                    track = track[:, ::-1]
            (r, c), (h, w), (dr, dc) = start[j], kept[j], offset[j]
            out[j, dr : dr + h, dc : dc + w] = track[r : r + h, c : c + w]
            if self.add_noise and data.noise[i] is not None:
                rows, cols, values = data.noise[i]
                inside = (rows < self.window[0]) & (cols < self.window[1])  # any window-sized region of the frame
                out[j, rows[inside], cols[inside]] += values[inside]
        return out

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W) eV -> (B, 1, H/bin, W/bin) summed energy, log-scaled if configured (not yet standardised)."""
        x = x.unsqueeze(1)
        if self.bin > 1:
            x = F.avg_pool2d(x, self.bin) * (self.bin * self.bin)
        return torch.log1p(x / EV_PER_ELECTRON) if self.log_scale else x / 1000.0  # keV when linear

    def features(self, data: Events, idx) -> torch.Tensor:
        """(B, F) standardised physics features of the tracks (flip-invariant, so augmentation leaves them)."""
        f = event_features(data)[np.asarray(idx)]
        return torch.from_numpy((f - np.float32(self.feature_mean)) / np.float32(self.feature_std))

    def inputs(self, data: Events, idx, rt, draws=None):
        """The model's input: the standardised window, the features, or both as a tuple (``reads``)."""
        parts = []
        if "image" in self.reads:
            x = self.scale(torch.from_numpy(self.raw_windows(data, idx, draws)))
            parts.append(((x - self.mean) / self.std).to(rt.device).contiguous(memory_format=rt.fmt))
        if "features" in self.reads:
            parts.append(self.features(data, idx).to(rt.device))
        if "box" in self.reads:  # the track finder's box, centred, encoded like the box outputs
            parts.append(torch.from_numpy(self.encode(self.boxes(data, idx))).to(rt.device))
        return parts[0] if len(parts) == 1 else tuple(parts)

    def boxes(self, data: Events, idx, draws=None) -> np.ndarray:
        """True boxes in the window, as fractions: (B, 4) row, col, height, width."""
        _, kept, offset = self.placement(data, np.asarray(idx), draws)
        win = np.array(self.window, dtype=np.float64)
        return np.concatenate([offset / win, kept / win], axis=1)

    def encode(self, box: np.ndarray) -> np.ndarray:
        """Window-fraction boxes -> what the box outputs regress."""
        if self.box_target == "corner":
            return box
        return np.column_stack([box[:, :2] + box[:, 2:] / 2, np.log(box[:, 2:])])

    def decode(self, out: np.ndarray) -> np.ndarray:
        """Box outputs -> window-fraction boxes (row, col, height, width) inside the window."""
        if self.box_target == "corner":
            return np.clip(out, 0.0, 1.0)
        size = np.exp(np.clip(out[:, 2:], -10.0, 0.0))
        corner = np.clip(out[:, :2] - size / 2, 0.0, 1.0 - size)
        return np.column_stack([corner, size])

    def has_box(self, data: Events, idx) -> np.ndarray:
        return np.array([p != "noise" for p in data.particle[np.asarray(idx)]])

    def targets(self, data: Events, idx, draws=None) -> torch.Tensor:
        """(B, 6): class index, has-a-box flag, then the box."""
        idx = np.asarray(idx)
        y = np.column_stack([data.label[idx], self.has_box(data, idx), self.encode(self.boxes(data, idx, draws))])
        return torch.from_numpy(y.astype(np.float32))

    def initial_bias(self, data: Events) -> list[float]:
        """Logits at 0; the box outputs at the mean centred box, so training starts near the answer."""
        box = self.encode(self.boxes(data, np.arange(len(data))))
        return [0.0] * len(self.classes) + box.mean(axis=0).tolist()

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = len(self.classes)
        weight = torch.tensor(self.class_weights, dtype=out.dtype, device=out.device) if self.class_weights else None
        loss = F.cross_entropy(out[:, :n], y[:, 0].long(), weight=weight)
        has_box = y[:, 1] > 0
        if self.box_weight > 0 and has_box.any():
            box_loss = F.mse_loss(out[has_box, n:], y[has_box, 2:], reduction="sum") / len(y)
            loss = (1 - self.box_weight) * loss + self.box_weight * box_loss
        return loss

    def predict(self, out: np.ndarray) -> np.ndarray:
        """(N, classes + 4): class probabilities, then the box clipped to the window."""
        n = len(self.classes)
        return np.concatenate([softmax(out[:, :n], axis=1), self.decode(out[:, n:])], axis=1)

    def examples(self, data: Events, idx, pred: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Windows (log of the charge, as the network sees them) captioned with the predicted and true class."""
        n = len(self.classes)
        captions = [f"{self.classes[int(p[:n].argmax())]} {p[:n].max():.2f}\ntrue {data.particle[i]}"
                    for p, i in zip(pred, idx)]
        return np.log1p(self.raw_windows(data, idx) / EV_PER_ELECTRON), captions

    def metric(self, pred: np.ndarray, data: Events) -> float:
        """Validation log-loss of the class probabilities: it picks the best epoch and drives early stopping.

        Accuracy on a few hundred validation events moves in steps of ~0.4 % and
        plateaus early, so the epoch it keeps and the moment it stops are
        decided by ties and luck; the log-loss is smooth and also rewards
        calibrated probabilities (which the ROC curves and users rely on).
        """
        return log_loss(pred[:, :len(self.classes)], data.label, self.class_weights)


def class_balance(labels: np.ndarray, num_classes: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-class weights that give every class the same total weight (mean weight 1 over the events), and the
    uniform prior a model trained with them carries."""
    fractions = np.bincount(labels, minlength=num_classes) / len(labels)
    if not fractions.all():
        raise DataError(f"class balance: no training events of class {int(np.argmin(fractions))} of {num_classes}")
    return tuple((1.0 / (num_classes * fractions)).tolist()), (1.0 / num_classes,) * num_classes



def fit_window(data: Events, bin_factor: int) -> tuple[int, int]:
    """The thesis' "maximum window": the largest track box of the set, rounded up to a multiple of ``bin``."""
    h, w = data.boxes[:, 2].max(), data.boxes[:, 3].max()
    return tuple(int(-(-v // bin_factor) * bin_factor) for v in (h, w))


def fit_stats(objective: TrackObjective, data: Events, chunk: int = 256) -> tuple[float, float]:
    """Mean and std of the scaled, centred training windows: the standardisation every input then uses."""
    total, total_sq, count = 0.0, 0.0, 0
    for start in range(0, len(data), chunk):
        x = objective.scale(torch.from_numpy(objective.raw_windows(data, np.arange(start, min(start + chunk, len(data))))))
        x = x.double()
        total += float(x.sum())
        total_sq += float((x * x).sum())
        count += x.numel()
    mean = total / count
    std = (max(total_sq / count - mean * mean, 0.0)) ** 0.5
    if std < 1e-6:
        raise DataError(f"the {len(data)} training windows are all {mean:g}: no charge in any training frame "
                        "(all-zero data?), nothing to learn from")
    return mean, std


def fit_feature_stats(data: Events) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of each physics feature over the training tracks (a constant feature gets std 1)."""
    f = event_features(data).astype(np.float64)
    std = f.std(axis=0)
    return tuple(f.mean(axis=0).tolist()), tuple(np.where(std > 1e-9, std, 1.0).tolist())

"""From a dataset on disk to arrays the engine trains on.

Crops stay uint8 in memory (or memory-mapped from the cache) and become float
tensors one batch at a time: 13,404 crops of 128 px are 220 MB, so the whole
training set fits and no DataLoader worker is needed. Shuffling and
augmentation draw from a generator seeded by (seed, epoch), which is what
makes a resumed run repeat an interrupted epoch exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .cache import cached_crops
from .dataset import Sample
from .light import measure_spots

INPUT_OFFSET, INPUT_SCALE = 100.0, 10.0  # background at 0, pixel noise ~0.35


@dataclass
class CropSet:
    """Crops with their ids and, where known, labels (particle "ER"/"NR"/"" and keV, 0 if unknown)."""

    images: np.ndarray  # (N, crop, crop) uint8
    ids: list[str]
    particle: np.ndarray  # str
    energy: np.ndarray  # int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_er(self) -> np.ndarray:
        return self.particle == "ER"

    @property
    def classes(self) -> np.ndarray:
        return np.char.add(self.particle.astype(str), self.energy.astype(str))

    @classmethod
    def unlabelled(cls, images: np.ndarray) -> "CropSet":
        """Bare crops (no ids or labels): what a model's inference needs."""
        return cls(images, [""] * len(images), np.full(len(images), ""), np.zeros(len(images), int))

    @classmethod
    def joined(cls, a: "CropSet", b: "CropSet") -> "CropSet":
        return cls(np.concatenate([a.images, b.images]), [*a.ids, *b.ids], np.concatenate([a.particle, b.particle]),
                   np.concatenate([a.energy, b.energy]))

    def subset(self, idx) -> "CropSet":
        idx = np.asarray(idx, dtype=int)
        return CropSet(self.images[idx], [self.ids[i] for i in idx], self.particle[idx], self.energy[idx])

    def spots(self) -> np.ndarray:
        """(N, 3): each event's light, spot width and elongation (``light.measure_spots``)."""
        return measure_spots(self.images)


def load_crops(samples: list[Sample], data_cfg, progress: bool = True, on_chunk=None, chunk: int = 256) -> CropSet:
    """Decode (or fetch from the cache) the crops of ``samples`` as the data config says; ``on_chunk(images)``
    sees them ``chunk`` at a time while the rest decode (``cache.decode_crops``)."""
    images, kept = cached_crops(
        [s.path for s in samples], data_cfg.cache_dir or None, data_cfg.crop, data_cfg.crop_mode,
        data_cfg.pedestal, data_cfg.workers, data_cfg.on_bad_file == "skip", progress, on_chunk, chunk)
    kept_samples = [samples[i] for i in kept]
    return CropSet(
        np.asarray(images),
        [s.id for s in kept_samples],
        np.array([s.particle or "" for s in kept_samples]),
        np.array([s.energy or 0 for s in kept_samples], dtype=int),
    )


def to_input(batch: np.ndarray, bin_factor: int, device: torch.device,
             memory_format=torch.contiguous_format) -> torch.Tensor:
    """uint8 (B, H, W) crops -> normalised float (B, 1, H/bin, W/bin) on ``device``."""
    x = torch.from_numpy(np.array(batch))  # a writable copy, even of a memory map
    if device.type == "cuda":
        x = x.pin_memory()  # page-locked: the copy below overlaps with GPU work
    x = x.to(device, non_blocking=True)
    x = x.unsqueeze(1).float()
    if bin_factor > 1:
        x = F.avg_pool2d(x, bin_factor)
    return ((x - INPUT_OFFSET) / INPUT_SCALE).contiguous(memory_format=memory_format)


def augment(x: torch.Tensor, symmetry: torch.Tensor) -> torch.Tensor:
    """Apply element ``symmetry[i]`` (0-7) of the square's symmetry group (flips, 90-degree turns) to image i."""
    symmetry = symmetry.to(x.device)
    out = x.clone()
    for k in range(1, 8):
        mask = symmetry == k
        if mask.any():
            y = torch.rot90(x[mask], k % 4, dims=(2, 3))
            out[mask] = torch.flip(y, dims=(3,)) if k >= 4 else y
    return out


def scale_light(x: torch.Tensor, u: torch.Tensor, low: float, high: float, bin_factor: int) -> torch.Tensor:
    """Scale image i's light by the factor exp(log low + u[i] (log high - log low)), leaving the noise as it is.

    Training classes pair dim NR with bright ER (NR 1 keV vs ER 3 keV), so a
    classifier can learn "brightness gives the type" and fail on the unseen
    ER 1 keV or NR 30 keV. The light is taken from a blurred copy of the image,
    where the pixel noise is mostly averaged away, so only the signal is scaled.
    """
    if low == high == 1:
        return x
    f = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * u).view(-1, 1, 1, 1).to(x.device)
    sigma = 2.0 / bin_factor  # ~2 original pixels: below every spot's width (>= 4 px)
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    blurred = F.conv2d(F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, radius)), k.view(1, 1, -1, 1), padding=(radius, 0))
    return x + (f - 1) * blurred



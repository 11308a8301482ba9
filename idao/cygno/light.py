"""The event's light, and a per-type model of the light each keV level gives.

Separating what the energy is from what the particle is. The light is the
pedestal-subtracted excess within ``RADIUS`` px of the brightest smoothed
spot: a direct count that no network has to extrapolate to unseen energies.
``LightModel`` says, per particle type, how light grows with energy (a power
law through the training classes' medians, mean = exp(a) E^b) and how much it
spreads (std^2 = s0^2 + (f mean)^2: the aperture's pixel noise plus a relative
gain spread, fitted to the training classes' robust spreads). Given a split's
allowed levels it then gives, for every event,
- the likelihood ratio of ER vs NR from light alone (summed over each type's
  levels), which ``postprocess`` adds to the shape classifier's logit, and
- the most likely level of each type, the energy once the type is decided.
It holds four numbers per type and is saved as JSON (loading it runs no code).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import logsumexp

from ..atomic import write_text
from ..errors import CheckpointError, DataError
from .images import PEDESTAL

RADIUS = 20  # px: holds ~all the light of a spot (sigma 4-7 px) and of most ER tracks, with 3.5x less noise than r=40
SMOOTHING = 2.0  # px: Gaussian sigma used only to find the spot
FLOOR = 30.0  # counts: a class median below this (noise) is taken as this, so its log stays finite
MIN_SHARE = 0.25  # a class enters the fit with at least this share of the largest class's events (and 3):
# the few strays of the unseen classes in the training folders do not
LIGHT_MODEL_FILE = "light.json"  # beside the checkpoints

_YY, _XX = np.mgrid[-RADIUS : RADIUS + 1, -RADIUS : RADIUS + 1]
_IN_DISC = _YY**2 + _XX**2 <= RADIUS**2
_DY, _DX = _YY[_IN_DISC], _XX[_IN_DISC]  # the disc's pixel offsets, summed by one gather per chunk


def spot_light(crops: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Excess counts within RADIUS px of each crop's brightest smoothed spot; crops are uint8 (N, H, W)."""
    out = np.empty(len(crops), np.float64)
    for start in range(0, len(crops), chunk):
        x = np.asarray(crops[start : start + chunk], np.float32) - PEDESTAL
        smooth = x
        for axis in (1, 2):  # zeros beyond the edge, like the sum below
            smooth = gaussian_filter1d(smooth, SMOOTHING, axis=axis, mode="constant", truncate=3.0)
        row, col = np.unravel_index(smooth.reshape(len(x), -1).argmax(1), x.shape[1:])
        padded = np.pad(x, ((0, 0), (RADIUS, RADIUS), (RADIUS, RADIUS)))
        n = np.arange(len(x))[:, None]
        out[start : start + len(x)] = padded[n, row[:, None] + RADIUS + _DY, col[:, None] + RADIUS + _DX].sum(1)
    return out


@dataclass(frozen=True)
class TypeLight:
    """Light of one particle type: mean exp(a) keV^b, std sqrt(s0^2 + (f mean)^2)."""

    a: float
    b: float
    s0: float
    f: float

    def mean(self, kev) -> np.ndarray:
        return np.exp(self.a + self.b * np.log(np.asarray(kev, float)))

    def log_likelihood(self, light: np.ndarray, kev: float) -> np.ndarray:
        mu = self.mean(kev)
        var = self.s0**2 + (self.f * mu) ** 2
        return -0.5 * (np.asarray(light, float) - mu) ** 2 / var - 0.5 * np.log(var)

    @classmethod
    def fit(cls, light: np.ndarray, energy: np.ndarray, name: str) -> "TypeLight":
        values, counts = np.unique(energy, return_counts=True)
        levels = [e for e, n in zip(values, counts) if n >= max(3, MIN_SHARE * counts.max(initial=0))]
        if len(levels) < 2:
            raise DataError(f"the light model needs two or more {name} energies with enough training events, "
                            f"found {dict(zip(values.tolist(), counts.tolist()))}")
        groups = [light[energy == e] for e in levels]
        med = np.array([np.median(g) for g in groups])
        spread = np.array([1.4826 * np.median(np.abs(g - np.median(g))) for g in groups])  # robust std
        b, a = np.polyfit(np.log(levels), np.log(np.maximum(med, FLOOR)), 1)
        mu = np.exp(a + b * np.log(levels))
        (s0_sq, f_sq), *_ = np.linalg.lstsq(np.stack([np.ones_like(mu), mu**2], 1), spread**2, rcond=None)
        return cls(float(a), float(b), float(np.sqrt(max(s0_sq, 1.0))), float(np.sqrt(max(f_sq, 1e-4))))


@dataclass(frozen=True)
class LightModel:
    er: TypeLight
    nr: TypeLight

    @classmethod
    def fit(cls, light: np.ndarray, is_er: np.ndarray, energy: np.ndarray) -> "LightModel":
        is_er, energy = np.asarray(is_er, bool), np.asarray(energy)
        return cls(TypeLight.fit(light[is_er], energy[is_er], "ER"), TypeLight.fit(light[~is_er], energy[~is_er], "NR"))

    def level_log_likelihoods(self, light: np.ndarray, levels: dict) -> dict:
        """``{"ER": (N, levels), "NR": (N, levels)}``: log p(light | type, level)."""
        return {p: np.stack([t.log_likelihood(light, e) for e in levels[p]], 1)
                for p, t in (("ER", self.er), ("NR", self.nr))}

    def type_log_ratio(self, light: np.ndarray, levels: dict) -> np.ndarray:
        """log p(light | ER) - log p(light | NR), each type's levels equally likely."""
        ll = self.level_log_likelihoods(light, levels)
        return logsumexp(ll["ER"], 1) - np.log(len(levels["ER"])) - logsumexp(ll["NR"], 1) + np.log(len(levels["NR"]))

    def most_likely_level(self, light: np.ndarray, is_er: np.ndarray, levels: dict) -> np.ndarray:
        """Per event, the level of its type whose light model fits its light best."""
        ll = self.level_log_likelihoods(light, levels)
        er_level = np.asarray(levels["ER"], float)[ll["ER"].argmax(1)]
        nr_level = np.asarray(levels["NR"], float)[ll["NR"].argmax(1)]
        return np.where(np.asarray(is_er, bool), er_level, nr_level)

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "LightModel":
        try:
            values = json.loads(Path(path).read_text())
            return cls(TypeLight(**values["er"]), TypeLight(**values["nr"]))
        except FileNotFoundError:
            raise CheckpointError(f"{path}: light model not found; run train.py first") from None
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: not a light model ({e}); run train.py again") from None

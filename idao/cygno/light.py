"""The event's light and spot shape, and per-type models of what each keV level gives.

Separating what the energy is from what the particle is. The light is the
pedestal-subtracted excess within ``RADIUS`` px of the brightest smoothed
spot, plus, for a bright event, the light of its track beyond that disc: a
direct count that no network has to extrapolate to unseen energies.
``LightModel`` says, per particle type, what light each keV level gives: a
trained level is a Gaussian of its own median and robust spread; an unseen one
is log-log interpolated between the trained levels clear of the noise, with
std^2 = s0^2 + (f mean)^2 (the aperture's pixel noise, one for both types,
plus a relative gain spread, fitted to the trained levels' spreads). Given a
split's allowed levels it then gives, for every event,
- the likelihood ratio of ER vs NR from light (and, with the ``ShapeModel``
  fitted beside it, from the spot's width and elongation too; summed over each
  type's levels), which ``postprocess`` adds to the shape classifier's logit, and
- the most likely level of each type, the energy once the type is decided.
It holds three numbers per trained level and two per type, up to five rows of
six numbers per (type, level) of shape, and is saved as JSON (loading it runs no code).
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import logsumexp

from ..atomic import write_text
from ..errors import CheckpointError, DataError
from .images import PEDESTAL
from .names import ENERGIES

RADIUS = 20  # px: holds ~all the light of a spot (sigma 4-7 px) and of most ER tracks, with 3.5x less noise than r=40
SMOOTHING = 2.0  # px: Gaussian sigma used only to find the spot (and to brighten events, ``dimmed``)
TRACK_MIN_LIGHT = 4000.0  # counts in the disc (about ER 6 keV): only an event this bright can outgrow it
TRACK_SMOOTHING = 4.0  # px: the track is the pixels where the image smoothed this much exceeds ...
TRACK_THRESHOLD = 1.5  # ... this many counts (~6x that smoothed image's noise on the IDAO camera),
TRACK_GROW = 3.0  # grown by a Gaussian of this sigma (its faint edges), within ...
TRACK_REACH = 60  # ... this many px of the spot (a 30 keV ER track: real ones reach ~50 px)
SHAPE_WEIGHT = 6.0  # px: Gaussian weight of the shape moments, about the widest spot's sigma
SHAPE_LIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)  # multiples of a level's expected light its shape is measured at
MAX_THREADS = 8  # spot measurement threads (each holds a chunk's float copies, ~100 MB)
FLOOR = 30.0  # counts: a class median below this (noise) is taken as this, so its log stays finite
CLEAR = 3.0  # a level whose median light is below this many noise floors (s0) is too faint to interpolate from
MIN_SHARE = 0.25  # a class enters the fit with at least this share of the largest class's events (and 3):
# the few strays of the unseen classes in the training folders do not
LIGHT_MODEL_FILE = "light.json"  # beside the checkpoints

_YY, _XX = np.mgrid[-RADIUS : RADIUS + 1, -RADIUS : RADIUS + 1]
_IN_DISC = _YY**2 + _XX**2 <= RADIUS**2
_DY, _DX = _YY[_IN_DISC], _XX[_IN_DISC]  # the disc's pixel offsets, summed by one gather per chunk


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    for axis in (1, 2):  # zeros beyond the edge, like the sums below
        x = gaussian_filter1d(x, sigma, axis=axis, mode="constant", truncate=3.0)
    return x


def measure_spots(crops: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(N, 3): each crop's light, width and elongation around its brightest smoothed spot (uint8 (N, H, W) crops,
    or float crops already less the pedestal); one smoothing pass serves all three. The light adds, for an
    event bright enough to outgrow the disc, its track's light beyond it (``track_light``). Chunks run on
    threads, one per core this process may use, at most ``MAX_THREADS`` (numpy and scipy release the GIL: 1.9x
    on 2 cores, the same numbers)."""
    starts = range(0, len(crops), chunk)
    with ThreadPoolExecutor(max(1, min(len(starts), len(os.sched_getaffinity(0)), MAX_THREADS))) as pool:
        parts = list(pool.map(lambda start: _measure_chunk(crops[start : start + chunk]), starts))
    return np.concatenate(parts) if parts else np.empty((0, 3))


def _measure_chunk(crops: np.ndarray) -> np.ndarray:
    offset = PEDESTAL if crops.dtype == np.uint8 else 0.0
    x = np.asarray(crops, np.float32) - offset
    smooth = _smooth(x, SMOOTHING)
    row, col = np.unravel_index(smooth.reshape(len(x), -1).argmax(1), x.shape[1:])
    padded = np.pad(x, ((0, 0), (RADIUS, RADIUS), (RADIUS, RADIUS)))
    n = np.arange(len(x))[:, None]
    disc = padded[n, row[:, None] + RADIUS + _DY, col[:, None] + RADIUS + _DX]
    light = disc.sum(1)
    bright = light > TRACK_MIN_LIGHT
    light[bright] += track_light(x[bright], row[bright], col[bright])
    return np.column_stack([light.astype(np.float64), spot_shape(disc)])


def track_light(x: np.ndarray, row: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Light of each event's track beyond the ``RADIUS`` disc around (row, col), within ``TRACK_REACH`` px.

    A 30 keV ER track can be longer than the disc (a real one in ../shared/data/idao-real holds a third of its
    light beyond it: 12,099 counts in the disc, 18,495 with its track, the 30 keV level), and the disc alone
    then reads it as 20 keV. Only the track's pixels are added, not the whole ring, so the noise grows little.
    """
    if not len(x):
        return np.zeros(0)
    h, w = x.shape[1:]
    track = _smooth((_smooth(x, TRACK_SMOOTHING) > TRACK_THRESHOLD).astype(np.float32), TRACK_GROW) > 0.02
    dy = (np.arange(h, dtype=np.float32)[None, :] - row[:, None]) ** 2
    dx = (np.arange(w, dtype=np.float32)[None, :] - col[:, None]) ** 2
    distance = dy[:, :, None] + dx[:, None, :]
    return (x * (track & (distance > RADIUS**2) & (distance <= TRACK_REACH**2))).sum((1, 2))


def spot_light(crops: np.ndarray) -> np.ndarray:
    """Excess counts within RADIUS px of each crop's brightest smoothed spot, with a bright event's track beyond."""
    return measure_spots(crops)[:, 0]


def spot_shape(disc: np.ndarray) -> np.ndarray:
    """(N, 2): the spot's width (px: the Gaussian sigma across its narrow axis) and elongation (log of the sigma
    ratio along / across), from the pixels of the disc around the brightest spot (``_DY``, ``_DX`` order).

    The second moments are weighted by a Gaussian of ``SHAPE_WEIGHT`` px around the light's centroid, which keeps
    the pixel noise far from the spot out (plain moments over the disc are noise-dominated for a 1 keV ER),
    and then deconvolved from that weight (exact for a Gaussian spot). Neither depends on the brightness.
    """
    dy, dx = _DY[None].astype(np.float64), _DX[None].astype(np.float64)
    w = np.exp(-0.5 * (dy**2 + dx**2) / SHAPE_WEIGHT**2) * disc
    total = np.maximum(w.sum(1, keepdims=True), 1e-6)  # a dark or negative spot: no shape to measure
    cy = np.clip((w * dy).sum(1, keepdims=True) / total, -3, 3)
    cx = np.clip((w * dx).sum(1, keepdims=True) / total, -3, 3)
    dy, dx = dy - cy, dx - cx
    w = np.exp(-0.5 * (dy**2 + dx**2) / SHAPE_WEIGHT**2) * disc
    total = np.maximum(w.sum(1), 1e-6)
    myy, mxx, mxy = ((w * a * b).sum(1) / total for a, b in ((dy, dy), (dx, dx), (dx, dy)))
    half_trace, det = (myy + mxx) / 2, myy * mxx - mxy**2
    root = np.sqrt(np.maximum(half_trace**2 - det, 0))
    limits = (0.3, 0.95 * SHAPE_WEIGHT**2)  # noise can push a weighted variance past what a real spot gives
    small, large = (1 / (1 / np.clip(v, *limits) - 1 / SHAPE_WEIGHT**2) for v in (half_trace - root, half_trace + root))
    return np.stack([np.sqrt(small), 0.5 * np.log(large / small)], 1)


def dimmed(crops: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """Pedestal-subtracted float crops made to look like events ``factor`` times as bright, on the same camera.

    Dimming (``factor`` <= 1) scales the whole crop and adds fresh Gaussian noise of the missing variance, so
    the pixel noise keeps each crop's own level (its robust std) while the signal keeps its exact shape.
    Brightening (rare: the brightest level of a type) adds the signal of a lightly smoothed copy instead, which
    leaves the noise as it is.
    """
    x = np.asarray(crops, np.float32) - PEDESTAL
    if factor > 1:
        return x + (factor - 1) * _smooth(x, SMOOTHING)
    flat = x.reshape(len(x), -1)
    noise = 1.4826 * np.median(np.abs(flat - np.median(flat, 1, keepdims=True)), 1)  # the spot is a small part
    fresh = rng.standard_normal(x.shape, dtype=np.float32) * (noise * np.sqrt(1 - factor**2))[:, None, None]
    return factor * x + fresh


def fitted_levels(energy: np.ndarray) -> list:
    """The training levels a model is fitted on: the classes, not the few strays of the unseen ones."""
    values, counts = np.unique(energy, return_counts=True)
    return [e for e, n in zip(values, counts) if n >= max(3, MIN_SHARE * counts.max(initial=0))]


@dataclass(frozen=True)
class TypeLight:
    """Light of one particle type. A trained level (``kevs``) is a Gaussian of its own median light and robust
    spread; any other level's median is log-log interpolated between the trained levels clear of the noise (and
    extrapolated along the end segments), its std sqrt(s0^2 + (f mean)^2).

    Local, not one power law through every level: the faintest level's median is pulled down by the noise (the
    spot finder lands on a fluctuation), and the brightest ER's by what the track light misses of a long track; one line through all three
    missed the unseen NR 3 keV by -19 % and ER 1 keV by +11 %, the pair that light has to tell apart.
    """

    kevs: list
    medians: list
    spreads: list
    s0: float
    f: float

    def mean(self, kev) -> np.ndarray:
        kev = np.asarray(kev, float)
        kevs, med = np.asarray(self.kevs, float), np.maximum(np.asarray(self.medians, float), FLOOR)
        clear = med >= CLEAR * self.s0
        x, y = (np.log(kevs[clear]), np.log(med[clear])) if clear.sum() >= 2 else (np.log(kevs), np.log(med))
        # straight on through the end segments beyond the outer levels
        lo, hi = (y[1] - y[0]) / (x[1] - x[0]), (y[-1] - y[-2]) / (x[-1] - x[-2])
        lx = np.log(kev)
        out = np.exp(np.where(lx < x[0], y[0] + lo * (lx - x[0]),
                              np.where(lx > x[-1], y[-1] + hi * (lx - x[-1]), np.interp(lx, x, y))))
        return self._trained_or(kev, med, out)

    def std(self, kev) -> np.ndarray:
        return self._trained_or(kev, self.spreads, np.sqrt(self.s0**2 + (self.f * self.mean(kev)) ** 2))

    def _trained_or(self, kev, values, otherwise: np.ndarray) -> np.ndarray:
        """``values`` (one per trained level) where ``kev`` is a trained level, else ``otherwise``."""
        own = np.isclose(np.asarray(kev, float)[..., None], np.asarray(self.kevs, float))
        return np.where(own.any(-1), (own * np.asarray(values, float)).sum(-1), otherwise)

    def log_likelihood(self, light: np.ndarray, kev: float) -> np.ndarray:
        mu, var = self.mean(kev), self.std(kev) ** 2
        return -0.5 * (np.asarray(light, float) - mu) ** 2 / var - 0.5 * np.log(var)


def level_stats(light: np.ndarray, energy: np.ndarray, name: str):
    """One type's trained levels, their median light and robust spread, for ``fit_light``."""
    levels = fitted_levels(energy)
    if len(levels) < 2:
        values, counts = np.unique(energy, return_counts=True)
        raise DataError(f"the light model needs two or more {name} energies with enough training events, "
                        f"found {dict(zip(values.tolist(), counts.tolist()))}")
    groups = [light[energy == e] for e in levels]
    med = np.array([np.median(g) for g in groups])
    spread = np.array([1.4826 * np.median(np.abs(g - np.median(g))) for g in groups])  # robust std
    return [float(e) for e in levels], med, np.maximum(spread, 1.0)


def fit_light(light: np.ndarray, is_er: np.ndarray, energy: np.ndarray) -> tuple[TypeLight, TypeLight]:
    """Both types' light. For the levels not trained, the noise floor s0 is one for both (the aperture's pixel
    noise: one camera) and each type has its own gain spread f, fitted to the trained levels' spreads in relative
    terms. An absolute fit is all the brightest level's and lost s0 (fitted as 1 count on half of the seeds),
    which made a faint event's light, pushed below zero by the noise, likelier from the broad bright level than
    from the faintest."""
    (er_kevs, er_med, er_spread), (nr_kevs, nr_med, nr_spread) = (
        level_stats(light[m], energy[m], name) for m, name in ((is_er, "ER"), (~is_er, "NR")))
    none_er, none_nr = np.zeros_like(er_med), np.zeros_like(nr_med)
    rows = np.concatenate([np.stack([np.ones_like(er_med), er_med**2, none_er], 1) / er_spread[:, None] ** 2,
                           np.stack([np.ones_like(nr_med), none_nr, nr_med**2], 1) / nr_spread[:, None] ** 2])
    (s0_sq, f_er, f_nr), *_ = np.linalg.lstsq(rows, np.ones(len(rows)), rcond=None)
    s0 = float(np.sqrt(max(s0_sq, 1.0)))
    return (TypeLight(er_kevs, er_med.tolist(), er_spread.tolist(), s0, float(np.sqrt(max(f_er, 1e-4)))),
            TypeLight(nr_kevs, nr_med.tolist(), nr_spread.tolist(), s0, float(np.sqrt(max(f_nr, 1e-4)))))


@dataclass(frozen=True)
class ShapeModel:
    """Per type and keV level, a Gaussian of the spot's (width, elongation) as measured at the event's own light.

    Shape tells the types apart inside a light pair, where light cannot: NR spots are wider (sigma ~6.0 vs
    ~4.6 px for ER, facts doc) and ER tracks of 10 keV and more are elongated. How well shape is measured
    depends on the light (a 1 keV ER's width is much noisier than a 3 keV ER's), so each level's Gaussian is
    measured on training events of its type at the nearest trained level with at least as much light (the
    level itself when trained), dimmed (``dimmed``) to ``SHAPE_LIGHTS`` multiples of the level's expected light,
    never brighter than that source level's own light (a trained level has rows up to 1x only; the brightest
    unseen level is brightened to its own light): their shapes and the camera's noise level, no simulator.
    An event is scored with the Gaussian interpolated (in log light) at its own light, held at the end rows
    beyond them: an unseen level's event that fluctuated bright is scored with the shape of that brighter
    light, not with the level's mean-light spread (mostly noise). ``levels`` maps "ER1", "NR30"... to rows
    [light, mean width, mean elongation, covariance 00, 01, 11], light ascending.
    """

    def __post_init__(self):
        for key, rows in self.levels.items():
            rows = np.asarray(rows, float)
            if rows.ndim != 2 or rows.shape[1] != 6 or (rows[:, 0] <= 0).any() or (np.diff(rows[:, 0]) <= 0).any():
                raise ValueError(f"shape level {key} is not rows of [light, 5 numbers] with light rising "
                                 "(written by an older train.py?)")

    levels: dict

    @classmethod
    def fit(cls, crops: np.ndarray, is_er: np.ndarray, energy: np.ndarray, light: "LightModel",
            kevs=ENERGIES) -> "ShapeModel":
        levels = {}
        for particle, flag, t in (("ER", True, light.er), ("NR", False, light.nr)):
            mine = np.asarray(is_er, bool) == flag
            trained = fitted_levels(energy[mine])
            for kev in kevs:
                source = min((e for e in trained if e >= kev), default=max(trained))
                m = mine & (energy == source)
                level, own = float(t.mean(kev)), float(t.mean(source))
                rows = []
                for j, f in enumerate(SHAPE_LIGHTS):  # never brighter than the source, unless the level is
                    factor = min(f * level / own, max(1.0, level / own))
                    if rows and factor * own <= rows[-1][0]:
                        continue
                    rng = np.random.default_rng([kev, j])  # the same model from the same training split
                    w = measure_spots(dimmed(crops[m], factor, rng))[:, 1:]
                    cov = np.cov(w.T) + 1e-3 * np.eye(2)  # never singular
                    rows.append([factor * own, *map(float, w.mean(0)), float(cov[0, 0]), float(cov[0, 1]),
                                 float(cov[1, 1])])
                levels[f"{particle}{kev}"] = rows
        return cls(levels)

    def at(self, particle: str, kev, light: np.ndarray) -> np.ndarray:
        """(N, 5): the level's Gaussian (mean width, mean elongation, covariance 00, 01, 11) at each light."""
        key = f"{particle}{int(kev)}"
        if key not in self.levels:
            raise CheckpointError(f"the shape model has no level {key}; run train.py again")
        rows = np.asarray(self.levels[key], float)
        x = np.log(np.maximum(np.asarray(light, float), 1.0))
        return np.stack([np.interp(x, np.log(rows[:, 0]), rows[:, k]) for k in range(1, 6)], -1)

    def log_likelihood(self, shape: np.ndarray, particle: str, kev, light: np.ndarray) -> np.ndarray:
        m0, m1, c00, c01, c11 = self.at(particle, kev, light).T
        d0, d1 = np.asarray(shape, float)[:, 0] - m0, np.asarray(shape, float)[:, 1] - m1
        det = c00 * c11 - c01**2
        return -0.5 * (c11 * d0**2 - 2 * c01 * d0 * d1 + c00 * d1**2) / det - 0.5 * np.log(det)


@dataclass(frozen=True)
class LightModel:
    """Light per type, and (optionally) the shape model fitted beside it: both decode an event's type and level."""

    er: TypeLight
    nr: TypeLight
    shape: ShapeModel | None = None

    @classmethod
    def fit(cls, light: np.ndarray, is_er: np.ndarray, energy: np.ndarray, crops: np.ndarray | None = None) -> "LightModel":
        """From the training split's light (and, with ``crops``, its images for the shape model)."""
        is_er, energy = np.asarray(is_er, bool), np.asarray(energy)
        model = cls(*fit_light(np.asarray(light, float), is_er, energy))
        if crops is None:
            return model
        return cls(model.er, model.nr, ShapeModel.fit(crops, is_er, energy, model))

    def level_log_likelihoods(self, light: np.ndarray, levels: dict, shape: np.ndarray | None = None) -> dict:
        """``{"ER": (N, levels), "NR": (N, levels)}``: log p(light | type, level), times p(shape | type, level)
        when the events' ``shape`` (width, elongation) is given."""
        out = {p: np.stack([t.log_likelihood(light, e) for e in levels[p]], 1)
               for p, t in (("ER", self.er), ("NR", self.nr))}
        if shape is not None:
            if self.shape is None:
                raise CheckpointError("this light model has no shape model (written by an older train.py); run "
                                      "train.py again or set cygno.submission.shape=false")
            for p in out:
                out[p] = out[p] + np.stack([self.shape.log_likelihood(shape, p, e, light) for e in levels[p]], 1)
        return out

    def type_log_ratio(self, light: np.ndarray, levels: dict, shape: np.ndarray | None = None) -> np.ndarray:
        """log p(light [, shape] | ER) - log p(light [, shape] | NR), each type's levels equally likely."""
        ll = self.level_log_likelihoods(light, levels, shape)
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
            shape = ShapeModel(**values["shape"]) if values.get("shape") else None
            return cls(TypeLight(**values["er"]), TypeLight(**values["nr"]), shape)
        except FileNotFoundError:
            raise CheckpointError(f"{path}: light model not found; run train.py first") from None
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{path}: not a light model ({e}); run train.py again") from None

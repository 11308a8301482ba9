"""Physics features of a track, measured on its cropped charge map (the cues the thesis' CNN struggles with).

Muons cross the CCD in straight lines of nearly constant charge per unit
length; electrons scatter (curved, wider, uneven charge along the track, a
bright end where they stop). Each feature is a scale-free, flip- and
rotation-invariant number, so it does not care where the track sits in the
window or which way it runs. Measured on eVSmu_tr1 (5-fold CV, docs/damic.md),
a small network on these numbers separates electrons from muons better than
the CNN on the image does.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .io import EV_PER_ELECTRON

NAMES = ("log_energy", "log_pixels", "log_major_var", "log_minor_var", "log_elongation", "log_length",
         "log_charge_per_length", "log_pixel_charge_std", "top_pixel_percent", "profile_cv", "end_fraction",
         "width", "log_profile_range", "end_asymmetry", "curvature_residual", "log_pixels_over_4e",
         "top_decile_fraction", "log_median_pixel",
         # the occupied-pixel shape: how full the box is, how much is edge, clusters, thickness across the track
         "box_fill", "edge_fraction", "clusters", "log_p10_pixel", "log_p90_pixel", "pixel_spread_ratio",
         "thickness_mean", "thickness_std", "thickness_max", "log_box_long", "log_box_short")
PROFILE_BINS = 8
OCCUPANCY = NAMES.index("box_fill")  # where the occupancy features start


def occupancy_features(track: np.ndarray) -> list[float]:
    """Shape of the occupied pixels: box fill, edge share, clusters, pixel percentiles, thickness across the box's
    long side (a muon: thin and even; an electron: blobby)."""
    occupied = track > 0
    n = occupied.sum()
    h, w = track.shape
    edge = n - ndimage.binary_erosion(occupied).sum()
    clusters = ndimage.label(occupied, np.ones((3, 3)))[1]
    p10, p90 = np.percentile(track[occupied], [10, 90])
    thickness = occupied.sum(0) if w >= h else occupied.sum(1)
    thickness = thickness[thickness > 0]
    return [n / (h * w), edge / n, clusters, np.log1p(p10), np.log1p(p90), p90 / max(p10, 1.0), thickness.mean(),
            thickness.std(), thickness.max(), np.log(max(h, w)), np.log(min(h, w))]


def track_features(track: np.ndarray) -> np.ndarray:
    """The NAMES features of one cropped track (eV per pixel), float32."""
    rows, cols = np.nonzero(track)
    w = track[rows, cols].astype(np.float64)
    n, total = len(w), float(w.sum())
    out = np.zeros(len(NAMES), np.float32)
    out[0], out[1] = np.log1p(total), np.log(n + 1)
    if n < 3:  # a dot (or an empty frame): no direction to measure
        return out
    out[OCCUPANCY:] = occupancy_features(track)
    centre = np.array([np.average(rows, weights=w), np.average(cols, weights=w)])
    d = np.column_stack([rows, cols]) - centre
    eigval, eigvec = np.linalg.eigh(np.cov(d.T, aweights=w))
    minor, major = np.maximum(eigval, 1e-6)
    axis = eigvec[:, 1]
    along, across = d @ axis, d @ np.array([-axis[1], axis[0]])
    length = along.max() - along.min() + 1.0
    bins = np.clip(((along - along.min()) / length * PROFILE_BINS).astype(int), 0, PROFILE_BINS - 1)
    profile = np.bincount(bins, weights=w, minlength=PROFILE_BINS)
    # the track's bend: how much a parabola across the main axis explains beyond a line
    t = along / max(np.abs(along).max(), 1.0)
    design = np.column_stack([np.ones_like(t), t, t * t]) * np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(design, across * np.sqrt(w), rcond=None)[0]
    residual = across - (coef[0] + coef[1] * t + coef[2] * t * t)
    top = np.sort(w)[::-1]
    out[2:OCCUPANCY] = [np.log(major), np.log(minor), np.log(major / minor), np.log(length), np.log1p(total / length),
               np.log1p(w.std()), 100.0 * w.max() / total, profile.std() / (profile.mean() + 1e-9),
               (profile[0] + profile[-1]) / total, np.sqrt(np.average(across ** 2, weights=w)),
               np.log((profile.max() + 1) / (profile.min() + 1)), abs(np.log((profile[0] + 1) / (profile[-1] + 1))),
               np.sqrt(np.average(residual ** 2, weights=w)), np.log1p((w > 4 * EV_PER_ELECTRON).sum()),
               top[: max(1, n // 10)].sum() / total, np.log1p(np.median(w))]
    return out


def feature_matrix(tracks) -> np.ndarray:
    """(N, len(NAMES)) float32 features of a list of tracks."""
    return np.stack([track_features(t) for t in tracks]) if len(tracks) else np.zeros((0, len(NAMES)), np.float32)


def event_features(events) -> np.ndarray:
    """The features of every event of an ``Events``, measured once and kept in its cache (they do not change
    with augmentation, so every epoch reuses them)."""
    if "physics" not in events.cache:
        events.cache["physics"] = feature_matrix(events.tracks)
    return events.cache["physics"]

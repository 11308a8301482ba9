"""Physics features of a crop and a gradient-boosting model on them: a fast CPU peer of the CNNs.

Features (all from the pedestal-subtracted crop): light within apertures around
the centre and around the brightest spot, the peak, the spot width, the
elongation and extent of the bright region (ER tracks are long and wiggly, NR
spots round) and the offset of the spot from the image centre.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from idao.cygno.images import PEDESTAL

FEATURE_NAMES = ("light_r5", "light_r10", "light_r20", "light_r40", "spot_r5", "spot_r10", "spot_r20", "peak",
                 "width", "elongation", "major_sigma", "minor_sigma", "area_3sigma", "area_6sigma",
                 "offset", "log_light")


def crop_features(crop: np.ndarray) -> np.ndarray:
    """One feature vector (see FEATURE_NAMES) for a uint8 crop whose background sits at PEDESTAL."""
    x = crop.astype(np.float32) - PEDESTAL
    n = x.shape[0]
    yy, xx = np.indices(x.shape)
    c = (n - 1) / 2
    r_centre = np.hypot(yy - c, xx - c)
    smooth = gaussian_filter(x, 2.0)
    pr, pc = np.unravel_index(np.argmax(smooth), x.shape)
    r_spot = np.hypot(yy - pr, xx - pc)
    light = [x[r_centre <= r].sum() for r in (5, 10, 20, 40)]
    spot = [x[r_spot <= r].sum() for r in (5, 10, 20)]
    peak = smooth[pr, pc]
    width = np.sqrt(max(spot[2], 1.0) / (2 * np.pi * max(peak, 0.1)))
    # second moments of the significant light (smoothed noise sigma ~0.8 counts)
    w = np.clip(smooth, 0, None) * (smooth > 1.5)
    total = w.sum()
    if total > 0:
        my, mx = (w * yy).sum() / total, (w * xx).sum() / total
        cov = np.cov(np.stack([yy.ravel() - my, xx.ravel() - mx]), aweights=w.ravel() + 1e-12)
        ev = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 1e-6, None))
        minor, major = float(ev[0]), float(ev[1])
    else:
        minor = major = 0.0
    return np.array([*light, *spot, peak, width, major / max(minor, 1e-3), major, minor,
                     (smooth > 2.4).sum(), (smooth > 4.8).sum(), np.hypot(pr - c, pc - c),
                     np.log(max(light[3], 1.0))], dtype=np.float32)


def features(crops: np.ndarray) -> np.ndarray:
    return np.stack([crop_features(c) for c in crops])


# The classifier sees shape only: with light among its inputs it learns the training pairs'
# "dim means NR" (NR 1 keV vs ER 3 keV) and fails on the unseen ER 1 keV.
SHAPE = [FEATURE_NAMES.index(n) for n in ("width", "elongation", "major_sigma", "minor_sigma", "offset")]


def shape_features(x: np.ndarray) -> np.ndarray:
    i = {n: k for k, n in enumerate(FEATURE_NAMES)}
    concentration = x[:, [i["spot_r5"], i["spot_r10"]]] / np.maximum(x[:, [i["spot_r20"]]], 1.0)
    return np.concatenate([x[:, SHAPE], concentration], axis=1)


def fit_physics_models(x: np.ndarray, is_er: np.ndarray, energy: np.ndarray, seed: int = 0):
    """Gradient boosting on the features: a classifier (ER positive) and a log-energy regressor."""
    clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=seed).fit(
        shape_features(x), is_er)
    reg = HistGradientBoostingRegressor(loss="absolute_error", max_iter=300, learning_rate=0.05,
                                        random_state=seed).fit(x, np.log(energy))
    return clf, reg


def predict_physics(models, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clf, reg = models
    return clf.predict_proba(shape_features(x))[:, 1], np.exp(reg.predict(x))

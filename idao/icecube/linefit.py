"""The reference reconstruction: a charge-weighted least-squares line fit of pulse position against time.

Fitting r(t) = r0 + v t gives the light's velocity v across the detector;
the neutrino came from -v. It needs no training, so it is both the baseline
the network must beat and the fallback (``icecube.method = linefit``).
Non-auxiliary pulses are used when an event has two or more (auxiliary ones
are more often noise).
"""
from __future__ import annotations

import numpy as np


def line_fit(pos: np.ndarray, time: np.ndarray, charge: np.ndarray, auxiliary: np.ndarray) -> np.ndarray:
    """Unit vector (3,) to where the particle came from; +z (straight down-going) when time does not vary."""
    keep = ~auxiliary if (~auxiliary).sum() >= 2 else np.ones(len(time), bool)
    r, t, w = pos[keep].astype(np.float64), time[keep].astype(np.float64), charge[keep].astype(np.float64)
    w = np.maximum(w, 1e-3)
    t_mean = np.average(t, weights=w)
    dt = t - t_mean
    var = np.average(dt * dt, weights=w)
    if var <= 0:
        return np.array([0.0, 0.0, 1.0])
    v = np.average((r - np.average(r, axis=0, weights=w)) * dt[:, None], axis=0, weights=w) / var
    norm = np.linalg.norm(v)
    return -v / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def line_fit_all(data) -> np.ndarray:
    """(N, 3) line-fit directions of every event of a ``PulseSet``, read in file order."""
    out = np.zeros((len(data), 3))
    for i in np.argsort(data.file, kind="stable"):
        out[i] = line_fit(*data.pulses(i))
    return out

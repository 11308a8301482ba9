"""The reconstructions that need no training: a line fit and "2 dots", each both a baseline and a fallback.

- ``linefit``: a charge-weighted least-squares fit of pulse position against
  time, r(t) = r0 + v t; the neutrino came from -v.
- ``twodots`` (the seed's notebook 4): the charge-weighted centroid of the
  early half of the pulses (by time) and that of the late half; the light moved
  from the first dot to the second, so the neutrino came from the other way.

Both use an event's non-auxiliary pulses when it has two or more (auxiliary
ones are more often noise), and say +z (straight down-going) when the pulses
give no direction. They work on many events at once (flat pulse arrays with
each pulse's event, as ``PulseSet.gather`` returns them), so the network can
take them as inputs at no cost per event (``objective.py``).
"""
from __future__ import annotations

import numpy as np

METHODS = ("linefit", "twodots")
DOWN = np.array([0.0, 0.0, 1.0])


def _sums(event: np.ndarray, weights: np.ndarray, n: int, values: np.ndarray | None = None) -> np.ndarray:
    """Per event: the sum of ``weights`` (x ``values``, (P,) or (P, k)) -> (n,) or (n, k)."""
    if values is None:
        return np.bincount(event, weights, minlength=n)
    if values.ndim == 1:
        return np.bincount(event, weights * values, minlength=n)
    return np.stack([np.bincount(event, weights * values[:, j], minlength=n) for j in range(values.shape[1])], 1)


def clean_weights(event: np.ndarray, charge: np.ndarray, auxiliary: np.ndarray, n: int) -> np.ndarray:
    """Each pulse's weight: its charge (at least 1e-3), zero for auxiliary pulses of events with two or more
    non-auxiliary ones."""
    clean = np.bincount(event, ~auxiliary, minlength=n) >= 2
    return np.where(auxiliary & clean[event], 0.0, np.maximum(charge.astype(np.float64), 1e-3))


def line_velocities(event, pos, time, charge, auxiliary, n: int) -> np.ndarray:
    """(n, 3) fitted velocities (m/ns) of the light in each event; zero where time does not vary."""
    w = clean_weights(event, charge, auxiliary, n)
    total = np.maximum(_sums(event, w, n), 1e-12)
    t = time.astype(np.float64) - (_sums(event, w, n, time.astype(np.float64)) / total)[event]
    r = pos.astype(np.float64) - (_sums(event, w, n, pos.astype(np.float64)) / total[:, None])[event]
    var = _sums(event, w, n, t * t) / total
    cov = _sums(event, w, n, r * t[:, None]) / total[:, None]
    return np.where(var[:, None] > 0, cov / np.where(var > 0, var, 1.0)[:, None], 0.0)


def dot_displacements(event, pos, time, charge, auxiliary, n: int) -> np.ndarray:
    """(n, 3): the late half's charge-weighted centroid minus the early half's (zero with fewer than 2 pulses)."""
    w = clean_weights(event, charge, auxiliary, n)
    order = np.lexsort((time, event))
    event, pos, w = event[order], pos[order].astype(np.float64), w[order]
    used = w > 0
    rank = np.cumsum(used) - 1  # among each event's weighted pulses, in time order
    counts = np.bincount(event, used, minlength=n).astype(int)
    first = np.cumsum(counts) - counts
    late = (rank - first[event]) >= counts[event] // 2
    dots = []
    for half in (~late, late):
        weight = np.where(half, w, 0.0)
        dots.append(_sums(event, weight, n, pos) / np.maximum(_sums(event, weight, n), 1e-12)[:, None])
    return np.where((counts >= 2)[:, None], dots[1] - dots[0], 0.0)


def from_motion(motion: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors to where the particle came from, against the light's motion; +z where it is zero."""
    norm = np.linalg.norm(motion, axis=1, keepdims=True)
    return np.where(norm > 0, -motion / np.where(norm > 0, norm, 1.0), DOWN)


def line_fit(pos: np.ndarray, time: np.ndarray, charge: np.ndarray, auxiliary: np.ndarray) -> np.ndarray:
    """Unit vector (3,) to where the particle of one event came from."""
    return from_motion(line_velocities(np.zeros(len(time), int), pos, time, charge, auxiliary, 1))[0]


def two_dots(pos: np.ndarray, time: np.ndarray, charge: np.ndarray, auxiliary: np.ndarray) -> np.ndarray:
    """Unit vector (3,) to where the particle of one event came from: from the late centroid to the early one."""
    return from_motion(dot_displacements(np.zeros(len(time), int), pos, time, charge, auxiliary, 1))[0]


def baseline_directions(data, method: str = "linefit", batch: int = 4096) -> np.ndarray:
    """(N, 3) directions of every event of a ``PulseSet`` by ``method`` (``METHODS``), a batch file at a time."""
    motion = {"linefit": line_velocities, "twodots": dot_displacements}[method]
    order = np.argsort(data.file, kind="stable")
    out = np.zeros((len(data), 3))
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        event, sensor, time, charge, aux = data.gather(idx)
        out[idx] = from_motion(motion(event, data.geometry[sensor], time, charge, aux, len(idx)))
    return out

"""Event classes: what kind of event it is, and whether it is one a direction can be trusted for.

Two kinds of answer, as the seed's classification notebook sorts events:

- **learned**: track (a through-going muon), starting (a muon leaving a vertex
  inside) or cascade (a shower), from boosted trees (``idao/trees.py``) on
  ``SUMMARY`` features of the pulses; trained where the training data says
  each event's type (the simulator's ``event_type``), saved as an ordinary
  weights-only checkpoint. A second model beside the direction network: it
  fits in seconds, leaves the direction model alone, and its accuracy is
  measured in the report;
- **rules**, computed from the pulses on any data (real events included):
  *contained* (the first light lies inside the detector, at least
  ``icecube.veto_border`` metres from its outer strings and its top and
  bottom) and *up-going* (the predicted direction points below the horizon:
  only neutrinos cross the Earth; atmospheric muons come from above).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import ConvexHull

from ..trees import log_loss
from .baselines import clean_weights, dot_displacements, line_velocities
from .io import PulseSet

CLASSES = ("track", "starting", "cascade")  # the simulator's event types
SUMMARY = ("log_pulses", "aux_fraction", "log_charge", "log_sensors", "log_time_span", "extent_1", "extent_2",
           "extent_3", "elongation", "line_speed", "line_cos_zenith", "dots_distance", "early_charge",
           "brightest_share", "vertex_depth", "vertex_z")


class Detector:
    """The detector's outline from its sensors: the convex hull of the strings (x, y) and the z range."""

    def __init__(self, geometry: np.ndarray):
        self.hull = ConvexHull(geometry[:, :2])
        self.z_min, self.z_max = float(geometry[:, 2].min()), float(geometry[:, 2].max())

    def depth(self, points: np.ndarray) -> np.ndarray:
        """Distance (m) of each point (N, 3) inside the detector to its nearest side, top or bottom; < 0 outside."""
        normal, offset = self.hull.equations[:, :2], self.hull.equations[:, 2]
        sides = -(points[:, :2] @ normal.T + offset).max(axis=1)  # unit normals: distance to the nearest edge
        return np.minimum(sides, np.minimum(points[:, 2] - self.z_min, self.z_max - points[:, 2]))


def event_summaries(event, pos, time, charge, auxiliary, n: int, detector: Detector) -> np.ndarray:
    """(n, len(SUMMARY)): each event's size, light, duration, shape and where it began, from flat pulse arrays
    (``PulseSet.gather``); on the non-auxiliary pulses where an event has two or more, as the baselines."""
    pulses, aux_share = np.bincount(event, minlength=n), np.bincount(event, auxiliary, minlength=n)
    w = clean_weights(event, charge, auxiliary, n)
    keep = np.lexsort((time, event))  # each event's pulses in time order
    keep = keep[w[keep] > 0]
    event, pos, time, w = event[keep], pos[keep].astype(np.float64), time[keep].astype(np.float64), w[keep]
    plain = np.zeros(len(event), bool)  # what is left is the clean set
    count = np.bincount(event, minlength=n)
    first = np.cumsum(count) - count
    rank = np.arange(len(event)) - first[event]
    total = np.bincount(event, w, minlength=n)
    centre = np.stack([np.bincount(event, w * pos[:, j], minlength=n) for j in range(3)], 1) / total[:, None]
    d = pos - centre[event]
    cov = np.stack([np.stack([np.bincount(event, w * d[:, a] * d[:, b], minlength=n) for b in range(3)], 1)
                    for a in range(3)], 1) / total[:, None, None]
    extent = np.sqrt(np.clip(np.linalg.eigvalsh(cov), 0, None))[:, ::-1]
    last = count - 1
    span = time[first + (9 * last) // 10] - time[first + last // 10]
    velocity = line_velocities(event, pos, time, w, plain, n)
    speed = np.linalg.norm(velocity, axis=1)
    dots = np.linalg.norm(dot_displacements(event, pos, time, w, plain, n), axis=1)
    early = np.bincount(event, w * (rank < np.maximum(count // 4, 1)[event]), minlength=n) / total
    brightest = np.zeros(n)
    np.maximum.at(brightest, event, w)
    sensors = np.bincount(np.unique(np.column_stack([event, np.round(pos).astype(np.int64)]), axis=0)[:, 0],
                          minlength=n)
    vertex = first_light(event, pos, w, rank, n)
    return np.column_stack([
        np.log10(pulses), aux_share / pulses, np.log10(total), np.log10(sensors), np.log10(span + 1.0),
        np.log10(extent + 1.0), extent[:, 0] / (extent[:, 1] + 1.0), speed,
        np.where(speed > 0, -velocity[:, 2] / np.where(speed > 0, speed, 1.0), 0.0), dots, early, brightest / total,
        detector.depth(vertex), vertex[:, 2]]).astype(np.float32)


def first_light(event, pos, w, rank, n: int, pulses: int = 4) -> np.ndarray:
    """(n, 3): charge-weighted position of each event's ``pulses`` earliest clean pulses (``rank``: time order)."""
    early = np.where(rank < pulses, w, 0.0)
    return (np.stack([np.bincount(event, early * pos[:, j], minlength=n) for j in range(3)], 1)
            / np.maximum(np.bincount(event, early, minlength=n), 1e-12)[:, None])


def _batches(data: PulseSet, idx, batch: int = 4096):
    """(positions in ``idx``, the gathered pulses with positions) a few thousand events at a time, file order."""
    order = np.argsort(data.file[idx], kind="stable")
    for s in range(0, len(order), batch):
        where = order[s : s + batch]
        event, sensor, time, charge, aux = data.gather(idx[where])
        yield where, (event, data.geometry[sensor], time, charge, aux, len(where))


def summaries(data: PulseSet, idx=None) -> np.ndarray:
    """(N, len(SUMMARY)) features of events ``idx`` (default: all) of ``data``."""
    idx = np.arange(len(data)) if idx is None else np.asarray(idx)
    detector = Detector(data.geometry)
    out = np.zeros((len(idx), len(SUMMARY)), np.float32)
    for where, pulses in _batches(data, idx):
        out[where] = event_summaries(*pulses, detector)
    return out


def labels(data: PulseSet) -> np.ndarray | None:
    """Each event's class index, where the data says its type (simulated); None otherwise."""
    kind = data.extra.get("event_type")
    if kind is None:
        return None
    return np.array([CLASSES.index(k) for k in kind])


def rule_classes(data: PulseSet, direction: np.ndarray, veto_border: float) -> dict[str, np.ndarray]:
    """The rule-based columns of every event: first-light depth inside the detector, contained, up-going."""
    depth = summaries(data)[:, SUMMARY.index("vertex_depth")].astype(np.float64)
    return {"vertex_depth": depth, "contained": depth >= veto_border, "up_going": direction[:, 2] < 0}


@dataclass(frozen=True)
class EventClassObjective:
    """Track / starting / cascade from the pulses' ``SUMMARY`` (boosted trees; log-loss, lower is better), and
    ``routes``: per predicted class, the reconstruction (``model``, ``linefit``, ``twodots``) with the lowest
    validation error, which ``icecube.method = routed`` uses."""

    classes: tuple = CLASSES
    routes: tuple = ("model",) * len(CLASSES)

    metric_name = "log-loss"
    higher_is_better = False

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    def inputs(self, data: PulseSet, idx, rt, draws=None) -> torch.Tensor:
        return torch.from_numpy(summaries(data, idx)).to(rt.device)

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes)."""
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def metric(self, probs: np.ndarray, data: PulseSet) -> float:
        return log_loss(probs, labels(data))

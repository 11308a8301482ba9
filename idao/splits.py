"""Validation splits that hold out the same fraction of every class, rare classes included."""
from __future__ import annotations

import numpy as np


def stratified_split(classes: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) holding out ``fraction`` of every class (rounded), in a seeded order."""
    rng = np.random.default_rng([seed, 0x5A1])
    train, val = [], []
    for cls in sorted(set(classes)):
        idx = rng.permutation(np.flatnonzero(classes == cls))
        n_val = int(round(len(idx) * fraction))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))

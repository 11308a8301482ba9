"""Validation splits and k folds that hold out the same share of every class, rare classes included, and never put
a copy of an event on both sides."""
from __future__ import annotations

import hashlib

import numpy as np


def fingerprint(*arrays) -> str:
    """A short hash of arrays' bytes, in order: equal only for copies (a caller whose arrays vary in shape or
    dtype passes the shape too, as ``idao.damic.io.frame_digest`` does)."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def copy_groups(keys) -> np.ndarray:
    """A group number per item from its ``fingerprint`` (or any key), shared by the copies of one event, which
    ``stratified_split`` keeps together."""
    return np.unique(np.asarray(keys, dtype=str), return_inverse=True)[1].astype(int).reshape(-1)


def stratified_split(classes: np.ndarray, fraction: float, seed: int,
                     groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) holding out ``fraction`` of every class (rounded), in a seeded order.

    With ``groups`` (e.g. the copies of one event) a group goes wholly to the side its first member falls on in
    that order, so that no copy is validated on its own twin; val may then hold a few more than its share.
    Without them every event is its own group.
    """
    rng = np.random.default_rng([seed, 0x5A1])
    train, val, to_val = [], [], {}  # group -> its side
    for cls in sorted(set(classes)):
        idx = rng.permutation(np.flatnonzero(classes == cls))
        n_val = int(round(len(idx) * fraction))
        if groups is None:
            val.extend(idx[:n_val])
            train.extend(idx[n_val:])
            continue
        n_cls = 0  # this class' events sent to val so far
        for i in idx:
            if groups[i] not in to_val:
                to_val[groups[i]] = n_cls < n_val
            n_cls += to_val[groups[i]]
            (val if to_val[groups[i]] else train).append(i)
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def fold_numbers(classes: np.ndarray, folds: int, seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """A fold (0 .. ``folds`` - 1) per item: each class dealt over the folds in a seeded order, every new group
    (the copies of one event) to the fold holding the fewest of that class so far, so folds are stratified and a
    group never spans two."""
    rng = np.random.default_rng([seed, 0xF01D])
    groups = np.arange(len(classes)) if groups is None else np.asarray(groups)
    fold_of_group, out = {}, np.zeros(len(classes), dtype=int)
    for cls in sorted(set(classes)):
        counts = np.zeros(folds, dtype=int)
        for i in rng.permutation(np.flatnonzero(classes == cls)):
            if groups[i] not in fold_of_group:
                fold_of_group[groups[i]] = int(np.argmin(counts))
            out[i] = fold_of_group[groups[i]]
            counts[out[i]] += 1
    return out


def validation_split(classes: np.ndarray, fraction: float, train_cfg, groups: np.ndarray | None = None,
                     source=None, noun: str = "event", verbose: bool = True,
                     seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of a task's training data as ``[train]`` asks: with ``train.folds`` = K > 1 and
    ``train.fold`` = k (set by the core's fold loop), fold k is validated and the others trained on; otherwise
    ``fraction`` of every class is held out (``stratified_split``). Copies (``groups``) stay together either way;
    the user is told how many of the ``noun``s of ``source`` repeat another's (their data holds copies). ``seed`` replaces ``train.seed``."""
    seed = train_cfg.seed if seed is None else seed
    if groups is not None and verbose and source is not None and len(groups) > len(np.unique(groups)):
        print(f"{source}: {len(groups) - len(np.unique(groups))} of {len(groups)} {noun}s repeat another's; each "
              "one's copies stay together on one side of the validation split")
    fold = fold_index(train_cfg)
    if fold is None:
        return stratified_split(classes, fraction, seed, groups)
    numbers = fold_numbers(np.asarray(classes), train_cfg.folds, seed, groups)
    return np.flatnonzero(numbers != fold), np.flatnonzero(numbers == fold)


def fold_index(train_cfg) -> int | None:
    """The fold a job trains or scores (``train.fold`` as a number), or None: a single split, or every fold."""
    fold = str(train_cfg.fold).strip()
    return int(fold) if train_cfg.folds > 1 and fold != "all" else None

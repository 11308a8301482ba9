"""Validation splits and k folds that hold out the same share of every class, rare classes included, and never put
a copy of an event on both sides."""
from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from .errors import DataError


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

    With ``groups`` (e.g. the copies of one event) a group goes wholly to one side, so that no copy is validated
    on its own twin: taken in that order, a class' groups go to val while it holds fewer than its share of the
    class (a group counted whole), so val overshoots a class' share by less than its largest group. A group whose
    copies carry different classes goes where the first of those classes sent it and counts against the others'
    shares. Without groups every event is its own group.
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
        members = dict(zip(*np.unique(np.asarray(groups)[idx], return_counts=True)))  # group -> its events here
        n_cls = sum(n for g, n in members.items() if to_val.get(g))  # sent already, with another class' copies
        for i in idx:
            if groups[i] not in to_val:
                to_val[groups[i]] = n_cls < n_val
                n_cls += members[groups[i]] if to_val[groups[i]] else 0
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


class Split(NamedTuple):
    """Indices into a task's training events: ``train`` is fitted on, ``val`` picks the epoch and stops training,
    ``scored`` is what a report and the out-of-fold table score: ``val`` itself for a single split, fold k in a
    fold run (with ``train.fold_validation = inner``, events nothing was chosen on)."""
    train: np.ndarray
    val: np.ndarray
    scored: np.ndarray

    def held_out(self) -> np.ndarray:
        """Every index not trained on (``val`` and ``scored``): what pseudo-labelled copies must not repeat."""
        return np.union1d(self.val, self.scored)

    def within(self, rest: np.ndarray) -> "Split":
        """The split of ``rest[...]`` in the indices of the whole (a task that set a test part aside first)."""
        return Split(rest[self.train], rest[self.val], rest[self.scored])


def validation_split(classes: np.ndarray, fraction: float, train_cfg, groups: np.ndarray | None = None,
                     source=None, noun: str = "event", verbose: bool = True, seed: int | None = None) -> Split:
    """A task's training data split as ``[train]`` asks. One split: ``fraction`` of every class validates and is
    scored (``stratified_split``). ``train.folds`` = K > 1 with ``train.fold`` = k (set by the core's fold
    loop): fold k is scored, and the epoch is chosen on ``fraction`` of the other folds
    (``train.fold_validation = inner``) or on fold k itself (``fold``: more to train on, an optimistic
    out-of-fold table). Copies (``groups``) stay together throughout; the user is told how many of the
    ``noun``s of ``source`` repeat another's. ``seed`` replaces ``train.seed``."""
    seed = train_cfg.seed if seed is None else seed
    if groups is not None and verbose and source is not None and len(groups) > len(np.unique(groups)):
        print(f"{source}: {len(groups) - len(np.unique(groups))} of {len(groups)} {noun}s repeat another's; each "
              "one's copies stay together on one side of the validation split")
    fold = fold_index(train_cfg)
    if fold is None:
        train, val = stratified_split(classes, fraction, seed, groups)
        split = Split(train, val, val)
    else:
        numbers = fold_numbers(np.asarray(classes), train_cfg.folds, seed, groups)
        rest, scored = np.flatnonzero(numbers != fold), np.flatnonzero(numbers == fold)
        if train_cfg.fold_validation == "fold":
            split = Split(rest, scored, scored)
        else:
            inner = stratified_split(np.asarray(classes)[rest], fraction, seed,
                                     None if groups is None else np.asarray(groups)[rest])
            split = Split(rest[inner[0]], rest[inner[1]], scored)
    if len(split.val) == 0 or len(split.train) == 0:
        raise DataError(f"{source or 'the training data'}: {len(classes)} {noun}s leave nothing to "
                        f"{'validate' if len(split.val) == 0 else 'train'} on (validation fraction {fraction}"
                        + (f", fold {fold} of {train_cfg.folds}" if fold is not None else "") + "); add data or "
                        "change the validation fraction" + (" or train.folds" if fold is not None else ""))
    return split


def fold_index(train_cfg) -> int | None:
    """The fold a job trains or scores (``train.fold`` as a number), or None: a single split, or every fold."""
    fold = str(train_cfg.fold).strip()
    return int(fold) if train_cfg.folds > 1 and fold != "all" else None

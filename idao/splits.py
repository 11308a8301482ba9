"""Validation splits that hold out the same fraction of every class, rare classes included, and never put a
copy of an event on both sides."""
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


def split_keeping_copies(classes: np.ndarray, fraction: float, seed: int, groups: np.ndarray, source,
                         noun: str, verbose: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``stratified_split`` with copies (``groups``) kept together, saying how many of the ``noun``s of
    ``source`` repeat another (the user should know their data holds copies)."""
    repeated = len(groups) - len(np.unique(groups))
    if repeated and verbose:
        print(f"{source}: {repeated} of {len(groups)} {noun}s repeat another's; each one's copies stay together on "
              "one side of the validation split")
    return stratified_split(classes, fraction, seed, groups)

"""From the models' outputs to the submitted energy: one of the challenge's keV levels.

The folder fixes the class set (see the facts doc): public_test holds the six
training classes, private_test the six unseen ones, and given the particle type
only three levels remain. Modes: ``none`` (the regressor's keV), ``snap``
(nearest of the six levels), ``split`` (nearest of the three levels of the
predicted type, from the regressor), ``light`` (the level of the predicted
type that best fits the event's measured light: no regression at all, see
``light.py``; it also adds light's evidence to the ER score).

The classes are balanced within a split, and within each light pair of it, so
``balance`` may use that: ``split`` decides the type by rank, half ER and half
NR per split; ``pair`` (mode light only) shifts the ER logits of each light
group (the events whose most likely level is the k-th of their type) so that
about half of the group is called ER (within one binomial standard deviation):
a classifier that calls the faint ER 1 keV "NR" because it is faint is
corrected where it errs, per group, while the ranking inside the group is kept. Both are transductive (they look at the
whole split) and are recorded in the submission's config.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from .names import ENERGIES, TRAIN_CLASSES, UNSEEN_CLASSES

MODES = ("none", "snap", "split", "light")
REGRESSED = ("none", "snap", "split")  # the modes that read the regressor's keV (light decodes the energy itself)
BALANCES = ("none", "split", "pair")
MIN_GROUP = 20  # events a light group needs before ``pair`` balances it
BALANCE_TOLERANCE = 1.0  # binomial standard deviations (sqrt(n) / 2 events) a group's ER count may stray from half
SPLIT_LEVELS = {
    "public_test": {p: sorted(e for q, e in TRAIN_CLASSES if q == p) for p in ("ER", "NR")},
    "private_test": {p: sorted(e for q, e in UNSEEN_CLASSES if q == p) for p in ("ER", "NR")},
}


def nearest(values: np.ndarray, levels) -> np.ndarray:
    levels = np.asarray(levels, float)
    return levels[np.argmin(np.abs(np.asarray(values, float)[:, None] - levels[None, :]), axis=1)]


def predicted_er(score: np.ndarray, balance: bool) -> np.ndarray:
    """The predicted type: score > 0.5, or with ``balance`` the top-ranked half."""
    score = np.asarray(score, float)
    if not balance:
        return score > 0.5
    is_er = np.zeros(len(score), bool)
    is_er[np.argsort(-score, kind="stable")[: len(score) // 2]] = True
    return is_er


def balance_pairs(logit: np.ndarray, light: np.ndarray, light_model, levels: dict) -> np.ndarray:
    """ER logits shifted per light group, just enough that the group calls ER on a share of its events within
    ``BALANCE_TOLERANCE`` binomial standard deviations of half; a group already within them is left as it is.

    A group's membership comes from the events' light and so is never pure (a faint NR6 lands among the NR1 /
    ER3 group), and its two classes are balanced only in expectation: forcing exactly half flips correct
    calls once the shape already decides well; a classifier biased by many points is still pulled back.
    """
    is_er = logit > 0
    level = light_model.most_likely_level(light, is_er, levels)
    group = np.where(is_er, np.searchsorted(levels["ER"], level), np.searchsorted(levels["NR"], level))
    out = logit.copy()
    for g in np.unique(group):
        m = (group == g) & np.isfinite(logit)  # an unreadable image (NaN) moves no group
        n = int(m.sum())
        if n < MIN_GROUP:
            continue
        ranked = np.sort(logit[m])[::-1]
        called = int((ranked > 0).sum())
        slack = math.ceil(BALANCE_TOLERANCE * math.sqrt(n) / 2)
        target = min(max(called, n // 2 - slack), n - n // 2 + slack)
        if target != called:  # the cut between the target-th highest logit and the next
            out[group == g] -= (ranked[target - 1] + ranked[target]) / 2
    return out


def postprocess(energy: np.ndarray, score: np.ndarray, split: str | None, mode: str, balance: str = "none",
                light: np.ndarray | None = None, light_model=None, light_weight: float = 0.5,
                shape: np.ndarray | None = None):
    """(ER score, keV) to submit for one split; ``split`` is public_test, private_test or None (unknown).

    Modes none / snap / split keep the classifier's score and post-process the
    regressor's keV. Mode ``light`` needs each event's ``light`` and the
    training set's ``light_model``: the score becomes the split's posterior,
    logit(score) + ``light_weight`` x (light's ER-vs-NR log likelihood ratio
    over the levels the split allows; with the events' ``shape``, light's and
    shape's joint ratio), and the energy the most likely level of the type
    decided. ``light_weight`` 0 uses light for the energy alone.
    """
    energy, score = np.asarray(energy, float), np.asarray(score, float)
    if balance not in BALANCES:
        raise ValueError(f"unknown balance {balance!r}; use one of {BALANCES}")
    known = split in SPLIT_LEVELS  # an unknown folder: any level, and no balance can be assumed
    levels = SPLIT_LEVELS[split] if known else {"ER": list(ENERGIES), "NR": list(ENERGIES)}
    by_rank = balance == "split" and known
    if mode == "none":
        return score, energy
    if mode == "light":
        clipped = np.clip(score, 1e-7, 1 - 1e-7)
        logit = np.log(clipped) - np.log1p(-clipped) + light_weight * light_model.type_log_ratio(light, levels, shape)
        if balance == "pair" and known:
            logit = balance_pairs(logit, light, light_model, levels)
        score = expit(logit)
        return score, light_model.most_likely_level(light, predicted_er(score, by_rank), levels)
    if mode == "snap" or not known:
        return score, nearest(energy, ENERGIES)
    if mode != "split":
        raise ValueError(f"unknown post-processing mode {mode!r}; use one of {MODES}")
    is_er = predicted_er(score, by_rank)
    out = np.empty_like(energy)
    for particle, flag in (("ER", True), ("NR", False)):
        m = is_er == flag
        out[m] = nearest(energy[m], levels[particle])
    return score, out

"""The metric helpers every task shares: which validation value is better, and a ROC-AUC that tolerates one class."""
from __future__ import annotations

import math

import numpy as np


def better(new: float, best: float | None, higher_is_better: bool) -> bool:
    """Whether validation value ``new`` beats ``best`` (None: nothing yet, so the first epoch is always kept).

    A NaN or infinite value never beats a finite one, and any finite value beats a NaN best: a diverged
    epoch cannot become the kept checkpoint, and a first epoch that diverged is replaced by the next good one.
    """
    if best is None:
        return True
    if not math.isfinite(new):
        return False
    if not math.isfinite(best):
        return True
    return new > best if higher_is_better else new < best


def binary_auc(positive, score) -> float:
    """ROC-AUC of ``score`` for the boolean ``positive``; NaN when only one class is present (not an error:
    a small validation split or a one-class test file has no AUC)."""
    positive, score = np.asarray(positive, bool), np.asarray(score, float)
    if positive.all() or not positive.any():
        return float("nan")
    # the Mann-Whitney statistic: tied scores share their average rank, so a tie counts half (as a ROC curve does)
    order = np.argsort(score, kind="stable")
    _, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(len(score))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    n_pos = positive.sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(score) - n_pos)))

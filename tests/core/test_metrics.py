"""The shared metric helpers: the ROC-AUC every task reports, and which validation value is better."""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

from idao.metrics import better, binary_auc


def test_auc_is_scikit_learns_with_ties_counted_half():
    rng = np.random.default_rng(0)
    for n in (2, 7, 300):
        for _ in range(50):
            positive = rng.random(n) < 0.3
            positive[:2] = [True, False]  # both classes
            score = np.round(rng.random(n), 1)  # many ties
            assert math.isclose(binary_auc(positive, score), roc_auc_score(positive, score), abs_tol=1e-12)
    assert binary_auc([True, False, True], [0.5, 0.5, 0.5]) == 0.5
    assert math.isnan(binary_auc([True, True], [0.1, 0.2]))  # one class: no AUC, not an error


def test_a_diverged_epoch_never_becomes_the_best():
    assert better(0.5, None, True) and better(0.4, float("nan"), True) and not better(float("nan"), 0.4, True)
    assert better(0.3, 0.4, False) and not better(0.5, 0.4, False)

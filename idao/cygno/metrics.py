"""The IDAO metric and its parts. ER is the positive class."""
from __future__ import annotations

import numpy as np

from ..metrics import binary_auc


def roc_auc(is_er: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC with ER positive; NaN when only one class is present."""
    return binary_auc(is_er, score)


def mae(energy: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(energy, float) - np.asarray(pred, float))))


def idao_score(auc: float, mae_kev: float) -> float:
    """1000 x (ROC-AUC - MAE in keV), the leaderboard score."""
    return 1000.0 * (auc - mae_kev)


def summarize(is_er, energy, score, pred_energy) -> dict:
    """AUC, MAE, score, accuracy and per-class MAE of one labelled split."""
    is_er, energy = np.asarray(is_er, bool), np.asarray(energy, int)
    score, pred_energy = np.asarray(score, float), np.asarray(pred_energy, float)
    auc, err = roc_auc(is_er, score), mae(energy, pred_energy)
    per_class = {}
    for particle, flag in (("ER", True), ("NR", False)):
        for e in sorted(set(energy[is_er == flag])):
            m = (is_er == flag) & (energy == e)
            per_class[f"{particle}{e}"] = dict(n=int(m.sum()), mae=mae(energy[m], pred_energy[m]),
                                              accuracy=float(np.mean((score[m] > 0.5) == flag)))
    return dict(n=len(energy), auc=auc, mae=err, score=idao_score(auc, err),
                accuracy=float(np.mean((score > 0.5) == is_er)), per_class=per_class)

"""DAMIC-M metrics: accuracy, per-class precision / recall / F1 / support, ROC-AUC per class, box IoU."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..metrics import binary_auc


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes given as (row, col, height, width), row by row."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    top, left = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    bottom = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    right = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def one_vs_rest_auc(label: np.ndarray, probs: np.ndarray, j: int) -> float:
    return binary_auc(label == j, probs[:, j])


def classification_metrics(label: np.ndarray, probs: np.ndarray, classes) -> dict:
    """Accuracy, AUC (binary: of class 1; else macro one-vs-rest), confusion and the per-class table."""
    label = np.asarray(label, int)
    pred = probs.argmax(1)
    k = len(classes)
    precision, recall, f1, support = precision_recall_fscore_support(label, pred, labels=range(k), zero_division=0)
    per_class = {c: dict(precision=float(precision[j]), recall=float(recall[j]), f1=float(f1[j]),
                         support=int(support[j]), auc=one_vs_rest_auc(label, probs, j)) for j, c in enumerate(classes)}
    present = [j for j in range(k) if support[j] > 0]
    aucs = [per_class[classes[j]]["auc"] for j in present]
    auc = per_class[classes[1]]["auc"] if k == 2 else float(np.nanmean(aucs)) if aucs else float("nan")
    macro = {key: float(np.mean([per_class[classes[j]][key] for j in present])) for key in ("precision", "recall", "f1")}
    balanced = float(np.mean([per_class[classes[j]]["recall"] for j in present])) if present else float("nan")
    return dict(n=len(label), accuracy=float(np.mean(pred == label)), balanced_accuracy=balanced, auc=auc,
                macro=macro, per_class=per_class,
                confusion=confusion_matrix(label, pred, labels=range(k)).tolist())


def accuracy_by(values: np.ndarray, correct: np.ndarray, bins: int = 8) -> list[dict]:
    """Accuracy in quantile bins of ``values`` (energy, elongation): where the model fails."""
    values, correct = np.asarray(values, float), np.asarray(correct, bool)
    if len(values) == 0:
        return []
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2) if len(edges) > 1 \
        else np.zeros(len(values), int)
    rows = []
    for b in range(max(1, len(edges) - 1)):
        m = which == b
        if m.any():
            rows.append(dict(low=float(edges[b]), high=float(edges[min(b + 1, len(edges) - 1)]), n=int(m.sum()),
                             accuracy=float(correct[m].mean())))
    return rows

"""DAMIC-M report figures. Each function takes ``{split name: TrackResult}`` and writes one PNG."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..reporting import confusion_panel, grid, plt, roc_panel, save_figure
from .metrics import accuracy_by


@dataclass
class TrackResult:
    """Truth and predictions of one labelled set of events."""

    classes: tuple[str, ...]
    label: np.ndarray  # true class index
    probs: np.ndarray  # (N, classes)
    iou: np.ndarray  # per event with a track; NaN for noise-only frames
    energy: np.ndarray  # total eV
    elongation: np.ndarray  # box height x width, px


def plot_confusion(results: dict, path: Path) -> None:
    """Counts per (true, predicted) class; colours normalised per true class (row)."""
    fig, axes = grid(len(results), size=4.5)
    for ax, (name, r) in zip(axes, results.items()):
        m = np.zeros((len(r.classes), len(r.classes)), int)
        np.add.at(m, (r.label, r.probs.argmax(1)), 1)
        confusion_panel(ax, m, r.classes, r.classes, name)
    save_figure(fig, path)


def plot_roc(results: dict, path: Path, log_fpr: bool = False) -> None:
    """One-vs-rest ROC curve of every class, one panel per split (``log_fpr``: logarithmic false-positive axis)."""
    fig, axes = grid(len(results))
    for ax, (name, r) in zip(axes, results.items()):
        curves = [(c, r.label == j, r.probs[:, j]) for j, c in enumerate(r.classes)]
        roc_panel(ax, curves, f"{name}: one vs rest", log_fpr)
    save_figure(fig, path)


def plot_iou(results: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in results.items():
        values = r.iou[np.isfinite(r.iou)]
        if len(values):
            ax.hist(values, bins=20, range=(0, 1), histtype="step", label=f"{name} (mean {values.mean():.2f})")
    ax.set(xlabel="IoU of predicted and true box", ylabel="events", title="localisation")
    ax.legend()
    save_figure(fig, path)


def plot_accuracy_vs(results: dict, path: Path) -> None:
    """Accuracy in quantile bins of track energy and of elongation (box height x width)."""
    fig, axes = grid(2)
    for ax, attr, label in ((axes[0], "energy", "track energy [keV]"), (axes[1], "elongation", "box height x width [px]")):
        for name, r in results.items():
            values = getattr(r, attr) / (1000.0 if attr == "energy" else 1.0)
            rows = accuracy_by(values, r.probs.argmax(1) == r.label)
            centres = [np.sqrt(max(b["low"], 1e-3) * max(b["high"], 1e-3)) for b in rows]
            ax.plot(centres, [b["accuracy"] for b in rows], "o-", label=name)
        ax.set(xscale="log", xlabel=label, ylabel="accuracy", ylim=(0, 1.02))
        ax.legend()
    save_figure(fig, path)

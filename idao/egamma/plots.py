"""The e/gamma report's figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..reporting import grid, plot_roc_pair, plt, save_figure


def plot_roc(results: dict, path: Path) -> None:
    """Electron-positive ROC of every set ``{name: (y, p)}``: linear and log false-positive axes."""
    plot_roc_pair([(n, y == 1, p) for n, (y, p) in results.items()], path, "ROC, electron positive",
                  "false positive rate (photon called electron)", "true positive rate (electron)")


def plot_accuracy_curves(history: list[dict], best_epoch: int, path: Path) -> None:
    """Training and validation accuracy and loss per epoch, the kept epoch marked."""
    fig, axes = grid(2, size=5.0)
    epochs = [h["epoch"] + 1 for h in history]
    for ax, key in zip(axes, ("accuracy", "loss")):
        for split, style in (("train", "o-"), ("val", "s--")):
            if f"{split}_{key}" in history[0]:
                ax.plot(epochs, [h[f"{split}_{key}"] for h in history], style, ms=3,
                        label=f"{'training' if split == 'train' else 'validation'} {key}")
        if best_epoch >= 0:
            ax.axvline(best_epoch + 1, c="tab:green", ls=":", label=f"kept: epoch {best_epoch + 1}")
        ax.set(xlabel="epoch", ylabel=key, title=f"{key} per epoch")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_scores(results: dict, path: Path) -> None:
    """P(electron) per true class, one panel per set, normalised."""
    fig, axes = grid(len(results))
    for ax, (name, (y, p)) in zip(axes, results.items()):
        for label, text in ((1, "electrons"), (0, "photons")):
            ax.hist(p[y == label], bins=40, range=(0, 1), density=True, histtype="step", label=f"{text} (n={int((y == label).sum())})")
        ax.axvline(0.5, c="k", ls=":")
        ax.set(xlabel="P(electron)", ylabel="density", title=name)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_examples(images: np.ndarray, labels: np.ndarray, path: Path, per_class: int = 4) -> None:
    """A few images of each class, both channels (energy on a log scale, time)."""
    picks = [i for label in (1, 0) for i in np.flatnonzero(labels == label)[:per_class]]
    fig, axes = plt.subplots(2, len(picks), figsize=(1.9 * len(picks), 4.2), squeeze=False)
    for col, i in enumerate(picks):
        kind = "electron" if labels[i] == 1 else "photon"
        energy, time = images[i]
        axes[0, col].imshow(np.log10(np.maximum(energy, 1e-2)), cmap="viridis", vmin=-2, vmax=1.7)
        axes[0, col].set_title(f"{kind}\nenergy (log GeV)", fontsize=8)
        lim = max(float(np.abs(time).max()), 1e-3)
        axes[1, col].imshow(time, cmap="coolwarm", vmin=-lim, vmax=lim)
        axes[1, col].set_title("time (ns)", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)

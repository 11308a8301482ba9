"""CYGNO report figures. Each function takes ``{split name: SplitResult}`` and writes one PNG."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..reporting import confusion_panel, grid, plot_roc_pair, plt, save_figure
from .names import ENERGIES
from .postprocess import SPLIT_LEVELS, nearest


@dataclass
class SplitResult:
    """Truth and predictions of one labelled split."""

    is_er: np.ndarray
    energy: np.ndarray  # true keV
    score: np.ndarray  # submitted ER score
    raw_energy: np.ndarray  # regressor output, keV
    final_energy: np.ndarray  # after post-processing
    light: np.ndarray  # excess counts around the brightest spot
    raw_score: np.ndarray  # the classifier's ER probability, before post-processing
    shape: np.ndarray  # (N, 2) spot width and elongation (light.measure_spots)

    @property
    def regressed(self) -> bool:
        """Whether the regressor ran for this split (a submission in mode light leaves raw_energy NaN)."""
        return bool(np.isfinite(self.raw_energy).any())


def plot_roc(results: dict, path: Path) -> None:
    """ER-positive ROC of every split: linear and log false-positive axes side by side."""
    plot_roc_pair([(name, r.is_er, r.score) for name, r in results.items()], path, "ROC, ER positive",
                  "false positive rate (NR called ER)", "true positive rate (ER)")


def plot_energy_correlation(results: dict, path: Path) -> None:
    fig, axes = grid(len(results))
    for ax, (name, r) in zip(axes, results.items()):
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, len(r.energy))
        for flag, colour, label in ((True, "tab:blue", "ER"), (False, "tab:red", "NR")):
            m = r.is_er == flag
            ax.scatter(r.energy[m] + jitter[m], r.raw_energy[m], s=4, alpha=0.4, c=colour, label=label)
        ax.plot([0, 32], [0, 32], "k:", lw=0.8)
        ax.set(xlabel="true energy [keV]", ylabel="predicted energy (raw) [keV]", title=name)
        ax.legend()
    save_figure(fig, path)


def plot_energy_comparison(results: dict, path: Path) -> None:
    """Mean and spread of the raw prediction per true class: bias shows up as distance from the diagonal."""
    fig, axes = grid(len(results))
    for ax, (name, r) in zip(axes, results.items()):
        for flag, colour, label, shift in ((True, "tab:blue", "ER", -0.3), (False, "tab:red", "NR", 0.3)):
            levels = sorted(set(r.energy[r.is_er == flag]))
            means = [r.raw_energy[(r.is_er == flag) & (r.energy == e)].mean() for e in levels]
            stds = [r.raw_energy[(r.is_er == flag) & (r.energy == e)].std() for e in levels]
            ax.errorbar(np.array(levels) + shift, means, yerr=stds, fmt="o", c=colour, label=label, capsize=3)
        ax.plot([0, 32], [0, 32], "k:", lw=0.8)
        ax.set(xlabel="true energy [keV]", ylabel="predicted energy, mean ± std [keV]", title=name)
        ax.legend()
    save_figure(fig, path)


def energy_range(level: float) -> tuple[float, float]:
    """The histogram range for true energy ``level``: wide enough for a factor-2 miss either way, at least
    +-3 keV, so a 1 keV level is not squeezed into two bins of a 0-40 axis."""
    half = max(3.0, level)
    return max(0.0, level - half), level + half


def plot_energy_histograms(results: dict, folder: Path) -> list[Path]:
    """Per keV level present in any split: the raw predicted energies, each (split, type) normalised to unit
    area so a small split shows its shape beside a large one; the range follows the level."""
    paths = []
    levels = sorted({int(e) for r in results.values() for e in r.energy})
    for level in levels:
        fig, ax = plt.subplots(figsize=(6, 4))
        lo, hi = energy_range(level)
        for name, r in results.items():
            for flag, label in ((True, "ER"), (False, "NR")):
                m = (r.energy == level) & (r.is_er == flag)
                if m.sum() >= 1:
                    outside = np.mean((r.raw_energy[m] < lo) | (r.raw_energy[m] > hi))
                    ax.hist(np.clip(r.raw_energy[m], lo, hi), bins=40, range=(lo, hi), density=True,
                            histtype="step", label=f"{name} {label} (n={m.sum()}, {outside:.0%} at the edges)")
        ax.axvline(level, c="k", ls=":")
        ax.set(xlabel="predicted energy (raw) [keV]; outside the range: piled at the edges",
               ylabel="fraction per keV (unit area)", title=f"true energy {level} keV")
        ax.legend(fontsize=8)
        path = folder / f"energy_hist_{level}keV.png"
        save_figure(fig, path)
        paths.append(path)
    return paths


def plot_confusion(results: dict, path: Path) -> None:
    """True class vs predicted class (type from score > 0.5, energy as submitted, snapped to a level); each row
    normalised to its true class (the counts are written in the cells)."""
    fig, axes = grid(len(results), size=5)
    for ax, (name, r) in zip(axes, results.items()):
        true = [f"{'ER' if f else 'NR'}{int(e)}" for f, e in zip(r.is_er, r.energy)]
        snapped = nearest(r.final_energy, ENERGIES)
        pred = [f"{'ER' if s > 0.5 else 'NR'}{int(e)}" for s, e in zip(r.score, snapped)]
        labels = [f"{p}{e}" for p in ("ER", "NR") for e in ENERGIES]
        rows = [lab for lab in labels if lab in true]
        cols = [lab for lab in labels if lab in pred or lab in true]
        m = np.zeros((len(rows), len(cols)), int)
        for t, p in zip(true, pred):
            if t in rows and p in cols:
                m[rows.index(t), cols.index(p)] += 1
        confusion_panel(ax, m, rows, cols, name, fontsize=7)
    save_figure(fig, path)


def plot_split_scores(splits: dict, path: Path) -> None:
    """Per split (labelled or not): the submitted ER score with the 0.5 cut and the fraction called ER.

    ``splits``: ``{name: DataFrame}`` with columns ``score`` and, where labelled, ``true`` (the class name).
    The classes are balanced within a split, so about half should be called ER.
    """
    fig, axes = grid(len(splits), size=5.0)
    for ax, (name, part) in zip(axes, splits.items()):
        bins = np.linspace(0, 1, 41)
        if "true" in part and part["true"].notna().all():
            for cls, group in part.groupby("true"):
                ax.hist(group["score"], bins=bins, histtype="step", label=cls)
            ax.legend(fontsize=7)
        else:
            ax.hist(part["score"], bins=bins, color="tab:gray")
        ax.axvline(0.5, c="k", ls=":")
        ax.set(yscale="log", xlabel="submitted ER score", ylabel="events",
               title=f"{name}\n{np.mean(part['score'] > 0.5):.1%} called ER (expect ~50 %)")
    save_figure(fig, path)


def plot_split_energies(splits: dict, path: Path) -> None:
    """Per split: how many events got each submitted energy; the split's allowed levels are marked."""
    fig, axes = grid(len(splits))
    for ax, (name, part) in zip(axes, splits.items()):
        values, counts = np.unique(np.round(part["energy"], 3), return_counts=True)
        ax.bar(range(len(values)), counts, color="tab:blue")
        ax.set_xticks(range(len(values)), [f"{v:g}" for v in values], rotation=90)
        allowed = SPLIT_LEVELS.get(name)
        note = "allowed: " + ", ".join(f"{p} {allowed[p]}" for p in allowed) if allowed else "any level"
        ax.set(xlabel="submitted energy [keV]", ylabel="events", title=f"{name}\n{note}")
    save_figure(fig, path)


def plot_split_shapes(splits: dict, light_model, path: Path) -> None:
    """Per split: every event's spot width against its light, coloured by the submitted type, beside the light
    and shape models' expectation for each level the split allows (ER circles, NR squares, +-1 sigma bars).

    What a user can check without labels: if the test events do not sit around the marks, the models were
    fitted on data unlike these images (another detector setting, a simulator) and the decoding is suspect.
    """
    fig, axes = grid(len(splits), size=5.0)
    for ax, (name, part) in zip(axes, splits.items()):
        called_er = part["score"].to_numpy(float) > 0.5
        for flag, colour, label in ((True, "tab:red", "called ER"), (False, "tab:blue", "called NR")):
            m = called_er == flag
            ax.scatter(np.maximum(part["light"][m], 30), part["width"][m], s=3, alpha=0.4, c=colour, label=label)
        levels = SPLIT_LEVELS.get(name, {"ER": list(ENERGIES), "NR": list(ENERGIES)})
        for particle, marker, t in (("ER", "o", light_model.er), ("NR", "s", light_model.nr)):
            for kev in levels[particle]:
                light = float(t.mean(kev))
                width = light_model.shape.at(particle, kev, np.array([light]))[0]
                ax.errorbar(light, width[0], yerr=np.sqrt(width[2]), fmt=marker, mfc="none", mec="k", ecolor="k", ms=8)
                ax.annotate(f"{particle}{kev}", (light, width[0]), textcoords="offset points", xytext=(6, 6), fontsize=7)
        ax.set(xscale="log", xlabel="light [counts]", ylabel="spot width [px]", ylim=(0, 10), title=name)
        ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)

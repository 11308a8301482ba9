"""The IceCube report's figures: angular errors, errors against the event's properties, a 3D event display."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..reporting import confusion_panel, grid, plt, save_figure


def plot_error_histograms(errors: dict, path: Path) -> None:
    """``{set: (submitted errors, line-fit errors)}`` in degrees, one panel per set."""
    fig, axes = grid(len(errors))
    for ax, (name, (net, line)) in zip(axes, errors.items()):
        bins = np.linspace(0, 180, 61)
        ax.hist(np.degrees(net), bins, histtype="step", label=f"submitted (mean {net.mean():.3f} rad)")
        ax.hist(np.degrees(line), bins, histtype="step", label=f"line fit (mean {line.mean():.3f} rad)")
        ax.set(xlabel="angular error (degrees)", ylabel="events", title=name)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def _binned(ax, x, err, label, bins):
    idx = np.clip(np.digitize(x, bins) - 1, 0, len(bins) - 2)
    centres, means = [], []
    for b in range(len(bins) - 1):
        if (idx == b).any():
            centres.append(0.5 * (bins[b] + bins[b + 1]))
            means.append(err[idx == b].mean())
    ax.plot(centres, means, "o-", ms=3, label=label)


def plot_error_vs(events, net: np.ndarray, fit: np.ndarray, n_pulses: np.ndarray, path: Path, name: str) -> None:
    """Mean angular error of the submitted directions (``net``) and the line fit (``fit``) against true zenith and number of
    pulses, and per event type when known."""
    zenith = np.degrees(np.arccos(np.clip(events.direction[:, 2], -1, 1)))
    types = events.extra.get("event_type")
    fig, axes = grid(3 if types is not None else 2)
    for err, label in ((net, "submitted"), (fit, "line fit")):
        _binned(axes[0], zenith, err, label, np.linspace(0, 180, 10))
        _binned(axes[1], n_pulses, err, label, np.unique(np.quantile(n_pulses, np.linspace(0, 1, 9))))
    axes[0].set(xlabel="true zenith (degrees; > 90: up-going)", ylabel="mean angular error (rad)", title=f"{name}: vs zenith")
    axes[1].set(xlabel="pulses in the event", ylabel="mean angular error (rad)", xscale="log", title="vs number of pulses")
    if types is not None:
        kinds = sorted(set(types))
        x = np.arange(len(kinds))
        axes[2].bar(x - 0.2, [net[types == k].mean() for k in kinds], 0.4, label="submitted")
        axes[2].bar(x + 0.2, [fit[types == k].mean() for k in kinds], 0.4, label="line fit")
        axes[2].set_xticks(x, kinds)
        axes[2].set(ylabel="mean angular error (rad)", title="by event type")
    for ax in axes:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_event(events, i: int, pred: np.ndarray, path: Path) -> None:
    """One event in 3D: hit sensors coloured by time and sized by charge, the true and predicted directions
    drawn through the charge-weighted centre (arrows point to where the neutrino came from)."""
    pos, time, charge, _ = events.pulses(i)
    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d", computed_zorder=False)  # draw the directions over the sensors
    g = events.geometry
    ax.scatter(g[:, 0], g[:, 1], g[:, 2], s=0.3, c="0.85")
    sc = ax.scatter(pos[:, 0], pos[:, 1], pos[:, 2], c=time, s=8 + 20 * np.sqrt(charge), cmap="viridis")
    centre = np.average(pos, axis=0, weights=np.maximum(charge, 1e-3))
    for vec, colour, label in ((events.direction[i], "tab:red", "true"), (pred[i], "tab:blue", "predicted")):
        end = centre + 600 * np.asarray(vec) / np.linalg.norm(vec)
        ax.plot(*np.column_stack([centre, end]), color=colour, lw=2.5, zorder=10, label=f"{label} direction")
        ax.scatter(*end, color=colour, s=60, marker="o", zorder=11)
    fig.colorbar(sc, ax=ax, shrink=0.6, label="time (ns)")
    kind = events.extra.get("event_type")
    ax.set(xlabel="x (m)", ylabel="y (m)", zlabel="z (m)",
           title=f"event {events.event_id[i]}" + (f" ({kind[i]})" if kind is not None else "") + f", {len(time)} pulses")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def plot_classes(m: dict, path: Path, name: str) -> None:
    """The event classifier's confusion matrix (where the truth is known) and the submitted directions' mean angular error
    per predicted class and per rule-based class: how much a cut to the easy events buys."""
    fig, axes = grid(2 if "classes" in m else 1, size=5)
    if "classes" in m:
        labels = m["classes"]["labels"]
        confusion_panel(axes[0], np.array(m["classes"]["confusion"]), labels, labels,
                        f"{name}: event classes ({m['classes']['accuracy']:.3f} right)")
    groups = {f"predicted {k}": v for k, v in m.get("by_predicted_class", {}).items()} | m["by_rule"]
    ax = axes[-1]
    names = [k for k, v in groups.items() if v["n"]]
    ax.barh(range(len(names)), [groups[k]["mean_angular_error"] for k in names])
    ax.set_yticks(range(len(names)), [f"{k} ({groups[k]['n']})" for k in names])
    ax.axvline(m["mean_angular_error"], color="k", ls=":", lw=1, label=f"all events ({m['mean_angular_error']:.3f})")
    ax.invert_yaxis()
    ax.set(xlabel="submitted mean angular error (rad)", title=f"{name}: error per class")
    ax.legend(fontsize=8)
    save_figure(fig, path)

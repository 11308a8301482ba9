"""What every task's report shares: the figure helpers, learning curves, and the report folder itself.

A report folder holds ``report.log`` (the text a person reads), ``metrics.json``
(the same numbers for programs), ``config.ini`` (what produced them), the
figures, and ``index.html`` showing all of it; every file is written atomically.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .atomic import atomic_path, write_text  # noqa: E402
from .checkpoint import load_checkpoint  # noqa: E402


def save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)


def grid(n: int, size=4.2):
    """A row of ``n`` square panels: (figure, axes)."""
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False)
    return fig, axes[0]


def example_grid(images: np.ndarray, captions: list[str]):
    """A row of images (N, H, W) with a caption under each (prediction and truth): a figure."""
    fig, axes = grid(len(images), size=2.2)
    for ax, image, caption in zip(axes, images, captions):
        ax.imshow(image, cmap="viridis")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_xlabel(caption, fontsize=8)
    return fig


def confusion_panel(ax, counts: np.ndarray, rows, cols, title: str, fontsize: int = 9) -> None:
    """Counts per (true row, predicted column), written in the cells; colours normalised per true class (row)."""
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(counts)):
        ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=fontsize,
                color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=90 if len(cols) > 4 else 45)
    ax.set_yticks(range(len(rows)), rows)
    ax.set(xlabel="predicted", ylabel="true", title=title)


def roc_panel(ax, curves, title: str, log_fpr: bool = False, xlabel: str = "false positive rate",
              ylabel: str = "true positive rate") -> None:
    """ROC curves ``[(label, is_positive, score), ...]`` on one panel, AUC in the legend.

    With ``log_fpr`` the false-positive axis is logarithmic from 1e-3: the region
    that matters when the classes separate well (AUC > 0.99) and a linear axis
    shows only the top-left corner.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    for label, positive, score in curves:
        positive = np.asarray(positive, bool)
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = roc_curve(positive, score)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc_score(positive, score):.4f})")
    if log_fpr:
        grid_fpr = np.logspace(-3, 0, 50)
        ax.plot(grid_fpr, grid_fpr, "k:", lw=0.8)
        ax.set(xscale="log", xlim=(1e-3, 1))
    else:
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel=xlabel + (" (log)" if log_fpr else ""), ylabel=ylabel, title=title)
    ax.legend(fontsize=8)


def plot_roc_pair(curves, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    """One figure of two ``roc_panel``s over the same curves: linear and logarithmic false-positive axes."""
    fig, axes = grid(2, size=5.0)
    for ax, log_fpr in zip(axes, (False, True)):
        roc_panel(ax, curves, title, log_fpr, xlabel=xlabel, ylabel=ylabel)
    save_figure(fig, path)


def load_histories(run, names) -> dict:
    """``{name: (history, metric name, best epoch)}`` from each model's last checkpoint, where there is one; for
    fold models (``run.members``) one entry per fold, ``"<name> fold<k>"``."""
    out = {}
    for name in names:
        members = run.members(name)
        for k, best in enumerate(members):
            path = best.with_name(f"{name}_last.pt")
            if path.exists():
                state = load_checkpoint(path)
                out[name if len(members) == 1 else f"{name} fold{k}"] = (
                    state["history"], state.get("metric_name", "metric"), state.get("best_epoch", -1))
    return out


def plot_learning_curves(histories: dict, path: Path) -> None:
    """Training loss and validation metric per epoch, one panel per model."""
    fig, axes = grid(max(1, len(histories)), size=5.2)
    for ax, (name, (history, metric_name, best_epoch)) in zip(axes, histories.items()):
        epochs = [h["epoch"] + 1 for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], "o-", ms=3, label="train loss")
        ax.set(xlabel="epoch", ylabel="train loss", title=name)
        ax2 = ax.twinx()
        ax2.plot(epochs, [h["val_metric"] for h in history], "s--", ms=3, c="tab:orange", label=f"validation {metric_name}")
        if best_epoch >= 0:
            ax.axvline(best_epoch + 1, c="tab:green", ls=":", label=f"kept: epoch {best_epoch + 1}")
        ax2.set_ylabel(f"validation {metric_name}")
        ax.legend(loc="upper left", fontsize=8)
        ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout(w_pad=3.0)  # room for each panel's right-hand axis
    save_figure(fig, path)


def strict_json(value):
    """NaN and infinities -> null, recursively: metrics.json stays valid JSON for every parser."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def html_table(header: list[str], rows: list[list]) -> str:
    """A plain HTML table; floats shown with 4 significant digits."""
    def cell(v):
        return f"{v:.4g}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(folder: Path, log_text: str, metrics: dict, config_ini: str, images: list[Path],
                 title: str, provenance: dict | None = None, headline: str = "", banner: str = "",
                 tables: list[tuple[str, list[str], list[list]]] = ()) -> None:
    """``report.log``, ``metrics.json``, ``config.ini`` and ``index.html`` in ``folder``.

    The page opens with the ``headline`` (the numbers a user came for) and the ``banner`` (e.g. SIMULATED
    DATA), then the metric ``tables`` (title, header, rows), every figure, and the full log.
    """
    write_text(folder / "report.log", log_text)
    payload = {**metrics, "provenance": provenance} if provenance else metrics
    write_text(folder / "metrics.json", json.dumps(strict_json(payload), indent=2, allow_nan=False))
    write_text(folder / "config.ini", config_ini)
    figures = "\n".join(f'<figure><img src="{p.name}" alt="{p.stem}"><figcaption>{p.stem}</figcaption></figure>'
                        for p in images)
    sections = "\n".join(f"<h3>{html.escape(name)}</h3>{html_table(header, rows)}" for name, header, rows in tables)
    made = (f"<p class=small>idao {html.escape(str(provenance.get('idao')))}, commit "
            f"{html.escape(str(provenance.get('git_commit')))}, {html.escape(str(provenance.get('date')))}, "
            f"{html.escape(str(provenance.get('device')))} ({html.escape(str(provenance.get('cpu')))})</p>") if provenance else ""
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:110em}} img{{max-width:100%}}
figure{{display:inline-block;margin:1em;vertical-align:top}} table{{border-collapse:collapse;margin:0.5em 0 1em}}
td,th{{border:1px solid #ccc;padding:0.2em 0.6em;text-align:right}} th{{background:#f3f3f3}}
.headline{{font-size:1.6em;font-weight:bold}} .banner{{background:#fff3cd;border:1px solid #e0c060;padding:0.4em 0.8em;
display:inline-block;font-weight:bold}} .small{{color:#666;font-size:0.85em}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p class=headline>{html.escape(headline)}</p>{f'<p class=banner>{html.escape(banner)}</p>' if banner else ''}
{sections}
{figures}
<h3>Log</h3><pre>{html.escape(log_text)}</pre>
<p>Config: <a href="config.ini">config.ini</a>; numbers: <a href="metrics.json">metrics.json</a>.</p>{made}</body></html>
"""
    write_text(folder / "index.html", page)

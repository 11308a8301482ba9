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


def load_histories(checkpoint_dir: Path, names) -> dict:
    """``{name: (history, metric name)}`` from each model's last checkpoint, where there is one."""
    out = {}
    for name in names:
        path = Path(checkpoint_dir) / f"{name}_last.pt"
        if path.exists():
            state = load_checkpoint(path)
            out[name] = (state["history"], state.get("metric_name", "metric"))
    return out


def plot_learning_curves(histories: dict, path: Path) -> None:
    """Training loss and validation metric per epoch, one panel per model."""
    fig, axes = grid(max(1, len(histories)))
    for ax, (name, (history, metric_name)) in zip(axes, histories.items()):
        epochs = [h["epoch"] + 1 for h in history]
        ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
        ax.set(xlabel="epoch", ylabel="train loss", title=name)
        ax2 = ax.twinx()
        ax2.plot(epochs, [h["val_metric"] for h in history], "s--", c="tab:orange", label="validation metric")
        ax2.set_ylabel(f"validation {metric_name}")
        ax.legend(loc="upper left")
        ax2.legend(loc="upper right")
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


def write_report(folder: Path, log_text: str, metrics: dict, config_ini: str, images: list[Path],
                 title: str, provenance: dict | None = None) -> None:
    """``report.log``, ``metrics.json``, ``config.ini`` and ``index.html`` (text, then every figure) in ``folder``."""
    write_text(folder / "report.log", log_text)
    payload = {**metrics, "provenance": provenance} if provenance else metrics
    write_text(folder / "metrics.json", json.dumps(strict_json(payload), indent=2, allow_nan=False))
    write_text(folder / "config.ini", config_ini)
    figures = "\n".join(f'<figure><img src="{p.name}" alt="{p.stem}"><figcaption>{p.stem}</figcaption></figure>'
                        for p in images)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} img{{max-width:100%}} figure{{display:inline-block;margin:1em}}</style>
</head><body><h1>{html.escape(title)}</h1><pre>{html.escape(log_text)}</pre>
{figures}
<p>Config: <a href="config.ini">config.ini</a>; numbers: <a href="metrics.json">metrics.json</a>.</p></body></html>
"""
    write_text(folder / "index.html", page)

"""Model cards: what a user of a model outside idao (an ONNX export, a shipped model) needs to know about it.

Everything comes from the checkpoint itself (its config, history and provenance), so a card cannot disagree
with the model it describes; a caller adds the sections only it knows (preprocessing, the rebuild command).
"""
from __future__ import annotations


def model_card(task: str, name: str, state: dict, sections: dict[str, list[str]]) -> str:
    """Markdown: data, metrics, intended use, then ``sections`` (title -> lines), then provenance."""
    config, history = state.get("config", {}), state.get("history", [])
    best = history[state["best_epoch"]] if history and state.get("best_epoch", -1) >= 0 else {}
    data = {k: v for k, v in config.get(task, {}).items()
            if "simulate" in k or k in ("root", "train", "test", "classes", "packed_labels")}
    lines = [f"# {task} / {name}", "",
             f"idao's `{state.get('model_name')}` model `{name}` of task `{task}`.", "",
             "## Data", "", "Trained with these data settings (where no data was at the path and a `simulate_*` "
             "setting is above zero, the detector's simulator wrote it there: simulated, not real):", "",
             *[f"- `{task}.{k}` = `{v}`" for k, v in data.items()], f"- `train.seed` = `{config.get('train', {}).get('seed')}`",
             "", "## Metrics", "",
             f"- best validation {state.get('metric_name', 'metric')}: {state.get('best')} (epoch "
             f"{state.get('best_epoch', -1) + 1} of {len(history)})",
             *[f"- {k} at that epoch: {v}" for k, v in best.items() if k not in ("epoch", "val_metric")], "",
             "Test figures and their worst case over seeds and simulator settings: idao's benchmark pages "
             "(docs/benchmarks/). A score on simulated data is not a score on real data.", "",
             "## Intended use", "",
             "Inference on inputs prepared as idao prepares them, from the detector these data settings describe; "
             "not a replacement for validation on an experiment's own data.", ""]
    for title, body in sections.items():
        lines += [f"## {title}", "", *body, ""]
    lines += ["## Provenance", "", *[f"- {k}: {v}" for k, v in state.get("provenance", {}).items()], ""]
    return "\n".join(lines)

"""The three jobs for ``task.name = damic``: train, predict (CSV), report.

They mirror the IDAO ones and share their machinery: ``engine.fit`` trains,
checkpoints are the same atomic, pickle-free files (``damic_best.pt`` /
``damic_last.pt``, with the window and the training-set standardisation inside
the saved head), outputs carry the resolved config.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
from ..atomic import atomic_path, write_text
from ..checkpoint import load_checkpoint
from ..data import stratified_split
from ..distributed import current, main_process_first
from ..engine import checkpoint_path, fit, load_trained, make_runtime, predict_outputs, training_runtime
from ..errors import ConfigError, DataError
from ..plots import plot_learning_curves
from ..report import write_html
from .head import TrackHead, fit_stats, fit_window
from .io import CLASS_NAMES, Events, concat, read_events
from .metrics import accuracy_by, classification_metrics, iou
from .plots import TrackResult, plot_accuracy_vs, plot_confusion, plot_iou, plot_roc

COMPAT_KEYS = ("classes", "window", "bin", "log_scale", "add_noise")  # a checkpoint must match these


def names(text: str, key: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in str(text).split(",") if t.strip())
    if not items:
        raise ConfigError(f"damic.{key} is empty")
    return items


def model_classes(dcfg) -> tuple[str, ...]:
    classes = names(dcfg.classes, "classes")
    unknown = [c for c in classes if c not in CLASS_NAMES]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ConfigError(f"damic.classes = {dcfg.classes!r}: expected two or more distinct names of {CLASS_NAMES}")
    return classes


def parse_window(text, bin_factor: int) -> tuple[int, int] | None:
    """None for ``auto``; else (H, W) from ``HxW``, a multiple of ``bin``."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"damic.window = {text!r}: expected auto or HxW, e.g. 128x128") from None
    if h % bin_factor or w % bin_factor or h <= 0 or w <= 0:
        raise ConfigError(f"damic.window = {text!r}: both sides must be positive multiples of damic.bin ({bin_factor})")
    return h, w


def compat_settings(cfg) -> dict:
    return {"damic": {k: getattr(cfg.damic, k) for k in COMPAT_KEYS}}


def sources(text) -> list[str]:
    return [s.strip() for s in str(text).split(",") if s.strip()]


def load_events(text, dcfg, labelled: bool = True, classes: tuple[str, ...] | None = None) -> Events:
    """All events of the comma-separated sources in ``text``; with ``classes``, only those (the rest counted)."""
    parts = [read_events(s, names(dcfg.packed_labels, "packed_labels"), labelled) for s in sources(text)]
    if not parts:
        raise ConfigError("no DAMIC data to read: damic.train / damic.test is empty")
    events = concat(parts)
    if classes is None:
        return events
    events, dropped = events.select(classes)
    if dropped and current().main:
        print(f"{text}: left out events of classes not in damic.classes: "
              + ", ".join(f"{c or 'unlabelled'} {n}" for c, n in dropped.items()))
    if len(events) == 0:
        raise DataError(f"{text}: no events of the classes {', '.join(classes)}")
    return events


def ensure_data(dcfg) -> None:
    """With no data at ``damic.train`` and ``simulate_events`` > 0, simulate a train/ and test/ pair first."""
    train = Path(sources(dcfg.train)[0]) if sources(dcfg.train) else None
    if train is None or train.exists() or dcfg.simulate_events <= 0:
        return
    from .simulate import simulate_dataset

    print(f"No DAMIC data at {train}: simulating {dcfg.simulate_events} events per class into {train.parent} "
          f"(seed {dcfg.simulate_seed}). Set damic.train to use real data.")
    simulate_dataset(train.parent, dcfg.simulate_events, dcfg.simulate_seed)


def prepare(cfg) -> tuple[Events, np.ndarray, np.ndarray]:
    """Training events and their stratified (train, val) indices: the same for train and report."""
    with main_process_first():
        ensure_data(cfg.damic)
    events = load_events(cfg.damic.train, cfg.damic, classes=model_classes(cfg.damic))
    train_idx, val_idx = stratified_split(events.particle, cfg.damic.val_fraction, cfg.train.seed)
    return events, train_idx, val_idx


def make_head(dcfg, train: Events) -> TrackHead:
    """The head for ``train``: its window (unless fixed) and its standardisation, measured on it alone."""
    window = parse_window(dcfg.window, dcfg.bin) or fit_window(train, dcfg.bin)
    if dcfg.box_target not in ("corner", "centre_log"):
        raise ConfigError(f"damic.box_target = {dcfg.box_target!r}: expected corner or centre_log")
    head = TrackHead(model_classes(dcfg), window, dcfg.bin, dcfg.log_scale, dcfg.add_noise, dcfg.augment,
                     dcfg.box_weight, dcfg.box_target)
    mean, std = fit_stats(head, train)
    return dataclasses.replace(head, mean=mean, std=std)


def train_model(cfg, train: Events, val: Events, rt, name: str = "damic") -> dict:
    head = make_head(cfg.damic, train)
    without_noise = sum(n is None and p != "noise" for n, p in zip(train.noise, train.particle))
    if head.add_noise and without_noise and rt.dist.main:
        print(f"warning: damic.add_noise is on but {without_noise} training events have no noise frame "
              "(packed files carry none); they are used as they are")
    if rt.dist.main:
        print(f"{name}: window {head.window[0]}x{head.window[1]} px, bin {head.bin}, "
              f"standardisation mean {head.mean:.4g} std {head.std:.4g} (training set)")
    return fit(name, cfg.damic, head, train, val, rt, cfg, compat_settings(cfg))


def train(cfg) -> list[dict]:
    with training_runtime(cfg) as rt:
        events, train_idx, val_idx = prepare(cfg)
        if rt.dist.main:
            counts = ", ".join(f"{c} {n}" for c, n in zip(*np.unique(events.particle, return_counts=True)))
            print(f"DAMIC events: {len(events)} ({counts}); training on {len(train_idx)}, validating on {len(val_idx)}")
            write_text(Path(cfg.train.checkpoint_dir) / "damic_config.ini", cfg.to_ini())
        return [train_model(cfg, events.subset(train_idx), events.subset(val_idx), rt)]


def load_model(cfg, rt, name: str = "damic"):
    """The best checkpoint ``<name>_best.pt`` and the head (window, statistics) it was trained with."""
    return load_trained(name, cfg, cfg.damic, compat_settings(cfg), TrackHead, rt)


def frame_boxes(head: TrackHead, events: Events, box_fraction: np.ndarray) -> np.ndarray:
    """Predicted boxes (fractions of the centred window) -> frame pixels: row, col, height, width."""
    start, _, offset = head.placement(events, np.arange(len(events)), None)
    px = box_fraction * np.tile(np.array(head.window, dtype=float), 2)
    origin = events.boxes[:, :2] + start - offset
    return np.column_stack([origin + px[:, :2], px[:, 2:]])


def predictions(model, head: TrackHead, events: Events, rt, batch_size: int = 256) -> pd.DataFrame:
    """One row per event: id, class probabilities, predicted class, box in frame pixels."""
    pred = head.predict(predict_outputs(model, head, events, batch_size, rt))
    n = len(head.classes)
    table = pd.DataFrame({"id": events.ids})
    for j, c in enumerate(head.classes):
        table[f"p_{c}"] = pred[:, j]
    table["predicted"] = np.array(head.classes)[pred[:, :n].argmax(1)]
    box = frame_boxes(head, events, pred[:, n:])
    for j, col in enumerate(BOX_COLUMNS):
        table[col] = box[:, j]
    return table


BOX_COLUMNS = ("box_row", "box_col", "box_height", "box_width")


def generate(cfg) -> pd.DataFrame:
    """Predict every event of ``damic.test`` and write the predictions CSV atomically, config beside it."""
    if not sources(cfg.damic.test):
        raise ConfigError("damic.test is empty: name the files or folders to predict")
    rt = make_runtime(cfg)
    model, head = load_model(cfg, rt)
    events = load_events(cfg.damic.test, cfg.damic, labelled=False)
    table = predictions(model, head, events, rt)
    probs = table[[f"p_{c}" for c in head.classes]].to_numpy()
    if not np.isfinite(table[list(BOX_COLUMNS)].to_numpy()).all() or not np.allclose(probs.sum(1), 1, atol=1e-4):
        raise DataError("predictions are not finite probabilities and boxes; refusing to write them")
    out = Path(cfg.damic.output)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    write_text(out.with_suffix(".config.ini"), cfg.to_ini())
    counts = ", ".join(f"{c} {n}" for c, n in table["predicted"].value_counts().items())
    print(f"wrote {out}: {len(table)} events (predicted {counts})")
    return table


def track_result(head: TrackHead, events: Events, table: pd.DataFrame) -> TrackResult:
    """Truth of ``events`` beside the predictions in ``table`` (same order)."""
    box = table[list(BOX_COLUMNS)].to_numpy(float)
    overlap = np.where(events.particle != "noise", iou(box, events.boxes), np.nan)
    return TrackResult(head.classes, events.label, table[[f"p_{c}" for c in head.classes]].to_numpy(float), overlap,
                       events.energy, events.elongation.astype(float))


def test_results(cfg, head: TrackHead) -> dict:
    """Labelled test sources scored from the predictions CSV itself (what a user would hand on)."""
    out = Path(cfg.damic.output)
    if not out.exists() or not sources(cfg.damic.test):
        return {}
    table = pd.read_csv(out, dtype={"id": str})
    missing = [c for c in ["id", *(f"p_{c}" for c in head.classes), *BOX_COLUMNS] if c not in table.columns]
    if missing:
        raise DataError(f"{out}: columns {missing} missing; it was not written for classes {','.join(head.classes)}")
    results = {}
    for source in sources(cfg.damic.test):
        events, _ = read_events(source, names(cfg.damic.packed_labels, "packed_labels"), labelled=False).select(head.classes)
        if len(events) == 0:
            continue  # unlabelled data
        rows = table.set_index("id").reindex(events.ids)
        if rows["predicted"].isna().any():
            raise DataError(f"{out}: no prediction for {int(rows['predicted'].isna().sum())} events of {source}; "
                            "run generate_submission.py again")
        results[Path(source).name] = track_result(head, events, rows.reset_index())
    return results


def summarize(r: TrackResult) -> dict:
    m = classification_metrics(r.label, r.probs, r.classes)
    correct = r.probs.argmax(1) == r.label
    ious = r.iou[np.isfinite(r.iou)]
    m.update(mean_iou=float(ious.mean()) if len(ious) else float("nan"),
             accuracy_by_energy_kev=accuracy_by(r.energy / 1000.0, correct),
             accuracy_by_elongation_px=accuracy_by(r.elongation, correct))
    return m


def format_log(metrics: dict, note: str) -> str:
    lines = [note, ""]
    for split, m in metrics.items():
        lines.append(f"[{split}] n={m['n']}  accuracy={m['accuracy']:.4f}  AUC={m['auc']:.4f}  mean IoU={m['mean_iou']:.3f}")
        lines.append(f"    {'class':>9} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>7} {'AUC':>7}")
        for c, v in m["per_class"].items():
            lines.append(f"    {c:>9} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:7d} "
                         f"{v['auc']:7.3f}")
        mac = m["macro"]
        lines.append(f"    {'macro':>9} {mac['precision']:9.3f} {mac['recall']:7.3f} {mac['f1']:6.3f}")
        for key, unit in (("accuracy_by_energy_kev", "keV"), ("accuracy_by_elongation_px", "px")):
            lines.append(f"    accuracy by {key.split('_')[2]}: " + ", ".join(
                f"{b['low']:.3g}-{b['high']:.3g} {unit} {b['accuracy']:.2f} (n={b['n']})" for b in m[key]))
    return "\n".join(lines) + "\n"


def report(cfg) -> dict:
    folder = Path(cfg.damic.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rt = make_runtime(cfg)
    model, head = load_model(cfg, rt)
    events, _, val_idx = prepare(cfg)
    val = events.subset(val_idx)
    results = {"validation": track_result(head, val, predictions(model, head, val, rt))}
    tests = test_results(cfg, head)
    results.update(tests)
    note = (f"test sets scored from {cfg.damic.output}" if tests
            else "no labelled test set (damic.test unlabelled or empty, or generate_submission.py has not run)")
    metrics = {name: summarize(r) for name, r in results.items()}
    last = checkpoint_path(cfg, "damic", "last")
    history = {"damic": load_checkpoint(last)["history"]} if last.exists() else {}
    images = [folder / name for name in ("confusion.png", "roc_per_class.png", "iou_histogram.png",
                                         "accuracy_vs_energy_elongation.png", "learning_curves.png")]
    plot_confusion(results, images[0])
    plot_roc(results, images[1])
    plot_iou(results, images[2])
    plot_accuracy_vs(results, images[3])
    plot_learning_curves(history, images[4])
    log_text = format_log(metrics, note)
    write_text(folder / "report.log", log_text)
    write_text(folder / "metrics.json", json.dumps(dict(classes=list(head.classes), metrics=metrics), indent=2))
    write_text(folder / "config.ini", cfg.to_ini())
    write_html(folder, log_text, images, title="idao report: DAMIC-M tracks")
    print(log_text, end="")
    print(f"report: {folder / 'index.html'}")
    return metrics

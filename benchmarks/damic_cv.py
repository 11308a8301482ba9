"""K-fold cross-validation of the DAMIC-M model on one labelled file (e.g. the thesis' eVSmu_tr1.npz).

Each fold trains on the other folds (their own window and standardisation,
early stopping on a stratified 20 % of them) and is scored on the held-out
fold it never saw: accuracy, ROC-AUC (macro one-vs-rest for more than two
classes) and mean IoU of the predicted boxes. Config keys as for train.py::

    python benchmarks/damic_cv.py --data ../shared/data/damic-tfm/eVSmu_tr1.npz \\
        damic.classes=electron,muon damic.packed_labels=electron,muon
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from idao.config import load_config
from idao.damic.metrics import classification_metrics, iou
from idao.damic.task import frame_boxes, load_events, load_model, model_classes, model_section, train_model
from idao.engine import RunSettings, predict_outputs
from idao.runtime import make_runtime
from idao.splits import stratified_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="labelled events: packed .npz, per-event file or folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", help="also write the table (markdown) here")
    parser.add_argument("--config", default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="damic-cv-"))
    cfg = load_config(args.config, [f"damic.train={args.data}", f"train.checkpoint_dir={work}",
                                    "train.progress=false", *args.overrides], echo=False)
    classes = model_classes(cfg.damic)
    events = load_events(args.data, cfg.damic, classes=classes)
    rt = make_runtime(cfg.train)
    folds = StratifiedKFold(args.folds, shuffle=True, random_state=cfg.train.seed).split(events.ids, events.label)
    rows, t_all = [], time.time()
    for k, (train_idx, test_idx) in enumerate(folds):
        t0 = time.time()
        part = events.subset(train_idx)
        fit_idx, val_idx = stratified_split(part.particle, cfg.damic.val_fraction, cfg.train.seed + k)
        run = RunSettings(cfg.train.seed, False, work / f"fold{k}", cfg.as_dict())
        result = train_model(cfg, part.subset(fit_idx), part.subset(val_idx), rt, run)
        model, head = load_model(cfg, rt, run)
        test = events.subset(test_idx)
        pred = head.predict(predict_outputs(model, head, test, 256, rt))
        m = classification_metrics(test.label, pred[:, : len(classes)], classes)
        boxes = frame_boxes(head, test, pred[:, len(classes):])
        has_box = test.particle != "noise"
        mean_iou = float(iou(boxes[has_box], test.boxes[has_box]).mean()) if has_box.any() else float("nan")
        rows.append(dict(fold=k, n=len(test), accuracy=m["accuracy"], auc=m["auc"], iou=mean_iou,
                         epochs=result["epochs_run"], seconds=time.time() - t0))
        print(f"fold {k}: accuracy {m['accuracy']:.4f}  AUC {m['auc']:.4f}  IoU {mean_iou:.3f}  "
              f"({result['epochs_run']} epochs, {time.time() - t0:.0f} s)", flush=True)
    acc, auc, ious = (np.array([r[key] for r in rows]) for key in ("accuracy", "auc", "iou"))
    lines = [f"Data: `{args.data}` ({len(events)} events: "
             + ", ".join(f"{c} {int((events.label == j).sum())}" for j, c in enumerate(classes)) + f"), {args.folds} folds, "
             f"model `{model_section(cfg).model}`, bin {cfg.damic.bin}, log scale {cfg.damic.log_scale}, add noise {cfg.damic.add_noise}, "
             f"seed {cfg.train.seed}; overrides: {' '.join(args.overrides) or 'none'}", "",
             "| fold | test events | accuracy | ROC-AUC | mean IoU | epochs | seconds |", "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['fold']} | {r['n']} | {r['accuracy']:.4f} | {r['auc']:.4f} | {r['iou']:.3f} | {r['epochs']} | "
              f"{r['seconds']:.0f} |" for r in rows]
    lines += [f"| **mean ± std** | {len(events)} | **{acc.mean():.4f} ± {acc.std():.4f}** | **{auc.mean():.4f} ± "
              f"{auc.std():.4f}** | {ious.mean():.3f} | | {time.time() - t_all:.0f} total |"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()

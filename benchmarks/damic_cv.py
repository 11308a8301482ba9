"""K-fold cross-validation of the DAMIC-M model on one labelled file (e.g. the thesis' eVSmu_tr1.npz).

The folds and each fold's model are the engine's: ``train.py train.folds=K train.seed=S`` (with
``train.fold_validation = inner``, the default) trains the same ones, and ``benchmarks/damic_oof.py`` scores
them out of fold through the three scripts (a test holds the two equal). Each fold trains on the other folds
(their own window and standardisation, the epoch chosen on a stratified 20 % of them) and is scored on the
held-out fold it never saw: accuracy, ROC-AUC (macro one-vs-rest for more than two classes) and mean IoU of
the predicted boxes. Copies of one frame share a fold and a side of the validation split (eVSmu_tr1.npz
repeats 195 of its muons: scored as unseen, a copy flatters the model). What this script adds: noisy copies,
the fold thinned to a class mix, a held-out part. Config keys as for train.py::

    python benchmarks/damic_cv.py --data ../shared/data/damic-tfm/eVSmu_tr1.npz \\
        damic.classes=electron,muon damic.packed_labels=electron,muon

With ``--noise-transfer`` each fold also gets a noisy copy (every frame with a
track gains Poisson dark current, 1/3000 electrons per pixel, 3.77 eV each, as
the facts give; noise-only frames stay as they are): a model trained on the
clean folds is scored on the clean and the noisy held-out fold, and one
trained on the noisy folds on both too (the thesis: 98.9 % clean, 97.0 %
noisy on electron vs noise).

Several files (``--data a.npz,b.npz`` with ``damic.packed_labels`` one map per file, as for train.py) are
folded together, and each file's accuracy gets a column of its own (the thesis' electron / muon / noise run).

With ``--holdout 0.2`` a fixed fifth of the file (stratified, copies kept
together, drawn with its own seed so that every ``train.seed`` holds out the
same events) is set aside first: the folds are made from the rest, and after
them one model trained on all of the rest is scored once on the held-out part
(rows "held-out"). Choose on the folds' rows; the held-out rows are the check.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from idao.config import load_config, split_list
from idao.damic.io import EV_PER_ELECTRON
from idao.damic.metrics import classification_metrics, iou
from idao.damic.task import (AUTO_PRIORS, BOX_COLUMNS, TASK, load_events, load_model, model_classes, model_section,
                             parse_priors, predictions, train_model)
from idao.engine import RunSettings
from idao.runtime import make_runtime
from idao.splits import Split, stratified_split, validation_split

from common import publish  # benchmarks/common.py


DARK_CURRENT = 1 / 3000  # electrons per pixel per frame (facts: lambda ~ 3.33e-4)
HOLDOUT_SEED = 20261202  # the held-out part's own seed: the same events whatever train.seed the folds use


def noisy_file(path: Path, out: Path, noise_label: int | None, seed: int = 0) -> Path:
    """A copy of a packed file whose frames with a track gain dark current over the whole frame (the noisy
    thesis file's recipe); frames of label ``noise_label`` stay as they are."""
    rng = np.random.default_rng(seed)
    with np.load(path) as z:
        keys = ("data", "labels") if "data" in z.files else ("data_test", "labels_test")
        data, labels = z[keys[0]].copy(), z[keys[1]]
    for i in np.flatnonzero(labels != noise_label):
        data[i] += rng.poisson(DARK_CURRENT, data[i].shape) * EV_PER_ELECTRON
    np.savez_compressed(out, **{keys[0]: data, keys[1]: labels})
    return out


def fold_settings(cfg, folds: int, k: int):
    """``[train]`` of fold ``k`` of ``folds``, as the engine's fold loop sets it (inner validation)."""
    return cfg.with_values({"train.folds": folds, "train.fold": str(k), "train.fold_validation": "inner"}).train


def score(cfg, rt, run, test, classes, priors=None, weigh=None) -> dict:
    """Accuracy, balanced accuracy, AUC and IoU on ``test``, from the task's own predictions table; with ``weigh``
    (class fractions) the accuracy is the one a file of that mix would see, sum_j weigh_j x recall_j: every event
    of the fold counts, where thinning the fold to the mix throws most of one class away (a binary AUC does not
    change with the mix)."""
    model, head = load_model(cfg, rt, run)
    table, _ = predictions(model, head, test, rt, priors)
    m = classification_metrics(test.label, table[[f"p_{c}" for c in classes]].to_numpy(), classes)
    if weigh is not None:
        m["accuracy"] = float(sum(f * m["per_class"][c]["recall"] for f, c in zip(weigh, classes)))
    has_box = test.particle != "noise"
    boxes = table[list(BOX_COLUMNS)].to_numpy()
    m["iou"] = float(iou(boxes[has_box], test.boxes[has_box]).mean()) if has_box.any() else float("nan")
    source = test.sources()
    correct = table["predicted"].to_numpy() == test.particle
    m["by_file"] = {f: float(correct[source == f].mean()) for f in dict.fromkeys(source)}
    return m


def train_and_score(cfg, rt, work: Path, events, noisy, classes, test_mix, k, split: Split, thin_seed: int) -> list:
    """Train on ``split.train`` (the epoch chosen on ``split.val``), score ``split.scored`` (thinned to
    ``test_mix`` with ``thin_seed``): one row per variant, labelled ``k``."""
    test = events.subset(split.scored)
    variants = {"clean": (events, test)}
    if noisy is not None:  # the same events, with the frame-wide dark current
        variants["noisy"] = (noisy, noisy.subset(split.scored))
    mixed = {}
    if test_mix:  # the fold thinned to the file's expected class mix (every event of the largest share kept)
        mix = parse_priors(test_mix, classes)
        have = np.bincount(test.label, minlength=len(classes))
        keep_n = np.floor(mix * np.min(have / mix)).astype(int)
        rng = np.random.default_rng(thin_seed)
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(test.label == j), keep_n[j], replace=False)
                                       for j in range(len(classes))]))
        mixed = {f"clean {test_mix}": (test.subset(keep), None, None),  # (events, priors, weighted to)
                 f"clean {test_mix}, priors set": (test.subset(keep), mix, None),
                 f"clean {test_mix}, priors auto": (test.subset(keep), AUTO_PRIORS, None),
                 f"clean weighted to {test_mix}, priors set": (test, mix, mix),
                 "clean, priors auto": (test, AUTO_PRIORS, None)}  # auto on a file as balanced as training
    rows = []
    for trained_on, (train_part, _) in variants.items():
        t0 = time.time()
        run = RunSettings(cfg.train.seed, False, work / f"fold{k}-{trained_on}", cfg.as_dict())
        result = train_model(cfg, train_part.subset(split.train), train_part.subset(split.val), rt, run)
        scored = {name: (test_part, None, None) for name, (_, test_part) in variants.items()}
        if trained_on == "clean":
            scored.update(mixed)
        for scored_on, (test_part, priors, weigh) in scored.items():
            m = score(cfg, rt, run, test_part, classes, priors, weigh)
            rows.append(dict(fold=k, trained=trained_on, scored=scored_on, n=len(test_part),
                             accuracy=m["accuracy"], balanced=m["balanced_accuracy"], auc=m["auc"], iou=m["iou"],
                             epochs=result["epochs_run"], seconds=time.time() - t0,
                             **{f"accuracy {f}": v for f, v in m["by_file"].items()}))
            print(f"fold {k} trained {trained_on} scored {scored_on}: accuracy {m['accuracy']:.4f}  balanced "
                  f"{m['balanced_accuracy']:.4f}  AUC {m['auc']:.4f}  IoU {m['iou']:.3f}  "
                  f"({result['epochs_run']} epochs, {time.time() - t0:.0f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="labelled events: packed .npz, per-event file or folder; "
                        "several comma-separated (one damic.packed_labels map each): each file's accuracy too")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", help="also write the table (markdown) here")
    parser.add_argument("--config", default=None)
    parser.add_argument("--noise-transfer", action="store_true", help="also train and score clean <-> noisy")
    parser.add_argument("--test-mix", help="also score each held-out fold subsampled to these class fractions "
                        "(e.g. electron=0.77,muon=0.23, the thesis' test file), without and with damic.test_priors "
                        "(set to them, and auto; auto also on the fold as it is), and weighted to them (set)")
    parser.add_argument("--holdout", type=float, default=0.0,
                        help="fraction set aside before the folds and scored once at the end (default: none)")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="damic-cv-"))
    cfg = load_config(args.config, [f"damic.train={args.data}", f"train.checkpoint_dir={work}",
                                    "train.progress=false", *args.overrides], echo=False)
    TASK.check(cfg)
    TASK.check_train(cfg)
    classes = model_classes(cfg.damic)
    events = load_events(args.data, cfg.damic, classes=classes)
    noisy = None
    if args.noise_transfer:
        labels = split_list(cfg.damic.packed_labels)
        noisy_path = noisy_file(Path(args.data), work / f"noisy_{Path(args.data).name}",
                                labels.index("noise") if "noise" in labels else None)
        noisy = load_events(noisy_path, cfg.damic, classes=classes)
    rt = make_runtime(cfg.train)
    groups = events.copies()  # a repeated frame's copies share a fold (eVSmu_tr1.npz repeats 195 muons)
    rest, holdout = np.arange(len(events)), None
    if args.holdout:
        rest, holdout = stratified_split(events.particle, args.holdout, HOLDOUT_SEED, groups)
    # the engine's folds of the rest (train.py train.folds=K draws the same), each validated on a split of its
    # training folds (train.fold_validation=inner); (label, split, thinning seed)
    runs = [(k, validation_split(events.particle[rest], cfg.damic.val_fraction, fold_settings(cfg, args.folds, k),
                                 groups[rest]).within(rest), k) for k in range(args.folds)]
    if holdout is not None:  # one model on all of the rest, validated as a single run is
        whole = validation_split(events.particle[rest], cfg.damic.val_fraction, cfg.train, groups[rest]).within(rest)
        runs.append(("held-out", Split(whole.train, whole.val, holdout), HOLDOUT_SEED))
    rows, t_all = [], time.time()
    for k, split, thin_seed in runs:
        rows += train_and_score(cfg, rt, work, events, noisy, classes, args.test_mix, k, split, thin_seed)
    table = pd.DataFrame(rows)
    lines = [f"Data: `{args.data}` ({len(events)} events: "
             + ", ".join(f"{c} {int((events.label == j).sum())}" for j, c in enumerate(classes))
             + f"; {len(np.unique(groups))} distinct frames, copies kept in one fold), {args.folds} folds, "
             f"model `{model_section(cfg).model}`, bin {cfg.damic.bin}, log scale {cfg.damic.log_scale}, add noise "
             f"{cfg.damic.add_noise}, seed {cfg.train.seed}; overrides: {' '.join(args.overrides) or 'none'}"
             + (f"; --test-mix {args.test_mix}" if args.test_mix else "")
             + (f"; --holdout {args.holdout}: {len(holdout)} events set aside (seed {HOLDOUT_SEED}), the folds made "
                "of the rest, the held-out rows scored once by a model trained on all of the rest"
                if holdout is not None else "") + "; "
             f"{time.time() - t_all:.0f} s in all on 2 CPU cores", "",
             "| fold | trained on | scored on | test events | accuracy | balanced accuracy | ROC-AUC | mean IoU | epochs | "
             "seconds |", "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    files = [c for c in table.columns if c.startswith("accuracy ")]  # several files scored: each one's accuracy
    files = files if len(split_list(args.data)) > 1 else []  # a noisy copy is not another file
    if files:
        lines[-2:] = [lines[-2] + "".join(f" {f} |" for f in files), lines[-1] + "---:|" * len(files)]

    def row(r: dict, label=None) -> str:
        return (f"| {label or r['fold']} | {r['trained']} | {r['scored']} | {r['n']} | {r['accuracy']:.4f} | "
                f"{r['balanced']:.4f} | {r['auc']:.4f} | {r['iou']:.3f} | {r['epochs']} | {r['seconds']:.0f} |"
                + "".join(f" {r[f]:.4f} |" for f in files))
    held_out = table.fold == "held-out"
    lines += [row(r) for r in table[~held_out].to_dict("records")]
    for (trained, scored), g in table[~held_out].groupby(["trained", "scored"], sort=False):
        lines.append(f"| **mean ± std** | {trained} | {scored} | {g.n.sum()} | **{g.accuracy.mean():.4f} ± "
                     f"{g.accuracy.std(ddof=0):.4f}** | {g.balanced.mean():.4f} | **{g.auc.mean():.4f}** | "
                     f"{g.iou.mean():.3f} | | {g.seconds.mean():.0f} per run |" + "".join(
                         f" {g[f].mean():.4f} |" for f in files))
    lines += [row(r, "**held-out**") for r in table[held_out].to_dict("records")]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

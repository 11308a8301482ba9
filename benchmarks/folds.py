"""One model against a K-fold ensemble (``train.folds``), on held-out test data no choice was made on.

For each seed the task's three jobs run in a fresh folder for each ``train.folds`` value of ``--compare``, as a
user would run them (plus any overrides given, e.g. a pseudo-labelling round). The test figures come from
each run's report (the labelled test data: CYGNO's simulated public and private splits, DAMIC's labelled test
file, e/gamma's held-out test part, IceCube's simulated test truth); with ``train.folds`` > 1 also the pooled
out-of-fold scores of the training events (``cv.json``; DAMIC's report adds each training file's accuracy)::

    python benchmarks/folds.py --task icecube --seeds 0,1 --compare 1,5 --out docs/benchmarks/folds_icecube.md
    python benchmarks/folds.py --task damic --packed ../shared/data/damic-tfm/eVSmu_tr1.npz --holdout 0.2 \\
        damic.classes=electron,muon damic.packed_labels=electron,muon

``--packed FILES --holdout F`` (DAMIC): a fixed, stratified fraction F of each labelled packed file (copies of
a frame kept together, its own seed) is written as a test file, the rest as a training file; several files
(the thesis' electron / muon / noise run) each keep their ``damic.packed_labels`` map::

    python benchmarks/folds.py --task damic --seeds 0 --compare 1,5 \\
        --packed ../shared/data/damic-tfm/eVSmu_tr1.npz,../shared/data/damic-tfm/eVSn_1.npz \\
        damic.classes=electron,muon,noise "damic.packed_labels=electron,muon;noise,electron"
"""
from __future__ import annotations

import argparse
import json
import shlex
import tempfile
import time
from pathlib import Path

import numpy as np

from idao.jobs import run_job
from idao.splits import copy_groups, fingerprint, stratified_split

from common import publish  # benchmarks/common.py
from damic_cv import noisy_file

HOLDOUT_SEED = 20261204  # the held-out part's own seed: the same events for every train.seed


def headline(task: str, metrics: dict) -> dict:
    """The test figures a user of ``task`` reads first, from its report's metrics."""
    if task == "cygno":
        m = metrics["metrics"]
        return {"public": m["public_test"]["score"], "private": m["private_test"]["score"],
                "private AUC": m["private_test"]["auc"], "private MAE keV": m["private_test"]["mae"]}
    if task == "damic":  # one test file: its figures; several: each file's accuracy; with folds, each file's out of fold
        tests = {k: v for k, v in metrics["metrics"].items() if k != "validation" and not k.startswith("out-of-fold")}
        oof = {k: v["accuracy"] for k, v in metrics["metrics"].items() if k.startswith("out-of-fold ")}
        if len(tests) > 1:
            row = {f"{Path(k).stem} {m}": v[m] for k, v in tests.items() for m in ("accuracy", "balanced_accuracy")}
        else:
            test = next(iter(tests.values()))
            row = {"accuracy": test["accuracy"], "balanced accuracy": test["balanced_accuracy"], "AUC": test["auc"]}
        return {**row, **{f"{k} accuracy": v for k, v in oof.items()}}
    if task == "egamma":
        return {"AUC": metrics["test"]["auc"], "accuracy": metrics["test"]["accuracy"]}
    return {"mean angular error": metrics["test"]["mean_angular_error"],
            **{f"{k} error": v["mean_angular_error"] for k, v in metrics["test"].get("by_event_type", {}).items()}}


def noise_label(path: Path, train: list[Path], overrides: list[str]) -> int | None:
    """The label value of noise frames in held-out file ``path``, from the ``damic.packed_labels`` map of the
    training file of its name."""
    from idao.config import load_config
    from idao.damic.task import label_map

    cfg = load_config(overrides=["task.name=damic", f"damic.train={','.join(str(t) for t in train)}", *overrides],
                      echo=False)
    names = label_map(cfg.damic, str(path), training=False) or ()
    return names.index("noise") if "noise" in names else None


def split_packed(path: Path, fraction: float, work: Path) -> tuple[Path, Path]:
    """(training file, test file), ``work``/train/ and ``work``/test/ under the file's own name (so its label map
    applies to both): a stratified ``fraction`` of a packed .npz held out, copies kept together."""
    with np.load(path) as z:
        data, labels = z["data"], z["labels"]
    groups = copy_groups([fingerprint(frame) for frame in data])
    rest, test = stratified_split(labels, fraction, HOLDOUT_SEED, groups)
    out = []
    for name, idx in (("train", rest), ("test", test)):
        (work / name).mkdir(parents=True, exist_ok=True)
        np.savez_compressed(work / name / path.name, data=data[idx], labels=labels[idx])
        out.append(work / name / path.name)
    return out[0], out[1]


def one_run(task: str, folds: int, seed: int, work: Path, data: list[str], overrides: list[str],
            passes: dict[str, list[str]] | None = None) -> dict:
    """train, generate and report in ``work``; the test figures and the seconds of training and submission.
    ``passes`` (name -> overrides): more test data predicted and scored by the same models, e.g. DAMIC's files
    with dark current added, or one file at a time with its class mix estimated (``damic.test_priors=auto``)."""
    out = {"cygno": "cygno.output", "damic": "damic.output", "egamma": "egamma.output", "icecube": "icecube.output"}[task]
    keys = {"cygno": ("submission", "results_dir"), "damic": ("predictions", "results_dir"),
            "egamma": ("predictions", "results_dir"), "icecube": ("submission", "results_dir")}[task]
    args = [f"task.name={task}", f"train.seed={seed}", f"train.folds={folds}", f"train.checkpoint_dir={work / 'ck'}",
            f"{out}.{keys[0]}={work / 'predictions.csv'}", f"{out}.{keys[1]}={work / 'report'}",
            "train.progress=false", *data, *overrides]
    if task == "egamma":
        args.append(f"egamma.output.export={work / 'model.safetensors'}")
    t0 = time.time()
    run_job("train", args)
    t1 = time.time()
    run_job("generate", args)
    t2 = time.time()
    metrics = run_job("report", args)
    row = headline(task, metrics)
    if folds > 1:  # what the folds promise: cv.json's pooled out-of-fold scores, beside the test figures
        cv = json.loads((work / "ck" / task / "cv.json").read_text())
        row.update({f"out-of-fold {name}": c["pooled"] for name, c in cv["out_of_fold"].items()})
    for k, (name, extra) in enumerate((passes or {}).items()):
        again = [*args, *extra, f"{out}.{keys[0]}={work / f'pass{k}.csv'}", f"{out}.{keys[1]}={work / f'pass{k}'}"]
        run_job("generate", again)
        row.update({f"{name} {key}": v for key, v in headline(task, run_job("report", again)).items()
                    if not key.startswith("out-of-fold")})  # the same training events: scored once above
    return dict(row, train_s=t1 - t0, submit_s=t2 - t1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=("cygno", "damic", "egamma", "icecube"))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--compare", default="1,5", help="the train.folds values run for each seed")
    parser.add_argument("--packed", help="DAMIC: labelled packed .npz files (comma-separated; each with its "
                        "damic.packed_labels map) to split into training and test files")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--noisy-test", action="store_true", help="DAMIC with --packed: also score the held-out "
                        "files with dark current added to their track frames (the thesis' noisy data)")
    parser.add_argument("--per-file-priors", action="store_true", help="DAMIC with several --packed files: also "
                        "predict each held-out file alone with its class mix estimated (damic.test_priors=auto)")
    parser.add_argument("--data", default="", help="where the task's simulated data is made and kept (default: "
                        "a temporary folder, one dataset for every run)")
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="folds-"))
    shared = Path(args.data or work / "data")
    fresh = not args.packed and not (shared / args.task).exists()  # the first run simulates it
    data = {"cygno": [f"cygno.root={shared / 'cygno'}", f"cygno.cache_dir={shared / 'cygno_cache'}"],
            "damic": [f"damic.train={shared / 'damic' / 'train'}", f"damic.test={shared / 'damic' / 'test'}"],
            "egamma": [f"egamma.train={shared / 'egamma'}"],
            "icecube": [f"icecube.root={shared / 'icecube'}"]}[args.task]
    source, passes = "the task's simulator, default settings", {}
    if args.packed:
        shared.mkdir(parents=True, exist_ok=True)
        parts = [split_packed(Path(f), args.holdout, shared) for f in args.packed.split(",")]
        if args.noisy_test:  # same file names (each keeps its label map), in noisy/
            (shared / "noisy").mkdir(exist_ok=True)
            noisy = [noisy_file(t, shared / "noisy" / t.name, noise_label(t, [r for r, _ in parts], args.overrides))
                     for _, t in parts]
            passes["noisy"] = [f"damic.test={','.join(str(n) for n in noisy)}"]
        if args.per_file_priors:
            passes.update({f"{t.stem} alone, priors auto,": [f"damic.test={t}", "damic.test_priors=auto"] for _, t in parts})
        data = [f"damic.train={','.join(str(t) for t, _ in parts)}", f"damic.test={','.join(str(t) for _, t in parts)}",
                "damic.simulate_events=0"]
        source = f"`{args.packed}`, {args.holdout:.0%} held out as the test file (seed {HOLDOUT_SEED})"
    compare, rows = [int(k) for k in args.compare.split(",")], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for folds in compare:
            row = one_run(args.task, folds, seed, work / f"seed{seed}_folds{folds}", data, args.overrides, passes)
            rows.append(dict(seed=seed, folds=folds, **row))
            print(rows[-1], flush=True)
    names = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in ("seed", "folds", "train_s", "submit_s")]
    lines = [f"Command: `python benchmarks/folds.py --task {args.task} --seeds {args.seeds} --compare {args.compare}"
             + (f" --packed {args.packed} --holdout {args.holdout}" if args.packed else "")
             + (" --noisy-test" if args.noisy_test else "") + (" --per-file-priors" if args.per_file_priors else "")
             + (" " + shlex.join(args.overrides) if args.overrides else "") + "`; 2 CPU cores.", "",
             f"Data: {source}. Test figures from each run's report, on test data no setting was chosen on."
             + (" The first run's training seconds include simulating the data (CYGNO: and caching its crops)."
                if fresh else ""), "",
             "| seed | train.folds | " + " | ".join(names) + " | train s | submission s |",
             "|---:|---:|" + "---:|" * (len(names) + 2)]
    lines += [f"| {r['seed']} | {r['folds']} | " + " | ".join(f"{r[n]:.4f}" if n in r else "" for n in names)
              + f" | {r['train_s']:.0f} | {r['submit_s']:.1f} |" for r in rows]
    lines += [""]
    for folds in compare:
        part = [r for r in rows if r["folds"] == folds]
        worst = {n: (max if "error" in n or "MAE" in n else min)(r[n] for r in part)  # lower is better
                 for n in names if n in part[0]}
        lines.append(f"- train.folds = {folds}: worst over seeds " + ", ".join(f"{n} {v:.4f}" for n, v in worst.items())
                     + f"; spread of {names[0]} {max(r[names[0]] for r in part) - min(r[names[0]] for r in part):.4f}; "
                     f"training {np.mean([r['train_s'] for r in part]):.0f} s, submission "
                     f"{np.mean([r['submit_s'] for r in part]):.1f} s on average")
    publish(lines, args.out)


if __name__ == "__main__":
    main()

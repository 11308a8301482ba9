"""Our default pipeline vs the organisers' baseline recipe vs physics features + gradient boosting.

    python benchmarks/compare.py --scale 0.1 --seed 0 --out docs/benchmarks/compare.md

Every method trains on the same simulated dataset and predicts every test
image, each in its own fresh process (so peak memory is its own), from cold
PNGs (no crop cache). The PNG-decode floor — the time to only decode every
test PNG with the same number of processes — is measured in the same run, so
the ratio of our submission time to it is meaningful on a noisy machine.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import decode_floor, publish, score_predictions, score_submission, test_paths
from idao.cygno.cache import decode_crops
from idao.cygno.dataset import train_samples
from idao.cygno.simulate import simulate_dataset

WORKERS = os.cpu_count() or 1


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_idao(root: Path, work: Path, seed: int, overrides=()) -> dict:
    from idao.jobs import run_job

    overrides = [f"cygno.root={root}", "cygno.cache_dir=", f"train.seed={seed}", f"train.checkpoint_dir={work / 'ck'}",
                 "train.progress=false", f"cygno.output.submission={work / 'submission.csv'}", *overrides]
    t = time.perf_counter()
    run_job("train", overrides)
    train_s = time.perf_counter() - t
    t = time.perf_counter()
    sub = run_job("generate", overrides).set_index("id")
    submit_s = time.perf_counter() - t
    metrics = score_submission(root, sub)
    return dict(train_s=train_s, submit_s=submit_s, metrics=metrics, peak_mb=_peak_mb())


def run_baseline(root: Path, work: Path, seed: int, epochs: int = 2) -> dict:
    from baseline import CROP, predict_baseline, train_baseline

    t = time.perf_counter()
    train = train_samples(root)
    crops, _ = decode_crops([s.path for s in train], CROP, pedestal=False, workers=WORKERS, progress=False)
    is_er = np.array([s.particle == "ER" for s in train], np.float32)
    energy = np.array([s.energy for s in train], np.float32)
    clf = train_baseline(crops, is_er, "bce", seed, epochs)
    reg = train_baseline(crops, energy, "mse", seed, epochs)
    train_s = time.perf_counter() - t
    timing = {}

    def predict(split, samples):
        t0 = time.perf_counter()
        c, _ = decode_crops([s.path for s in samples], CROP, pedestal=False, workers=WORKERS, progress=False)
        score = 1 / (1 + np.exp(-predict_baseline(clf, c)))
        energy_pred = predict_baseline(reg, c)
        timing[split] = time.perf_counter() - t0
        return score, energy_pred

    metrics = score_predictions(root, predict)
    return dict(train_s=train_s, submit_s=sum(timing.values()), metrics=metrics, peak_mb=_peak_mb())


def run_physics(root: Path, work: Path, seed: int) -> dict:
    from idao.config import load_config
    from features import features, fit_physics_models, predict_physics
    from idao.cygno.postprocess import postprocess

    sub = load_config(echo=False).section("cygno.submission")  # the same post-processing as the default pipeline

    t = time.perf_counter()
    train = train_samples(root)
    crops, _ = decode_crops([s.path for s in train], 128, workers=WORKERS, progress=False)
    models = fit_physics_models(features(crops), np.array([s.particle == "ER" for s in train]),
                                np.array([s.energy for s in train], float), seed)
    train_s = time.perf_counter() - t
    timing = {}

    def predict(split, samples):
        t0 = time.perf_counter()
        c, _ = decode_crops([s.path for s in samples], 128, workers=WORKERS, progress=False)
        score, energy = predict_physics(models, features(c))
        timing[split] = time.perf_counter() - t0
        return score, postprocess(energy, score, split, "split", sub.balance)[1]  # it has no light model

    metrics = score_predictions(root, predict)
    return dict(train_s=train_s, submit_s=sum(timing.values()), metrics=metrics, peak_mb=_peak_mb())


METHODS = {"idao default (densenet_tiny + mobilenetv3_small_050)": run_idao,
           "organisers' baseline recipe (raw outputs)": run_baseline,
           "physics features + gradient boosting": run_physics}


def _in_child(fn_name: str, root: str, work: str, seed: int, overrides, baseline_epochs: int, queue) -> None:
    extra = {"run_idao": (overrides,), "run_baseline": (baseline_epochs,)}.get(fn_name, ())
    queue.put(globals()[fn_name](Path(root), Path(work), seed, *extra))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", help="use this dataset instead of simulating one (needs labels.csv)")
    parser.add_argument("--out", help="also write the table to this markdown file")
    parser.add_argument("--baseline-epochs", type=int, default=2, help="the organisers' recipe: 2")
    parser.add_argument("overrides", nargs="*", help="config overrides for our runs (default: none)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="idao-compare-"))
    root = Path(args.root) if args.root else simulate_dataset(work / "idao_dataset", args.scale, args.seed,
                                                              progress=False)
    paths = test_paths(root)
    floor_s, n_test = decode_floor(paths, WORKERS), len(paths)
    ctx = mp.get_context("spawn")
    rows = []
    for name, fn in METHODS.items():
        queue = ctx.Queue()
        proc = ctx.Process(target=_in_child, args=(fn.__name__, str(root), str(work / fn.__name__), args.seed, args.overrides,
                                                        args.baseline_epochs, queue))
        proc.start()
        result = queue.get()
        proc.join()
        rows.append((name, result))
        print(f"{name}: done", file=sys.stderr)

    n_train = len(train_samples(root))
    from idao.config import load_config

    sub = load_config(echo=False).section("cygno.submission")
    lines = [f"Simulated dataset: scale {args.scale}, seed {args.seed} ({n_train} train, {n_test} test images); "
             f"{WORKERS} CPU cores; command: `python benchmarks/compare.py --scale {args.scale} --seed {args.seed}"
             + (f" --baseline-epochs {args.baseline_epochs}" if args.baseline_epochs != 2 else "") + "`; "
             f"post-processing of ours: {sub.postprocess}, of the physics model: split{' + balance' if sub.balance else ''}.",
             "", "| method | public AUC | public MAE | public score | private AUC | private MAE | private score | "
             "train s | submission s | peak MB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows:
        pub, priv = r["metrics"]["public_test"], r["metrics"]["private_test"]
        lines.append(f"| {name} | {pub['auc']:.4f} | {pub['mae']:.3f} | {pub['score']:.0f} | {priv['auc']:.4f} | "
                     f"{priv['mae']:.3f} | {priv['score']:.0f} | {r['train_s']:.0f} | {r['submit_s']:.1f} | "
                     f"{r['peak_mb']:.0f} |")
    ours = rows[0][1]
    lines += ["", f"PNG-decode floor: {floor_s:.1f} s for {n_test} test images ({n_test / floor_s:.0f} images/s); "
              f"our submission takes {ours['submit_s']:.1f} s = {ours['submit_s'] / floor_s:.2f}x the floor.",
              f"Our private score minus the baseline recipe's: "
              f"{ours['metrics']['private_test']['score'] - rows[1][1]['metrics']['private_test']['score']:.0f} points."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

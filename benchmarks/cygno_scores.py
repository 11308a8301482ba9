"""CYGNO scores that hold: the default pipeline over seeds, scales and simulator physics it was not tuned on.

    python benchmarks/cygno_scores.py --out docs/benchmarks/cygno_scores.md            # the committed table (~30 min)
    python benchmarks/cygno_scores.py --scales 0.05 --seeds 0 --sweep ""     # one quick point

Each point simulates a fresh dataset (scale, seed, physics multipliers; see
``idao.cygno.simulate.Physics``), runs train -> generate_submission with the
default config (``config.ini`` overrides only the paths), and scores the
CSV against the simulated truth. The sweep moves one physics knob at a time;
the table ends with the worst point. Submission time is compared with the
time to only decode the same test PNGs, measured at every point.

Beside each score, the labelled ceiling of its split: what models trained *with* that split's labels score
on it (5-fold, out of fold, so every event is scored by a model that did not see it): a gradient boosting on
the three numbers the decoder uses (light, width, elongation) and densenet_tiny on the same crops, each over
the split's six (type, level) classes; the ceiling is the better of the two. Neither is a bound (a bigger
model could do better), but a gap to it is what the decoding or the transfer from the training classes loses.
With ``--keep DIR`` each point's raw predictions, light model and truth stay in DIR (to re-decode them).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sklearn.model_selection import KFold, StratifiedKFold

from idao.atomic import write_text
from idao.config import load_config
from idao.cygno.data import load_crops
from idao.cygno.dataset import TEST_SPLITS, split_samples
from idao.cygno.light import LIGHT_MODEL_FILE, measure_spots
from idao.cygno.metrics import summarize
from idao.cygno.simulate import Physics, simulate_dataset
from idao.jobs import run_job

from common import decode_floor, score_submission, test_paths  # benchmarks/common.py
from cygno_pair_ceiling import predict_cnn, spot_model, train_cnn

SWEEP = "nr_quenching=0.75,nr_quenching=1.25,er_yield=0.85,er_yield=1.15,diffusion=0.8,diffusion=1.2," \
        "er_range=0.7,er_range=1.3,noise=0.8,noise=1.2"
WORKERS = 2


def score_splits(root: Path, sub: pd.DataFrame) -> dict:
    """Score, AUC, MAE and per-class type accuracy / MAE of a submission (indexed by id) on each labelled split."""
    row = {}
    for split, m in score_submission(root, sub).items():
        key = split.split("_")[0]
        row[key], row[f"{key}_auc"], row[f"{key}_mae"] = m["score"], m["auc"], m["mae"]
        row[f"{key}_classes"] = ", ".join(f"{c} {v['accuracy']:.2f}/{v['mae']:.2f}" for c, v in m["per_class"].items())
    return row


def train_and_submit(root: Path, work: Path, seed: int, overrides: list[str]) -> tuple[dict, pd.DataFrame, list[str]]:
    """Train and submit on ``root`` with the default config (paths under ``work``): the times (with the decode
    floor measured right before the submission), the submission indexed by id, and the overrides used."""
    cfg_overrides = [f"cygno.root={root}", f"cygno.cache_dir={work / 'cache'}", f"train.seed={seed}",
                     f"train.checkpoint_dir={work / 'ck'}", "train.progress=false", *overrides]
    t = time.perf_counter()
    run_job("train", cfg_overrides)
    train_s = time.perf_counter() - t
    floor_s = decode_floor(test_paths(root), WORKERS)
    t = time.perf_counter()
    sub = run_job("generate", [*cfg_overrides, f"cygno.output.submission={work / 'submission.csv'}"]).set_index("id")
    return dict(train_s=train_s, submit_s=time.perf_counter() - t, floor_s=floor_s), sub, cfg_overrides


CEILING_EPOCHS = 10


def labelled_ceiling(root: Path, cache_dir: Path, split: str, seed: int) -> dict:
    """``{"gbm": score, "cnn": score}``: the split's score from 5-fold out-of-fold predictions of models trained
    on its own labels, over its six (type, level) classes (P(ER) = the ER classes' summed probability, the
    energy the most likely class's level)."""
    cfg = load_config(overrides=[f"cygno.root={root}", f"cygno.cache_dir={cache_dir}"], echo=False)
    crops = load_crops(split_samples(root, split), cfg.cygno, progress=False)
    pairs = sorted(set(zip(crops.particle, crops.energy)))  # the split's (type, keV) classes, labelled from labels.csv
    y = np.array([pairs.index(c) for c in zip(crops.particle, crops.energy)])
    er_class = np.array([p == "ER" for p, _ in pairs])
    levels = np.array([e for _, e in pairs], float)
    features = measure_spots(crops.images)
    probs = {"gbm": np.zeros((len(y), len(pairs))), "cnn": np.zeros((len(y), len(pairs)))}
    fewest = np.bincount(y).min()  # tiny data: fewer folds, unstratified below two events a class
    folds = (StratifiedKFold(min(5, fewest), shuffle=True, random_state=seed) if fewest >= 2
             else KFold(min(5, len(y)), shuffle=True, random_state=seed))
    for k, (fit, held) in enumerate(folds.split(features, y)):
        gbm = spot_model(seed).fit(features[fit], y[fit])
        probs["gbm"][np.ix_(held, gbm.classes_)] = gbm.predict_proba(features[held])  # tiny data: a class may miss
        cnn = train_cnn(crops.images[fit], y[fit], CEILING_EPOCHS, seed + k, classes=len(pairs))
        probs["cnn"][held] = predict_cnn(cnn, crops.images[held])
    return {name: summarize(crops.is_er, crops.energy, p[:, er_class].sum(1), levels[p.argmax(1)])["score"]
            for name, p in probs.items()}


def ceiling(r, key: str):
    """The labelled ceiling of split ``key`` ("public" / "private"): the better of the gradient boosting and the CNN."""
    return np.maximum(r[f"{key}_gbm"], r[f"{key}_cnn"])


def run_point(work: Path, scale: float, seed: int, physics: str, overrides: list[str], keep: Path | None,
              ceilings: bool = True) -> dict:
    root = simulate_dataset(work / "data", scale, seed, WORKERS, progress=False, physics=Physics.parse(physics))
    times, sub, cfg_overrides = train_and_submit(root, work, seed, overrides)
    # the same models submitted as before the shape model (light alone, light_weight 0.5; its own test-time views)
    before = run_job("generate", [*cfg_overrides, "cygno.submission.shape=false", "cygno.submission.light_weight=0.5",
                                  f"cygno.output.submission={work / 'light_only.csv'}"]).set_index("id")
    row = dict(scale=scale, seed=seed, physics=physics or "defaults", **times, **score_splits(root, sub))
    for key, value in score_splits(root, before).items():
        if key in ("public", "private"):
            row[f"{key}_light_only"] = value
    for split in TEST_SPLITS:
        found = labelled_ceiling(root, work / "cache", split, seed) if ceilings else dict(gbm=np.nan, cnn=np.nan)
        for name, value in found.items():
            row[f"{split.split('_')[0]}_{name}"] = value
    if keep:
        point = keep / f"scale{scale}_seed{seed}_{physics or 'defaults'}"
        point.mkdir(parents=True, exist_ok=True)
        shutil.copy(work / "submission.raw.csv", point)
        shutil.copy(work / "ck" / "cygno" / LIGHT_MODEL_FILE, point)  # train.checkpoint_dir=work/ck
        shutil.copy(root / "labels.csv", point / "labels.csv")
    shutil.rmtree(work)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.05,0.1", help="scales run with every seed, default physics")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--sweep", default=SWEEP, help="physics points (comma-separated knob=value), each one alone")
    parser.add_argument("--sweep-scale", type=float, default=0.1)
    parser.add_argument("--sweep-seed", type=int, default=0)
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("--keep", type=Path, help="keep each point's raw predictions, light model and truth here")
    parser.add_argument("--no-ceilings", dest="ceilings", action="store_false",
                        help="skip the labelled ceilings (half of each point's time): to compare settings")
    parser.add_argument("overrides", nargs="*", help="config overrides for every point (default: none)")
    args = parser.parse_args()
    points = [(float(sc), int(sd), "") for sc in args.scales.split(",") if sc for sd in args.seeds.split(",") if sd]
    points += [(args.sweep_scale, args.sweep_seed, p) for p in args.sweep.split(",") if p]
    rows = []
    for scale, seed, physics in points:
        work = Path(tempfile.mkdtemp(prefix="idao-scores-"))
        rows.append(run_point(work, scale, seed, physics, args.overrides, args.keep, args.ceilings))
        r = rows[-1]
        ceilings = f"(ceilings {ceiling(r, 'public'):.0f} / {ceiling(r, 'private'):.0f}) " if args.ceilings else ""
        print(f"scale {scale} seed {seed} {r['physics']}: public {r['public']:.0f} private {r['private']:.0f} {ceilings}"
              f"(train {r['train_s']:.0f} s, submission {r['submit_s']:.1f} s = {r['submit_s'] / r['floor_s']:.2f}x "
              f"the decode floor)", flush=True)
        write_table(rows, args)  # after every point, so a long run's partial table is never lost


def write_table(rows: list[dict], args) -> None:
    """The markdown table of every point so far, with the summary lines (to --out, else printed)."""
    table = pd.DataFrame(rows)
    lines = [f"Command: `python benchmarks/cygno_scores.py --scales {args.scales} --seeds {args.seeds} "
             f"--sweep '{args.sweep}' --sweep-scale {args.sweep_scale}{'' if args.ceilings else ' --no-ceilings'}"
             f"{' ' + ' '.join(args.overrides) if args.overrides else ''}`; "
             f"{WORKERS} CPU cores; default config. Type accuracy / MAE (keV) per class.", "",
             "Public / private *light only*: the same trained models submitted without the shape model "
             "(`cygno.submission.shape=false cygno.submission.light_weight=0.5`, otherwise the defaults).", "",
             "Ceiling: the better of a gradient boosting on (light, width, elongation) and densenet_tiny, both "
             f"trained on the split's own labels (5-fold, out of fold; CNN {CEILING_EPOCHS} epochs); gap = score "
             "- ceiling.", "",
             "| scale | seed | physics | public | ceiling (GBM / CNN) | gap | private | ceiling (GBM / CNN) | gap | "
             "public / private light only | public AUC / MAE | private AUC / MAE | train s | submission s | "
             "x decode floor | private per class |",
             "|---:|---:|---|---:|---|---:|---:|---|---:|---:|---|---|---:|---:|---:|---|"]
    for r in rows:
        cells = []
        for key in ("public", "private"):
            cell = (f"{ceiling(r, key):.0f} ({r[f'{key}_gbm']:.0f} / {r[f'{key}_cnn']:.0f}) | {r[key] - ceiling(r, key):+.0f}"
                    if args.ceilings else "not run | ")
            cells.append(f"{r[key]:.0f} | {cell}")
        lines.append(f"| {r['scale']} | {r['seed']} | {r['physics']} | {cells[0]} | {cells[1]} | "
                     f"{r['public_light_only']:.0f} / {r['private_light_only']:.0f} | {r['public_auc']:.4f} / {r['public_mae']:.3f} | {r['private_auc']:.4f} / {r['private_mae']:.3f} | "
                     f"{r['train_s']:.0f} | {r['submit_s']:.1f} | {r['submit_s'] / r['floor_s']:.2f} | "
                     f"{r['private_classes']} |")
    lines.append("")
    for (scale, group) in table[table.physics == "defaults"].groupby("scale"):
        lines.append(f"- scale {scale}, default physics, seeds {', '.join(map(str, group.seed))}: public mean "
                     f"{group.public.mean():.0f} (spread {np.ptp(group.public):.0f}), private mean "
                     f"{group.private.mean():.0f} (spread {np.ptp(group.private):.0f}), worst private "
                     f"{group.private.min():.0f}; light only: private mean {group.private_light_only.mean():.0f}, worst "
                     f"{group.private_light_only.min():.0f}")
    worst = table.loc[table.private.idxmin()]
    lines.append(f"- worst point overall: scale {worst.scale}, seed {worst.seed}, {worst.physics}: public "
                 f"{worst.public:.0f}, private {worst.private:.0f}; worst public {table.public.min():.0f}; light only: "
                 f"worst private {table.private_light_only.min():.0f}, worst public {table.public_light_only.min():.0f}")
    for key in ("public", "private") if args.ceilings else ():
        gap = table[key] - ceiling(table, key)
        w = table.loc[gap.idxmin()]
        lines.append(f"- {key}: worst gap to the labelled ceiling {gap.min():+.0f} (scale {w.scale}, seed {w.seed}, "
                     f"{w.physics}); mean gap {gap.mean():+.0f}")
    lines.append(f"- submission time: at most {(table.submit_s / table.floor_s).max():.2f}x the PNG-decode floor")
    text = "\n".join(lines) + "\n"
    if args.out:
        write_text(args.out, text)
    else:
        print(text)


if __name__ == "__main__":
    main()

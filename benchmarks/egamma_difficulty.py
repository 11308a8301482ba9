"""How hard is the simulated electron / photon task? A shower-shape gradient boosting per simulator setting.

The real files give ROC-AUC ~0.80 for the best public model (a ResNet) and
0.62 for the organisers' example CNN on 1,024 events per class. The simulator's
knobs (``brem_mean``, ``conversion``, ...) set how separable its classes are;
this script measures the AUC a quick, strong-for-its-size model reaches on
shower-shape features (totals, widths along eta and phi, core fractions, phi
profile peaks), so the default can be set where a good model lands near 0.8.

    python benchmarks/egamma_difficulty.py --events 20000 --out docs/benchmarks/egamma_difficulty.md
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from idao.egamma.simulate import Physics, simulate_images
from idao.knobs import parse_knobs

from common import publish  # benchmarks/common.py

SETTINGS = ["", "brem_mean=0.25", "brem_mean=0.15", "conversion=0.3", "conversion=0.6", "noise=0.08",
            "brem_spread=3.0"]


def shower_features(x: np.ndarray) -> np.ndarray:
    e = x[..., 0]
    total = e.sum((1, 2))
    pos = np.arange(e.shape[1])
    out = [total, e.max((1, 2)) / total, (e > 0).sum((1, 2))]
    for axis in (1, 2):  # 1: profile along phi (columns), 2: along eta (rows)
        profile = e.sum(axis) / total[:, None]
        mean = (profile * pos).sum(1)
        out += [((profile * (pos - mean[:, None]) ** 2).sum(1)), *np.sort(profile, 1)[:, -3:].T]
    for half in (1, 2, 3):
        out.append(e[:, 15 - half : 16 + half, 15 - half : 16 + half].sum((1, 2)) / total)
    return np.column_stack(out)


def auc_for(physics: Physics, events: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    X = np.vstack([shower_features(simulate_images(rng, events, True, physics)),
                   shower_features(simulate_images(rng, events, False, physics))])
    y = np.r_[np.ones(events), np.zeros(events)]
    idx = np.random.default_rng(seed + 1).permutation(len(y))
    train, test = idx[: len(y) * 3 // 4], idx[len(y) * 3 // 4 :]
    model = HistGradientBoostingClassifier(max_iter=300, random_state=0).fit(X[train], y[train])
    return float(roc_auc_score(y[test], model.predict_proba(X[test])[:, 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="images per class per setting")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--settings", help="comma-separated, from: default," + ",".join(SETTINGS[1:]) + " (default: all)")
    parser.add_argument("--out")
    args = parser.parse_args()
    settings = [s for s in SETTINGS if (s or "default") in args.settings.split(",")] if args.settings else SETTINGS
    lines = [f"Shower-shape gradient boosting (15 features), {args.events} images per class, 75/25 split, "
             f"mean over {args.seeds} seeds. Command: `python benchmarks/egamma_difficulty.py --events {args.events}"
             + (f" --settings {args.settings}" if args.settings else "") + "`.", "",
             "| simulator setting | ROC-AUC | seconds |", "|---|---:|---:|"]
    for setting in settings:
        t = time.time()
        aucs = [auc_for(parse_knobs(Physics, setting), args.events, seed) for seed in range(args.seeds)]
        lines.append(f"| {setting or 'default'} | {np.mean(aucs):.4f} | {time.time() - t:.0f} |")
        print(lines[-1], flush=True)
    publish(lines, args.out)


if __name__ == "__main__":
    main()

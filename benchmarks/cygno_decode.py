"""The CYGNO decode settings re-chosen on the worst case: every combination of light weight, shape and balance,
applied to the same raw predictions of every point ``cygno_scores.py --keep DIR`` kept (seeds, scales, physics).

    python benchmarks/cygno_decode.py /tmp/keep --out docs/benchmarks/cygno_decode.md

Decoding is cheap and the models are fixed, so this isolates the decode: each row is one setting, scored on
every kept point's public and private splits; the rows are sorted by their worst private score. The test-time
views were spent on the default decode's least confident events, so the other settings are scored as they
would be with those views.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from common import publish  # benchmarks/common.py
from idao.config import load_config
from idao.cygno.light import LightModel
from idao.cygno.metrics import summarize
from idao.cygno.submit import decode

GRID = {"light_weight": (1.0, 1.5, 2.0, 3.0), "shape": (True, False), "balance": ("none", "split", "pair")}


def load_point(point: Path) -> tuple:
    """A kept point's raw predictions, their truth (is ER, keV) and light model: read once, decoded 24 times."""
    raw = pd.read_csv(point / "submission.raw.csv", dtype={"id": str})
    truth = pd.read_csv(point / "labels.csv", dtype={"id": str}).set_index("id").loc[raw["id"]]
    return raw, truth["particle"].to_numpy() == "ER", truth["energy"].to_numpy(), LightModel.load(point / "light.json")


def score_point(loaded: tuple, sub_cfg) -> dict:
    raw, is_er, kev, light_model = loaded
    score, energy = decode(raw, sub_cfg, light_model)
    out = {}
    for split in ("public_test", "private_test"):
        m = (raw["split"] == split).to_numpy()
        out[split.split("_")[0]] = summarize(is_er[m], kev[m], score[m], energy[m])["score"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keep", type=Path, help="the folder cygno_scores.py --keep wrote")
    parser.add_argument("--out")
    args = parser.parse_args()
    points = sorted(p for p in args.keep.glob("*") if (p / "submission.raw.csv").is_file())
    if not points:
        parser.error(f"{args.keep}: no kept points (run cygno_scores.py --keep {args.keep} first)")
    loaded = [load_point(p) for p in points]
    rows = []
    for values in itertools.product(*GRID.values()):
        settings = dict(zip(GRID, values))
        overrides = [f"cygno.submission.{k}={v}" for k, v in settings.items()]
        sub_cfg = load_config(overrides=overrides, echo=False).section("cygno.submission")
        scores = [score_point(point, sub_cfg) for point in loaded]
        private, public = np.array([s["private"] for s in scores]), np.array([s["public"] for s in scores])
        rows.append((private.min(), settings, private.mean(), public.min(), public.mean(),
                     points[int(private.argmin())].name, scores))
    rows.sort(key=lambda r: -r[0])
    lines = [f"`python benchmarks/cygno_decode.py {args.keep}`: {len(points)} kept points "
             f"({', '.join(p.name for p in points)}).", "",
             "| light_weight | shape | balance | worst private | mean private | worst public | mean public | worst point |",
             "|---:|---|---|---:|---:|---:|---:|---|"]
    for worst, s, mean, pub_worst, pub_mean, where, _ in rows:
        lines.append(f"| {s['light_weight']} | {str(s['shape']).lower()} | {s['balance']} | {worst:.1f} | {mean:.1f} | "
                     f"{pub_worst:.1f} | {pub_mean:.1f} | {where} |")
    _, best, *_, best_scores = rows[0]
    lines += ["", f"Each point under the best worst case (light_weight {best['light_weight']}, shape "
                  f"{str(best['shape']).lower()}, balance {best['balance']}):", "",
              "| point | public | private |", "|---|---:|---:|"]
    lines += [f"| {p.name} | {s['public']:.1f} | {s['private']:.1f} |" for p, s in zip(points, best_scores)]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

"""Submission time against the PNG-decode floor, for each test-time augmentation setting, in one run.

    python benchmarks/submission_time.py --root data/idao_dataset --tta 8/1,8/0.25,8/0.1,1/1 --out docs/benchmarks/submission_time.md

Each setting is ``submission.tta/submission.tta_fraction``.
Needs a trained model (``train.py``) for that dataset. Each setting predicts every test PNG from cold files
(no crop cache); the floor is the time to only decode the same PNGs with the same two processes, measured
right before it, so the ratio holds on a noisy machine. Scores need the simulated ``labels.csv``.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from idao.cygno.dataset import TEST_SPLITS, read_labels, split_samples
from idao.cygno.images import read_image
from idao.cygno.metrics import summarize
from idao.jobs import run_job

from common import publish  # benchmarks/common.py


def decode_floor(paths) -> float:
    t = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        for _ in pool.map(read_image, paths, chunksize=32):
            pass
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/idao_dataset")
    parser.add_argument("--tta", default="8/1,8/0.25,8/0.1,4/1,1/1", help="tta/tta_fraction settings")
    parser.add_argument("--out")
    args = parser.parse_args()
    samples = {split: split_samples(args.root, split) for split in TEST_SPLITS}
    paths = [s.path for part in samples.values() for s in part]
    labels = read_labels(args.root)
    lines = [f"`python benchmarks/submission_time.py --root {args.root} --tta {args.tta}`: {len(paths)} test PNGs, "
             "2 CPU cores, cold files.", "",
             "| submission.tta | tta_fraction | submission s | decode floor s | ratio | public | private |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for setting in args.tta.split(","):
        tta, _, fraction = setting.partition("/")
        floor = decode_floor(paths)
        t = time.perf_counter()
        sub = run_job("generate", [f"data.root={args.root}", "data.cache_dir=", f"submission.tta={tta}",
                                   f"submission.tta_fraction={fraction or 1}", "train.progress=false",
                                   "submission.output=/tmp/idao-submission-time/sub.csv"]).set_index("id")
        seconds = time.perf_counter() - t
        scores = []
        for split, part in samples.items():
            ids = [s.id for s in part]
            m = summarize(np.array([labels[i][0] == "ER" for i in ids]), np.array([labels[i][1] for i in ids]),
                          sub.loc[ids].iloc[:, 0].to_numpy(), sub.loc[ids].iloc[:, 1].to_numpy())
            scores.append(f"{m['score']:.1f}")
        lines.append(f"| {tta} | {fraction or 1} | {seconds:.1f} | {floor:.1f} | {seconds / floor:.2f} | {' | '.join(scores)} |")
        print(lines[-1], flush=True)
    publish(lines, args.out)


if __name__ == "__main__":
    main()

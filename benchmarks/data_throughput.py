"""Data-layer throughput: simulated images/s, cold PNG-decode crops/s and cached crops/s.

    python benchmarks/data_throughput.py --scale 0.05

Goals (issue 2): scale 1.0 (29,964 images) simulated in <= 10 min on 2 cores, i.e.
>= 50 images/s; reading crops from the cache >= 20x faster than decoding PNGs.
All figures come from one run, so their ratio is meaningful on a noisy machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from idao.cygno.cache import cached_crops, decode_crops
from idao.cygno.dataset import train_samples
from idao.cygno.simulate import simulate_dataset

from common import publish  # benchmarks/common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="idao-bench-"))
    try:
        t = time.perf_counter()
        root = simulate_dataset(work / "idao_dataset", args.scale, seed=0, workers=args.workers, progress=False)
        sim_s = time.perf_counter() - t
        n_sim = sum(1 for _ in root.rglob("*.png"))
        paths = [s.path for s in train_samples(root)]

        t = time.perf_counter()
        cold, _ = decode_crops(paths, args.crop, workers=args.workers, progress=False)
        cold_s = time.perf_counter() - t
        cached_crops(paths, work / "cache", args.crop, workers=args.workers, progress=False)  # build
        t = time.perf_counter()
        crops, _ = cached_crops(paths, work / "cache", args.crop, progress=False)
        warm = np.array(crops)  # force every byte off the disk
        warm_s = time.perf_counter() - t
        assert np.array_equal(cold, warm)

        lines = [f"Command: `python benchmarks/data_throughput.py --scale {args.scale}`; {os.cpu_count()} CPU cores.", "",
                 "| measure | value |", "|---|---|",
                 f"| simulated images/s ({args.workers} workers, {n_sim} images) | {n_sim / sim_s:.1f} |",
                 f"| projected time for scale 1.0 (29,964 images) | {29_964 / (n_sim / sim_s) / 60:.1f} min |",
                 f"| cold PNG-decode crops/s ({args.workers} workers, {len(paths)} images) | {len(paths) / cold_s:.0f} |",
                 f"| cached crops/s | {len(paths) / warm_s:.0f} |",
                 f"| cache speed-up | {cold_s / warm_s:.0f}x |"]
        publish(lines, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

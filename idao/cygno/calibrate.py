"""Simulated vs real image statistics, side by side.

Each real image is compared with many simulated events of its own class: the
background must match closely, and the event's light and width must fall inside
the simulator's central 95 % band (a real event should look like a plausible draw).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .dataset import list_pngs
from .images import read_image
from .names import parse_name
from .simulate import render_event

_YY, _XX = np.mgrid[:576, :576]
_R = np.hypot(_YY - 288, _XX - 288)
_FAR = np.abs(np.arange(576) - 288) > 150  # rows without signal: they define the column pedestal

BACKGROUND_STATS = ("mode", "mean", "std", "column_std", "noise")
EVENT_STATS = ("light_r20", "light_r60", "width")


def image_stats(img: np.ndarray) -> dict[str, float]:
    """Background and event statistics of one 576x576 image."""
    img = img.astype(np.float64)
    pedestal = img[_FAR].mean(axis=0)  # per-column mean away from the track: unbiased
    excess = img - pedestal[None, :]
    values, counts = np.unique(img, return_counts=True)
    light_r20 = excess[_R <= 20].sum()
    # peak of the 3x3-smoothed excess near the centre; width from light = 2 pi sigma^2 peak
    centre = excess[188:388, 188:388]
    smooth = sum(np.roll(np.roll(centre, i, 0), j, 1) for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9
    r, c = np.unravel_index(np.argmax(smooth[5:-5, 5:-5]), (190, 190))
    r, c = r + 5 + 188, c + 5 + 188
    near = np.hypot(_YY - r, _XX - c) <= 20
    peak = smooth[r - 188, c - 188]
    width = np.sqrt(max(excess[near].sum(), 0.0) / (2 * np.pi * peak)) if peak > 0 else 0.0
    return {
        "mode": float(values[np.argmax(counts)]),
        "mean": float(img.mean()),
        "std": float(img.std()),
        "column_std": float(np.median(img, axis=0).std()),
        "noise": float(excess[_R > 150].std()),
        "light_r20": float(light_r20),
        "light_r60": float(excess[_R <= 60].sum()),
        "width": float(width),
    }


def simulated_stats(particle: str, energy: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, energy, particle == "ER"])
    rows = [image_stats(render_event(particle, energy, rng)) for _ in range(n)]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def compare(real_dir: str | Path, n: int = 100, seed: int = 0) -> list[dict]:
    """One row per real image and statistic: real value, simulated median and 2.5-97.5 % band."""
    rows = []
    for path in list_pngs(Path(real_dir)):
        name = parse_name(path)
        real = image_stats(read_image(path))
        sim = simulated_stats(name.particle, name.energy, n, seed)
        for stat in BACKGROUND_STATS + EVENT_STATS:
            lo, med, hi = np.percentile(sim[stat], [2.5, 50, 97.5])
            rows.append(dict(cls=f"{name.particle}{name.energy}", stat=stat, real=real[stat],
                             sim=float(med), lo=float(lo), hi=float(hi)))
    return rows


def format_table(rows: list[dict], n: int) -> str:
    lines = ["# Simulated vs real CYGNO images", "",
             f"Produced by `idao-calibrate -n {n}`: each real image of `../shared/data/idao-real` beside {n} "
             "simulated events of its class.",
             "Light is the excess over the per-column pedestal (mean of rows more than 150 px from the centre) "
             "within r px of the image centre; width is sqrt(light within 20 px of the peak / (2 pi peak)), "
             "the sigma of a round Gaussian spot; column_std is the std of the column medians; noise the pixel "
             "std beyond r = 150 px after pedestal subtraction.", "",
             "| class | statistic | real | simulated median | simulated 2.5-97.5 % |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['cls']} | {r['stat']} | {r['real']:.2f} | {r['sim']:.2f} | {r['lo']:.2f} .. {r['hi']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Print simulated vs real CYGNO image statistics.")
    parser.add_argument("real_dir", nargs="?", default="../shared/data/idao-real")
    parser.add_argument("-n", type=int, default=200, help="simulated events per class")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from ..cli import run_cli

    run_cli(lambda: print(format_table(compare(args.real_dir, args.n, args.seed), args.n)))


if __name__ == "__main__":
    main()

"""Simulated vs real CYGNO images, side by side.

``idao-calibrate DATASET`` (or, with no folder, events simulated in memory)
measures the published projection fit (``projection.py``) class by class and
prints it beside the real distributions of ~9,000 events
(``real_features.json``): medians, 16-84 % widths, event centres, and the
private split's light histogram. ``idao-calibrate FOLDER_OF_REAL_PNGS`` compares
each real image with many simulated events of its own class instead: the
background must match closely, and the event's light and width must fall inside
the simulator's central 99 % band (a real event should look like a plausible draw).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import list_pngs, split_samples, train_samples
from .images import read_image
from .names import TRAIN_CLASSES, UNSEEN_CLASSES, parse_name
from .projection import event_features
from .simulate import Physics, render_event

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
    """One row per real image and statistic: real value, simulated median and 0.5-99.5 % band."""
    rows = []
    for path in list_pngs(Path(real_dir)):
        name = parse_name(path)
        real = image_stats(read_image(path))
        sim = simulated_stats(name.particle, name.energy, n, seed)
        for stat in BACKGROUND_STATS + EVENT_STATS:
            lo, med, hi = np.percentile(sim[stat], [0.5, 50, 99.5])
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
             "| class | statistic | real | simulated median | simulated 0.5-99.5 % |",
             "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['cls']} | {r['stat']} | {r['real']:.2f} | {r['sim']:.2f} | {r['lo']:.2f} .. {r['hi']:.2f} |")
    return "\n".join(lines)


REAL_FEATURES = Path(__file__).with_name("real_features.json")  # the published real distributions, shipped


def real_features() -> dict:
    return json.loads(REAL_FEATURES.read_text())


def _features(images) -> dict[str, np.ndarray]:
    rows = [event_features(img) for img in images]
    return {k: np.array([r[k] for r in rows]) for k in ("sigma", "signal", "mu_x", "mu_y", "valid")}


def measure_folder(root: str | Path, per_class: int = 0) -> dict[str, dict]:
    """The projection fit on an IDAO-layout folder: each training class (``per_class`` images at most, 0: all)
    and the private test split (unlabelled, as the real one is)."""
    groups: dict[str, list] = {}
    for sample in train_samples(root):
        groups.setdefault(f"{sample.particle}{sample.energy}", []).append(sample.path)
    private = [s.path for s in split_samples(root, "private_test")]
    groups = {k: v for k, v in groups.items() if len(v) >= 5}  # the strays are not classes
    groups["private"] = private
    return {k: _features(read_image(p) for p in (v[:per_class] if per_class else v)) for k, v in groups.items()}


def measure_simulated(per_class: int, seed: int = 0, physics: Physics = Physics()) -> dict[str, dict]:
    """The same on ``per_class`` events of each training class and each private class rendered in memory."""
    def events(particle, energy, stream):
        rng = np.random.default_rng([seed, energy, particle == "ER", stream])
        return _features(render_event(particle, energy, rng, physics) for _ in range(per_class))

    out = {f"{particle}{energy}": events(particle, energy, 7) for particle, energy in TRAIN_CLASSES}
    private = [events(particle, energy, 8) for particle, energy in UNSEEN_CLASSES]
    out["private"] = {k: np.concatenate([f[k] for f in private]) for k in private[0]}
    return out


def _quantiles(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(values, [16, 50, 84])] if len(values) else [float("nan")] * 3


def signal_histogram_distance(signal: np.ndarray, real_counts, bin_width: float) -> float:
    """Total-variation distance between the histogram of ``signal`` and the real one (same bins; values beyond
    the last bin left out of both, as the published histogram leaves them out)."""
    edges = np.arange(len(real_counts) + 1) * bin_width
    mine = np.histogram(signal, edges)[0].astype(float)
    real = np.asarray(real_counts, float)
    return float(0.5 * np.abs(mine / max(mine.sum(), 1) - real / real.sum()).sum())


def sampling_floor(real_counts, n_measured: int, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Mean and 95th percentile of the total-variation distance between two histograms drawn from the *same*
    distribution (the real one), at the real and the measured event counts: the distance finite samples show
    with no mismatch at all, the scale on which ``signal_histogram_distance`` is read."""
    real = np.asarray(real_counts, float)
    p, n_real = real / real.sum(), int(real.sum())
    rng = np.random.default_rng(seed)
    tv = [0.5 * np.abs(rng.multinomial(n_real, p) / n_real - rng.multinomial(n_measured, p) / n_measured).sum()
          for _ in range(draws)]
    return float(np.mean(tv)), float(np.percentile(tv, 95))


def compare_features(measured: dict[str, dict]) -> dict:
    """Per class: the measured and real 16/50/84 % of sigma and signal, and the deviation of each median and
    16-84 % width from the real one; the event centres; the private signal histogram's distance."""
    real = real_features()
    rows = []
    for cls, ref in real["classes"].items():
        if cls not in measured:
            continue
        m = measured[cls]
        ok = m["valid"].astype(bool)
        row = dict(cls=cls, n=int(len(ok)), valid=float(ok.mean()), real_valid=ref["valid"])
        for key in ("sigma", "signal"):
            q, r = _quantiles(m[key][ok]), ref[key]
            row[key] = q
            row[f"real_{key}"] = r
            row[f"{key}_median_dev"] = q[1] / r[1] - 1
            row[f"{key}_width_dev"] = (q[2] - q[0]) / (r[2] - r[0]) - 1
        rows.append(row)
    centres = {}
    for name, classes in (("NR", [c for c in measured if c.startswith("NR")]),
                          ("ER", [c for c in measured if c.startswith("ER")]), ("private", ["private"])):
        ok = [measured[c]["valid"].astype(bool) for c in classes if c in measured]
        if ok:
            xs = np.concatenate([measured[c]["mu_x"][v] for c, v in zip(classes, ok)])
            centres[name] = _quantiles(xs)
    out = dict(classes=rows, centres=centres, real_centres=real["centres"])
    if "private" in measured:
        hist = real["private_signal_histogram"]
        ok = measured["private"]["valid"].astype(bool)
        signal = measured["private"]["signal"][ok]
        out["private_tv"] = signal_histogram_distance(signal, hist["counts"], hist["bin_width"])
        in_range = int(np.sum((signal >= 0) & (signal < len(hist["counts"]) * hist["bin_width"])))
        out["private_tv_floor"] = sampling_floor(hist["counts"], max(in_range, 1))
    return out


def format_features(result: dict, what: str) -> str:
    """The comparison as markdown: one row per class, deviations of the medians and 16-84 % widths."""
    lines = [f"Projection fit (idao/cygno/projection.py) on {what}, beside the real distributions "
             "(`idao/cygno/real_features.json`, from ../shared/docs/idao-facts.md); deviations relative to real.", "",
             "| class | n | valid (real) | sigma 16/50/84 px | real | median dev | width dev | signal 16/50/84 | real | "
             "median dev | width dev |", "|---|---:|---:|---|---|---:|---:|---|---|---:|---:|"]
    for r in result["classes"]:
        def q(v, f):
            return " / ".join(format(x, f) for x in v)
        lines.append(f"| {r['cls']} | {r['n']} | {r['valid']:.2f} ({r['real_valid']:.2f}) | {q(r['sigma'], '.2f')} | "
                     f"{q(r['real_sigma'], '.2f')} | {r['sigma_median_dev']:+.0%} | {r['sigma_width_dev']:+.0%} | "
                     f"{q(r['signal'], '.0f')} | {q(r['real_signal'], '.0f')} | {r['signal_median_dev']:+.0%} | "
                     f"{r['signal_width_dev']:+.0%} |")
    real = result["real_centres"]
    lines += ["", "| event centre x (fitted mu), 16/50/84 % | measured | real |", "|---|---|---|"]
    for name, q in result["centres"].items():
        ref = real["NR_x"] if name == "NR" else real[name]
        lines.append(f"| {name} | {' / '.join(f'{v:.1f}' for v in q)} | {' / '.join(f'{v:.1f}' for v in ref)} |")
    if "private_tv" in result:
        floor, p95 = result["private_tv_floor"]
        lines += ["", f"Private-test signal histogram: total-variation distance to the real one "
                      f"**{result['private_tv']:.3f}** (1,000-count bins); two samples of the real distribution "
                      f"itself, of these sizes, differ by {floor:.3f} on average ({p95:.3f} at the 95th percentile)."]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description="Compare CYGNO images with real ones: the projection-fit features of an IDAO-layout dataset "
                    "(or of simulated events) beside the published real distributions; or, for a folder of "
                    "real PNGs, each image beside simulated events of its class.")
    parser.add_argument("folder", nargs="?", default="",
                        help="an IDAO-layout dataset (train/, private_test/) or a folder of real PNGs "
                             "(default: simulate in memory)")
    parser.add_argument("-n", type=int, default=200, help="events per class (0 with a dataset: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--physics", default="", help="simulator knobs when simulating, e.g. diffusion=1.1")
    parser.add_argument("--out", help="also write the markdown here")
    args = parser.parse_args(argv)
    from ..atomic import write_text
    from ..cli import run_cli

    def job():
        folder = Path(args.folder) if args.folder else None
        if folder is not None and not folder.is_dir():
            raise DataError(f"{folder}: folder not found")
        if folder is not None and not (folder / "train").is_dir():
            text = format_table(compare(folder, args.n, args.seed), args.n)
        else:
            measured = (measure_folder(folder, args.n) if folder else
                        measure_simulated(args.n, args.seed, Physics.parse(args.physics)))
            what = (f"`{folder}`" if folder else f"{args.n} simulated events per class (seed {args.seed}"
                    + (f", physics {args.physics}" if args.physics else "") + ")")
            text = format_features(compare_features(measured), what)
        print(text)
        if args.out:
            write_text(args.out, text + "\n")

    run_cli(job)


if __name__ == "__main__":
    main()

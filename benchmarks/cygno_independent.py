"""The default CYGNO pipeline on data from a second, independent generator: a stand-in it was never tuned on.

    python benchmarks/cygno_independent.py --seeds 0,1,2 --out docs/benchmarks/cygno_independent.md
    python benchmarks/cygno_independent.py --seeds 0 --train 60 --public 10 --private 30    # a quick look

``idao.cygno.simulate`` is the generator every default was chosen on, so its scores flatter the pipeline. This
one is written from ``../shared/docs/idao-facts.md`` alone (it imports nothing from ``idao.cygno.simulate``)
and makes different choices wherever the facts leave room:

- ionisation electrons are drawn one by one (W = 46 eV, Poisson count) and each is amplified by its own Polya
  (gamma, shape 2) gain: a 1 keV ER is ~22 grainy clusters whose light fluctuates ~26 %, a 30 keV ER ~5 %
  (idao: a smooth Gaussian spot, 15 % at every energy);
- the spot width comes from the drift depth, sigma^2 = sigma0^2 + D^2 z (the digitisation code's 280 um and
  140 um/sqrt(cm)), z uniform per event over a range per type that gives the widths measured on the real images:
  a flat width distribution, ER 4.2-5.6 px and NR 5.6-6.7 px (idao: Gaussian, 4.6 +- 0.35 and 6.0 +- 0.5);
- NR / ER light ratio the published fits, 0.33 at 1 keV, 0.62 at 6, 0.80 at 20 (idao: 0.45 at 1 keV), 645 ER
  counts per keV (idao 620), 0.150 mm pixels (idao 0.148);
- ER tracks a multiple-scattering walk, path 1.4x the range, charge deposited with the stopping power of
  R ~ E^1.7 (brightest at the end); NR a straight SRIM-length track whose charge falls along it;
- camera: Student-t (6 dof) pixel noise of std 3.45, a column / row pattern and hot pixels fixed per run (the
  real pedestal frame), a per-event gain drift of 5 %;
- names: some angles in scientific notation, some without the ``;1`` suffix (copies in the wild lost it).

Each seed writes a dataset (train / public / private counts per class below; test truth in ``labels.csv``,
which only this script and ``report.py`` read), runs ``train`` and ``generate`` with the default config (the
command line may add overrides), and scores the CSV per split. The table ends with the worst seed.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import math
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.model_selection import cross_val_predict

from common import publish
from cygno_pair_ceiling import accuracy_at_median, spot_model
from cygno_scores import score_splits, train_and_submit
from idao.atomic import write_text
from idao.cygno.names import TRAIN_CLASSES, UNSEEN_CLASSES

SIZE, CENTRE = 576, 288
PX_MM = 0.150
W_EV = 46.0  # eV per ionisation electron (the digitisation code)
ER_COUNTS_PER_KEV = 645.0
GAIN_SHAPE = 2.0  # Polya gain per electron: gamma of this shape (relative variance 1/2)
EVENT_GAIN_DRIFT = 0.05
NR_RATIO = ((1, 0.33), (6, 0.62), (20, 0.80), (30, 0.83))  # published NR/ER light ratio
ER_RANGE_MM = ((1, 0.02), (3, 0.15), (6, 0.52), (10, 1.3), (20, 4.4), (30, 9.0))  # facts (Geant4)
NR_RANGE_MM = ((1, 0.02), (30, 0.44))  # facts (SRIM)
SIGMA0_MM, D_MM_SQRT_CM = 0.28, 0.14
DEPTH_CM = {"ER": (16.0, 32.0), "NR": (32.0, 48.0)}  # uniform drift depth per type: sigma 4.2-5.6 / 5.6-6.7 px,
# which idao.cygno.light.measure_spots reads as the real images' widths (ER 10 4.7 px, NR 20 5.8 px)
GEM_SPREAD_PX = 0.7  # each electron's light spreads over the GEM holes and the optics
START_HALF_SQUARE = 22  # px: track starts uniform in this square about the centre
PEDESTAL, NOISE_STD, T_DOF = 100.4, 3.45, 6
COLUMN_STD, ROW_STD, HOT_PIXELS, RUNS = 0.7, 0.2, 25, 5
PATCH = 320  # signal drawn on this square about the centre
CLASSES = {"train": TRAIN_CLASSES, "public_test": TRAIN_CLASSES, "private_test": UNSEEN_CLASSES}
PRIVATE_PAIRS = ((1, 3), (6, 10), (20, 30))  # (ER keV, NR keV) of similar light
WORKERS = 2


def interp_loglog(table, x: float) -> float:
    e, v = np.log([t[0] for t in table]), np.log([t[1] for t in table])
    return float(np.exp(np.interp(math.log(x), e, v)))


@functools.lru_cache(maxsize=None)
def run_pattern(seed: int, run: int) -> np.ndarray:
    """The fixed pedestal frame of one run: column and row offsets, and hot pixels."""
    rng = np.random.default_rng([seed, 7, run])
    frame = PEDESTAL + rng.normal(0, COLUMN_STD, SIZE)[None, :] + rng.normal(0, ROW_STD, SIZE)[:, None]
    hot = rng.integers(0, SIZE, (HOT_PIXELS, 2))
    frame[hot[:, 0], hot[:, 1]] += rng.uniform(20, 120, HOT_PIXELS)
    return frame.astype(np.float32)


def track_electrons(particle: str, kev: float, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) positions (px, about the start) of the event's ionisation electrons before diffusion."""
    visible = kev if particle == "ER" else kev * interp_loglog(NR_RATIO, kev)
    n = rng.poisson(visible * 1000.0 / W_EV)
    u = rng.uniform(size=n)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    if particle == "NR":
        length = interp_loglog(NR_RANGE_MM, kev) / PX_MM
        s = length * (1 - np.sqrt(1 - u))  # charge density falls linearly along the track
        return s[:, None] * direction[None, :2]
    path = 1.4 * interp_loglog(ER_RANGE_MM, kev) / PX_MM
    steps = 64
    dirs = np.empty((steps, 3))
    d = direction
    for i in range(steps):  # scattering grows as the electron slows down
        d = d + rng.normal(0, 0.12 + 0.8 * (i / steps) ** 2, 3)
        d /= np.linalg.norm(d)
        dirs[i] = d
    points = np.vstack([np.zeros(3), np.cumsum(dirs * path / steps, axis=0)])
    s = 1 - (1 - u) ** 1.7  # energy deposited by fraction s of the path when R ~ E^1.7
    idx = s * steps
    i0 = np.minimum(idx.astype(int), steps - 1)
    frac = (idx - i0)[:, None]
    return (points[i0] * (1 - frac) + points[i0 + 1] * frac)[:, :2]


def render(particle: str, kev: float, run: int, seed: int, index: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 11, index])
    img = run_pattern(seed, run) + (rng.standard_t(T_DOF, (SIZE, SIZE)) * NOISE_STD
                                    / math.sqrt(T_DOF / (T_DOF - 2))).astype(np.float32)
    z = rng.uniform(*DEPTH_CM[particle])
    sigma = math.sqrt(SIGMA0_MM**2 + D_MM_SQRT_CM**2 * z) / PX_MM
    xy = track_electrons(particle, kev, rng)
    xy = xy + rng.uniform(-START_HALF_SQUARE, START_HALF_SQUARE, 2) + rng.normal(0, sigma, xy.shape)
    charge = rng.gamma(GAIN_SHAPE, ER_COUNTS_PER_KEV * W_EV / 1000.0 / GAIN_SHAPE, len(xy))
    charge *= rng.lognormal(0, EVENT_GAIN_DRIFT)
    rows, cols = np.floor(xy[:, 0] + PATCH / 2).astype(int), np.floor(xy[:, 1] + PATCH / 2).astype(int)
    inside = (rows >= 0) & (rows < PATCH) & (cols >= 0) & (cols < PATCH)
    patch = np.zeros((PATCH, PATCH))
    np.add.at(patch, (rows[inside], cols[inside]), charge[inside])
    lo = CENTRE - PATCH // 2
    img[lo : lo + PATCH, lo : lo + PATCH] += gaussian_filter(patch, GEM_SPREAD_PX).astype(np.float32)
    return np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8)


def train_name(particle: str, kev: int, rng: np.random.Generator) -> tuple[str, int]:
    """A real-style train file name (and its run): angle, class tokens, run, event."""
    half = math.pi / 2 if particle == "ER" else math.pi
    angle = float(np.float32(rng.uniform(-half, half)))
    text = f"{angle * 1e-4:.3g}" if rng.uniform() < 0.05 else repr(angle)  # scientific notation, as in the wild
    run, ev = int(rng.integers(1, RUNS + 1)), int(rng.integers(0, 1000))
    kind, tail = ("ER", "IDAO") if particle == "ER" else ("He_NR", "SRIM_IDAO")
    suffix = "" if rng.uniform() < 0.1 else ";1"
    return f"{text}__CYGNO_60_40_{kind}_{kev}_keV_930V_30cm_{tail}_iso_crop_hist_pic_run{run}_ev{ev}{suffix}", run


def _write(job) -> None:
    path, particle, kev, run, seed, index = job
    Image.fromarray(render(particle, kev, run, seed, index), mode="L").save(path, compress_level=1)


def write_dataset(root: Path, seed: int, counts: dict[str, int]) -> Path:
    """The IDAO layout under ``root`` with ``counts[split]`` images per class, truth in ``labels.csv``."""
    rng = np.random.default_rng([seed, 3])
    jobs, labels, names = [], ["id,split,particle,energy"], set()
    for split, classes in CLASSES.items():
        items = [(p, e) for p, e in classes for _ in range(counts[split])]
        for k in rng.permutation(len(items)):
            particle, kev = items[k]
            if split == "train":
                name, run = train_name(particle, kev, rng)
                if name.replace(";1", "") in names:
                    continue  # the same run and event drawn twice
                names.add(name.replace(";1", ""))
                path = root / "train" / particle / f"{name}.png"
            else:
                run = int(rng.integers(1, RUNS + 1))
                id_ = hashlib.sha1(f"independent/{seed}/{split}/{len(jobs)}".encode()).hexdigest()
                labels.append(f"{id_},{split},{particle},{kev}")
                path = root / split / f"{id_}.png"
            jobs.append((path, particle, kev, run, seed, len(jobs)))
    for sub in ("train/ER", "train/NR", "public_test", "private_test"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(WORKERS) as pool:
        list(pool.map(_write, jobs, chunksize=16))
    write_text(root / "labels.csv", "\n".join(labels) + "\n")
    return root


def pair_ceilings(root: Path, raw: pd.DataFrame, sub: pd.DataFrame) -> dict:
    """Per private light pair, the submission's type accuracy beside a ceiling for the features it decodes from:
    a gradient boosting on (light, width, elongation) trained on the *labelled* private events of the pair (5-fold,
    cut at its median, the classes being balanced). The pipeline never sees these labels; if it matches the
    ceiling, only better image features can raise its score, not a better decoder."""
    truth = pd.read_csv(root / "labels.csv").set_index("id")
    raw = raw.set_index("id").join(truth[["particle", "energy"]], rsuffix="_true")
    out = {}
    for er, nr in PRIVATE_PAIRS:
        part = raw[(raw.particle == "ER") & (raw.energy_true == er) | (raw.particle == "NR") & (raw.energy_true == nr)]
        is_er = (part.particle == "ER").to_numpy()
        p = cross_val_predict(spot_model(), part[["light", "width", "elongation"]].to_numpy(), is_er, cv=5,
                              method="predict_proba")[:, 1]
        out[f"ER{er}/NR{nr}"] = (float(np.mean((sub.loc[part.index].iloc[:, 0].to_numpy() > 0.5) == is_er)),
                                 accuracy_at_median(p, is_er))
    return out


def run_seed(seed: int, counts: dict[str, int], overrides: list[str]) -> dict:
    work = Path(tempfile.mkdtemp(prefix="idao-independent-"))
    try:
        t = time.perf_counter()
        root = write_dataset(work / "data", seed, counts)
        gen_s = time.perf_counter() - t
        times, sub, _ = train_and_submit(root, work, seed, overrides)
        raw = pd.read_csv(work / "submission.raw.csv")
        return dict(seed=seed, gen_s=gen_s, **times, **score_splits(root, sub), **pair_ceilings(root, raw, sub))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train", type=int, default=200, help="training images per class")
    parser.add_argument("--public", type=int, default=25, help="public_test images per class")
    parser.add_argument("--private", type=int, default=125, help="private_test images per class")
    parser.add_argument("--out", help="also write the markdown table here")
    parser.add_argument("overrides", nargs="*", help="config overrides (default: none)")
    args = parser.parse_args()
    counts = {"train": args.train, "public_test": args.public, "private_test": args.private}
    rows = []
    for seed in (int(s) for s in args.seeds.split(",") if s):
        rows.append(run_seed(seed, counts, args.overrides))
        r = rows[-1]
        print(f"seed {seed}: public {r['public']:.0f} private {r['private']:.0f} (train {r['train_s']:.0f} s)",
              flush=True)
    extra = " " + " ".join(args.overrides) if args.overrides else ""
    lines = [f"Command: `python benchmarks/cygno_independent.py --seeds {args.seeds} --train {args.train} "
             f"--public {args.public} --private {args.private}{extra}`; {WORKERS} CPU cores; per class: "
             f"{args.train} train, {args.public} public, {args.private} private images. Type accuracy / MAE (keV).",
             "", "Private pairs: the submission's type accuracy in each light pair / the ceiling of its features (a "
             "gradient boosting on light, width and elongation trained on the labelled pair, 5-fold; `pair_ceilings`).",
             "", "| seed | public | private | public AUC / MAE | private AUC / MAE | train s | submission s | "
             "x decode floor | private pairs: type accuracy / ceiling | public per class | private per class |",
             "|---:|---:|---:|---|---|---:|---:|---:|---|---|---|"]
    pair_keys = [f"ER{er}/NR{nr}" for er, nr in PRIVATE_PAIRS]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['public']:.0f} | {r['private']:.0f} | {r['public_auc']:.4f} / "
                     f"{r['public_mae']:.3f} | {r['private_auc']:.4f} / {r['private_mae']:.3f} | {r['train_s']:.0f} | "
                     f"{r['submit_s']:.1f} | {r['submit_s'] / r['floor_s']:.2f} | "
                     f"{', '.join(f'{k} {r[k][0]:.2f} / {r[k][1]:.2f}' for k in pair_keys)} | {r['public_classes']} | "
                     f"{r['private_classes']} |")
    public, private = np.array([r["public"] for r in rows]), np.array([r["private"] for r in rows])
    lines += ["", f"- public mean {public.mean():.0f}, worst {public.min():.0f}; private mean {private.mean():.0f}, "
                  f"worst {private.min():.0f} (seeds {args.seeds})"]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

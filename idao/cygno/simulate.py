"""A fast CYGNO-like simulator that writes the IDAO 2021 dataset layout.

Physics (see ../shared/docs/idao-facts.md): electron recoils (ER) are wiggly
tracks that start near the image centre, brighten towards their stopping end
and lengthen steeply with energy; helium recoils (NR) are round,
diffusion-dominated spots with quenched light. Both are blurred by drift
diffusion and sit on a camera background: pedestal ~100, pixel noise ~3.45,
column stripes ~0.7, row offsets ~0.2 and a few hot pixels.

Every image is generated from its own seed ``(seed, index)``, so a dataset is
identical whatever the number of worker processes.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from ..atomic import building_dir, check_disk_space, write_text
from .dataset import LABELS_FILE, TEST_SPLITS
from ..errors import DataError
from ..knobs import parse_knobs
from .images import IMAGE_SIZE
from .names import TRAIN_CLASSES, UNSEEN_CLASSES

# --- dataset composition at scale 1.0 (the real counts) ---------------------
TRAIN_COUNTS = {("ER", 3): 2243, ("ER", 10): 2272, ("ER", 30): 2237,
                ("NR", 1): 2177, ("NR", 6): 2255, ("NR", 20): 2208}
TRAIN_STRAYS = {("ER", 1): 3, ("ER", 6): 1, ("ER", 20): 2, ("NR", 3): 2, ("NR", 10): 2, ("NR", 30): 2}
PUBLIC_COUNTS = dict(zip(TRAIN_CLASSES, (251, 251, 250, 250, 250, 250)))  # 1,502
PRIVATE_COUNTS = dict(zip(UNSEEN_CLASSES, (2510, 2510, 2510, 2510, 2509, 2509)))  # 15,058

# --- detector model ----------------------------------------------------------
# Calibrated with ``idao-calibrate`` (the published projection fit, idao/cygno/projection.py) against ~1,000 real
# events per training class and 3,001 real private-test events (real_features.json); docs/studies/calibration.md.
PX_MM = 0.148  # camera pixel pitch on the GEM plane
# mean camera counts per keV of an electron recoil: the training classes' fitted light (ER 3, 10, 30), the unseen
# energies' (ER 1, 6, 20) fitted to the real private split's light histogram (docs/studies/calibration.md)
ER_COUNTS_PER_KEV = ((1, 650.0), (3, 698.0), (6, 650.0), (10, 668.0), (20, 650.0), (30, 616.0))
# NR/ER light ratio at the same keV (quenching): NR 1, 6, 20 from the training classes, NR 3, 10 and 30 fitted to the
# real private split's light histogram. NR 1 keV's from its projection fit's valid fraction and
# signal quantiles (338 counts, 0.52 of ER 1 keV's light: valid 0.73 vs real 0.77, signal median +10-12 %;
# 194 counts gave 0.63, width +34 %): not Lindhard-monotonic, but what the real NR 1 keV images show
NR_QUENCHING = ((1, 0.52), (3, 0.49), (6, 0.666), (10, 0.714), (20, 0.836), (30, 0.897))
# an event's primary ionisation electrons are Poisson, each amplified with an exponential (GEM) gain: the light
# spreads by sqrt(2 x COUNTS_PER_ELECTRON / light), ~20 % at ER 3 and ~8 % at NR 20 keV, as the real light widths do
COUNTS_PER_ELECTRON = 30.0
ER_RANGE_MM = ((1, 0.02), (3, 0.15), (6, 0.52), (10, 1.3), (20, 4.4), (30, 9.0))  # Geant4, He:CF4 60/40
NR_RANGE_MM = ((1, 0.02), (30, 0.44))  # SRIM
PEDESTAL_MEAN = 100.42  # mode 100, mean 100.36-100.49 on real images
PIXEL_NOISE = 3.45
COLUMN_STRIPES = 0.7
ROW_OFFSETS = 0.2
START_JITTER = 2.5  # px; real fitted NR centres: 16-84 % within 285.6-290.6
SPOT_SIGMA = {"ER": (4.55, 0.15), "NR": (5.8, 0.05)}  # px, mean and spread of the diffusion blur per type
CANVAS = 256  # signal is drawn on a CANVAS^2 patch around the centre


@dataclass(frozen=True)
class Physics:
    """Multipliers on the physics we are unsure of (1.0: the calibrated defaults above).

    The robustness sweep (``benchmarks/cygno_scores.py``) moves them one at a
    time: a model is only worth something if it scores across them.
    """

    nr_quenching: float = 1.0  # NR light relative to ER at the same keV
    er_yield: float = 1.0  # camera counts per keV (ER and, through quenching, NR)
    diffusion: float = 1.0  # spot width (Gaussian sigma) of both types
    er_range: float = 1.0  # electron track length
    noise: float = 1.0  # pixel noise

    @classmethod
    def parse(cls, text: str) -> "Physics":
        """``"nr_quenching=1.25,noise=0.8"`` -> Physics; "" -> defaults."""
        return parse_knobs(cls, text)


def _interp_log(table, energy: float) -> float:
    """Interpolate a (keV, value) table linearly in log(E) and log(value)."""
    e, v = np.log([t[0] for t in table]), np.log([t[1] for t in table])
    x = math.log(energy)
    if x >= e[-1]:  # extrapolate with the last slope
        return float(np.exp(v[-1] + (v[-1] - v[-2]) / (e[-1] - e[-2]) * (x - e[-1])))
    return float(np.exp(np.interp(x, e, v)))


def light_yield(particle: str, energy: float, physics: Physics = Physics()) -> float:
    """Mean excess camera counts of one event."""
    counts = _interp_log(ER_COUNTS_PER_KEV, energy) * physics.er_yield * energy
    return counts if particle == "ER" else counts * _interp_log(NR_QUENCHING, energy) * physics.nr_quenching


def event_light(particle: str, energy: float, rng: np.random.Generator, physics: Physics = Physics(), size=None):
    """The light of one event (or ``size`` events): Poisson primary electrons, each with an exponential avalanche
    gain (their sum is a Gamma draw). No overall event-to-event gain spread on top: a 3 % one put the simulated
    NR 20 keV light's 16-84 % width at +14 % of the real one, +7 % without it (docs/studies/calibration.md)."""
    electrons = rng.poisson(light_yield(particle, energy, physics) / COUNTS_PER_ELECTRON, size)
    return COUNTS_PER_ELECTRON * rng.gamma(np.maximum(electrons, 1e-12)) * (electrons > 0)


def light_logpdf(light, particle: str, energy: float, physics: Physics = Physics()):
    """log density of ``event_light`` (a Gamma of the same mean and variance); an
    event with no light (no primary electron) is read as one count, so every class keeps a finite density."""
    from scipy.stats import gamma

    return gamma.logpdf(np.maximum(light, 1.0), light_yield(particle, energy, physics) / (2 * COUNTS_PER_ELECTRON),
                        scale=2 * COUNTS_PER_ELECTRON)


def _track(particle: str, energy: float, rng: np.random.Generator, physics: Physics = Physics()):
    """Points (row, col) along the track in canvas pixels, and their light weights."""
    if particle == "NR":
        length = _interp_log(NR_RANGE_MM, energy) / PX_MM
        n = 8
        theta = rng.uniform(0, 2 * np.pi)
        t = np.linspace(0, 1, n)
        dr, dc = np.sin(theta) * length * t, np.cos(theta) * length * t
        return dr, dc, np.full(n, 1.0 / n)
    # ER: the 3D range projected on the camera plane (isotropic dip angle)
    length = _interp_log(ER_RANGE_MM, energy) * physics.er_range / PX_MM * math.sqrt(1 - rng.uniform(-1, 1) ** 2)
    n = max(4, int(length / 0.3))
    t = np.arange(n) / n
    step = length / n
    kicks = rng.normal(0.0, 1.0, n) * (0.05 + 0.6 * t**2)  # multiple scattering grows as the electron slows
    theta = rng.uniform(0, 2 * np.pi) + np.cumsum(kicks)
    dr = np.concatenate([[0.0], np.cumsum(np.sin(theta) * step)[:-1]])
    dc = np.concatenate([[0.0], np.cumsum(np.cos(theta) * step)[:-1]])
    w = (1.0 - t + 0.1) ** -0.6  # stopping power rises towards the end (Bragg-like)
    return dr, dc, w / w.sum()


def render_event(particle: str, energy: float, rng: np.random.Generator, physics: Physics = Physics()) -> np.ndarray:
    """One 576x576 uint8 image of a recoil of ``particle`` at ``energy`` keV."""
    size = IMAGE_SIZE
    img = rng.standard_normal((size, size), dtype=np.float32) * PIXEL_NOISE * physics.noise
    img += PEDESTAL_MEAN
    img += (rng.standard_normal(size).astype(np.float32) * COLUMN_STRIPES)[None, :]
    img += (rng.standard_normal(size).astype(np.float32) * ROW_OFFSETS)[:, None]

    # signal on a patch around the start point
    light = float(event_light(particle, energy, rng, physics))
    sigma = rng.normal(*SPOT_SIGMA[particle]) * physics.diffusion
    dr, dc, w = _track(particle, energy, rng, physics)
    start = CANVAS / 2 + rng.normal(0.0, START_JITTER, 2)
    r, c = np.clip(start[0] + dr, 1, CANVAS - 2), np.clip(start[1] + dc, 1, CANVAS - 2)
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    fr, fc = r - r0, c - c0
    canvas = np.zeros((CANVAS, CANVAS), np.float64)
    for dr_, dc_, ww in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        np.add.at(canvas, (r0 + dr_, c0 + dc_), w * ww * light)
    canvas = gaussian_filter(canvas, max(sigma, 2.5), truncate=3.5)
    canvas += rng.standard_normal(canvas.shape) * np.sqrt(1.5 * canvas)  # photon and gain statistics
    lo = (size - CANVAS) // 2
    img[lo : lo + CANVAS, lo : lo + CANVAS] += canvas.astype(np.float32)

    hot = rng.integers(0, size, (rng.poisson(3), 2))
    img[hot[:, 0], hot[:, 1]] += rng.uniform(20, 60, len(hot)).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def encode_png(img: np.ndarray, level: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


# --- dataset plan ------------------------------------------------------------
def _scaled(counts: dict, scale: float, at_least_one: bool = False) -> dict:
    out = {}
    for k, n in counts.items():
        m = math.ceil(n * scale) if at_least_one else round(n * scale)
        out[k] = max(m, 1)
    return out


def plan_dataset(scale: float = 1.0, seed: int = 0) -> list[dict]:
    """Every image to write: split, relative path, id, particle, energy; in a fixed order."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rng = np.random.default_rng([seed, 0xC1])
    plan = []
    train = _scaled(TRAIN_COUNTS, scale)
    for key, n in _scaled(TRAIN_STRAYS, scale, at_least_one=True).items():
        train[key] = n
    for (particle, energy), n in sorted(train.items()):
        n_runs = max(5, math.ceil(n / 1000))
        run_ev = rng.choice(n_runs * 1000, size=n, replace=False)
        half_range = math.pi / 2 if particle == "ER" else math.pi
        for k in run_ev:
            angle = repr(float(np.float32(rng.uniform(-half_range, half_range))))
            kind = "ER" if particle == "ER" else "He_NR"
            tail = "IDAO" if particle == "ER" else "SRIM_IDAO"
            name = f"{angle}__CYGNO_60_40_{kind}_{energy}_keV_930V_30cm_{tail}_iso_crop_hist_pic_run{k // 1000 + 1}_ev{k % 1000};1"
            plan.append(dict(split="train", rel=f"train/{particle}/{name}.png", id=name,
                             particle=particle, energy=energy))
    for split, counts in (("public_test", PUBLIC_COUNTS), ("private_test", PRIVATE_COUNTS)):
        items = [(p, e) for (p, e), n in _scaled(counts, scale).items() for _ in range(n)]
        for i in rng.permutation(len(items)):
            particle, energy = items[i]
            id_ = hashlib.sha1(f"{seed}/{split}/{len(plan)}".encode()).hexdigest()
            plan.append(dict(split=split, rel=f"{split}/{id_}.png", id=id_, particle=particle, energy=energy))
    return plan


def _write_one(args) -> None:
    root, index, item, seed, physics = args
    rng = np.random.default_rng([seed, index])
    img = render_event(item["particle"], item["energy"], rng, physics)
    (root / item["rel"]).write_bytes(encode_png(img))


def simulate_dataset(out: str | Path, scale: float = 1.0, seed: int = 0, workers: int | None = None,
                     overwrite: bool = False, progress: bool = True, physics: Physics = Physics()) -> Path:
    """Write a simulated ``idao_dataset`` to ``out``, with test truth in ``out/labels.csv``.

    The dataset is built in ``<out>.partial`` and renamed at the end, so an
    interrupted run never leaves a folder that looks complete.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out}: already exists; remove it or pass --overwrite")
    plan = plan_dataset(scale, seed)
    check_disk_space(out.parent, len(plan) * 200_000, f"a simulated dataset of {len(plan)} images")
    with building_dir(out) as partial:
        for sub in ("train/ER", "train/NR", *TEST_SPLITS):
            (partial / sub).mkdir(parents=True, exist_ok=True)
        workers = workers or os.cpu_count() or 1
        jobs = [(partial, i, item, seed, physics) for i, item in enumerate(plan)]
        bar = dict(total=len(jobs), desc="simulate", unit="img", disable=None if progress else True, mininterval=2)  # None: off when not a terminal
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for _ in tqdm(pool.map(_write_one, jobs, chunksize=16), **bar):
                    pass
        else:
            for job in tqdm(jobs, **bar):
                _write_one(job)
        rows = ["id,split,particle,energy"] + [
            f"{p['id']},{p['split']},{p['particle']},{p['energy']}" for p in plan if p["split"] != "train"]
        write_text(partial / LABELS_FILE, "\n".join(rows) + "\n")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write a simulated IDAO 2021 (CYGNO) dataset.")
    parser.add_argument("out", nargs="?", default="data/idao_dataset", help="dataset folder to create")
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = the real counts (29,964 images)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--physics", default="", help="multipliers on uncertain physics, e.g. "
                        "nr_quenching=1.25,er_yield=0.85,diffusion=1.2,er_range=0.7,noise=1.2")
    args = parser.parse_args(argv)
    from ..cli import run_cli
    from .dataset import describe

    def job():
        root = simulate_dataset(args.out, args.scale, args.seed, args.workers, args.overwrite,
                                physics=Physics.parse(args.physics))
        print(f"wrote {root}\n{describe(root)}")

    run_cli(job)


if __name__ == "__main__":
    main()

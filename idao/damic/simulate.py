"""A DAMIC-like simulator: per-event ``.npz`` files in the raw format, with the truth the real files lack.

Physics, simple but with the features that matter for classification
(facts: ../shared/docs/damic-facts.md): a 670 um silicon CCD with 15 um
pixels; charge carriers diffuse laterally with sigma^2 = -A ln(1 - b z)
(A = 216 um^2, b = 8.86e-4 /um, z the distance drifted), so deep
interactions are wider. Electrons (3 keV - 1 MeV, log-uniform) random-walk
along their range R = 1.2 um (E / 10 keV)^1.7, turning more as they slow down
(short, curly); muons cross the whole thickness in a straight line at a
cos^2 zenith angle, losing ~0.39 keV/um with Landau-like fluctuations (long,
straight, widening with depth); alphas (4-8 MeV) stop within ~30 um and
leave a bright round blob (plasma spreading ~1.5 px); noise events have no
particle. Charge is quantised in electrons of 3.77 eV (Fano 0.13). The
``noise`` frame holds Poisson dark current (3.33e-4 e-/px) plus Gaussian
readout noise (0.5 e-), rounded to whole electrons and clipped at zero.

Each file holds ``energy`` and ``noise`` (300x300 eV) and ``loc`` (the
track's box: row, col, height, width); names end in ``_pdg_<code>`` (noise:
pdg 0). Every event has its own seed, so a dataset is the same whatever the
order it is written in; it is built in ``<root>.partial`` and renamed when
complete.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.special import erf

from ..atomic import atomic_path, building_dir, check_disk_space
from .io import EV_PER_ELECTRON

FRAME = 300
PIXEL_UM = 15.0
THICKNESS_UM = 670.0
DIFFUSION_A, DIFFUSION_B = 216.2, 8.86e-4
DARK_CURRENT = 3.33e-4  # electrons per pixel
READOUT_SIGMA = 0.5  # electrons
FANO = 0.13
PDG = {"electron": 11, "muon": 13, "alpha": 1000020040, "noise": 0}
CLASSES = tuple(PDG)


def diffusion_px(depth_um: np.ndarray) -> np.ndarray:
    """Lateral diffusion sigma in pixels after drifting ``depth_um`` (DAMIC's measured law), at least 0.2 px."""
    z = np.clip(depth_um, 0, THICKNESS_UM)
    return np.maximum(np.sqrt(-DIFFUSION_A * np.log(1 - DIFFUSION_B * z)) / PIXEL_UM, 0.2)


def electron_path(energy_kev: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Points (row, col, depth, all in um) along a random walk, and the keV deposited at each."""
    range_um = 1.2 * (energy_kev / 10.0) ** 1.7
    n = max(2, int(range_um / 3.0))  # 3 um steps
    step = range_um / n
    pos = np.array([0.0, 0.0, rng.uniform(0, THICKNESS_UM)])
    direction = rng.normal(size=3)
    points = []
    for i in range(n):
        direction /= np.linalg.norm(direction)
        pos = pos + step * direction
        if not 0 <= pos[2] <= THICKNESS_UM:  # reflect at the surfaces
            pos[2] = np.clip(pos[2], 0, THICKNESS_UM)
            direction[2] = -direction[2]
        points.append(pos.copy())
        turn = 0.15 + 0.9 * (i / n) ** 2  # curlier as it slows down
        direction = direction + turn * rng.normal(size=3)
    remaining = 1.0 - np.arange(n) / n
    weights = remaining ** -0.7  # more energy per step near the end (Bragg-like)
    return np.array(points), energy_kev * weights / weights.sum()


def muon_path(rng) -> tuple[np.ndarray, np.ndarray]:
    cos_theta = np.sqrt(rng.uniform(0.0, 1.0)) ** 0.5  # cos^2 zenith distribution
    cos_theta = max(cos_theta, 0.03)
    tan_theta = np.sqrt(1 - cos_theta**2) / cos_theta
    length_xy = min(THICKNESS_UM * tan_theta, 1.5 * FRAME * PIXEL_UM)
    phi = rng.uniform(0, 2 * np.pi)
    length = np.hypot(length_xy, THICKNESS_UM)
    n = max(2, int(length / 5.0))
    t = (np.arange(n) + 0.5) / n
    points = np.column_stack([t * length_xy * np.sin(phi), t * length_xy * np.cos(phi), t * THICKNESS_UM])
    if rng.uniform() < 0.5:
        points[:, 2] = THICKNESS_UM - points[:, 2]
    dedx = 0.39 * rng.lognormal(-0.06, 0.35, n)  # keV/um, mean ~0.39, Landau-like fluctuations
    return points, dedx * length / n


def alpha_path(rng) -> tuple[np.ndarray, np.ndarray]:
    energy = rng.uniform(4000, 8000)
    depth = rng.choice([rng.uniform(0, 20), THICKNESS_UM - rng.uniform(0, 20)])  # from a surface
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    t = np.linspace(0, 1, 12)[:, None]
    points = np.array([0.0, 0.0, depth]) + t * 25.0 * direction
    points[:, 2] = np.clip(points[:, 2], 0, THICKNESS_UM)
    return points, np.full(len(points), energy / len(points))


def deposit(points_um: np.ndarray, kev: np.ndarray, rng, extra_sigma_px: float = 0.0) -> np.ndarray:
    """Charge of every point spread over pixels by its depth's diffusion, quantised in electrons, in eV."""
    frame = np.zeros((FRAME, FRAME))
    centre = rng.uniform(20, FRAME - 20, 2)
    rows = points_um[:, 0] / PIXEL_UM + centre[0]
    cols = points_um[:, 1] / PIXEL_UM + centre[1]
    sigma = np.hypot(diffusion_px(points_um[:, 2]), extra_sigma_px)
    half = int(np.ceil(3 * sigma.max())) + 1
    k = np.arange(-half, half + 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)

    def weights(pos, origin):  # Gaussian integrated over each pixel
        edges = (origin[:, None] + k[None, :] - pos[:, None]) / (np.sqrt(2) * sigma[:, None])
        return 0.5 * (erf(edges + 1 / (np.sqrt(2) * sigma[:, None])) - erf(edges))

    wr, wc = weights(rows, r0), weights(cols, c0)
    charge = (kev * 1000.0 / EV_PER_ELECTRON)[:, None, None] * wr[:, :, None] * wc[:, None, :]
    rr = (r0[:, None] + k[None, :])[:, :, None] + 0 * k[None, None, :]
    cc = (c0[:, None] + k[None, :])[:, None, :] + 0 * k[None, :, None]
    inside = (rr >= 0) & (rr < FRAME) & (cc >= 0) & (cc < FRAME)
    np.add.at(frame, (rr[inside], cc[inside]), charge[inside])
    electrons = np.maximum(np.rint(rng.normal(frame, np.sqrt(FANO * frame + 1e-12))), 0)
    return electrons * EV_PER_ELECTRON


def noise_frame(rng, readout_sigma: float = READOUT_SIGMA) -> np.ndarray:
    charge = rng.poisson(DARK_CURRENT, (FRAME, FRAME)) + rng.normal(0, readout_sigma, (FRAME, FRAME))
    return np.maximum(np.rint(charge), 0) * EV_PER_ELECTRON


def render_event(particle: str, rng) -> dict:
    """``energy``, ``noise`` and ``loc`` of one simulated event."""
    if particle == "noise":
        energy = np.zeros((FRAME, FRAME))
    elif particle == "electron":
        energy = deposit(*electron_path(float(np.exp(rng.uniform(np.log(3), np.log(1000)))), rng), rng)
    elif particle == "muon":
        energy = deposit(*muon_path(rng), rng)
    elif particle == "alpha":
        energy = deposit(*alpha_path(rng), rng, extra_sigma_px=1.5)
    else:
        raise ValueError(f"unknown particle {particle!r}; simulated classes: {CLASSES}")
    rows, cols = np.nonzero(energy)
    loc = (np.array([rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1])
           if len(rows) else np.zeros(4, int))
    return dict(energy=energy, noise=noise_frame(rng), loc=loc)


SIMULATED = "sim_"  # how every simulated event's file name (its id) starts: reports tell simulated from real


def event_name(split: str, index: int, particle: str, rng) -> str:
    code = PDG[particle] * (rng.choice([-1, 1]) if particle == "muon" else 1)
    return f"{SIMULATED}{split}_evt_{index:06d}_pdg_{code}.npz"


def simulate_dataset(root: str | Path, events_per_class: int, seed: int = 0, classes=CLASSES) -> Path:
    """``root/train`` (``events_per_class`` per class) and ``root/test`` (a quarter as many), atomically."""
    root = Path(root)
    counts = {"train": events_per_class, "test": max(1, events_per_class // 4)}
    check_disk_space(root.parent, sum(counts.values()) * len(classes) * 60_000, "the simulated DAMIC dataset")
    with building_dir(root) as partial:
        for s, (split, n) in enumerate(counts.items()):
            (partial / split).mkdir(parents=True)
            for i in range(n * len(classes)):
                particle = classes[i % len(classes)]
                rng = np.random.default_rng([seed, s, i])
                event = render_event(particle, rng)
                with atomic_path(partial / split / event_name(split, i, particle, rng)) as tmp:
                    with open(tmp, "wb") as f:
                        np.savez_compressed(f, **event)
    return root


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Simulate a DAMIC-like per-event dataset (train/ and test/).")
    parser.add_argument("out")
    parser.add_argument("--events", type=int, default=250, help="training events per class (test: a quarter)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classes", default=",".join(CLASSES))
    args = parser.parse_args(argv)
    root = simulate_dataset(args.out, args.events, args.seed, tuple(args.classes.split(",")))
    print(f"wrote {root}")


if __name__ == "__main__":
    main()

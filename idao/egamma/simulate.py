"""Simulated calorimeter crops in the exact layout of the ML4SCI electron / photon files.

A stand-in for ``SingleElectronPt50_IMGCROPS_n249k_RHv1.hdf5`` and
``SinglePhotonPt50_IMGCROPS_n249k_RHv1.hdf5`` (``X`` (N, 32, 32, 2) float32
channels last: energy in GeV, time in ns; ``y`` 1 electron / 0 photon; gzip
chunks), written a block at a time so any size fits in memory.

Physics, in crystal units (one crystal ~ one Molière radius), rows = eta,
columns = phi (the magnetic bending direction):

- each particle showers as a core + halo radial profile (fraction within r:
  r² / (r² + R²), R = 0.3 and 1.5 Molière radii, 85 % core), sampled as
  ``spots`` equal-energy points, so crystals fluctuate as showers do;
- an electron radiates a Beta-distributed fraction of its energy
  (``brem_mean``) as 1-4 bremsstrahlung photons that land spread along phi
  (up to ``brem_spread`` crystals, to the side its charge bends);
- a photon converts in the tracker with probability ``conversion``; the e+e-
  pair shares its energy and the legs separate along phi (softer leg further,
  up to ``pair_spread`` crystals);
- log-normal smearing per particle and per crystal, Gaussian noise
  (``noise`` GeV), zero suppression below ``threshold`` GeV; the time channel
  is a per-hit jitter falling with hit energy, 0 where no hit.

Energy: pT 50 GeV at |eta| < 1.4 (E = pT cosh eta). The defaults make the task
about as hard as the real one (a ResNet-15 reaches ROC-AUC ~0.8; public results
on the real files: 0.80 at best): see docs/studies/egamma.md for how that was judged.
"""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, check_disk_space
from ..knobs import parse_knobs

SIZE = 32
FILES = {1: "SingleElectronPt50_IMGCROPS_n249k_RHv1.hdf5", 0: "SinglePhotonPt50_IMGCROPS_n249k_RHv1.hdf5"}
CHUNK = 1000  # rows per HDF5 chunk


@dataclass(frozen=True)
class Physics:
    brem_mean: float = 0.2  # mean fraction of an electron's energy radiated before the calorimeter
    brem_spread: float = 2.0  # crystals along phi the furthest brem photon may land from the electron
    conversion: float = 0.45  # probability that a photon converts in the tracker
    pair_spread: float = 1.5  # crystals along phi between the legs of a symmetric pair
    core: float = 0.3  # core radius, Molière radii
    halo: float = 1.5
    core_fraction: float = 0.85
    spots: int = 150  # energy points per shower (its fluctuations)
    smear: float = 0.03  # log-normal energy smearing per particle
    crystal_smear: float = 0.02  # and per crystal
    noise: float = 0.04  # GeV, per crystal
    threshold: float = 0.1  # GeV: zero suppression
    jitter: float = 0.5  # ns GeV: time resolution a / E
    jitter_floor: float = 0.05  # ns


def _particles(rng, n: int, electron: bool, p: Physics):
    """(event, row, col, energy) of every particle reaching the calorimeter in ``n`` events."""
    energy = 50.0 * np.cosh(rng.uniform(-1.4, 1.4, n)) * rng.lognormal(0, p.smear, n)
    centre = SIZE / 2 - 0.5 + rng.uniform(-0.5, 0.5, (n, 2))
    side = rng.choice([-1.0, 1.0], n)  # the charge's bending side along phi
    events, rows, cols, energies = [np.arange(n)], [centre[:, 0]], [centre[:, 1]], []
    if electron:
        radiated = rng.beta(2.0, 2.0 * (1 - p.brem_mean) / p.brem_mean, n)
        k = rng.integers(1, 5, n)
        share = rng.dirichlet(np.ones(4), n) * (np.arange(4) < k[:, None])
        share /= share.sum(1, keepdims=True)
        energies.append(energy * (1 - radiated))
        for j in range(4):
            has = share[:, j] > 0
            events.append(np.flatnonzero(has))
            rows.append(centre[has, 0])
            cols.append(centre[has, 1] + side[has] * p.brem_spread * rng.uniform(0, 1, has.sum()))
            energies.append((energy * radiated * share[:, j])[has])
    else:
        converted = rng.random(n) < p.conversion
        z = rng.uniform(0.1, 0.9, n)
        depth = rng.uniform(0, 1, n)  # how early the conversion: earlier spreads the legs more
        energies.append(np.where(converted, energy * z, energy))
        cols[0] = centre[:, 1] + np.where(converted, side * p.pair_spread * depth * (1 - z), 0)
        idx = np.flatnonzero(converted)
        events.append(idx)
        rows.append(centre[idx, 0])
        cols.append(centre[idx, 1] - side[idx] * p.pair_spread * depth[idx] * z[idx])
        energies.append(energy[idx] * (1 - z[idx]))
    return np.concatenate(events), np.concatenate(rows), np.concatenate(cols), np.concatenate(energies)


def simulate_images(rng, n: int, electron: bool, p: Physics = Physics()) -> np.ndarray:
    """(n, 32, 32, 2) float32 crops of one class: energy (GeV) and time (ns), channels last."""
    event, row, col, energy = _particles(rng, n, electron, p)
    m = p.spots
    event, row, col = np.repeat(event, m), np.repeat(row, m), np.repeat(col, m)
    weight = np.repeat(energy / m, m)
    u = rng.uniform(1e-6, 1 - 1e-6, len(event))
    radius = np.where(rng.random(len(event)) < p.core_fraction, p.core, p.halo) * np.sqrt(u / (1 - u))
    angle = rng.uniform(0, 2 * np.pi, len(event))
    r = np.floor(row + radius * np.cos(angle)).astype(int)
    c = np.floor(col + radius * np.sin(angle)).astype(int)
    inside = (r >= 0) & (r < SIZE) & (c >= 0) & (c < SIZE)
    flat = (event * SIZE + r) * SIZE + c
    grid = np.bincount(flat[inside], weight[inside], minlength=n * SIZE * SIZE).reshape(n, SIZE, SIZE)
    grid = grid * rng.lognormal(0, p.crystal_smear, grid.shape) + rng.normal(0, p.noise, grid.shape)
    hit = grid > p.threshold
    sigma = np.sqrt((p.jitter / np.maximum(grid, p.threshold)) ** 2 + p.jitter_floor ** 2)
    time = np.where(hit, rng.normal(0, 1, grid.shape) * sigma, 0.0)
    return np.stack([np.where(hit, grid, 0.0), time], axis=-1).astype(np.float32)


def write_file(path: Path, n: int, electron: bool, seed: int, p: Physics = Physics(), block: int = 10 * CHUNK) -> Path:
    """One class's file, written atomically a block at a time (memory flat in ``n``)."""
    import h5py

    rng = np.random.default_rng([seed, int(electron)])
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            X = f.create_dataset("X", (n, SIZE, SIZE, 2), np.float32, chunks=(min(CHUNK, n), SIZE, SIZE, 2),
                                 compression="gzip", compression_opts=1, shuffle=True)
            for start in range(0, n, block):
                X[start : start + block] = simulate_images(rng, min(block, n - start), electron, p)
            f.create_dataset("y", data=np.full(n, float(electron), np.float32))
            f.attrs["simulated"] = f"idao.egamma.simulate seed {seed} {dataclasses.asdict(p)}"
    return path


def simulate_dataset(folder: Path, events: int, seed: int = 0, p: Physics = Physics()) -> Path:
    """Both files, ``events`` images each, in ``folder``."""
    folder = Path(folder)
    check_disk_space(folder, 2 * events * SIZE * SIZE * 2 * 4 // 3, "the simulated calorimeter files")
    for label, name in FILES.items():
        write_file(folder / name, events, bool(label), seed, p)
    return folder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write simulated ML4SCI electron / photon calorimeter files.")
    parser.add_argument("out", type=Path, help="folder for the two .hdf5 files")
    parser.add_argument("--events", type=int, default=249000, help="images per class (the real files: 249000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--physics", default="", help="e.g. brem_mean=0.3,conversion=0.5 (see Physics)")
    args = parser.parse_args(argv)
    from ..cli import run_cli

    def job():
        simulate_dataset(args.out, args.events, args.seed, parse_knobs(Physics, args.physics))
        print(f"wrote {args.out}: {args.events} electrons and {args.events} photons")

    run_cli(job)


if __name__ == "__main__":
    main()

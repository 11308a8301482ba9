"""Simulated IceCube events in the exact Kaggle layout, on the real IceCube-86 geometry.

Event types (isotropic directions: azimuth uniform, cos zenith uniform):
through-going muon tracks (an infinite line through a point in the detector),
starting tracks (a muon leaving a vertex inside, with a cascade there) and
cascades (point-like showers). Light, per sensor:

- tracks: Cherenkov light at 41 degrees; the direct photon leaves the track
  at the point a distance rho / tan(theta_c) before the closest approach and
  travels rho / sin(theta_c) through ice (n = 1.32); expected charge
  ~ energy x exp(-rho / attenuation) / sqrt(rho);
- cascades: light from the vertex, ~ energy x exp(-d / attenuation) / d^2,
  brighter forward; direct time d / c_ice;
- every photon is delayed by scattering (exponential, mean ``delay_per_m`` x
  distance) plus 3 ns jitter; charges are Poisson photo-electron counts split
  over at most 4 pulses per sensor, log-normal amplitudes;
- dark noise: Poisson-many pulses on random sensors, spread over the event
  window; ``auxiliary`` is set on most noise pulses and on weak or late ones.

An event is kept when it has at least ``trigger`` signal pulses. The truth
goes to the meta file (``azimuth``, ``zenith``; ``event_type`` is a side column
the reader ignores); test truth goes to ``test_truth.parquet`` outside ``test/``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, building_dir
from .io import PACKAGED_GEOMETRY, read_geometry

C = 0.2998  # m / ns
N_ICE = 1.32
THETA_C = np.arccos(1 / N_ICE)
TYPES = ("track", "starting", "cascade")


@dataclass(frozen=True)
class Physics:
    attenuation: float = 40.0  # m
    delay_per_m: float = 0.5  # ns of mean scattering delay per metre travelled
    noise_pulses: float = 15.0  # mean dark-noise pulses per event
    trigger: int = 8  # signal pulses an event needs to be kept
    type_fractions: tuple = (0.4, 0.2, 0.4)  # track, starting, cascade


def _pulses(rng, mu: np.ndarray, direct: np.ndarray, dist: np.ndarray, p: Physics):
    """Signal pulses of sensors with expected charge ``mu``: (sensor, time, charge, late)."""
    n = rng.poisson(mu)
    hit = np.flatnonzero(n > 0)
    k = np.minimum(n[hit], 4)
    sensor = np.repeat(hit, k)
    delay = rng.exponential(np.repeat(p.delay_per_m * dist[hit], k) + 1.0)
    time = np.repeat(direct[hit], k) + delay + rng.normal(0, 3.0, len(sensor))
    charge = np.repeat(n[hit] / k, k) * rng.lognormal(0, 0.25, len(sensor))
    return sensor, time, charge, delay > 300


def simulate_event(rng, geometry: np.ndarray, kind: str, p: Physics):
    """(sensor, time, charge, auxiliary, n_signal), azimuth, zenith of one event of ``kind``."""
    azimuth, zenith = rng.uniform(0, 2 * np.pi), np.arccos(rng.uniform(-1, 1))
    origin = np.array([np.cos(azimuth) * np.sin(zenith), np.sin(azimuth) * np.sin(zenith), np.cos(zenith)])
    d = -origin  # the particle travels away from where it came from
    radius, half = (550.0, 550.0) if kind == "track" else (450.0, 450.0)
    r, phi = radius * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
    vertex = np.array([r * np.cos(phi), r * np.sin(phi), rng.uniform(-half, half)])
    t0 = 10000.0
    w = geometry - vertex
    parts = []
    if kind in ("track", "starting"):
        s = w @ d
        rho = np.linalg.norm(w - s[:, None] * d, axis=1)
        emit = s - rho / np.tan(THETA_C)  # where along the track the direct photon leaves
        path = rho / np.sin(THETA_C)
        mu = rng.lognormal(np.log(25.0), 0.5) * np.exp(-rho / p.attenuation) / np.sqrt(np.maximum(rho, 5.0))
        if kind == "starting":
            mu = np.where((emit >= 0) & (emit <= rng.uniform(300, 1500)), mu, 0.0)
        parts.append(_pulses(rng, mu, t0 + emit / C + path * N_ICE / C, path, p))
    if kind in ("cascade", "starting"):
        dist = np.linalg.norm(w, axis=1)
        forward = 1 + 0.5 * (w @ d) / np.maximum(dist, 1e-6)
        energy = np.exp(rng.uniform(np.log(200.0), np.log(20000.0)))
        mu = energy * forward * np.exp(-dist / p.attenuation) / np.maximum(dist, 5.0) ** 2
        parts.append(_pulses(rng, mu, t0 + dist * N_ICE / C, dist, p))
    sensor, time, charge, late = (np.concatenate(a) for a in zip(*parts))
    aux = rng.random(len(sensor)) < np.clip(0.05 + 0.4 * (charge < 0.6) + 0.4 * late, 0, 0.9)
    n_signal = len(sensor)
    m = rng.poisson(p.noise_pulses)
    lo, hi = (time.min() - 1000, time.max() + 3000) if n_signal else (t0 - 1000, t0 + 5000)
    sensor = np.r_[sensor, rng.integers(0, len(geometry), m)]
    time = np.r_[time, rng.uniform(lo, hi, m)]
    charge = np.r_[charge, rng.lognormal(-0.3, 0.4, m)]
    aux = np.r_[aux, rng.random(m) < 0.8]
    order = np.argsort(time, kind="stable")
    return (sensor[order], np.round(time[order]).astype(np.int64), charge[order].astype(np.float32), aux[order],
            n_signal), azimuth, zenith


def write_split(folder: Path, split: str, n_events: int, per_file: int, rng, geometry, p: Physics,
                first_id: int, labelled: bool) -> int:
    """``<split>/batch_<n>.parquet`` files and ``<split>_meta.parquet`` (truth in ``test_truth.parquet`` for an
    unlabelled split); returns the next free event id."""
    (folder / split).mkdir(parents=True, exist_ok=True)
    metas, event_id = [], first_id
    for batch_id in range(1, -(-n_events // per_file) + 1):
        rows, pulses = [], []
        count = 0
        while len(rows) < min(per_file, n_events - (batch_id - 1) * per_file):
            kind = TYPES[rng.choice(3, p=p.type_fractions)]
            (sensor, time, charge, aux, n_signal), az, zen = simulate_event(rng, geometry, kind, p)
            if n_signal < p.trigger:
                continue
            rows.append(dict(batch_id=batch_id, event_id=event_id, first_pulse_index=count,
                             last_pulse_index=count + len(sensor) - 1, azimuth=az, zenith=zen, event_type=kind))
            pulses.append(pd.DataFrame({"event_id": event_id, "sensor_id": sensor.astype(np.int16), "time": time,
                                        "charge": charge, "auxiliary": aux}))
            count += len(sensor)
            event_id += 1
        table = pd.concat(pulses, ignore_index=True).set_index("event_id")
        with atomic_path(folder / split / f"batch_{batch_id}.parquet") as tmp:
            table.to_parquet(tmp)
        metas.append(pd.DataFrame(rows))
    meta = pd.concat(metas, ignore_index=True)
    if not labelled:
        meta[["event_id", "azimuth", "zenith", "event_type"]].to_parquet(folder / f"{split}_truth.parquet", index=False)
        meta = meta.drop(columns=["azimuth", "zenith", "event_type"])
    meta.to_parquet(folder / f"{split}_meta.parquet", index=False)
    return event_id


def simulate_dataset(root: Path, train_events: int, test_events: int, per_file: int = 2000, seed: int = 0,
                     p: Physics = Physics()) -> Path:
    """The Kaggle layout at ``root`` (built in ``<root>.partial``, renamed when complete)."""
    rng = np.random.default_rng(seed)
    geometry = read_geometry(PACKAGED_GEOMETRY)
    with building_dir(root) as partial:
        pd.read_csv(PACKAGED_GEOMETRY).to_csv(partial / "sensor_geometry.csv", index=False)
        next_id = write_split(partial, "train", train_events, per_file, rng, geometry, p, 0, True)
        write_split(partial, "test", test_events, per_file, rng, geometry, p, next_id, False)
    return Path(root)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write simulated IceCube events in the Kaggle layout.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--train-events", type=int, default=10000)
    parser.add_argument("--test-events", type=int, default=2000)
    parser.add_argument("--per-file", type=int, default=2000, help="events per batch file (Kaggle: 200000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    simulate_dataset(args.out, args.train_events, args.test_events, args.per_file, args.seed)
    print(f"wrote {args.out}: {args.train_events} training and {args.test_events} test events")


if __name__ == "__main__":
    main()

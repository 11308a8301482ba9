"""Simulated IceCube events in the exact Kaggle layout, on the real IceCube-86 geometry.

Event types (isotropic directions: azimuth uniform, cos zenith uniform):
through-going muon tracks (an infinite line through a point in the detector),
starting tracks (a muon leaving a vertex inside, with a cascade there) and
cascades (showers from a vertex). The default mix is 12 % / 8 % / 80 %: the
seed's "~80 % of observed neutrino events are showers". Light, per sensor:

- tracks: Cherenkov light at 41 degrees; the direct photon leaves the track
  at the point a distance rho / tan(theta_c) before the closest approach and
  travels rho / sin(theta_c) through ice (n = 1.32); expected charge
  ~ energy x exp(-rho / attenuation) / sqrt(rho);
- cascades: light from the vertex, ~ energy x exp(-d / attenuation) / d^2 x the
  angular profile of a shower: most light near the Cherenkov angle around the
  shower axis (a Gaussian in angle, ``cascade_spread`` wide), the rest
  isotropic (``cascade_isotropic``), so a cascade's charge pattern carries its
  direction as a real one does; energies follow E^-``spectral_index``; direct
  time d / c_ice;
- every photon is delayed by scattering (exponential, mean ``delay_per_m`` x
  distance) plus 3 ns jitter; charges are Poisson photo-electron counts split
  over at most 4 pulses per sensor, log-normal amplitudes;
- a coincident atmospheric muon (probability ``coincident_muons``): a
  down-going track at a random time in the event window, light that is not the
  neutrino's;
- dark noise: Poisson-many pulses on random sensors, spread over the event
  window; ``auxiliary`` is set on most noise pulses and on weak or late ones.

An event is kept when it has at least ``trigger`` pulses of the neutrino's
light; the type fractions are those of the events kept. The truth goes to the meta file (``azimuth``, ``zenith``; ``event_type``
and ``coincident`` are side columns the reader keeps as extras); test truth
goes to ``test_truth.parquet`` outside ``test/``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import atomic_path, building_dir
from ..knobs import parse_knobs
from .io import PACKAGED_GEOMETRY, read_geometry

C = 0.2998  # m / ns
N_ICE = 1.32
THETA_C = np.arccos(1 / N_ICE)
TYPES = ("track", "starting", "cascade")
TRUTH = ("azimuth", "zenith", "event_type", "coincident")  # what an unlabelled split keeps apart
CASCADE_ENERGY = (1000.0, 100000.0)  # arbitrary light units: ~20 to ~2,000 photo-electrons in all


@dataclass(frozen=True)
class Physics:
    attenuation: float = 40.0  # m
    delay_per_m: float = 0.5  # ns of mean scattering delay per metre travelled
    noise_pulses: float = 15.0  # mean dark-noise pulses per event
    trigger: int = 8  # pulses of the neutrino's light an event needs to be kept
    track_fraction: float = 0.12  # through-going muon tracks
    starting_fraction: float = 0.08  # starting tracks; the rest (0.80) are cascades
    cascade_spread: float = 0.35  # rad: spread of cascade light around the Cherenkov angle
    cascade_isotropic: float = 0.2  # fraction of cascade light emitted isotropically
    spectral_index: float = 1.5  # cascade energies ~ E^-index over CASCADE_ENERGY
    coincident_muons: float = 0.1  # probability of an atmospheric muon in the event window

    @property
    def type_fractions(self) -> tuple[float, float, float]:
        return self.track_fraction, self.starting_fraction, 1.0 - self.track_fraction - self.starting_fraction


def _pulses(rng, mu: np.ndarray, direct: np.ndarray, dist: np.ndarray, p: Physics):
    """Pulses of sensors with expected charge ``mu``: (sensor, time, charge, late)."""
    n = rng.poisson(mu)
    hit = np.flatnonzero(n > 0)
    k = np.minimum(n[hit], 4)
    sensor = np.repeat(hit, k)
    delay = rng.exponential(np.repeat(p.delay_per_m * dist[hit], k) + 1.0)
    time = np.repeat(direct[hit], k) + delay + rng.normal(0, 3.0, len(sensor))
    charge = np.repeat(n[hit] / k, k) * rng.lognormal(0, 0.25, len(sensor))
    return sensor, time, charge, delay > 300


def _direction(rng, max_zenith: float = np.pi):
    """(unit vector to where the particle came from, azimuth, zenith): isotropic up to ``max_zenith``."""
    azimuth, zenith = rng.uniform(0, 2 * np.pi), np.arccos(rng.uniform(np.cos(max_zenith), 1))
    return np.array([np.cos(azimuth) * np.sin(zenith), np.sin(azimuth) * np.sin(zenith), np.cos(zenith)]), azimuth, zenith


def track_light(rng, geometry, vertex, d, p: Physics, t0: float, length: float | None = None):
    """Pulses of a muon through ``vertex`` moving along ``d``: infinite, or starting there and ``length`` m long."""
    w = geometry - vertex
    s = w @ d
    rho = np.linalg.norm(w - s[:, None] * d, axis=1)
    emit = s - rho / np.tan(THETA_C)  # where along the track the direct photon leaves
    path = rho / np.sin(THETA_C)
    mu = rng.lognormal(np.log(25.0), 0.5) * np.exp(-rho / p.attenuation) / np.sqrt(np.maximum(rho, 5.0))
    if length is not None:
        mu = np.where((emit >= 0) & (emit <= length), mu, 0.0)
    return _pulses(rng, mu, t0 + emit / C + path * N_ICE / C, path, p)


def cascade_profile(cos_angle: np.ndarray, p: Physics) -> np.ndarray:
    """Light per unit solid angle at ``cos_angle`` from the shower axis, relative to isotropic emission (mean 1
    over the sphere): a ring at the Cherenkov angle, ``cascade_spread`` wide, over an isotropic floor."""
    angle = np.arccos(np.clip(cos_angle, -1, 1))
    ring = np.exp(-0.5 * ((angle - THETA_C) / p.cascade_spread) ** 2)
    grid = np.linspace(0, np.pi, 721)  # normalise the ring numerically: its mean over the sphere is 1
    norm = np.trapezoid(np.exp(-0.5 * ((grid - THETA_C) / p.cascade_spread) ** 2) * np.sin(grid), grid) / 2
    return p.cascade_isotropic + (1 - p.cascade_isotropic) * ring / norm


def cascade_light(rng, geometry, vertex, d, p: Physics, t0: float):
    """Pulses of a shower at ``vertex`` along ``d`` with an energy drawn from the spectrum."""
    w = geometry - vertex
    dist = np.linalg.norm(w, axis=1)
    lo, hi = CASCADE_ENERGY
    g = 1 - p.spectral_index  # inverse-CDF draw of E^-index on [lo, hi]
    energy = (lo**g + rng.uniform() * (hi**g - lo**g)) ** (1 / g) if g else lo * (hi / lo) ** rng.uniform()
    mu = energy * cascade_profile((w @ d) / np.maximum(dist, 1e-6), p) * np.exp(-dist / p.attenuation) / np.maximum(dist, 5.0) ** 2
    return _pulses(rng, mu, t0 + dist * N_ICE / C, dist, p)


def simulate_event(rng, geometry: np.ndarray, kind: str, p: Physics):
    """(sensor, time, charge, auxiliary, n_signal, coincident), azimuth, zenith of one event of ``kind``."""
    origin, azimuth, zenith = _direction(rng)
    d = -origin  # the particle travels away from where it came from
    radius, half = (550.0, 550.0) if kind == "track" else (450.0, 450.0)
    r, phi = radius * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
    vertex = np.array([r * np.cos(phi), r * np.sin(phi), rng.uniform(-half, half)])
    t0 = 10000.0
    parts = []
    if kind in ("track", "starting"):
        parts.append(track_light(rng, geometry, vertex, d, p, t0, None if kind == "track" else rng.uniform(300, 1500)))
    if kind in ("cascade", "starting"):
        parts.append(cascade_light(rng, geometry, vertex, d, p, t0))
    sensor, time, charge, late = (np.concatenate(a) for a in zip(*parts))
    n_signal = len(sensor)
    coincident = bool(rng.random() < p.coincident_muons)
    if coincident:  # down-going (from above, zenith < 80 degrees), somewhere in the event window
        muon, _, _ = _direction(rng, np.radians(80))
        r, phi = 550.0 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        extra = track_light(rng, geometry, np.array([r * np.cos(phi), r * np.sin(phi), 0.0]), -muon, p,
                            t0 + rng.uniform(-3000, 5000))
        sensor, time, charge, late = (np.r_[a, b] for a, b in zip((sensor, time, charge, late), extra))
    aux = rng.random(len(sensor)) < np.clip(0.05 + 0.4 * (charge < 0.6) + 0.4 * late, 0, 0.9)
    m = rng.poisson(p.noise_pulses)
    lo, hi = (time.min() - 1000, time.max() + 3000) if len(time) else (t0 - 1000, t0 + 5000)
    sensor = np.r_[sensor, rng.integers(0, len(geometry), m)]
    time = np.r_[time, rng.uniform(lo, hi, m)]
    charge = np.r_[charge, rng.lognormal(-0.3, 0.4, m)]
    aux = np.r_[aux, rng.random(m) < 0.8]
    order = np.argsort(time, kind="stable")
    return (sensor[order], np.round(time[order]).astype(np.int64), charge[order].astype(np.float32), aux[order],
            n_signal, coincident), azimuth, zenith


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
            kind = TYPES[rng.choice(3, p=p.type_fractions)]  # the mix of the events kept, not of those tried
            n_signal = -1
            while n_signal < p.trigger:
                (sensor, time, charge, aux, n_signal, coincident), az, zen = simulate_event(rng, geometry, kind, p)
            rows.append(dict(batch_id=batch_id, event_id=event_id, first_pulse_index=count,
                             last_pulse_index=count + len(sensor) - 1, azimuth=az, zenith=zen, event_type=kind,
                             coincident=coincident))
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
        meta[["event_id", *TRUTH]].to_parquet(folder / f"{split}_truth.parquet", index=False)
        meta = meta.drop(columns=list(TRUTH))
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
    parser.add_argument("--physics", default="", help="knobs of Physics, e.g. attenuation=30,coincident_muons=0.3,"
                        "track_fraction=0.4")
    args = parser.parse_args(argv)
    from ..cli import run_cli

    def job():
        simulate_dataset(args.out, args.train_events, args.test_events, args.per_file, args.seed,
                         parse_knobs(Physics, args.physics))
        print(f"wrote {args.out}: {args.train_events} training and {args.test_events} test events")

    run_cli(job)


if __name__ == "__main__":
    main()

"""GraphNeT's parquet layout (``pulses/*.parquet``, ``truth/*.parquet``) -> the Kaggle layout, for real events.

GraphNeT stores each pulse with its sensor's position (``dom_x/y/z``), its
time and charge and ``hlc`` (hard local coincidence: fully digitised); the
Kaggle layout stores a ``sensor_id`` and ``auxiliary`` (not fully digitised).
So each pulse's sensor is the geometry's sensor at its position (within 1 m),
``auxiliary = not hlc``, and the truth's azimuth and zenith go to the meta file
(energy, pid and interaction type ride along as side columns).

    idao-icecube-convert ../shared/data/icecube-graphnet data/icecube_real
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from ..atomic import building_dir
from ..errors import DataError
from .io import PACKAGED_GEOMETRY, read_geometry

TOLERANCE_M = 1.0


def read_parquets(folder: Path, need: tuple[str, ...]) -> pd.DataFrame:
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise DataError(f"{folder}: no .parquet files")
    parts = []
    for f in files:
        df = pd.read_parquet(f)
        df = df.reset_index() if "event_no" not in df.columns else df
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise DataError(f"{f}: columns {missing} missing")
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def convert(source: Path, out: Path, geometry_csv: Path = PACKAGED_GEOMETRY) -> Path:
    """Write ``<out>/train/batch_1.parquet``, ``train_meta.parquet`` and ``sensor_geometry.csv``."""
    source = Path(source)
    pulses = read_parquets(source / "pulses", ("event_no", "dom_x", "dom_y", "dom_z", "dom_time", "charge", "hlc"))
    truth = read_parquets(source / "truth", ("event_no", "azimuth", "zenith"))
    geometry = read_geometry(geometry_csv)
    distance, sensor = cKDTree(geometry).query(pulses[["dom_x", "dom_y", "dom_z"]].to_numpy())
    if (distance > TOLERANCE_M).any():
        k = int(np.argmax(distance))
        raise DataError(f"{source / 'pulses'}: a pulse at ({pulses['dom_x'].iloc[k]:.1f}, {pulses['dom_y'].iloc[k]:.1f}, "
                        f"{pulses['dom_z'].iloc[k]:.1f}) m is {distance[k]:.1f} m from every sensor of {geometry_csv}")
    pulses = pulses.assign(sensor_id=sensor.astype(np.int16), time=np.round(pulses["dom_time"]).astype(np.int64),
                           charge=pulses["charge"].astype(np.float32), auxiliary=pulses["hlc"] == 0)
    pulses = pulses.sort_values(["event_no", "time"], kind="stable").reset_index(drop=True)
    events = pulses.groupby("event_no", sort=True).size()
    missing = sorted(set(events.index) - set(truth["event_no"]))
    if missing:
        raise DataError(f"{source / 'truth'}: no truth for event {missing[0]}")
    last = np.cumsum(events.to_numpy()) - 1
    meta = pd.DataFrame({"batch_id": 1, "event_id": events.index.to_numpy(), "first_pulse_index": last - events.to_numpy() + 1,
                         "last_pulse_index": last})
    side = [c for c in ("energy", "pid", "interaction_type") if c in truth.columns]
    meta = meta.merge(truth[["event_no", "azimuth", "zenith", *side]].rename(columns={"event_no": "event_id"}), on="event_id")
    with building_dir(out) as partial:
        (partial / "train").mkdir()
        table = pulses.rename(columns={"event_no": "event_id"})[["event_id", "sensor_id", "time", "charge", "auxiliary"]]
        table.set_index("event_id").to_parquet(partial / "train" / "batch_1.parquet")
        meta.to_parquet(partial / "train_meta.parquet", index=False)
        pd.read_csv(geometry_csv).to_csv(partial / "sensor_geometry.csv", index=False)
    return Path(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Convert GraphNeT parquet events to the Kaggle IceCube layout.")
    parser.add_argument("source", type=Path, help="folder with pulses/ and truth/")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        convert(args.source, args.out)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {args.out} (Kaggle layout, train split)")


if __name__ == "__main__":
    main()

"""Reader for the Kaggle "IceCube - Neutrinos in Deep Ice" layout, one batch file in memory at a time.

Layout: ``<split>/batch_<n>.parquet`` (index ``event_id``; ``sensor_id``,
``time`` ns, ``charge`` p.e., ``auxiliary``), ``<split>_meta.parquet``
(``batch_id``, ``event_id``, ``first_pulse_index``, ``last_pulse_index``, and
for train ``azimuth``, ``zenith``) and ``sensor_geometry.csv``. ``PulseSet``
addresses events by a global index; it reads a batch file whole (pyarrow)
when one of its events is asked for and keeps at most ``cache_files`` of them,
and its ``epoch_order`` visits files in random order and shuffles events within
each file, so memory stays flat in the number of files.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import DataError

PULSE_COLUMNS = ("sensor_id", "time", "charge", "auxiliary")
META_COLUMNS = ("batch_id", "event_id", "first_pulse_index", "last_pulse_index")
PACKAGED_GEOMETRY = Path(__file__).with_name("sensor_geometry.csv")


def read_geometry(path) -> np.ndarray:
    """(S, 3) sensor positions in metres, row = sensor_id."""
    try:
        g = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable sensor geometry CSV ({e})") from None
    missing = [c for c in ("sensor_id", "x", "y", "z") if c not in g.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} missing; expected sensor_id,x,y,z")
    if not np.array_equal(np.sort(g["sensor_id"].to_numpy()), np.arange(len(g))):
        raise DataError(f"{path}: sensor_id must run 0..{len(g) - 1} once each")
    return g.sort_values("sensor_id")[["x", "y", "z"]].to_numpy(np.float32)


def read_meta(path, labelled: bool) -> pd.DataFrame:
    try:
        meta = pd.read_parquet(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable parquet file ({e})") from None
    need = META_COLUMNS + (("azimuth", "zenith") if labelled else ())
    missing = [c for c in need if c not in meta.columns]
    if missing:
        raise DataError(f"{path}: columns {missing} missing")
    if (meta["last_pulse_index"] < meta["first_pulse_index"]).any():
        bad = meta.loc[meta["last_pulse_index"] < meta["first_pulse_index"], "event_id"].iloc[0]
        raise DataError(f"{path}: event {bad} has last_pulse_index < first_pulse_index (an empty event)")
    return meta


@dataclass
class Batch:
    """One batch file's pulses, sorted as in the file: per event a slice [start, stop)."""

    sensor: np.ndarray
    time: np.ndarray
    charge: np.ndarray
    auxiliary: np.ndarray
    start: np.ndarray  # per event of the meta file's rows for this batch
    stop: np.ndarray


def read_batch(path: Path, meta: pd.DataFrame, n_sensors: int) -> Batch:
    """A batch file, checked against the meta rows of its events (``meta``, in event order)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable parquet file ({e})") from None
    missing = [c for c in PULSE_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: columns {missing} missing (expected {', '.join(PULSE_COLUMNS)} and the index "
                        "event_id)")
    col = {c: table.column(c).to_numpy() for c in PULSE_COLUMNS}
    sensor = col["sensor_id"].astype(np.int32)
    if len(sensor) and (sensor.min() < 0 or sensor.max() >= n_sensors):
        raise DataError(f"{path}: sensor_id {int(sensor.max() if sensor.max() >= n_sensors else sensor.min())} is "
                        f"outside the geometry (0..{n_sensors - 1})")
    start = meta["first_pulse_index"].to_numpy(np.int64)
    stop = meta["last_pulse_index"].to_numpy(np.int64) + 1
    if len(stop) and stop.max() > len(sensor):
        raise DataError(f"{path}: holds {len(sensor)} pulses but the meta file's pulse ranges reach {stop.max()}")
    if "event_id" in table.column_names:  # each event's range must hold exactly its pulses
        ids = table.column("event_id").to_numpy()
        events, counts = np.unique(ids, return_counts=True)
        expected = dict(zip(events.tolist(), counts.tolist()))
        want = meta["event_id"].to_numpy()
        wrong = (ids[start] != want) | (ids[stop - 1] != want) | (np.array([expected.get(e, 0) for e in want.tolist()])
                                                                  != stop - start)
        if wrong.any():
            k = int(np.flatnonzero(wrong)[0])
            raise DataError(f"{path}: the meta file's pulses {start[k]}..{stop[k] - 1} for event {want[k]} do not "
                            f"hold its {expected.get(int(want[k]), 0)} pulses in this file (they start with event "
                            f"{ids[start[k]]})")
    return Batch(sensor, col["time"].astype(np.float32), col["charge"].astype(np.float32),
                 col["auxiliary"].astype(bool), start, stop)


class BatchCache:
    """The batch files of a set, read on demand, at most ``max_files`` kept (least recently used dropped)."""

    def __init__(self, paths: list[Path], metas: list[pd.DataFrame], n_sensors: int, max_files: int = 2):
        self.paths, self.metas, self.n_sensors, self.max_files = paths, metas, n_sensors, max_files
        self.batches: OrderedDict = OrderedDict()

    def get(self, file: int) -> Batch:
        if file in self.batches:
            self.batches.move_to_end(file)
        else:
            self.batches[file] = read_batch(self.paths[file], self.metas[file], self.n_sensors)
            while len(self.batches) > self.max_files:
                self.batches.popitem(last=False)
        return self.batches[file]


@dataclass
class PulseSet:
    """Events of a split by global index; ``subset`` views share the geometry and the file cache."""

    geometry: np.ndarray  # (S, 3) metres
    file: np.ndarray  # (N,) batch file of each event
    row: np.ndarray  # (N,) its row in that file's meta
    event_id: np.ndarray
    direction: np.ndarray | None  # (N, 3) unit vectors to where the neutrino came from; None if unlabelled
    cache: BatchCache
    extra: dict = field(default_factory=dict)  # side columns of the meta file (event_type, ...)
    world: int = 1  # processes sharing the training (torchrun): epoch_order shards the files among them

    def __len__(self) -> int:
        return len(self.file)

    def subset(self, idx) -> "PulseSet":
        idx = np.asarray(idx, dtype=int)
        return PulseSet(self.geometry, self.file[idx], self.row[idx], self.event_id[idx],
                        None if self.direction is None else self.direction[idx], self.cache,
                        {k: v[idx] for k, v in self.extra.items()}, self.world)

    def pulses(self, i: int):
        """Event ``i``'s pulses: positions (P, 3) m, time (P,) ns, charge (P,), auxiliary (P,)."""
        batch = self.cache.get(int(self.file[i]))
        a, b = batch.start[self.row[i]], batch.stop[self.row[i]]
        return self.geometry[batch.sensor[a:b]], batch.time[a:b], batch.charge[a:b], batch.auxiliary[a:b]

    def gather(self, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The pulses of events ``idx`` in one flat set of arrays: (event: position in ``idx``, sensor, time,
        charge, auxiliary), each event's pulses together and in file order; a few array operations per batch file
        instead of a Python step per event (batch assembly at Kaggle scale)."""
        idx = np.asarray(idx, dtype=int)
        files = self.file[idx]
        parts = []
        for f in np.unique(files):
            where = np.flatnonzero(files == f)
            batch = self.cache.get(int(f))
            rows = self.row[idx[where]]
            start, n = batch.start[rows], batch.stop[rows] - batch.start[rows]
            pulse = np.repeat(start - np.cumsum(n) + n, n) + np.arange(n.sum())  # start[e] + 0..n[e]-1
            parts.append((np.repeat(where, n), batch.sensor[pulse], batch.time[pulse], batch.charge[pulse],
                          batch.auxiliary[pulse]))
        if not parts:
            return np.zeros(0, int), np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, bool)
        event, sensor, time, charge, aux = (np.concatenate(a) for a in zip(*parts))
        order = np.argsort(event, kind="stable")  # events in the order of idx
        return event[order], sensor[order], time[order], charge[order], aux[order]

    def epoch_order(self, generator: torch.Generator) -> np.ndarray:
        """Files in random order, events shuffled within each file: one file read at a time.

        Under torchrun (``world`` > 1) the files are dealt round-robin to the
        processes and their event streams interleaved, so that position p of the
        order comes from process p % world's files: the engine gives each
        process every world-th item of a batch, so each process reads only its
        own files (per-rank file sharding; only the longer streams' tails cross
        over). With one process this is the plain file-by-file order.
        """
        files = torch.randperm(int(self.file.max()) + 1 if len(self) else 0, generator=generator).numpy()
        streams = []
        for rank in range(self.world):
            mine = []
            for f in files[rank :: self.world]:
                events = np.flatnonzero(self.file == f)
                mine.append(events[torch.randperm(len(events), generator=generator).numpy()])
            streams.append(np.concatenate(mine) if mine else np.zeros(0, int))
        if self.world == 1:
            return streams[0]
        width = max(len(s) for s in streams)
        grid = np.full((width, self.world), -1)
        for rank, stream in enumerate(streams):
            grid[: len(stream), rank] = stream
        return grid[grid >= 0]  # row by row: p % world is the rank while every stream lasts


def with_test_truth(root, test: PulseSet) -> PulseSet:
    """``test`` with its truth from ``<root>/test_truth.parquet`` (written beside ``test/`` by the simulator):
    ``direction``, and its other columns (``event_type``, ``coincident``) as extras."""
    path = Path(root) / "test_truth.parquet"
    truth = pd.read_parquet(path).set_index("event_id").reindex(test.event_id)
    if truth["azimuth"].isna().any():
        raise DataError(f"{path}: no truth for {int(truth['azimuth'].isna().sum())} test events")
    test.direction = direction_of(truth["azimuth"], truth["zenith"])
    test.extra = {**test.extra, **{c: truth[c].to_numpy() for c in truth.columns if c not in ("azimuth", "zenith")}}
    return test


def direction_of(azimuth, zenith) -> np.ndarray:
    """(N, 3) unit vectors pointing to where the neutrino came from."""
    azimuth, zenith = np.asarray(azimuth, np.float64), np.asarray(zenith, np.float64)
    return np.column_stack([np.cos(azimuth) * np.sin(zenith), np.sin(azimuth) * np.sin(zenith), np.cos(zenith)])


def angles_of(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth in [0, 2 pi) and zenith in [0, pi] of vectors (N, 3)."""
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return np.mod(np.arctan2(v[:, 1], v[:, 0]), 2 * np.pi), np.arccos(np.clip(v[:, 2], -1, 1))


def angular_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (radians) between direction vectors a and b (N, 3), the competition's metric per event."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.arccos(np.clip((a * b).sum(1), -1.0, 1.0))


def batch_files(folder: Path) -> dict[int, Path]:
    """``batch_<n>.parquet`` files of a split folder, by n."""
    found = {}
    for p in sorted(Path(folder).glob("batch_*.parquet")):
        try:
            found[int(p.stem.split("_", 1)[1])] = p
        except ValueError:
            raise DataError(f"{p}: batch file names must be batch_<n>.parquet") from None
    if not found:
        raise DataError(f"{folder}: no batch_<n>.parquet files")
    return found


def read_split(root, split: str, labelled: bool, geometry=None, cache_files: int = 2,
               max_files: int = 0) -> PulseSet:
    """Events of ``<root>/<split>/`` with ``<root>/<split>_meta.parquet``; the geometry from
    ``<root>/sensor_geometry.csv``. ``max_files`` > 0 keeps only the first that many batch files."""
    root = Path(root)
    geometry = read_geometry(root / "sensor_geometry.csv") if geometry is None else geometry
    files = batch_files(root / split)
    if max_files:
        files = dict(list(files.items())[:max_files])
    meta = read_meta(root / f"{split}_meta.parquet", labelled)
    unknown = sorted(set(meta["batch_id"]) - set(files)) if not max_files else []
    if unknown:
        raise DataError(f"{root / f'{split}_meta.parquet'}: events of batch {unknown[0]}, but "
                        f"{root / split / f'batch_{unknown[0]}.parquet'} is missing")
    paths, metas, parts = [], [], []
    for k, (batch_id, path) in enumerate(files.items()):
        m = meta[meta["batch_id"] == batch_id].reset_index(drop=True)
        if len(m) == 0:
            raise DataError(f"{path}: no events of batch {batch_id} in {split}_meta.parquet")
        paths.append(path)
        metas.append(m)
        parts.append(pd.DataFrame({"file": k, "row": np.arange(len(m))}).join(m))
    table = pd.concat(parts, ignore_index=True)
    direction = direction_of(table["azimuth"], table["zenith"]).astype(np.float32) if labelled else None
    extra = {c: table[c].to_numpy() for c in table.columns
             if c not in (*META_COLUMNS, "azimuth", "zenith", "file", "row")}
    return PulseSet(geometry, table["file"].to_numpy(), table["row"].to_numpy(), table["event_id"].to_numpy(),
                    direction, BatchCache(paths, metas, len(geometry), cache_files), extra)

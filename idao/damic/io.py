"""Readers for the two DAMIC-M event formats (facts: ../shared/docs/damic-facts.md).

1. Per-event ``.npz`` files (``energy``, optional ``noise``; other arrays are ignored; the
   particle is the name's ``_pdg_<code>`` suffix), one file or a folder of them.
2. Packed arrays as the thesis stored them: ``data`` / ``labels`` (or
   ``data_test`` / ``labels_test``), whose integer labels name classes through
   ``damic.packed_labels``.

Each event is kept as its track cropped to its box (float32 eV) with the box's
place in the frame, so thousands of 300x300 frames fit in memory. The track is
the cluster of touching pixels holding the most charge (``track_box``), so
scattered dark-current pixels never stretch the box over the frame. An event
without deposited energy (a noise-only frame) is represented by its noise
instead. Noise frames are kept sparse (dark current occupies ~0.03 % of pixels).
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import DataError
from ..splits import copy_groups, fingerprint

EV_PER_ELECTRON = 3.77
PDG_CLASSES = {11: "electron", -11: "electron", 13: "muon", -13: "muon", 1000020040: "alpha", 22: "photon",
               0: "noise"}  # pdg 0: a frame with no particle (the simulator's noise-only events)
CLASS_NAMES = ("electron", "muon", "alpha", "noise")
_PDG = re.compile(r"_pdg_(-?\d+)$")


@dataclass
class Events:
    """Tracks cropped to their boxes, with ids, class names and where each box sat in its frame."""

    ids: list[str]
    tracks: list[np.ndarray]  # (h, w) float32 eV
    boxes: np.ndarray  # (N, 4) int: row, col, height, width in the frame
    particle: np.ndarray  # class name per event
    noise: list = field(default_factory=list)  # per event None or (rows, cols, values) of the noise frame
    label: np.ndarray | None = None  # index into the model's classes, set by ``select``
    cache: dict = field(default_factory=dict, repr=False)  # per-event arrays derived from the tracks (features)
    digest: np.ndarray | None = None  # per event a fingerprint of its whole frame (``frame_digest``)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def energy(self) -> np.ndarray:
        """Total deposited energy per event, eV."""
        return np.array([t.sum(dtype=np.float64) for t in self.tracks])

    @property
    def elongation(self) -> np.ndarray:
        """Box height x width in pixels, the thesis' elongation measure."""
        return self.boxes[:, 2] * self.boxes[:, 3]

    def sources(self) -> np.ndarray:
        """The file each event was read from: ``<file>`` of a packed file's ``<file>:<index>`` ids; "per-event
        files" for the rest (one file per event)."""
        return np.array([i.rsplit(":", 1)[0] if ":" in i else "per-event files" for i in self.ids])

    def copies(self) -> np.ndarray:
        """A group number per event, shared by the copies of one frame, so that a split keeps copies on one side:
        the thesis' eVSmu_tr1.npz holds 195 repeated muons (1,405 distinct frames of 1,600), and a copy on both
        sides of a split is scored as if it were unseen. Events without a digest are each their own group."""
        return copy_groups(self.digest if self.digest is not None else self.ids)

    def subset(self, idx) -> "Events":
        idx = np.asarray(idx, dtype=int)
        return Events([self.ids[i] for i in idx], [self.tracks[i] for i in idx], self.boxes[idx], self.particle[idx],
                      [self.noise[i] for i in idx], None if self.label is None else self.label[idx],
                      {key: value[idx] for key, value in self.cache.items()},
                      None if self.digest is None else self.digest[idx])

    def select(self, classes: tuple[str, ...]) -> tuple["Events", dict]:
        """Events of ``classes`` only, with ``label`` set; and the count of each class left out."""
        keep = np.isin(self.particle, classes)
        dropped = {str(c): int(n) for c, n in zip(*np.unique(self.particle[~keep], return_counts=True))}
        out = self.subset(np.flatnonzero(keep))
        out.label = np.array([classes.index(p) for p in out.particle], dtype=int)
        return out, dropped


def _sparse(frame: np.ndarray):
    rows, cols = np.nonzero(frame)
    return rows.astype(np.int32), cols.astype(np.int32), frame[rows, cols].astype(np.float32)


def frame_digest(*frames) -> str:
    """A fingerprint of frames' non-zero pixels (an event's energy and noise): equal only for copies of one event."""
    return fingerprint(*(a for frame in frames if frame is not None
                         for a in (np.array(frame.shape, np.int64), *_sparse(frame))))


def track_box(frame: np.ndarray) -> tuple[int, int, int, int] | None:
    """(row, col, height, width) of the frame's track: the cluster of touching pixels (gaps of one pixel bridged)
    holding the most charge. Scattered dark-current pixels never stretch the box; None for an empty frame."""
    hit = frame > 0
    if not hit.any():
        return None
    labels, n = ndimage.label(ndimage.binary_dilation(hit, structure=np.ones((3, 3), bool)))
    best = 1 + int(np.argmax(ndimage.sum(frame, labels, index=np.arange(1, n + 1)))) if n > 1 else 1
    rows, cols = np.nonzero(hit & (labels == best))
    r0, c0 = rows.min(), cols.min()
    return int(r0), int(c0), int(rows.max() + 1 - r0), int(cols.max() + 1 - c0)


def crop_event(energy: np.ndarray, noise: np.ndarray | None):
    """(track, box, noise) of one frame: the energy cropped to its track's box, or the noise if there is none."""
    shown = energy if energy.any() or noise is None else noise
    box = track_box(shown)
    if box is None:
        return np.zeros((1, 1), np.float32), np.array([0, 0, 1, 1]), None
    r0, c0, h, w = box
    track = shown[r0 : r0 + h, c0 : c0 + w].astype(np.float32)
    extra = _sparse(noise) if noise is not None and shown is energy else None
    return track, np.array(box), extra


def _check_frames(path, arr, name: str, ndim: int) -> np.ndarray:
    if arr.ndim != ndim:
        raise DataError(f"{path}: {name!r} has shape {arr.shape}; expected {ndim} dimensions")
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{path}: {name!r} has dtype {arr.dtype}; expected numbers (eV)")
    arr = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: {name!r} has non-finite values (NaN or inf)")
    if (arr < 0).any():
        raise DataError(f"{path}: {name!r} has negative energies (min {arr.min():g} eV)")
    return arr


def _open(path: Path):
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror or e})") from e
    if magic[:2] != b"PK":  # every .npz is a zip archive
        raise DataError(f"{path}: not an .npz file (not a zip archive; a text or .npy file renamed?)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from e


def _array(path: Path, z, name: str) -> np.ndarray:
    """One array of an open .npz; arrays of Python objects are refused (loading them could run code)."""
    try:
        return z[name]
    except ValueError as e:
        raise DataError(f"{path}: array {name!r} holds Python objects (dtype object); expected numbers") from e
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: array {name!r} is unreadable (truncated file?): {e}") from e


def particle_of(path: Path, required: bool = True) -> str:
    """The class named by the file's ``_pdg_<code>`` suffix; "" for an unlabelled file when not ``required``."""
    m = _PDG.search(path.stem)
    if not m and not required:
        return ""
    if not m:
        raise DataError(f"{path}: name does not end in _pdg_<code> (e.g. ..._pdg_11.npz), so its particle is unknown")
    code = int(m.group(1))
    if code not in PDG_CLASSES:
        raise DataError(f"{path}: unknown particle code pdg {code} (known: {sorted(PDG_CLASSES)})")
    return PDG_CLASSES[code]


def read_event_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(energy, noise or None) of one per-event file, checked."""
    with _open(path) as z:
        if "energy" not in z.files:
            raise DataError(f"{path}: no 'energy' array (keys: {z.files}); expected a per-event file "
                            "with energy and noise, or packed data/labels")
        energy = _check_frames(path, _array(path, z, "energy"), "energy", 2)
        noise = _check_frames(path, _array(path, z, "noise"), "noise", 2) if "noise" in z.files else None
    if noise is not None and noise.shape != energy.shape:
        raise DataError(f"{path}: 'noise' is {noise.shape} but 'energy' is {energy.shape}; they must match")
    return energy, noise


def read_event_files(paths: list[Path], labelled: bool = True) -> Events:
    ids, tracks, boxes, particles, noise, digests = [], [], [], [], [], []
    for path in paths:
        particle = particle_of(path, labelled)
        energy, frame_noise = read_event_file(path)
        track, box, sparse = crop_event(energy, frame_noise)
        ids.append(path.stem)
        tracks.append(track)
        boxes.append(box)
        particles.append(particle)
        noise.append(sparse)
        digests.append(frame_digest(energy, frame_noise))
    return Events(ids, tracks, np.array(boxes, dtype=int).reshape(-1, 4),
                  np.array(particles, dtype=object).astype(str), noise, digest=np.array(digests))


def read_packed(path: Path, label_names: tuple[str, ...] | None, labelled: bool = True) -> Events:
    """A packed file: ``data``/``labels`` or ``data_test``/``labels_test``; label i is ``label_names[i]``.

    To predict (``labelled=False``) the frames alone are enough: every event's class is then "".
    """
    with _open(path) as z:
        keys = next((k for k in (("data", "labels"), ("data_test", "labels_test")) if set(k) <= set(z.files)), None)
        if keys is None and not labelled:
            keys = next(((k, None) for k in ("data", "data_test") if k in z.files), None)
        if keys is None:
            raise DataError(f"{path}: expected arrays data/labels or data_test/labels_test, found {z.files}")
        data = _check_frames(path, _array(path, z, keys[0]), keys[0], 3)
        labels = None if keys[1] is None else np.asarray(_array(path, z, keys[1]))
    if labels is None or label_names is None:  # predicting a file no training file's label map names
        labels_text = np.full(len(data), "")
    elif labels.ndim != 1 or len(labels) != len(data):
        raise DataError(f"{path}: {keys[1]!r} has shape {labels.shape} for {len(data)} frames in {keys[0]!r}")
    elif not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= len(label_names):
        raise DataError(f"{path}: {keys[1]!r} holds values {np.unique(labels)[:10].tolist()}, but "
                        f"damic.packed_labels names {len(label_names)} classes ({','.join(label_names)}): "
                        f"expected integers 0 to {len(label_names) - 1}, found {labels.dtype}")
    else:
        labels_text = np.array([label_names[i] for i in labels])
    tracks, boxes, digests = [], [], []
    for frame in data:
        track, box, _ = crop_event(frame, None)
        tracks.append(track)
        boxes.append(box)
        digests.append(frame_digest(frame))
    ids = [f"{path.stem}:{i}" for i in range(len(data))]
    return Events(ids, tracks, np.array(boxes, dtype=int).reshape(-1, 4), labels_text, [None] * len(data),
                  digest=np.array(digests))


def read_events(source: str | Path, label_names: tuple[str, ...] | None, labelled: bool = True) -> Events:
    """Events from a folder of per-event files, one per-event file, or one packed file.

    ``labelled=False`` (prediction) accepts per-event names without a ``_pdg_`` suffix (class "").
    """
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.npz"))
        if not files:
            raise DataError(f"{path}: no .npz event files in this folder")
        return read_event_files(files, labelled)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    with _open(path) as z:
        per_event = "energy" in z.files
    return read_event_files([path], labelled) if per_event else read_packed(path, label_names, labelled)


def drop_repeated_frames(parts: list[Events]) -> tuple[list[Events], int]:
    """``parts`` without the events whose frame (digest) an earlier part holds, so that a frame in two training
    files is kept once; and how many were left out. Copies within one part stay (``copies`` groups them)."""
    if any(p.digest is None for p in parts):
        return parts, 0
    seen, kept, repeated = set(), [], 0
    for part in parts:
        keep = np.array([d not in seen for d in part.digest], dtype=bool)
        seen.update(part.digest.tolist())
        repeated += int((~keep).sum())
        kept.append(part if keep.all() else part.subset(np.flatnonzero(keep)))
    return kept, repeated


def concat(parts: list[Events]) -> Events:
    ids = [i for p in parts for i in p.ids]
    seen = set()
    for i in ids:
        if i in seen:
            raise DataError(f"event id {i!r} appears twice; ids (file names) must be unique")
        seen.add(i)
    digests = None if any(p.digest is None for p in parts) else np.concatenate([p.digest for p in parts])
    return Events(ids, [t for p in parts for t in p.tracks], np.concatenate([p.boxes for p in parts]),
                  np.concatenate([p.particle for p in parts]),
                  [n for p in parts for n in p.noise], digest=digests)


def check_labels(source: str | Path, label_names: tuple[str, ...] | None, per_file: bool) -> None:
    """Before any training: a packed training file's labels fit its label map; a map given to this source alone
    (``per_file``) names a packed file. Reads the labels, not the frames."""
    path = Path(source)
    if path.is_dir():
        if label_names and per_file:
            raise DataError(f"{path}: a folder of per-event files, but damic.packed_labels gives it the label map "
                            f"{','.join(label_names)}; leave its map empty (its classes are in the file names)")
        return
    with _open(path) as z:
        if "energy" in z.files:
            if label_names and per_file:
                raise DataError(f"{path}: a per-event file, but damic.packed_labels gives it the label map "
                                f"{','.join(label_names)}; leave its map empty (its class is in the file name)")
            return
        key = next((k for k in ("labels", "labels_test") if k in z.files), None)
        if key is None:
            raise DataError(f"{path}: neither a per-event file (energy) nor a packed file with labels "
                            f"(data/labels); found {z.files}")
        labels = np.asarray(_array(path, z, key))
    if not label_names:
        raise DataError(f"{path}: a packed file, but its damic.packed_labels map is empty")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0
                        or labels.max() >= len(label_names)):
        raise DataError(f"{path}: {key!r} holds values {np.unique(labels)[:10].tolist()}, but its "
                        f"damic.packed_labels map names {len(label_names)} classes ({','.join(label_names)})")

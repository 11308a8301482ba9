"""Reader for calorimeter image files (HDF5 ``X`` images, optional ``y`` labels), streamed a block at a time.

The ML4SCI files hold ``X`` (N, 32, 32, 2) float32, channels last (hit energy,
hit time), and ``y`` (1 electron, 0 photon), gzip-compressed in chunks;
channels-first files, one file with both classes and test files without ``y``
are read too. Nothing is loaded whole: 498k images are 4 GB. ``ImageSet``
addresses images by a global index and reads them through a small cache of
decoded *blocks* (whole HDF5 chunks, ~1,000 rows), and its ``epoch_order``
shuffles blocks, then items within a few blocks at a time, so an epoch
decodes each block once and memory stays flat in the file size.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

SUFFIXES = (".h5", ".hdf5", ".hdf")


@dataclass(frozen=True)
class Source:
    """One HDF5 file: its size, layout and read block."""

    path: str
    n: int
    channels_last: bool
    shape: tuple[int, int, int]  # channels, height, width
    block: int  # rows decoded at once: whole chunks of the file


def open_h5(path):
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({e})") from None


def inspect(path: Path, labelled: bool, block_rows: int = 1024) -> tuple[Source, np.ndarray | None]:
    """The file's layout and its labels (small: read whole), every problem named with the file."""
    with open_h5(path) as f:
        if "X" not in f:
            raise DataError(f"{path}: no dataset 'X' (found {', '.join(f.keys()) or 'nothing'})")
        X = f["X"]
        if X.ndim != 4 or 2 not in (X.shape[1], X.shape[3]):
            raise DataError(f"{path}: X has shape {X.shape}; expected (N, H, W, C) or (N, C, H, W) images with "
                            "2 channels (energy, time)")
        if X.dtype.kind not in "fiu":
            raise DataError(f"{path}: X has dtype {X.dtype}; expected numbers")
        if X.shape[0] == 0:
            raise DataError(f"{path}: X holds no images")
        channels_last = X.shape[3] == 2 and X.shape[1] != 2
        shape = (X.shape[3], X.shape[1], X.shape[2]) if channels_last else tuple(X.shape[1:])
        chunk = X.chunks[0] if X.chunks else 1
        block = max(chunk, (block_rows // chunk) * chunk)
        labels = None
        if "y" in f:
            y = np.asarray(f["y"][...]).reshape(len(f["y"]), -1)
            if y.shape[1] != 1 or len(y) != X.shape[0]:
                raise DataError(f"{path}: y has shape {f['y'].shape} but X holds {X.shape[0]} images; expected one "
                                "label per image")
            y = y[:, 0]
            if not np.isin(y, (0, 1)).all():
                bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
                raise DataError(f"{path}: y holds values {bad.tolist()}; expected 1 (electron) or 0 (photon)")
            labels = y.astype(np.float32)
        elif labelled:
            raise DataError(f"{path}: no dataset 'y' (labels: 1 electron, 0 photon); training needs labelled files")
    return Source(str(path), int(X.shape[0]), channels_last, shape, int(block)), labels


def expand(text: str) -> list[Path]:
    """Comma-separated files or folders -> HDF5 files (a folder: its *.h5 / *.hdf5 files, sorted)."""
    paths = []
    for item in (s.strip() for s in str(text).split(",")):
        if not item:
            continue
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in SUFFIXES)
            if not found:
                raise DataError(f"{p}: no HDF5 files (*.h5, *.hdf5) in this folder")
            paths.extend(found)
        elif not p.exists():
            raise DataError(f"{p}: file not found")
        else:
            paths.append(p)
    return paths


class BlockCache:
    """Decoded blocks of the open files, least recently used dropped first: the only image memory held."""

    def __init__(self, sources: list[Source], max_blocks: int):
        self.sources, self.max_blocks = sources, max_blocks
        self.blocks: OrderedDict = OrderedDict()
        self.files: dict = {}

    def block(self, file: int, number: int) -> np.ndarray:
        key = (file, number)
        if key in self.blocks:
            self.blocks.move_to_end(key)
            return self.blocks[key]
        src = self.sources[file]
        if file not in self.files:  # opened lazily, so each process (torchrun rank) has its own handle
            self.files[file] = open_h5(src.path)
        start = number * src.block
        x = np.asarray(self.files[file]["X"][start : start + src.block], dtype=np.float32)
        if src.channels_last:
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        if not np.isfinite(x).all():
            row = start + int(np.flatnonzero(~np.isfinite(x).reshape(len(x), -1).all(1))[0])
            raise DataError(f"{src.path}: image {row} holds NaN or infinite values")
        self.blocks[key] = x
        while len(self.blocks) > self.max_blocks:
            self.blocks.popitem(last=False)
        return x

    def __getstate__(self):  # open HDF5 handles do not travel
        return {"sources": self.sources, "max_blocks": self.max_blocks, "blocks": OrderedDict(), "files": {}}


@dataclass
class ImageSet:
    """Images of one or more files, by global index; ``subset`` views share the files and the block cache."""

    sources: list[Source]
    file: np.ndarray  # (N,) which source
    row: np.ndarray  # (N,) row in it
    label: np.ndarray | None  # (N,) 1 electron, 0 photon; None when unlabelled
    cache: BlockCache
    shuffle_blocks: int = 8  # blocks whose items are mixed together in an epoch
    ids: list[str] = field(default=None)

    def __post_init__(self):
        if self.ids is None:
            self.ids = [f"{Path(self.sources[f].path).stem}:{r}" for f, r in zip(self.file, self.row)]

    def __len__(self) -> int:
        return len(self.file)

    @property
    def block_of(self) -> np.ndarray:
        """(N,) a global block number per item (file-major), the unit of reading."""
        base = np.cumsum([0] + [-(-s.n // s.block) for s in self.sources])[:-1]
        blocks = np.array([s.block for s in self.sources])
        return base[self.file] + self.row // blocks[self.file]

    def subset(self, idx) -> "ImageSet":
        idx = np.asarray(idx, dtype=int)
        return ImageSet(self.sources, self.file[idx], self.row[idx], None if self.label is None else self.label[idx],
                        self.cache, self.shuffle_blocks, [self.ids[i] for i in idx])

    def read(self, idx) -> np.ndarray:
        """(B, C, H, W) float32 images of items ``idx`` (any order; each block decoded once while cached)."""
        idx = np.asarray(idx, dtype=int)
        out = np.empty((len(idx), *self.sources[0].shape), np.float32)
        for j, i in enumerate(idx):
            f, r = int(self.file[i]), int(self.row[i])
            block = self.sources[f].block
            out[j] = self.cache.block(f, r // block)[r % block]
        return out

    def epoch_order(self, generator: torch.Generator) -> np.ndarray:
        """Blocks in random order, the files interleaved; the items of every ``shuffle_blocks`` consecutive blocks
        mixed together.

        An epoch then decodes each block once (the cache holds a window). The
        files are interleaved (each block keyed by its random rank within its
        file, as a fraction of that file's blocks), so every window draws from
        every file: with one file per class a window never holds a single class.
        """
        block_of = self.block_of
        blocks, first, inverse = np.unique(block_of, return_index=True, return_inverse=True)
        members = [np.flatnonzero(inverse == b) for b in range(len(blocks))]
        file_of_block = self.file[first]
        key = torch.rand(len(blocks), generator=generator).numpy()
        for f in np.unique(file_of_block):
            mine = np.flatnonzero(file_of_block == f)
            key[mine] = (torch.randperm(len(mine), generator=generator).numpy() + key[mine]) / len(mine)
        order = np.argsort(key, kind="stable")
        out = []
        for start in range(0, len(order), self.shuffle_blocks):
            window = np.concatenate([members[b] for b in order[start : start + self.shuffle_blocks]])
            out.append(window[torch.randperm(len(window), generator=generator).numpy()])
        return np.concatenate(out) if out else np.zeros(0, int)


def read_images(text: str, labelled: bool = True, block_rows: int = 1024, shuffle_blocks: int = 8) -> ImageSet:
    """Every image of the comma-separated files / folders in ``text``; with ``labelled``, each file needs ``y``.
    A set with labels in some files and not others is unlabelled as a whole."""
    paths = expand(text)
    if not paths:
        raise DataError(f"{text!r}: no HDF5 files named")
    sources, labels = [], []
    for p in paths:
        src, y = inspect(p, labelled, block_rows)
        if sources and src.shape != sources[0].shape:
            raise DataError(f"{p}: images of shape {src.shape} (C, H, W), but {sources[0].path} has {sources[0].shape}")
        sources.append(src)
        labels.append(y)
    file = np.concatenate([np.full(s.n, k, np.int32) for k, s in enumerate(sources)])
    row = np.concatenate([np.arange(s.n, dtype=np.int64) for s in sources])
    label = None if any(y is None for y in labels) else np.concatenate(labels)
    return ImageSet(sources, file, row, label, BlockCache(sources, max_blocks=2 * shuffle_blocks), shuffle_blocks)

"""Decode each PNG once: crops are cached on disk as one uint8 ``.npy`` per file list.

The cache key hashes the crop settings and every file's path, size and mtime, so
a changed file or setting builds a new cache instead of serving stale crops.
The array is written before its ``.json`` index, both atomically: a cache
without its index is never used.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..atomic import atomic_path, check_disk_space, write_text
from ..errors import DataError
from .images import load_crop


CROP_VERSION = 2  # raised whenever load_crop's output changes (2: the pedestal from the decoded rows only)


def cache_key(paths: list[Path], size: int, mode: str, pedestal: bool, skip_bad: bool) -> str:
    h = hashlib.sha256(json.dumps({"size": size, "mode": mode, "pedestal": pedestal, "skip_bad": skip_bad,
                                   "version": CROP_VERSION}).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def _load_one(path: Path, size: int, mode: str, pedestal: bool, skip_bad: bool):
    try:
        return load_crop(path, size, mode, pedestal)
    except DataError as e:
        if not skip_bad:
            raise
        return str(e)


def decode_crops(paths: list[Path], size: int, mode: str = "centre", pedestal: bool = True,
                 workers: int = 1, skip_bad: bool = False, progress: bool = True, on_chunk=None, chunk: int = 256):
    """Decode ``paths`` into an (N, size, size) uint8 array, in parallel.

    Returns (crops, kept) where ``kept`` indexes the files that decoded; with
    ``skip_bad`` unreadable files are left out with a warning, otherwise the
    first one raises a DataError naming it. ``on_chunk(crops)``, when given, is
    called with every ``chunk`` crops as they arrive, in order (the unreadable
    left out): the caller's work on them (a model's inference) overlaps the
    worker processes decoding the next ones.
    """
    out = np.empty((len(paths), size, size), np.uint8)
    kept, bad = [], []
    fn = partial(_load_one, size=size, mode=mode, pedestal=pedestal, skip_bad=skip_bad)
    bar = dict(total=len(paths), desc="decode", unit="img", disable=None if progress else True, mininterval=2)  # None: off when not a terminal
    done = 0  # crops of ``kept`` handed to on_chunk

    def hand_on(final: bool = False):
        nonlocal done
        while on_chunk is not None and (len(kept) - done >= chunk or (final and len(kept) > done)):
            upto = min(done + chunk, len(kept))
            on_chunk(out[kept[done:upto]])
            done = upto

    if workers > 1 and len(paths) > 64:
        with ProcessPoolExecutor(workers) as pool:  # map queues every file: the workers run ahead of on_chunk
            for i, r in enumerate(tqdm(pool.map(fn, paths, chunksize=32), **bar)):
                _store(out, i, r, kept, bad)
                hand_on()
    else:
        for i, p in enumerate(tqdm(paths, **bar)):
            _store(out, i, fn(p), kept, bad)
            hand_on()
    hand_on(final=True)
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable file(s); first: {bad[0]}", stacklevel=2)
    return out[kept] if bad else out, kept


def _store(out, i, result, kept, bad):
    if isinstance(result, str):
        bad.append(result)
    else:
        out[i] = result
        kept.append(i)


def cached_crops(paths: list[Path], cache_dir: str | Path | None, size: int, mode: str = "centre",
                 pedestal: bool = True, workers: int = 1, skip_bad: bool = False, progress: bool = True,
                 on_chunk=None, chunk: int = 256):
    """Like ``decode_crops``, but served from ``cache_dir`` when an identical request was decoded before (then
    ``on_chunk`` is not called: there is no decoding to overlap)."""
    if not cache_dir:
        return decode_crops(paths, size, mode, pedestal, workers, skip_bad, progress, on_chunk, chunk)
    cache_dir = Path(cache_dir)
    key = cache_key(paths, size, mode, pedestal, skip_bad)
    array_path, index_path = cache_dir / f"crops-{key}.npy", cache_dir / f"crops-{key}.json"
    if index_path.exists() and array_path.exists():
        index = json.loads(index_path.read_text())
        crops = np.load(array_path, mmap_mode="r")
        if crops.shape == (len(index["kept"]), size, size):
            if len(index["kept"]) < len(paths):
                warnings.warn(f"skipped {len(paths) - len(index['kept'])} unreadable file(s) (cached in {index_path})",
                              stacklevel=2)
            return crops, index["kept"]
    check_disk_space(cache_dir, len(paths) * size * size, f"a crop cache of {len(paths)} images")
    crops, kept = decode_crops(paths, size, mode, pedestal, workers, skip_bad, progress, on_chunk, chunk)
    with atomic_path(array_path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, crops)
    index = {"size": size, "mode": mode, "pedestal": pedestal, "files": len(paths), "kept": kept}
    write_text(index_path, json.dumps(index))
    return crops, kept

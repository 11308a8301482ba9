"""Writes that a crash cannot half-finish: files, CSVs and whole folders.

Everything that matters (checkpoints, caches, CSVs, reports, simulated
datasets) is written to a temporary file or folder beside its destination,
then moved over it with ``os.replace``, which is atomic on POSIX and Windows.
Before a large write, ``check_disk_space`` refuses to start one that cannot
finish.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import DataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give: a teammate or a web server can read the outputs


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` (with the umask's permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_csv(df, path: str | os.PathLike, float_format: str = "%.7g") -> None:
    """A pandas table as CSV, atomically, without the index."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format=float_format)


@contextlib.contextmanager
def building_dir(path: str | os.PathLike):
    """Yield ``<path>.partial`` to fill; on success it replaces ``path``, so a folder that exists is complete."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    yield partial
    if path.exists():
        shutil.rmtree(path)
    os.replace(partial, path)


def check_disk_space(folder: str | os.PathLike, needed: int, what: str) -> None:
    """Refuse to start a large write that cannot finish."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed * 1.1:
        raise DataError(f"{folder}: {what} needs {needed / 2**20:.0f} MiB but only {free / 2**20:.0f} MiB is free")

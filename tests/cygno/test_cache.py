import json
import os

import numpy as np
import pytest

from idao import atomic
from idao.cygno import cache as cache_mod
from idao.cygno.cache import cached_crops, decode_crops
from idao.cygno.dataset import train_samples
from idao.errors import DataError


@pytest.fixture
def paths(dataset_copy):
    return [s.path for s in train_samples(dataset_copy)][:40]


def test_cache_hit_matches_a_fresh_decode(paths, tmp_path):
    fresh, kept = decode_crops(paths, 64, progress=False)
    first, _ = cached_crops(paths, tmp_path / "c", 64, progress=False)
    again, kept_again = cached_crops(paths, tmp_path / "c", 64, progress=False)
    assert isinstance(again, np.memmap)  # served from disk, not decoded
    np.testing.assert_array_equal(fresh, first)
    np.testing.assert_array_equal(fresh, again)
    assert kept == kept_again == list(range(len(paths)))


def test_cache_rebuilt_when_a_file_or_setting_changes(paths, tmp_path):
    cached_crops(paths, tmp_path / "c", 64, progress=False)
    cached_crops(paths, tmp_path / "c", 32, progress=False)  # other crop size: a second cache
    assert len(list((tmp_path / "c").glob("*.npy"))) == 2
    os.utime(paths[0], ns=(1, 1))  # the file changed on disk
    cached_crops(paths, tmp_path / "c", 64, progress=False)
    assert len(list((tmp_path / "c").glob("*.npy"))) == 3


def test_skip_bad_files_counts_and_warns(paths, tmp_path):
    paths[3].write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        cached_crops(paths, tmp_path / "c", 64, progress=False)
    with pytest.warns(UserWarning, match="skipped 1 unreadable file"):
        crops, kept = cached_crops(paths, tmp_path / "c", 64, skip_bad=True, progress=False)
    assert 3 not in kept and len(crops) == len(paths) - 1
    index = json.loads(next((tmp_path / "c").glob("*.json")).read_text())
    assert index["kept"] == kept


def test_failed_cache_write_leaves_no_usable_cache(paths, tmp_path, monkeypatch):
    def broken_save(f, arr):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_mod.np, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        cached_crops(paths, tmp_path / "c", 64, progress=False)
    assert list((tmp_path / "c").iterdir()) == []  # no half-written array, no index
    monkeypatch.undo()
    crops, _ = cached_crops(paths, tmp_path / "c", 64, progress=False)
    assert crops.shape == (len(paths), 64, 64)


def test_refuses_when_disk_is_too_small(paths, tmp_path, monkeypatch):
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(DataError, match=r"needs 0 MiB but only 0 MiB is free|needs .* MiB but only"):
        cached_crops(paths, tmp_path / "c", 64, progress=False)

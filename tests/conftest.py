"""Shared fixtures: a tiny simulated dataset (made once per session) and the real images."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from idao.simulate import simulate_dataset

ROOT = Path(__file__).resolve().parents[1]
REAL_DIR = ROOT.parent / "shared" / "data" / "idao-real"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """~300 train, ~30 public and ~300 private images at scale 0.02 (about 8 s on 2 cores)."""
    return simulate_dataset(tmp_path_factory.mktemp("sim") / "idao_dataset", scale=0.02, seed=1, progress=False)


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path) -> Path:
    """A private copy of the tiny dataset that a test may damage."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "idao_dataset"))


@pytest.fixture(scope="session")
def real_images() -> list[Path]:
    if not REAL_DIR.is_dir():
        pytest.skip(f"real IDAO images not found at {REAL_DIR} (they live in ../shared beside the repo)")
    return sorted(REAL_DIR.glob("*.png"))

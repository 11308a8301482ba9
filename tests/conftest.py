"""Shared helpers and fixtures: running a script as a user would, a tiny simulated CYGNO dataset (made once
per session), and the real files in ../shared (tests that need them skip with the reason where it is absent)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from idao.cygno.simulate import simulate_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
REAL_DIR = SHARED / "idao-real"


def run(script: str, *args: str, env=None, check=True, cwd=ROOT) -> subprocess.CompletedProcess:
    """``python <script> <args>`` from the repository root; raise with its output if it fails and ``check``."""
    proc = subprocess.run([sys.executable, script, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def overrides(dataset: Path, work: Path, epochs: int = 4) -> list[str]:
    return [f"cygno.root={dataset}", f"cygno.cache_dir={work / 'cache'}", f"train.checkpoint_dir={work / 'ck'}",
            f"cygno.output.submission={work / 'results' / 'submission.csv'}", f"cygno.output.results_dir={work / 'results'}",
            f"cygno.classifier.epochs={epochs}", f"cygno.regressor.epochs={epochs}", "cygno.classifier.patience=0",
            "cygno.regressor.patience=0", "train.progress=false", "train.threads=1"]


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


@pytest.fixture(scope="session")
def pipeline(tiny_dataset, tmp_path_factory):
    """The CYGNO scripts run once on the tiny dataset (the regressor trained too): (work folder, their outputs)."""
    work = tmp_path_factory.mktemp("run")
    args = overrides(tiny_dataset, work, epochs=12)
    outputs = [run(script, *args).stdout for script in ("train.py", "generate_submission.py", "report.py")]
    assert not (work / "ck" / "cygno" / "regressor_best.pt").exists()  # mode light reads no regressor
    run("train.py", *args, "--only", "regressor")  # for the report's energy figures and the regressor modes
    outputs[2] = run("report.py", *args).stdout
    return work, outputs

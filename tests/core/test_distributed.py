"""torchrun on CPU (gloo): two processes with the same global batch as one, and a checkpoint one process loads."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from idao.config import load_config
from idao.cygno.objectives import load_models
from idao.runtime import make_runtime

from conftest import ROOT


def train(dataset: Path, work: Path, nproc: int) -> subprocess.CompletedProcess:
    args = [f"cygno.root={dataset}", f"cygno.cache_dir={work / 'cache'}", f"train.checkpoint_dir={work / 'ck'}",
            "cygno.classifier.epochs=2", "cygno.classifier.patience=0", "train.progress=false", "train.threads=1",
            "--only", "classifier"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                "--master_port", str(29500 + nproc)] if nproc > 1 else [sys.executable]
    proc = subprocess.run([*launcher, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_two_processes_match_one(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "one", 1)
    two = train(tiny_dataset, tmp_path / "two", 2)
    assert "2 processes" in two.stdout
    assert two.stdout.count("classifier epoch 2/2") == 1  # only rank 0 prints
    log1 = pd.read_csv(tmp_path / "one" / "ck" / "cygno" / "classifier_log.csv")
    log2 = pd.read_csv(tmp_path / "two" / "ck" / "cygno" / "classifier_log.csv")
    # Same global batches and augmentations; on CPU BatchNorm statistics are per process (no SyncBatchNorm),
    # so the two runs agree closely rather than bit for bit.
    np.testing.assert_allclose(log2["train_loss"], log1["train_loss"], rtol=0.05)
    np.testing.assert_allclose(log2["lr"], log1["lr"], rtol=1e-9)
    w1 = torch.load(tmp_path / "one" / "ck" / "cygno" / "classifier_last.pt", weights_only=True)
    w2 = torch.load(tmp_path / "two" / "ck" / "cygno" / "classifier_last.pt", weights_only=True)
    np.testing.assert_allclose(log2["val_metric"], log1["val_metric"], atol=0.05)
    assert w2["world_size"] == 2 and w1["model"].keys() == w2["model"].keys()  # same format, no "module." prefix
    # the 2-process checkpoint loads and predicts in a single process
    cfg = load_config(overrides=[f"train.checkpoint_dir={tmp_path / 'two' / 'ck'}"], echo=False)
    model, _ = load_models(cfg, make_runtime(cfg.train), ("classifier",))["classifier"]
    with torch.inference_mode():
        assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 1)


def test_folds_under_torchrun(tmp_path):
    """train.folds with two processes: each fold trained by both, its validation predictions written by rank 0."""
    from idao.damic.simulate import simulate_dataset

    sim = simulate_dataset(tmp_path / "sim", events_per_class=8, seed=1)
    args = ["task.name=damic", f"damic.train={sim / 'train'}", f"train.checkpoint_dir={tmp_path / 'ck'}",
            "damic.model.model=track_hybrid", "damic.model.epochs=1", "train.folds=2", "train.progress=false",
            "train.threads=1"]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           "29533", "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("fold1 (2 of 2)") == 1 and proc.stdout.count("out of fold (2 folds,") == 1
    oof = pd.read_csv(tmp_path / "ck" / "damic" / "oof.csv", dtype={"id": str})
    assert sorted(oof["id"]) == sorted(p.stem for p in (sim / "train").glob("*.npz"))
    assert torch.load(tmp_path / "ck" / "damic" / "fold1" / "track_best.pt", weights_only=True)["world_size"] == 2

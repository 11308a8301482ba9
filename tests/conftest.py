"""Shared helpers and fixtures: running a script as a user would, a tiny simulated CYGNO dataset (made once
per session), and the real files in ../shared (tests that need them skip with the reason where it is absent)."""
from __future__ import annotations

import json
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


def out_of_fold_scores(task_name: str, cfg, tmp_path: Path) -> dict:
    """What cv.json records of one fold's rows: the task's validation predictions, through a CSV as oof.csv
    holds them, scored by the task."""
    import pandas as pd

    from idao.runtime import make_runtime
    from idao.tasks import get_task

    task = get_task(task_name)
    task.validation_predictions(cfg, make_runtime(cfg.train)).to_csv(tmp_path / "oof.csv", index=False)
    return task.score_out_of_fold(pd.read_csv(tmp_path / "oof.csv", dtype={"id": str}))


PIPELINE_EPOCHS = 6  # the pipeline fixture's: enough for the classifier to point ER up on the tiny set


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
    args = overrides(tiny_dataset, work, epochs=PIPELINE_EPOCHS)
    outputs = [run(script, *args).stdout for script in ("train.py", "generate_submission.py", "report.py")]
    assert not (work / "ck" / "cygno" / "regressor_best.pt").exists()  # mode light reads no regressor
    run("train.py", *args, "--only", "regressor")  # for the report's energy figures and the regressor modes
    outputs[2] = run("report.py", *args).stdout
    return work, outputs


def check_onnx_export(args: list[str], cwd: Path = ROOT) -> dict[str, Path]:
    """``idao-export`` as a user runs it, then every exported model run by ONNX Runtime alone and compared with
    PyTorch's on the same inputs: 3 items (the export saw 8: the batch axis is dynamic) and, for padded pulses,
    fewer pulses (the pulse axis and its mask are dynamic too). Returns {model: .onnx path}."""
    import numpy as np
    import onnxruntime
    import torch

    from idao.config import CORE_PATH_KEYS, load_config
    from idao.export import TOLERANCE, flat
    from idao.jobs import prepare
    from idao.runtime import make_runtime
    from idao.tasks import get_task

    out = run(str(Path(sys.executable).parent / "idao-export"), *args, cwd=cwd).stdout
    here = os.getcwd()
    os.chdir(cwd)  # the settings' relative paths, as the script saw them
    try:
        cfg = load_config(overrides=args, echo=False)
        task = get_task(cfg.task.name)
        cfg.resolve_paths(CORE_PATH_KEYS + task.path_keys)
        cfg = prepare(task, cfg, "export")
        models = task.export_models(cfg, make_runtime(cfg.train, device=torch.device("cpu")))
    finally:
        os.chdir(here)
    folder = Path(cfg.export.dir) / task.name
    for name, item in models.items():
        model, example = item.model, item.example
        assert f"exported {name}: " in out
        meta = json.loads((folder / f"{name}.json").read_text())
        card = (folder / f"{name}_model_card.md").read_text()
        assert meta["objective"] and all(f"## {h}" in card for h in ("Data", "Metrics", "Intended use",
                                                                     "Preprocessing", "Provenance"))
        if isinstance(example, dict):  # the first 3 events, and of the pulses their first half
            items = getattr(item.objective, "item_inputs", ())
            example = {k: v[:3, :max(1, v.shape[1] // 2)] if k in items else v[:3] for k, v in example.items()}
        else:
            example = tuple(t[:3] for t in example) if isinstance(example, tuple) else example[:3]
        names, tensors = flat(example)
        session = onnxruntime.InferenceSession(str(folder / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        got = session.run(None, {n: t.numpy() for n, t in zip(names, tensors)})[0]
        with torch.inference_mode():
            expected = model.eval()(example).float().numpy()
        assert got.shape == expected.shape and got.shape[0] == 3
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)
    return {name: folder / f"{name}.onnx" for name in models}


def run_snippet(name: str, cwd: Path) -> dict:
    """Run the Python block after ``<!-- snippet: name -->`` in docs/guides/export.md from ``cwd``; its variables."""
    text = (ROOT / "docs" / "guides" / "export.md").read_text()
    code = text.split(f"<!-- snippet: {name} -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 10  # the promise: ten lines per detector
    here, namespace = os.getcwd(), {}
    os.chdir(cwd)
    try:
        exec(code, namespace)
    finally:
        os.chdir(here)
    return namespace

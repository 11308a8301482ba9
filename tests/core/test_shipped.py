"""The models shipped in checkpoints/: each loads with today's code, strictly, and predicts a tiny simulated set
through generate_submission.py alone (no train.py), as on a fresh clone; a model the code no longer fits is one
``error:`` line that names the command rebuilding it."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file, save_file

from idao.cygno.dataset import read_labels
from idao.cygno.metrics import roc_auc
from idao.metrics import binary_auc
from conftest import ROOT, run

SHIPPED = sorted({p.parent for p in (ROOT / "checkpoints").glob("**/*_best.safetensors")})


def tiny_data(task: str, tmp: Path, tiny_dataset: Path) -> tuple[list[str], Path]:
    """Overrides that point a shipped model at a tiny simulated set in ``tmp``, and the CSV it writes."""
    return {
        "cygno": ([f"cygno.root={tiny_dataset}", f"cygno.cache_dir={tmp / 'cache'}",
                   f"cygno.output.submission={tmp / 'out.csv'}"], tmp / "out.csv"),
        "damic": ([f"damic.test={tmp / 'damic' / 'test'}", "damic.simulate_events=8",
                   f"damic.output.predictions={tmp / 'out.csv'}"], tmp / "out.csv"),
        "egamma": ([f"egamma.train={tmp / 'egamma'}", "egamma.simulate_events=100",
                    f"egamma.output.predictions={tmp / 'out.csv'}"], tmp / "out.csv"),
        "icecube": ([f"icecube.root={tmp / 'icecube'}", "icecube.simulate_events=200",
                     f"icecube.output.submission={tmp / 'out.csv'}"], tmp / "out.csv"),
    }[task]


def shipped_copy(folder: Path, tmp: Path) -> Path:
    """The shipped files of ``folder`` alone (a retrain's ``.pt`` there would take precedence), as a fresh
    clone has them: the checkpoint_dir to use."""
    copy = tmp / "ck" / folder.name
    shutil.copytree(folder, copy, ignore=lambda _, names: [n for n in names if not n.endswith(SHIPPED_FILES)])
    return copy.parent


SHIPPED_FILES = ("_best.safetensors", "_best.json", "_model_card.md", "light.json")  # .gitignore lets only these in


def test_every_detector_ships_a_model():
    assert {folder.name for folder in SHIPPED} == {"cygno", "damic", "egamma", "icecube"}
    files = [p for folder in SHIPPED for p in folder.iterdir() if p.name.endswith(SHIPPED_FILES)]
    assert sum(p.stat().st_size for p in files) < 20e6
    for weights in (p for p in files if p.name.endswith(".safetensors")):
        assert weights.with_suffix(".json").is_file()


@pytest.mark.parametrize("folder", SHIPPED, ids=[str(f.relative_to(ROOT / "checkpoints")) for f in SHIPPED])
def test_a_shipped_model_predicts_without_training(folder, tmp_path, tiny_dataset):
    args, out = tiny_data(folder.name, tmp_path, tiny_dataset)
    run(str(ROOT / "generate_submission.py"), f"task.name={folder.name}",
        f"train.checkpoint_dir={shipped_copy(folder, tmp_path)}", "train.progress=false", "train.threads=1", *args,
        cwd=tmp_path)
    table = pd.read_csv(out)
    assert len(table) > 0 and table.notna().all().all()
    if folder.name == "cygno":  # the shipped model still knows ER from NR on today's simulator
        truth = read_labels(tiny_dataset)
        assert roc_auc(np.array([truth[i][0] == "ER" for i in table["id"]]), table["classification_predictions"]) > 0.9
    if folder.name == "egamma":
        assert binary_auc(table["id"].str.startswith("SingleElectron").to_numpy(), table["p_electron"].to_numpy()) > 0.6
    for card in folder.glob("*_best.safetensors"):
        text = (folder / card.name.replace("_best.safetensors", "_model_card.md")).read_text()
        assert "## Rebuild" in text and "python train.py" in text and "## Held-out scores" in text


@pytest.mark.skipif(not (ROOT / "checkpoints" / "egamma").is_dir(), reason="no shipped e/gamma model")
def test_a_shipped_model_the_code_no_longer_fits_names_its_rebuild_command(tmp_path):
    folder = shipped_copy(ROOT / "checkpoints" / "egamma", tmp_path) / "egamma"
    weights = load_file(folder / "egamma_best.safetensors")
    name = next(k for k, v in weights.items() if v.dim() == 4)  # a convolution: as if the architecture changed
    weights[name] = weights[name][:, :1].contiguous()
    save_file(weights, folder / "egamma_best.safetensors")
    proc = run(str(ROOT / "generate_submission.py"), "task.name=egamma", f"train.checkpoint_dir={tmp_path / 'ck'}",
               f"egamma.train={tmp_path / 'data'}", "egamma.simulate_events=50",
               f"egamma.output.predictions={tmp_path / 'out.csv'}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1, proc.stderr
    assert "weights do not fit the model" in proc.stderr and "rebuild it with `python train.py task.name=egamma" \
        in proc.stderr
    assert not (tmp_path / "out.csv").exists()


def test_the_shipped_cygno_model_types_and_levels_the_real_images(real_images, tmp_path):
    """The four genuine IDAO images, as a folder of unknown class set (any of the twelve classes): each typed
    right and given its keV level, from the shipped model alone (the ER 30 keV track is longer than the light
    disc: its track light counts too), without simulating a dataset first."""
    folder = tmp_path / "real"
    folder.mkdir()
    for path in real_images:
        (folder / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "real.csv"
    run(str(ROOT / "generate_submission.py"), f"train.checkpoint_dir={shipped_copy(ROOT / 'checkpoints' / 'cygno', tmp_path)}",
        f"cygno.submission.folders={folder}", f"cygno.output.submission={out}", "cygno.cache_dir=",
        "train.progress=false", cwd=tmp_path)
    assert not (tmp_path / "data").exists()  # a folder of the user's own needs no simulated dataset first
    table = pd.read_csv(out, dtype={"id": str})
    for row in table.itertuples():
        particle, kev = ("ER" if "_ER_" in row.id else "NR"), int(row.id.split("_keV")[0].rsplit("_", 1)[1])
        assert (row.classification_predictions > 0.5) == (particle == "ER"), (row.id, row.classification_predictions)
        assert row.regression_predictions == kev, (row.id, row.regression_predictions)

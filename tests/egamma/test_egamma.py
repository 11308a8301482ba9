"""Calorimeter electron / photon task: reader, simulator, streaming order, export, scripts and notebook."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from idao.egamma.io import read_images
from idao.egamma.objective import EgammaObjective
from idao.egamma.simulate import FILES, Physics, simulate_dataset, simulate_images
from idao.errors import DataError
from conftest import ROOT, check_onnx_export, out_of_fold_scores, run, run_snippet


def write_h5(path: Path, X, y=None, chunks=None) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X, chunks=chunks, compression="gzip" if chunks else None)
        if y is not None:
            f.create_dataset("y", data=y)
    return path


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Path:
    return simulate_dataset(tmp_path_factory.mktemp("egamma") / "data", 400, seed=3)


def test_simulator_writes_the_ml4sci_layout(sim):
    for label, name in FILES.items():
        with h5py.File(sim / name) as f:
            X, y = f["X"], f["y"][...]
            assert X.shape == (400, 32, 32, 2) and X.dtype == np.float32 and X.chunks[1:] == (32, 32, 2)
            assert X.compression == "gzip"
            assert (y == label).all()
            x = X[...]
    energy, time = x[..., 0], x[..., 1]
    assert (energy >= 0).all() and (time[energy == 0] == 0).all()  # zero suppression clears both channels
    assert ((energy > 0) & (time != 0)).sum() > 0.9 * (energy > 0).sum()  # hits carry a jitter
    total = energy.sum((1, 2))
    assert 50 < np.median(total) < 90  # pT 50 GeV at |eta| < 1.4


def test_simulated_electrons_spread_along_phi_more_than_photons():
    """The physics the task rests on: bremsstrahlung widens electrons along phi (columns), not along eta."""
    rng = np.random.default_rng(0)

    def spread(x, axis):  # RMS width of the central 13x13 crystals' profile (noise hits far out left aside)
        e = x[:, 10:23, 10:23, 0]
        profile = e.sum(axis=axis) / e.sum((1, 2))[:, None]
        pos = np.arange(13)
        mean = (profile * pos).sum(1)
        return np.sqrt((profile * (pos - mean[:, None]) ** 2).sum(1))

    electrons, photons = simulate_images(rng, 3000, True), simulate_images(rng, 3000, False)
    phi_e, phi_g = spread(electrons, 1), spread(photons, 1)
    eta_e, eta_g = spread(electrons, 2), spread(photons, 2)
    assert phi_e.mean() > 1.04 * phi_g.mean()
    assert abs(eta_e.mean() - eta_g.mean()) < 0.05 * eta_g.mean()
    # the knob works: without brem the electrons' phi spread falls to the unconverted photons'
    quiet = simulate_images(rng, 3000, True, Physics(brem_mean=0.01))
    assert spread(quiet, 1).mean() < phi_e.mean()


def test_reader_reads_channels_first_and_one_mixed_file_alike(tmp_path, sim):
    with h5py.File(sim / FILES[1]) as f:
        X, y = f["X"][:50], f["y"][:50]
    with h5py.File(sim / FILES[0]) as f:
        X, y = np.concatenate([X, f["X"][:50]]), np.concatenate([y, f["y"][:50]])
    last = read_images(str(write_h5(tmp_path / "mixed.h5", X, y, chunks=(16, 32, 32, 2))))
    first = read_images(str(write_h5(tmp_path / "first.h5", X.transpose(0, 3, 1, 2), y.reshape(-1, 1))))
    idx = np.array([99, 0, 57, 3])
    np.testing.assert_array_equal(last.read(idx), first.read(idx))
    np.testing.assert_array_equal(last.read(idx), X[idx].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(first.label, y)
    unlabelled = read_images(str(write_h5(tmp_path / "test.h5", X)), labelled=False)
    assert unlabelled.label is None and unlabelled.ids[7] == "test:7"


@pytest.mark.parametrize("make, message", [
    (lambda p: write_h5(p, np.zeros((4, 32, 32, 2), np.float32)), "no dataset 'y'"),
    (lambda p: write_h5(p, np.zeros((4, 32, 32, 3), np.float32), np.zeros(4)), "2 channels"),
    (lambda p: write_h5(p, np.zeros((4, 32, 32, 2), np.float32), np.array([0, 1, 2, 1])), "values [2"),
    (lambda p: write_h5(p, np.zeros((4, 32, 32, 2), np.float32), np.zeros(3)), "one label per image"),
    (lambda p: p.write_text("X,y\n1,2\n"), "not a readable HDF5 file"),
])
def test_bad_files_are_named(tmp_path, make, message):
    path = tmp_path / "bad.hdf5"
    make(path)
    with pytest.raises(DataError, match="bad.hdf5") as e:
        read_images(str(path))
    assert message in str(e.value)


def test_nan_image_is_named_with_its_row(tmp_path):
    X = np.zeros((40, 32, 32, 2), np.float32)
    X[33, 5, 5, 0] = np.nan
    data = read_images(str(write_h5(tmp_path / "nan.h5", X, np.r_[np.zeros(20), np.ones(20)], chunks=(8, 32, 32, 2))), block_rows=8)
    data.read([0, 1])  # other blocks read fine
    with pytest.raises(DataError, match=r"nan.h5: image 33 holds NaN"):
        data.read([34])


def test_epoch_order_streams_blocks_mixes_classes_and_is_seeded(sim, tmp_path):
    for label, name in FILES.items():  # the simulated files again, in HDF5 chunks of 25 rows
        with h5py.File(sim / name) as f:
            write_h5(tmp_path / name, f["X"][...], f["y"][...], chunks=(25, 32, 32, 2))
    data = read_images(str(tmp_path), block_rows=50, shuffle_blocks=4)  # 8 blocks of 2 chunks per file
    order = data.epoch_order(torch.Generator().manual_seed(1))
    assert sorted(order) == list(range(len(data)))
    np.testing.assert_array_equal(order, data.epoch_order(torch.Generator().manual_seed(1)))
    assert not np.array_equal(order, data.epoch_order(torch.Generator().manual_seed(2)))
    blocks = data.block_of[order]
    window = 4 * 50
    for start in range(0, len(order), window):  # each window: 4 blocks, both classes (the files are one class each)
        assert len(set(blocks[start : start + window])) == 4
        assert 0.25 <= data.label[order[start : start + window]].mean() <= 0.75
    data.read(order)  # an epoch's reads: the cache never holds more than its window allows
    assert len(data.cache.blocks) <= data.cache.max_blocks


EGAMMA_ARGS = ["task.name=egamma", "egamma.simulate_events=300", "egamma.model.epochs=2", "egamma.model.batch_size=64",
               "train.progress=false", "egamma.output.bootstrap=50"]


@pytest.fixture(scope="module")
def egamma_run(tmp_path_factory):
    """train -> generate -> report on a small simulated set, from an empty folder with explicit settings."""
    work = tmp_path_factory.mktemp("egamma-run")
    train = run(str(ROOT / "train.py"), *EGAMMA_ARGS, cwd=work)
    generate = run(str(ROOT / "generate_submission.py"), *EGAMMA_ARGS, cwd=work)
    report = run(str(ROOT / "report.py"), *EGAMMA_ARGS, cwd=work)
    return work, train, generate, report


@pytest.mark.xdist_group("egamma_run")  # one process builds the fixture once
def test_egamma_scripts_end_to_end(egamma_run):
    work, train, _, report = egamma_run
    assert "simulating 300 electrons and photons" in train.stdout
    metrics = json.loads((work / "results" / "egamma" / "metrics.json").read_text())
    pred = pd.read_csv(work / "results" / "egamma" / "predictions.csv")
    assert list(pred.columns) == ["id", "p_electron"] and len(pred) == 60  # 10 % of 600 held out for test
    assert metrics["test"]["n"] == 60 and metrics["validation"]["n"] == 60
    truth = pred["id"].str.startswith("SingleElectron").to_numpy()
    assert metrics["test"]["accuracy"] == pytest.approx(np.mean((pred["p_electron"] > 0.5) == truth))
    low, high = metrics["test"]["auc_ci95"]
    assert low <= metrics["test"]["auc"] <= high
    t = metrics["training"]
    assert 0 <= t["train_accuracy"] <= 1 and 0 <= t["val_accuracy"] <= 1 and t["epochs"] == 2
    for name in ("roc.png", "accuracy_curves.png", "scores.png", "examples.png", "index.html", "config.ini"):
        assert (work / "results" / "egamma" / name).stat().st_size > 0, name
    assert "SIMULATED DATA" in (work / "results" / "egamma" / "index.html").read_text()
    assert "ROC-AUC" in report.stdout


@pytest.mark.xdist_group("egamma_run")
def test_out_of_fold_scores_are_the_reports(egamma_run, monkeypatch, tmp_path):
    """What cv.json records of a fold's rows (here the validation split's) is what the report says of them."""
    from idao.config import load_config

    work = egamma_run[0]
    monkeypatch.chdir(work)
    scored = out_of_fold_scores("egamma", load_config(None, EGAMMA_ARGS, echo=False), tmp_path)
    metrics = json.loads((work / "results" / "egamma" / "metrics.json").read_text())["validation"]
    assert scored == pytest.approx({"AUC": metrics["auc"], "accuracy": metrics["accuracy"]})


@pytest.mark.xdist_group("egamma_run")  # one process builds the fixture once
def test_onnx_export_matches_pytorch_and_the_guide_scores_a_file_with_it(egamma_run):
    work, *_ = egamma_run
    assert set(check_onnx_export(["task.name=egamma", "egamma.simulate_events=300"], cwd=work)) == {"egamma"}
    snippet = run_snippet("egamma", work)  # ONNX Runtime alone, on the inputs the guide prepares
    objective = EgammaObjective(**json.loads((work / "exports" / "egamma" / "egamma.json").read_text())["objective"])
    with h5py.File(work / "data" / "egamma_sim" / "SingleElectronPt50_IMGCROPS_n249k_RHv1.hdf5") as f:
        expected = objective.standardise(f["X"][:100].transpose(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(snippet["x"], expected, rtol=1e-5, atol=1e-5)  # exactly idao's preprocessing
    assert snippet["logit"].shape == (100, 1)


@pytest.mark.xdist_group("egamma_run")  # one process builds the fixture once
def test_export_loads_without_code_and_scores_a_file(egamma_run):
    from safetensors import safe_open

    from idao.egamma.export import load_exported, score_file

    work = egamma_run[0]
    path = work / "results" / "egamma" / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert meta["architecture"] == "resnet15" and "[egamma]" in meta["config"]
    assert len(json.loads(meta["objective"])["channel_mean"]) == 2
    model, objective = load_exported(path)
    p = score_file(model, objective, work / "data" / "egamma_sim" / FILES[0])
    assert p.shape == (300,) and np.isfinite(p).all()
    # the export is the kept checkpoint: it reproduces generate_submission.py's numbers on the same images
    pred = pd.read_csv(work / "results" / "egamma" / "predictions.csv")
    photons = pred[pred["id"].str.startswith("SinglePhoton")]
    rows = photons["id"].str.rpartition(":")[2].astype(int).to_numpy()
    np.testing.assert_allclose(p[rows], photons["p_electron"].to_numpy(), atol=1e-4)


def test_notebook_runs_top_to_bottom(tmp_path, sim):
    """examples/egamma.ipynb, every code cell in order, on the small simulated files (as a user would run it)."""
    notebook = json.loads((ROOT / "examples" / "egamma.ipynb").read_text())
    env = {"EGAMMA_DATA": str(sim), "EGAMMA_EPOCHS": "1", "EGAMMA_MODEL": "egamma_cnn", "EGAMMA_WORK": str(tmp_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        scope: dict = {"__name__": "__main__"}
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), "egamma.ipynb", "exec"), scope)
    finally:
        os.chdir(cwd)
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert 0 <= scope["test"]["auc"] <= 1 and len(scope["p"]) == 400
    assert (tmp_path / "results" / "model.safetensors").exists()


def test_energy_threshold_clears_weak_hits_in_both_channels_and_travels_with_the_export(tmp_path):
    from idao.egamma.export import export, load_exported
    from idao.egamma.objective import EgammaObjective
    from idao.models import build_model

    x = np.zeros((1, 2, 32, 32), np.float32)
    x[0, :, 3, 3] = (0.15, 1.5)  # a weak hit (GeV, ns)
    x[0, :, 16, 16] = (20.0, -0.2)
    objective = EgammaObjective(energy_threshold=0.2)
    out = objective.suppress(x)
    assert (out[0, :, 3, 3] == 0).all() and tuple(out[0, :, 16, 16]) == (20.0, np.float32(-0.2))
    assert (EgammaObjective().suppress(x) == x).all()  # 0: the file's own zero suppression
    path = export(build_model("egamma_cnn"), objective, "egamma_cnn", "[egamma]\n", tmp_path / "m.safetensors")
    assert load_exported(path)[1].energy_threshold == 0.2

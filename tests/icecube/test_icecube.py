"""IceCube task: the metric, the reader's errors, the simulator's truth, the converter on real events, the scripts."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from idao.errors import DataError
from idao.icecube.io import (PACKAGED_GEOMETRY, angles_of, angular_error, direction_of, read_geometry,
                             read_split, with_test_truth)
from idao.icecube.baselines import baseline_directions, line_fit, two_dots
from idao.icecube.classes import Detector
from idao.icecube.objective import DirectionObjective, log_c3, select_pulses
from idao.icecube.simulate import Physics, simulate_dataset, simulate_event
from idao.icecube.task import events_table

from conftest import ROOT, SHARED, check_onnx_export, out_of_fold_scores, run

GRAPHNET = SHARED / "icecube-graphnet"


def test_angular_error_against_hand_computed_cases():
    up, east = np.array([[0.0, 0, 1]]), np.array([[1.0, 0, 0]])
    assert angular_error(up, up)[0] == pytest.approx(0.0, abs=1e-6)
    assert angular_error(up, -up)[0] == pytest.approx(np.pi)
    assert angular_error(up, east)[0] == pytest.approx(np.pi / 2)
    assert angular_error(np.array([[1.0, 1, 0]]), 5 * east)[0] == pytest.approx(np.pi / 4)  # lengths do not matter
    # Kaggle's convention: azimuth 0, zenith 0 is straight down-going (came from +z); zenith pi/2, azimuth pi/2: +y
    np.testing.assert_allclose(direction_of([0.0, np.pi / 2], [0.0, np.pi / 2]), [[0, 0, 1], [0, 1, 0]], atol=1e-12)
    az, zen = np.array([0.3, 4.0, 6.1]), np.array([0.2, 1.5, 3.0])
    back = angles_of(direction_of(az, zen))
    np.testing.assert_allclose(back[0], az, atol=1e-9)
    np.testing.assert_allclose(back[1], zen, atol=1e-9)


def test_von_mises_fisher_loss_prefers_the_true_direction():
    kappa = torch.tensor([0.5, 3.0, 20.0], dtype=torch.float64)
    direct = torch.log(kappa / (4 * np.pi * torch.sinh(kappa)))
    torch.testing.assert_close(log_c3(kappa), direct)
    objective = DirectionObjective()
    y = torch.tensor([[0.0, 0.0, 1.0]])
    right, wrong = objective.loss_fn(torch.tensor([[0.0, 0.0, 5.0]]), y), objective.loss_fn(torch.tensor([[5.0, 0, 0]]), y)
    assert right < wrong


def test_pulse_cap_keeps_non_auxiliary_then_earliest_in_time_order():
    time = np.array([50.0, 10, 40, 20, 30, 7, 3])
    aux = np.array([False, True, False, True, False, False, True])
    event = np.array([0, 0, 0, 0, 0, 1, 1])
    keep = select_pulses(event, time, aux, 4)
    assert list(time[keep]) == [10, 30, 40, 50, 3, 7]  # event 0: its three non-auxiliary, then the earliest other
    assert list(select_pulses(event, time, aux, 10)) == [1, 3, 4, 2, 0, 6, 5]  # under the cap: all, in time order


def test_batches_hold_each_events_own_pulses(sim):
    """The whole-batch array build gives each event exactly what the per-event definition does."""
    data = read_split(sim, "train", True)
    idx = np.array([250, 3, 120, 4, 3])  # three batch files, out of order, one event twice
    x, mask, _ = DirectionObjective(max_pulses=20).batch(data, idx)
    for row, i in enumerate(idx):
        pos, time, charge, aux = data.pulses(i)
        keep = np.lexsort((time, aux))[:20]  # non-auxiliary first, then the earliest
        t = time[keep]
        expected = np.column_stack([pos[keep] / 500.0, (t - np.median(t)) / 3000.0,
                                    np.log10(np.maximum(charge[keep], 1e-3)), aux[keep]])
        kept = x[row, mask[row]]
        np.testing.assert_allclose(kept[np.lexsort(kept.T)], expected[np.lexsort(expected.T)], rtol=1e-5, atol=1e-6)
        assert np.all(np.diff(kept[:, 3]) >= 0)  # in time order


@pytest.mark.parametrize("method, degrees", [(line_fit, 4.0), (two_dots, 8.0)])
def test_baselines_recover_noise_free_simulated_tracks(method, degrees):
    geometry, rng = read_geometry(PACKAGED_GEOMETRY), np.random.default_rng(0)
    physics = Physics(noise_pulses=0, delay_per_m=0.0, coincident_muons=0.0)
    errors = []
    while len(errors) < 40:
        (sensor, time, charge, aux, n_signal, _), az, zen = simulate_event(rng, geometry, "track", physics)
        if n_signal >= physics.trigger:
            fit = method(geometry[sensor], time.astype(float), charge, np.zeros(len(sensor), bool))
            errors.append(angular_error(fit[None], direction_of([az], [zen]))[0])
    assert np.degrees(np.median(errors)) < degrees


def test_simulated_cascades_carry_their_direction():
    """Cascade light peaks at the Cherenkov angle around the shower axis: the brightest sensors of a cascade lie
    ahead of its vertex, along the direction it travels, not all around it."""
    geometry, rng = read_geometry(PACKAGED_GEOMETRY), np.random.default_rng(1)
    physics = Physics(noise_pulses=0, coincident_muons=0.0)
    cosines = []
    while len(cosines) < 40:
        (sensor, time, charge, aux, n_signal, _), az, zen = simulate_event(rng, geometry, "cascade", physics)
        if n_signal >= 20:
            first = geometry[sensor[np.argsort(time)[:3]]].mean(0)  # near the vertex: the earliest light
            toward = np.average(geometry[sensor] - first, axis=0, weights=charge)
            cosines.append(float(toward @ -direction_of([az], [zen])[0] / max(np.linalg.norm(toward), 1e-9)))
    assert np.mean(cosines) > 0.3  # isotropic emission would give ~0


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("icecube") / "data", 300, 60, per_file=100, seed=1)


def test_a_fold_ensemble_routes_each_class_as_most_of_its_folds_chose():
    """icecube.method = routed with train.folds: per class the reconstruction most fold classifiers chose on
    their own validation folds, not fold 0's alone; a tie goes to the earliest fold's of those tied."""
    from idao.engine import EnsembleObjective
    from idao.icecube.classes import EventClassObjective
    from idao.icecube.task import routes

    folds = [("model", "linefit", "twodots"), ("linefit", "linefit", "model"), ("linefit", "model", "twodots"),
             ("model", "model", "linefit")]
    assert routes(EnsembleObjective([EventClassObjective(routes=r) for r in folds[:3]])) == ("linefit", "linefit", "twodots")
    assert routes(EnsembleObjective([EventClassObjective(routes=r) for r in folds])) == ("model", "linefit", "twodots")
    assert routes(EventClassObjective(routes=folds[1])) == folds[1]


def test_simulator_writes_the_kaggle_layout(sim):
    meta = pd.read_parquet(sim / "train_meta.parquet")
    assert list(meta.columns[:6]) == ["batch_id", "event_id", "first_pulse_index", "last_pulse_index", "azimuth",
                                      "zenith"]
    assert sorted(p.name for p in (sim / "train").iterdir()) == ["batch_1.parquet", "batch_2.parquet", "batch_3.parquet"]
    batch = pd.read_parquet(sim / "train" / "batch_2.parquet")
    assert batch.index.name == "event_id" and list(batch.columns) == ["sensor_id", "time", "charge", "auxiliary"]
    assert "azimuth" not in pd.read_parquet(sim / "test_meta.parquet").columns  # test truth lies outside test/
    assert len(pd.read_parquet(sim / "test_truth.parquet")) == 60
    data = read_split(sim, "train", True)
    assert len(data) == 300 and set(data.extra["event_type"]) == {"track", "starting", "cascade"}
    pos, time, charge, aux = data.pulses(150)
    assert len(time) >= 8 and (np.diff(time) >= 0).all() and pos.shape == (len(time), 3)
    assert 0 < aux.mean() < 1


def damage(sim, tmp_path, edit):
    root = shutil.copytree(sim, tmp_path / "data")
    edit(root)
    return root


@pytest.mark.parametrize("edit, message", [
    (lambda r: pd.read_parquet(r / "train" / "batch_1.parquet").drop(columns="charge").to_parquet(r / "train" / "batch_1.parquet"),
     "batch_1.parquet: columns ['charge'] missing"),
    (lambda r: pd.read_parquet(r / "train" / "batch_1.parquet").assign(sensor_id=9999).to_parquet(r / "train" / "batch_1.parquet"),
     "sensor_id 9999 is outside the geometry"),
    (lambda r: pd.read_parquet(r / "train_meta.parquet").assign(first_pulse_index=lambda m: m.first_pulse_index + 1)
     .to_parquet(r / "train_meta.parquet"), "do not hold its"),
    (lambda r: pd.read_parquet(r / "train_meta.parquet").assign(last_pulse_index=lambda m: m.first_pulse_index - 1)
     .to_parquet(r / "train_meta.parquet"), "an empty event"),
    (lambda r: (r / "train" / "batch_3.parquet").unlink(), "batch_3.parquet is missing"),
])
def test_reader_names_the_bad_file(sim, tmp_path, edit, message):
    root = damage(sim, tmp_path, edit)
    with pytest.raises(DataError) as e:
        data = read_split(root, "train", True)
        [data.pulses(i) for i in range(len(data))]  # batch files are read when their events are asked for
    assert message in str(e.value)


def test_epoch_order_reads_one_file_at_a_time(sim):
    data = read_split(sim, "train", True, cache_files=1)
    order = data.epoch_order(torch.Generator().manual_seed(0))
    assert sorted(order) == list(range(len(data)))
    assert (np.diff(data.file[order]) != 0).sum() == 2  # 3 files, each visited once


def test_under_torchrun_each_process_reads_only_its_own_files(sim):
    data = read_split(sim, "train", True)
    data.world = 2
    order = data.epoch_order(torch.Generator().manual_seed(3))
    assert sorted(order) == list(range(len(data)))
    files = data.file[order]
    shared = 200  # 3 files of 100 events dealt to 2 processes: streams of 200 and 100, alternating for 100 rows
    rank0, rank1 = set(files[:shared:2]), set(files[1:shared:2])  # the engine's batch[rank::world] (even batch)
    assert len(rank0) >= 1 and len(rank1) >= 1 and not rank0 & rank1


@pytest.mark.skipif(not GRAPHNET.is_dir(), reason=f"GraphNeT's real events not found at {GRAPHNET}")
def test_converter_reads_and_reconstructs_the_five_real_events(tmp_path):
    from idao.icecube.convert import convert

    root = convert(GRAPHNET, tmp_path / "real")
    data = read_split(root, "train", True)
    pulses = pd.concat([pd.read_parquet(p) for p in sorted((GRAPHNET / "pulses").glob("*.parquet"))])
    truth = pd.concat([pd.read_parquet(p) for p in sorted((GRAPHNET / "truth").glob("*.parquet"))])
    truth = truth if "event_no" in truth.columns else truth.reset_index()
    assert len(data) == 5 == truth["event_no"].nunique()
    assert sum(len(data.pulses(i)[1]) for i in range(5)) == len(pulses)
    for i, event in enumerate(data.event_id):
        pos, time, charge, aux = data.pulses(i)
        mine = pulses.loc[[event]].sort_values("dom_time", kind="stable")
        np.testing.assert_allclose(pos, mine[["dom_x", "dom_y", "dom_z"]].to_numpy(), atol=1.0)
        np.testing.assert_array_equal(aux, mine["hlc"].to_numpy() == 0)
    row = truth.set_index("event_no").loc[data.event_id]
    np.testing.assert_allclose(data.direction, direction_of(row["azimuth"], row["zenith"]), atol=1e-6)
    errors = angular_error(baseline_directions(data, "linefit"), data.direction)
    assert np.isfinite(errors).all() and (errors <= np.pi).all()
    table = events_table(data, baseline_directions(data, "twodots"), None, veto_border=100.0)  # no class truth
    assert list(table.columns) == ["event_id", "n_pulses", "vertex_depth", "contained", "up_going"]
    assert np.isfinite(table["vertex_depth"]).all() and (table["vertex_depth"] > -300).all()  # first light near the detector


def test_containment_measures_depth_inside_the_real_detector():
    detector = Detector(read_geometry(PACKAGED_GEOMETRY))
    depth = detector.depth(np.array([[0.0, 0, 0], [0, 0, 500], [0, 0, -600], [2000, 0, 0]]))
    assert depth[0] > 400  # the centre: ~450 m from the outer strings, ~500 m from top and bottom
    assert depth[1] == pytest.approx(detector.z_max - 500, abs=1e-3)  # near the top: the top is nearest
    assert depth[2] < 0 and depth[3] < -1000  # below the bottom; far outside the strings


@pytest.fixture(scope="module")
def icecube_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("icecube-run")
    args = ["task.name=icecube", "icecube.simulate_events=500", "icecube.model.epochs=2", "train.progress=false"]
    return work, args, [run(str(ROOT / s), *args, cwd=work) for s in ("train.py", "generate_submission.py", "report.py")]


@pytest.mark.xdist_group("icecube_run")
def test_icecube_scripts_end_to_end(icecube_run):
    work, _, (train, _, report) = icecube_run
    assert "simulating 500 training and 100 test events" in train.stdout
    assert "classes:" in train.stdout and "boosting rounds kept" in train.stdout  # the event classifier
    routes = torch.load(work / "checkpoints" / "icecube" / "classes_best.pt", weights_only=True)["objective"]["routes"]
    assert set(routes) <= {"model", "linefit", "twodots"} and len(routes) == 3
    sub = pd.read_csv(work / "results" / "icecube" / "submission.csv")
    assert list(sub.columns) == ["event_id", "azimuth", "zenith"] and len(sub) == 100
    assert sub["azimuth"].between(0, 2 * np.pi).all() and sub["zenith"].between(0, np.pi).all()
    events = pd.read_csv(work / "results" / "icecube" / "submission.events.csv")
    assert list(events["event_id"]) == list(sub["event_id"])
    np.testing.assert_array_equal(events["up_going"], sub["zenith"] > np.pi / 2)  # came from below the horizon
    probs = events[["p_track", "p_starting", "p_cascade"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (events["event_class"] == np.array(["track", "starting", "cascade"])[probs.argmax(1)]).all()
    test = with_test_truth(work / "data" / "icecube_sim", read_split(work / "data" / "icecube_sim", "test", False))
    submitted = direction_of(sub["azimuth"], sub["zenith"])
    for cls, method in zip(("track", "starting", "cascade"), routes):  # icecube.method = routed (the default)
        if method != "model" and (events["event_class"] == cls).any():
            where = (events["event_class"] == cls).to_numpy()
            baseline = baseline_directions(test.subset(np.flatnonzero(where)), method)
            assert angular_error(submitted[where], baseline).max() < 1e-4
    metrics = json.loads((work / "results" / "icecube" / "metrics.json").read_text())
    test = metrics["test"]
    truth = pd.read_parquet(work / "data" / "icecube_sim" / "test_truth.parquet").set_index("event_id").loc[sub["event_id"]]
    expected = angular_error(direction_of(sub["azimuth"], sub["zenith"]), direction_of(truth["azimuth"], truth["zenith"]))
    assert test["mean_angular_error"] == pytest.approx(expected.mean(), abs=1e-4)
    assert set(test["by_event_type"]) == {"track", "starting", "cascade"}
    assert 0 < test["linefit_mean_angular_error"] < np.pi and 0 < test["twodots_mean_angular_error"] < np.pi
    confusion = np.array(test["classes"]["confusion"])
    assert confusion.sum() == 100 and list(confusion.sum(1)) == [(truth["event_type"] == k).sum()
                                                                  for k in ("track", "starting", "cascade")]
    assert confusion[0, 0] > confusion[0, 2]  # through-going tracks are told from cascades (trained on 425 events)
    for name in ("angular_error.png", "error_vs.png", "classes.png", "event_display.png", "learning_curves.png",
                 "index.html"):
        assert (work / "results" / "icecube" / name).stat().st_size > 0, name
    assert "line fit" in report.stdout and "2 dots" in report.stdout


@pytest.mark.xdist_group("icecube_run")
def test_out_of_fold_scores_are_the_reports(icecube_run, monkeypatch, tmp_path):
    """What cv.json records of a fold's rows (here the validation split's) is what the report says of them."""
    from idao.config import load_config

    work, args, _ = icecube_run
    monkeypatch.chdir(work)
    scored = out_of_fold_scores("icecube", load_config(None, args, echo=False), tmp_path)
    metrics = json.loads((work / "results" / "icecube" / "metrics.json").read_text())["validation"]
    assert scored == pytest.approx({"mean angular error": metrics["mean_angular_error"]})


@pytest.mark.xdist_group("icecube_run")
def test_onnx_export_matches_pytorch(icecube_run):
    work, args, _ = icecube_run
    assert set(check_onnx_export(args, cwd=work)) == {"direction", "classes"}  # any pulse count, via the mask


@pytest.mark.xdist_group("icecube_run")
@pytest.mark.parametrize("method", ["linefit", "twodots"])
def test_baseline_submissions_need_no_training(icecube_run, tmp_path, method):
    work, args, _ = icecube_run
    out = tmp_path / f"{method}.csv"
    run(str(ROOT / "generate_submission.py"), *args, f"icecube.method={method}", f"train.checkpoint_dir={tmp_path / 'none'}",
        f"icecube.output.submission={out}", cwd=work)
    assert len(pd.read_csv(out)) == 100
    assert "event_class" not in pd.read_csv(out.with_suffix(".events.csv")).columns  # no classifier: rules only


def test_batches_built_in_worker_processes_train_the_same_model(sim, tmp_path):
    """train.loader_workers builds the batches in background processes: the same batches, the same weights
    (with dropout on: starting the workers must not move the random draws of the training loop)."""
    weights = []
    for workers in (0, 2):
        ck = tmp_path / f"ck{workers}"
        run("train.py", "task.name=icecube", f"icecube.root={sim}", "icecube.model.epochs=1", f"train.checkpoint_dir={ck}",
            "icecube.model.drop_rate=0.2",
            f"train.loader_workers={workers}", "train.progress=false", "train.threads=1", "--only", "direction")
        weights.append(torch.load(ck / "icecube" / "direction_last.pt", weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_eda_notebook_runs_top_to_bottom(tmp_path):
    """examples/icecube.ipynb, every code cell in order, on a small simulated set (as a user would run it)."""
    notebook = json.loads((ROOT / "examples" / "icecube.ipynb").read_text())
    env = {"ICECUBE_EVENTS": "300", "ICECUBE_WORK": str(tmp_path)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        scope: dict = {"__name__": "__main__"}
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), "icecube.ipynb", "exec"), scope)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert len(scope["data"]) == 300 and scope["errors"]["twodots"].shape == (300,)
    for name in ("geometry.png", "pulses.png", "sensors.png"):
        assert (tmp_path / name).stat().st_size > 0
    outputs = [o for c in notebook["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # saved with its outputs

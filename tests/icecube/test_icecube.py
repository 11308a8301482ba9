"""IceCube task: the metric, the reader's errors, the simulator's truth, the converter on real events, the scripts."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from idao.errors import DataError
from idao.icecube.io import (PACKAGED_GEOMETRY, angles_of, angular_error, direction_of, read_geometry,
                             read_split)
from idao.icecube.linefit import line_fit, line_fit_all
from idao.icecube.objective import DirectionObjective, log_c3, select_pulses
from idao.icecube.simulate import Physics, simulate_dataset, simulate_event

from conftest import ROOT, SHARED, run

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
    time = np.array([50.0, 10, 40, 20, 30])
    aux = np.array([False, True, False, True, False])
    keep = select_pulses(time, aux, 4)
    assert list(time[keep]) == [10, 30, 40, 50]  # the three non-auxiliary, then the earliest auxiliary one
    assert list(select_pulses(time, aux, 10)) == [1, 3, 4, 2, 0]


def test_line_fit_recovers_noise_free_simulated_tracks():
    geometry, rng = read_geometry(PACKAGED_GEOMETRY), np.random.default_rng(0)
    physics = Physics(noise_pulses=0, delay_per_m=0.0)
    errors = []
    while len(errors) < 40:
        (sensor, time, charge, aux, n_signal), az, zen = simulate_event(rng, geometry, "track", physics)
        if n_signal >= physics.trigger:
            fit = line_fit(geometry[sensor], time.astype(float), charge, np.zeros(len(sensor), bool))
            errors.append(angular_error(fit[None], direction_of([az], [zen]))[0])
    assert np.degrees(np.median(errors)) < 4.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate_dataset(tmp_path_factory.mktemp("icecube") / "data", 300, 60, per_file=100, seed=1)


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
    errors = angular_error(line_fit_all(data), data.direction)
    assert np.isfinite(errors).all() and (errors <= np.pi).all()


@pytest.fixture(scope="module")
def icecube_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("icecube-run")
    args = ["task.name=icecube", "icecube.simulate_events=500", "icecube.model.epochs=2", "train.progress=false"]
    return work, args, [run(str(ROOT / s), *args, cwd=work) for s in ("train.py", "generate_submission.py", "report.py")]


def test_icecube_scripts_end_to_end(icecube_run):
    work, _, (train, _, report) = icecube_run
    assert "simulating 500 training and 100 test events" in train.stdout
    sub = pd.read_csv(work / "results" / "icecube" / "submission.csv")
    assert list(sub.columns) == ["event_id", "azimuth", "zenith"] and len(sub) == 100
    assert sub["azimuth"].between(0, 2 * np.pi).all() and sub["zenith"].between(0, np.pi).all()
    metrics = json.loads((work / "results" / "icecube" / "metrics.json").read_text())
    test = metrics["test"]
    truth = pd.read_parquet(work / "data" / "icecube_sim" / "test_truth.parquet").set_index("event_id").loc[sub["event_id"]]
    expected = angular_error(direction_of(sub["azimuth"], sub["zenith"]), direction_of(truth["azimuth"], truth["zenith"]))
    assert test["mean_angular_error"] == pytest.approx(expected.mean(), abs=1e-4)
    assert set(test["by_event_type"]) == {"track", "starting", "cascade"} and 0 < test["linefit_mean_angular_error"] < np.pi
    for name in ("angular_error.png", "error_vs.png", "event_display.png", "learning_curves.png", "index.html"):
        assert (work / "results" / "icecube" / name).stat().st_size > 0, name
    assert "line fit" in report.stdout


def test_line_fit_submission_needs_no_training(icecube_run, tmp_path):
    work, args, _ = icecube_run
    out = tmp_path / "linefit.csv"
    run(str(ROOT / "generate_submission.py"), *args, "icecube.method=linefit", f"train.checkpoint_dir={tmp_path / 'none'}",
        f"icecube.output.submission={out}", cwd=work)
    assert len(pd.read_csv(out)) == 100

"""DAMIC-M task: readers, window padding, training-set standardisation, simulator, and the three scripts."""
from __future__ import annotations

import json
import re
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from idao.checkpoint import load_checkpoint
from idao.damic.objective import TrackObjective, fit_stats, fit_window
from idao.damic.io import EV_PER_ELECTRON, read_events
from idao.damic.metrics import iou
from idao.damic.simulate import render_event, simulate_dataset
from idao.damic.task import frame_boxes
from idao.runtime import Runtime
from idao.errors import DataError

from conftest import ROOT, SHARED, check_onnx_export, run

CPU = Runtime(torch.device("cpu"), False, torch.contiguous_format, False)
CLASSES = ("electron", "muon", "alpha", "noise")


def packed(path: Path, frames: np.ndarray, labels, keys=("data", "labels")) -> Path:
    np.savez(path, **{keys[0]: frames, keys[1]: np.asarray(labels)})
    return path


def event_file(path: Path, energy: np.ndarray, noise: np.ndarray | None = None) -> Path:
    arrays = {"energy": energy} if noise is None else {"energy": energy, "noise": noise}
    np.savez(path, **arrays)
    return path


# --- readers -----------------------------------------------------------------------------------------


def test_packed_reader_crops_each_track_to_its_box(tmp_path):
    frames = np.zeros((3, 10, 12))
    frames[0, 2:4, 5:8] = 3.77
    frames[1, 7, 1] = 7.54
    frames[2, 0, 0], frames[2, 9, 11] = 3.77, 7.54  # scattered dark current: the box is its brightest cluster
    for keys in (("data", "labels"), ("data_test", "labels_test")):
        ev = read_events(packed(tmp_path / f"{keys[0]}.npz", frames, [0, 1, 1], keys), ("electron", "muon"))
        assert ev.ids == [f"{keys[0]}:0", f"{keys[0]}:1", f"{keys[0]}:2"]
        assert ev.particle.tolist() == ["electron", "muon", "muon"]
        assert ev.boxes.tolist() == [[2, 5, 2, 3], [7, 1, 1, 1], [9, 11, 1, 1]]
        np.testing.assert_allclose(ev.tracks[0], frames[0, 2:4, 5:8], rtol=1e-6)
        np.testing.assert_allclose(ev.energy, [frames[0].sum(), frames[1].sum(), 7.54], rtol=1e-6)  # track energy


def test_track_is_found_among_scattered_noise_pixels_and_centred(tmp_path):
    """Dark current scattered over the frame (the noisy thesis file) must not stretch the box or move the window."""
    rng = np.random.default_rng(0)
    frame = np.zeros((200, 150))
    frame[150:158, 120:126] = rng.integers(1, 200, (8, 6)) * EV_PER_ELECTRON  # an off-centre track
    frame[150:158, 126] = 0
    frame[152, 127] = 2 * EV_PER_ELECTRON  # touching the track across a one-pixel gap: part of it
    noisy = frame + rng.poisson(1 / 300, frame.shape) * EV_PER_ELECTRON  # 10x the real dark current
    noisy[150:158, 126] = 0
    ev = read_events(packed(tmp_path / "n.npz", np.stack([frame, noisy]), [1, 1]), ("electron", "muon"))
    assert ev.boxes[0].tolist() == [150, 120, 8, 8]
    r, c, h, w = ev.boxes[1]  # the same track, at most a noise pixel touching it added
    assert 148 <= r <= 150 and 118 <= c <= 120 and r + h >= 158 and c + w >= 128 and h <= 10 and w <= 10
    windows = TrackObjective(("electron", "muon"), (16, 16), bin=1).raw_windows(ev, [0, 1])
    assert windows[1].sum() >= frame.sum() - 1e-3  # centred on the track: all of its charge is in the window


@pytest.mark.parametrize("make, message", [
    (lambda p: packed(p, np.zeros((3, 4, 4)), [0, 1]), "'labels' has shape \\(2,\\) for 3 frames"),
    (lambda p: packed(p, np.zeros((2, 4, 4)), [0, 2]), "holds values \\[0, 2\\], but damic.packed_labels names 2"),
    (lambda p: packed(p, np.zeros((2, 4)), [0, 1]), "'data' has shape \\(2, 4\\); expected 3 dimensions"),
    (lambda p: packed(p, np.full((2, 4, 4), np.nan), [0, 1]), "non-finite values"),
    (lambda p: packed(p, -np.ones((2, 4, 4)), [0, 1]), "negative energies"),
    (lambda p: packed(p, np.zeros((2, 4, 4)), [0, 1], ("images", "y")), "expected arrays data/labels or data_test"),
    (lambda p: p.write_bytes(b"not a zip") and p, "not an .npz file \\(not a zip archive"),
    (lambda p: p.write_bytes(b"PK\x03\x04 truncated") and p, "not a readable .npz file"),
    (lambda p: np.savez(p, data=np.array([[[1.0]], "x"], dtype=object), labels=[0, 1]),
     "array 'data' holds Python objects"),
])
def test_packed_reader_errors_name_the_file(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(DataError, match=message) as err:
        read_events(path, ("electron", "muon"))
    assert str(path) in str(err.value)


def test_copies_of_a_frame_stay_on_one_side_of_the_validation_split(tmp_path):
    """A repeated frame (the thesis' eVSmu_tr1.npz repeats 195 muons) is one group, whichever file it comes from;
    a frame differing in one pixel is not; and the split never validates a copy on its twin."""
    from idao.damic.io import concat
    from idao.splits import stratified_split

    rng = np.random.default_rng(0)
    frames = rng.poisson(0.05, (40, 12, 12)).astype(float) * EV_PER_ELECTRON
    frames[20:30] = frames[10:20]  # ten frames repeated
    frames[30] = frames[0]
    frames[30, 5, 5] += EV_PER_ELECTRON  # one pixel more: another event
    packed_file = packed(tmp_path / "p.npz", frames, [0] * 20 + [1] * 20)
    single = event_file(tmp_path / "one_pdg_13.npz", frames[10])
    ev = concat([read_events(packed_file, ("electron", "muon")), read_events(single, ("electron", "muon"))])
    groups = ev.copies()
    assert len(np.unique(groups)) == 30 and (groups[20:30] == groups[10:20]).all() and groups[40] == groups[10]
    assert groups[30] != groups[0] and groups[0] not in groups[1:]
    classes = np.array(["a"] * 20 + ["b"] * 21)
    train, val = stratified_split(classes, 0.25, seed=3, groups=groups)
    assert not set(groups[train]) & set(groups[val]) and sorted(np.r_[train, val]) == list(range(41))
    for c, n in (("a", 20), ("b", 21)):  # each class' share, overshot by less than one group (here 3 events)
        assert 0 <= np.sum(classes[val] == c) - round(n * 0.25) < 3
    many = np.repeat(np.arange(60), 3)  # every event three times: still a quarter of each class, not half
    train, val = stratified_split(np.array(["a", "b"])[many % 2], 0.25, seed=3, groups=many)
    assert len(val) in (45, 48) and not set(many[train]) & set(many[val])
    singletons = np.arange(41)  # without copies, the grouped split is the plain one
    assert all((a == b).all() for a, b in zip(stratified_split(classes, 0.25, 3, singletons),
                                               stratified_split(classes, 0.25, 3)))


def test_several_packed_files_each_with_its_own_label_map(tmp_path):
    """The thesis' three-class run from two files labelled differently (electron,muon and noise,electron): every
    event gets its file's class; a frame in both files is kept once; a file to predict needs no map."""
    from idao.config import load_config
    from idao.damic.task import TASK, load_events

    rng = np.random.default_rng(0)
    frames = rng.poisson(0.05, (12, 12, 12)).astype(float) * EV_PER_ELECTRON
    mu = packed(tmp_path / "emu.npz", frames[:6], [0, 0, 0, 1, 1, 1])  # electron, muon
    frames[6] = frames[0]  # the same electron frame in the second file
    en = packed(tmp_path / "en.npz", frames[6:], [1, 1, 1, 0, 0, 0])  # noise, electron
    cfg = load_config(overrides=["task.name=damic", f"damic.train={mu},{en}", "damic.classes=electron,muon,noise",
                                 "damic.packed_labels=electron,muon;noise,electron"], echo=False)
    TASK.check(cfg)
    TASK.check_train(cfg)
    ev = load_events(cfg.damic.train, cfg.damic, classes=("electron", "muon", "noise"))
    assert ev.ids == [f"emu:{i}" for i in range(6)] + [f"en:{i}" for i in range(1, 6)]  # en:0 is emu:0
    assert ev.particle.tolist() == ["electron"] * 3 + ["muon"] * 3 + ["electron"] * 2 + ["noise"] * 3
    other = packed(tmp_path / "other.npz", frames[:2], [0, 5])  # no training file of that name: labels unused
    assert load_events(str(other), cfg.damic, labelled=False).particle.tolist() == ["", ""]
    (tmp_path / "held_out").mkdir()
    held_out = packed(tmp_path / "held_out" / "en.npz", frames[6:8], [1, 0])  # en.npz's map, by its name
    predicted = load_events(f"{other},{held_out}", cfg.damic, labelled=False)  # a frame in both: each predicted
    assert predicted.ids == ["other:0", "other:1", "en:0", "en:1"]
    assert predicted.particle.tolist() == ["", "", "electron", "noise"]


def test_class_balance_gives_every_class_the_same_weight(tmp_path):
    """damic.model.class_balance: the loss weighs each class by the inverse of its share (equal totals, mean 1)
    and the model's probabilities carry a uniform prior (what damic.test_priors corrects from); off, the
    training set's own fractions."""
    from idao.config import load_config
    from idao.damic.task import load_events, make_objective

    rng = np.random.default_rng(0)
    frames = rng.poisson(0.05, (40, 12, 12)).astype(float) * EV_PER_ELECTRON
    frames[:, 5, 2:9] += 100.0  # a track in every frame
    data = packed(tmp_path / "emu.npz", frames, [0] * 30 + [1] * 10)  # 30 electrons, 10 muons
    for balance, weights, fractions in (("true", (40 / 60, 40 / 20), (0.5, 0.5)), ("false", (), (0.75, 0.25))):
        cfg = load_config(overrides=["task.name=damic", f"damic.train={data}", "damic.classes=electron,muon",
                                     "damic.window=16x16", f"damic.model.class_balance={balance}"], echo=False)
        objective = make_objective(cfg, load_events(cfg.damic.train, cfg.damic, classes=("electron", "muon")))
        assert objective.class_weights == pytest.approx(weights) and objective.class_fractions == pytest.approx(fractions)
    out = torch.tensor([[2.0, 0.0, 0, 0, 0, 0], [2.0, 0.0, 0, 0, 0, 0]])
    y = torch.tensor([[0.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0]])  # the muon is wrong: it weighs 3x here
    weighted = dataclasses.replace(objective, class_weights=(1.0, 3.0), box_weight=0.0).loss_fn(out, y)
    expected = (torch.nn.functional.cross_entropy(out[:1, :2], torch.tensor([0]))
                + 3 * torch.nn.functional.cross_entropy(out[1:, :2], torch.tensor([1]))) / 4
    assert float(weighted) == pytest.approx(float(expected))


def test_the_report_says_which_training_events_are_simulated(tmp_path):
    """Real files with the thesis' alphas from the simulator (its four-class run): the report's banner names the
    simulated class and count; real data alone gets none, simulated data alone the plain banner."""
    from idao.config import load_config
    from idao.damic.task import load_events, simulated_banner

    frames = np.zeros((4, 12, 12))
    frames[:, 5, 2:9] = np.arange(1, 5)[:, None] * 100.0
    real = packed(tmp_path / "emu.npz", frames, [0, 0, 1, 1])
    sim = simulate_dataset(tmp_path / "alphas", events_per_class=3, seed=0, classes=("alpha",))
    cfg = load_config(overrides=["task.name=damic", f"damic.train={real},{sim / 'train'}",
                                 "damic.classes=electron,muon,alpha", "damic.packed_labels=electron,muon;"], echo=False)
    both = load_events(cfg.damic.train, cfg.damic, classes=("electron", "muon", "alpha"))
    assert simulated_banner(both).startswith("PARTLY SIMULATED: alpha 3 of the 7 training events")
    assert simulated_banner(both.subset(np.arange(4))) == ""
    assert simulated_banner(both.subset(np.arange(4, 7))).startswith("SIMULATED DATA")


@pytest.mark.parametrize("labels, message", [
    ("electron,muon;noise,electron;muon", "3 label maps for 2 damic.train sources"),
    ("electron,muon;noise", "en.npz: 'labels' holds values \\[0, 1\\], but its damic.packed_labels map names 1"),
    ("electron,muon;noise,pion", "expected names of"),
])
def test_a_bad_label_map_is_one_error_line_before_training(tmp_path, labels, message):
    rng = np.random.default_rng(0)
    frames = rng.poisson(0.05, (4, 12, 12)).astype(float) * EV_PER_ELECTRON
    mu, en = packed(tmp_path / "emu.npz", frames, [0, 0, 1, 1]), packed(tmp_path / "en.npz", frames, [0, 0, 1, 1])
    proc = run("train.py", "task.name=damic", f"damic.train={mu},{en}", "damic.classes=electron,muon,noise",
               f"damic.packed_labels={labels}", f"train.checkpoint_dir={tmp_path / 'ck'}", check=False)
    assert proc.returncode == 2 and re.search(message, proc.stderr), proc.stderr
    assert proc.stderr.count("error:") == 1 and not (tmp_path / "ck" / "damic").exists()


def test_per_event_reader_labels_from_pdg_suffix(tmp_path):
    energy = np.zeros((20, 20))
    energy[5:9, 3] = 37.7
    noise = np.zeros((20, 20))
    noise[0, 0] = 3.77
    folder = tmp_path / "events"
    folder.mkdir()
    for name in ("a_pdg_11", "b_pdg_-13", "c_pdg_13", "d_pdg_1000020040"):
        event_file(folder / f"{name}.npz", energy, noise)
    event_file(folder / "e_pdg_0.npz", np.zeros((20, 20)), noise)  # noise-only: represented by its noise
    ev = read_events(folder, ())
    assert ev.particle.tolist() == ["electron", "muon", "muon", "alpha", "noise"]
    assert ev.boxes[0].tolist() == [5, 3, 4, 1] and ev.ids[1] == "b_pdg_-13"
    assert ev.boxes[4].tolist() == [0, 0, 1, 1] and ev.tracks[4][0, 0] == pytest.approx(3.77)
    rows, cols, values = ev.noise[0]  # the frame's noise, kept sparse for add_noise
    assert (rows.tolist(), cols.tolist(), values.tolist()) == ([0], [0], [pytest.approx(3.77)])
    chosen, dropped = ev.select(("muon", "electron"))
    assert chosen.label.tolist() == [1, 0, 0] and dropped == {"alpha": 1, "noise": 1}


def test_add_noise_puts_the_frames_noise_in_the_window(tmp_path):
    energy, noise = np.zeros((20, 20)), np.zeros((20, 20))
    energy[10:12, 10:12] = 37.7
    noise[1, 2], noise[15, 15] = 3.77, 7.54  # the second lies outside a 6x6 window
    ev, _ = read_events(event_file(tmp_path / "n_pdg_11.npz", energy, noise), ()).select(("electron", "muon"))
    clean = TrackObjective(("electron", "muon"), (6, 6), bin=1).raw_windows(ev, [0])[0]
    noisy = TrackObjective(("electron", "muon"), (6, 6), bin=1, add_noise=True).raw_windows(ev, [0])[0]
    assert clean.sum() == pytest.approx(4 * 37.7)
    np.testing.assert_allclose(noisy - clean, np.pad([[3.77]], ((1, 4), (2, 3))), atol=1e-6)


@pytest.mark.parametrize("name, make, message", [
    ("x.npz", lambda p: event_file(p, np.zeros((4, 4))), "does not end in _pdg_<code>"),
    ("x_pdg_99.npz", lambda p: event_file(p, np.zeros((4, 4))), "unknown particle code pdg 99"),
    ("x_pdg_11.npz", lambda p: event_file(p, np.zeros((4, 4)), np.zeros((4, 5))), "'noise' is \\(4, 5\\) but 'energy' is \\(4, 4\\)"),
    ("x_pdg_11.npz", lambda p: event_file(p, np.zeros((2, 4, 4))), "'energy' has shape \\(2, 4, 4\\)"),
])
def test_per_event_reader_errors_name_the_file(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(DataError, match=message) as err:
        read_events(path, ())
    assert str(path) in str(err.value)


def test_missing_or_empty_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        read_events(tmp_path / "nowhere.npz", ())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no .npz event files"):
        read_events(tmp_path / "empty", ())


def test_unlabelled_files_are_accepted_for_prediction(tmp_path):
    energy = np.zeros((8, 8))
    energy[2, 2] = 3.77
    ev = read_events(event_file(tmp_path / "run7_evt_3.npz", energy), (), labelled=False)
    assert ev.particle.tolist() == [""] and ev.ids == ["run7_evt_3"]


# --- window padding and standardisation -----------------------------------------------------------------


def one_track_events(tmp_path, track: np.ndarray, label=0):
    frame = np.zeros((1, 40, 40))
    frame[0, 10 : 10 + track.shape[0], 20 : 20 + track.shape[1]] = track
    ev = read_events(packed(tmp_path / "one.npz", frame, [label]), ("electron", "muon"))
    ev, _ = ev.select(("electron", "muon"))
    return ev


def test_window_padding_centred_random_and_flipped(tmp_path):
    track = np.arange(1, 7, dtype=float).reshape(2, 3) * EV_PER_ELECTRON
    ev = one_track_events(tmp_path, track)
    head = TrackObjective(("electron", "muon"), (6, 8), bin=1, augment=True)
    centred = head.raw_windows(ev, [0])[0]
    np.testing.assert_allclose(centred[2:4, 2:5], track)  # (6-2)//2, (8-3)//2
    assert centred.sum() == pytest.approx(track.sum())
    low = head.raw_windows(ev, [0], torch.tensor([[0.0, 0.0, 0.9, 0.9]]))[0]  # no flip
    np.testing.assert_allclose(low[0:2, 0:3], track)
    high = head.raw_windows(ev, [0], torch.tensor([[0.999, 0.999, 0.1, 0.1]]))[0]  # both flips
    np.testing.assert_allclose(high[4:6, 5:8], track[::-1, ::-1])
    np.testing.assert_allclose(head.boxes(ev, [0], torch.tensor([[0.999, 0.999, 0.1, 0.1]])), [[4 / 6, 5 / 8, 2 / 6, 3 / 8]])
    # a track bigger than the window is cut to it, centred
    small = TrackObjective(("electron", "muon"), (1, 2), bin=1)
    np.testing.assert_allclose(small.raw_windows(ev, [0])[0], track[0:1, 0:2])


def test_window_is_the_largest_training_box_rounded_to_bin(tmp_path):
    frames = np.zeros((2, 30, 30))
    frames[0, 0:5, 0:3] = 1.0
    frames[1, 0:2, 0:9] = 1.0
    ev = read_events(packed(tmp_path / "w.npz", frames, [0, 1]), ("electron", "muon"))
    assert fit_window(ev, 1) == (5, 9) and fit_window(ev, 4) == (8, 12)


def test_standardisation_uses_training_statistics_not_the_batch(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.zeros((6, 16, 16))
    for i in range(6):
        frames[i, 4:4 + i + 1, 3:8] = rng.integers(1, 100, (i + 1, 5)) * EV_PER_ELECTRON
    ev, _ = read_events(packed(tmp_path / "s.npz", frames, [0, 1, 0, 1, 0, 1]), ("electron", "muon")).select(("electron", "muon"))
    head = TrackObjective(("electron", "muon"), (8, 8), bin=2, log_scale=True)
    mean, std = fit_stats(head, ev, chunk=4)
    by_hand = np.log1p(head.raw_windows(ev, range(6)).reshape(6, 4, 2, 4, 2).sum((2, 4)) / EV_PER_ELECTRON)
    assert mean == pytest.approx(by_hand.mean()) and std == pytest.approx(by_hand.std())
    head = TrackObjective(("electron", "muon"), (8, 8), bin=2, log_scale=True, mean=mean, std=std)
    batch = head.inputs(ev, range(6), CPU)
    assert batch.shape == (6, 1, 4, 4)
    np.testing.assert_allclose(batch.numpy()[:, 0], (by_hand - mean) / std, rtol=1e-5, atol=1e-6)
    # one event alone gets exactly the numbers it gets inside a batch: no per-batch statistics
    np.testing.assert_allclose(head.inputs(ev, [3], CPU).numpy(), batch[3:4].numpy())
    assert abs(float(head.inputs(ev, [0], CPU).mean())) > 0.1  # a single dim event is not re-centred to 0


def test_iou_and_frame_boxes(tmp_path):
    assert iou([[0, 0, 2, 2]], [[1, 1, 2, 2]])[0] == pytest.approx(1 / 7)
    assert iou([[0, 0, 2, 2]], [[5, 5, 1, 1]])[0] == 0.0
    assert iou([[3, 4, 5, 6]], [[3, 4, 5, 6]])[0] == 1.0
    ev = one_track_events(tmp_path, np.ones((3, 5)))
    head = TrackObjective(("electron", "muon"), (12, 12), bin=1)
    true = head.boxes(ev, [0])  # the box a perfect model would output, in window fractions
    np.testing.assert_allclose(frame_boxes(head, ev, true), [[10, 20, 3, 5]])
    for target in ("corner", "centre_log"):  # a perfect box output decodes back to the true box
        h = TrackObjective(("electron", "muon"), (12, 12), bin=1, box_target=target)
        np.testing.assert_allclose(h.decode(h.encode(true)), true, atol=1e-12)


# --- simulator ----------------------------------------------------------------------------------------


def test_simulated_events_look_like_their_particles():
    stats = {}
    for particle in CLASSES:
        events = [render_event(particle, np.random.default_rng([5, i])) for i in range(15)]
        for e in events:
            assert e["energy"].shape == e["noise"].shape == (300, 300)
            electrons = e["energy"] / EV_PER_ELECTRON
            np.testing.assert_allclose(electrons, np.rint(electrons), atol=1e-6)  # 3.77 eV quantisation
            rows, cols = np.nonzero(e["energy"])
            if len(rows):
                assert e["loc"].tolist() == [rows.min(), cols.min(), np.ptp(rows) + 1, np.ptp(cols) + 1]
        stats[particle] = (np.median([e["energy"].sum() for e in events]),
                           np.median([max(e["loc"][2:]) for e in events]))
    assert stats["noise"][0] == 0
    assert stats["alpha"][0] > 10 * stats["muon"][0] and stats["muon"][0] > stats["electron"][0]  # alphas brightest
    assert stats["muon"][1] > 2 * stats["electron"][1]  # muons long, electrons short
    a, b = render_event("muon", np.random.default_rng(3)), render_event("muon", np.random.default_rng(3))
    np.testing.assert_array_equal(a["energy"], b["energy"])


# --- the three scripts, task.name = damic -----------------------------------------------------------------


@pytest.fixture(scope="module")
def damic_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("damic")
    sim = simulate_dataset(work / "sim", events_per_class=30, seed=2)
    args = ["task.name=damic", f"damic.train={sim / 'train'}", f"damic.test={sim / 'test'}",
            f"train.checkpoint_dir={work / 'ck'}", f"damic.output.predictions={work / 'res' / 'pred.csv'}",
            f"damic.output.results_dir={work / 'res'}", "damic.model.epochs=8",
            "damic.model.model=track_hybrid",  # the image CNN and the features together: both input paths
            "train.progress=false", "train.threads=1"]
    out = [run(script, *args).stdout for script in ("train.py", "generate_submission.py", "report.py")]
    return work, sim, args, out


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_damic_scripts_end_to_end(damic_run):
    work, sim, _, out = damic_run
    pred = pd.read_csv(work / "res" / "pred.csv", dtype={"id": str})
    expected = sorted(p.stem for p in (sim / "test").glob("*.npz"))
    assert sorted(pred["id"]) == expected
    probs = pred[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert set(pred["predicted"]) <= set(CLASSES)
    assert (pred["box_height"] >= 0).all() and (pred["box_width"] >= 0).all()
    # the report's test accuracy is the CSV's, against the pdg in the file names
    truth = np.array([read_events(sim / "test" / f"{i}.npz", ()).particle[0] for i in pred["id"]])
    metrics = json.loads((work / "res" / "metrics.json").read_text())["metrics"]
    assert metrics["test"]["accuracy"] == pytest.approx(np.mean(pred["predicted"].to_numpy() == truth))
    assert metrics["test"]["accuracy"] > 0.5  # chance is 0.25; alphas and noise frames alone are easy
    assert set(metrics["test"]["per_class"]) == set(CLASSES) and "macro" in metrics["test"]
    for name in ("confusion.png", "roc_per_class.png", "roc_per_class_log.png", "iou_histogram.png",
                 "accuracy_vs_energy_elongation.png",
                 "learning_curves.png", "index.html", "report.log", "config.ini"):
        assert (work / "res" / name).stat().st_size > 0, name
    assert "name = damic" in (work / "res" / "config.ini").read_text()


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_onnx_export_matches_pytorch(damic_run):
    work, _, args, _ = damic_run
    assert set(check_onnx_export([*args, f"export.dir={work / 'exports'}"])) == {"track"}


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_tensorboard_draws_validation_windows_with_their_predictions(damic_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(damic_run[0] / "ck" / "damic" / "tensorboard" / "track"), size_guidance={"images": 0})
    events.Reload()
    assert len(events.Images("validation examples")) == len(events.Scalars("val_metric")) == 8  # one per epoch


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_checkpoint_holds_the_training_statistics(damic_run):
    work, _, args, _ = damic_run
    state = load_checkpoint(work / "ck" / "damic" / "track_best.pt")
    head = TrackObjective(**state["objective"])
    assert head.std > 0 and head.classes == CLASSES and head.bin == 2 and tuple(head.window) == (128, 128)
    # the statistics are those of the training split alone, recomputed here from the same events
    from idao.config import load_config
    from idao.damic.task import prepare

    cfg = load_config(overrides=[a for a in args if a.split("=")[0].startswith(("damic.", "train."))], echo=False)
    events, split = prepare(cfg, CPU)
    assert (head.mean, head.std) == pytest.approx(fit_stats(head, events.subset(split.train)))


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_damic_settings_must_match_the_checkpoint(damic_run):
    _, _, args, _ = damic_run
    proc = run("generate_submission.py", *args, "damic.bin=4", check=False)
    assert proc.returncode == 2 and "damic.bin = 4 conflicts with" in proc.stderr and "trained with 2" in proc.stderr
    proc = run("train.py", *[a for a in args if not a.startswith("task.")], "task.name=cygnus", check=False)
    assert proc.returncode == 2 and "task.name = 'cygnus'" in proc.stderr


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_checkpoint_of_other_features_is_refused(damic_run, tmp_path):
    """A checkpoint whose features were standardised for another version's feature list (35 before the ridge
    features) would be fed misaligned numbers: loading it is one CheckpointError that says so (exit 2 in the
    scripts, before any prediction)."""
    import shutil

    from idao.checkpoint import save_checkpoint
    from idao.config import load_config
    from idao.damic.task import load_model
    from idao.errors import CheckpointError

    work, _, args, _ = damic_run
    shutil.copytree(work / "ck", tmp_path / "ck")
    path = tmp_path / "ck" / "damic" / "track_best.pt"
    state = load_checkpoint(path)
    state["objective"] = dict(state["objective"], feature_mean=state["objective"]["feature_mean"][:35],
                              feature_std=state["objective"]["feature_std"][:35])
    save_checkpoint(state, path)
    args = [a for a in args if a.split("=")[0].startswith(("damic.", "train.")) and "checkpoint_dir" not in a]
    cfg = load_config(overrides=[*args, f"train.checkpoint_dir={tmp_path / 'ck'}"], echo=False)
    load_model(load_config(overrides=[*args, f"train.checkpoint_dir={work / 'ck'}"], echo=False), CPU)  # intact
    with pytest.raises(CheckpointError, match="written by another version of idao .*trained on 35 track features"):
        load_model(cfg, CPU)


@pytest.mark.parametrize("model", ["track_trees", "track_blend"])
@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_fitted_models_through_the_three_scripts(damic_run, tmp_path, model):
    """track_trees (fitted in seconds; its boxes are the track finder's) and track_blend (the features network
    and the trees averaged): saved as ordinary weights-only checkpoints, predicted and reported like the
    networks, and reloaded to the probabilities they were saved with."""
    _, sim, args, _ = damic_run
    args = [a for a in args if not a.startswith(("train.checkpoint_dir", "damic.output.", "damic.model.model"))]
    args += [f"train.checkpoint_dir={tmp_path / 'ck'}", f"damic.output.predictions={tmp_path / 'pred.csv'}",
             f"damic.output.results_dir={tmp_path}", f"damic.model.model={model}", "damic.model.tree_rounds=40"]
    if model == "track_trees":  # the trees have rounds, not epochs: a network's setting is refused, not ignored
        proc = run("train.py", *args, check=False)
        assert proc.returncode == 2 and "damic.model.epochs / lr / batch_size do not apply to track_trees" in proc.stderr
        args = [a for a in args if not a.startswith(("damic.model.epochs", "damic.model.lr", "damic.model.batch_size"))]
    out = run("train.py", *args).stdout
    assert "boosting rounds" in out
    run("generate_submission.py", *args)
    run("report.py", *args)  # scores the CSV against the test files' labels
    state = load_checkpoint(tmp_path / "ck" / "damic" / "track_best.pt")
    assert state["model_name"] == model
    if model == "track_trees":
        assert 1 <= state["best_epoch"] + 1 <= 40
    else:  # the network's and the trees' weights side by side, at most 40 rounds of one tree per class
        assert any(k.startswith("network.") for k in state["model"]) and 1 <= len(state["model"]["trees.root"]) <= 40 * len(CLASSES)
    pred = pd.read_csv(tmp_path / "pred.csv", dtype={"id": str})
    np.testing.assert_allclose(pred[[f"p_{c}" for c in CLASSES]].to_numpy().sum(1), 1.0, atol=1e-5)
    test = json.loads((tmp_path / "metrics.json").read_text())["metrics"]["test"]
    assert test["accuracy"] > 0.5  # chance 0.25
    if model == "track_trees":
        assert test["mean_iou"] > 0.9  # the finder's own box


def test_blend_is_the_mean_of_its_two_models():
    """track_blend's probabilities are the average of its network's and its trees', its box the network's."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from idao.damic.features import NAMES
    from idao.models import build_model
    from idao.trees import from_sklearn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(NAMES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int) + (x[:, 1] > 0.5)  # three classes
    blend = build_model("track_blend", num_outputs=3 + 4).eval()
    blend.trees.load_state_dict(from_sklearn(HistGradientBoostingClassifier(max_iter=10).fit(x, y), 3).state_dict())
    with torch.no_grad():
        out, net = blend(torch.from_numpy(x)), blend.network(torch.from_numpy(x))
        trees = blend.trees(torch.from_numpy(x))
    expected = (net[:, :3].softmax(1) + trees.softmax(1)) / 2
    torch.testing.assert_close(out[:, :3].softmax(1), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, 3:], net[:, 3:])


def test_packed_reader_on_the_thesis_file():
    """The real eVSmu_tr1.npz read as the facts doc measured it (skipped where ../shared is absent)."""
    path = SHARED / "damic-tfm" / "eVSmu_tr1.npz"
    if not path.exists():
        pytest.skip(f"{path} not found (it lives in ../shared beside the repo)")
    ev, dropped = read_events(path, ("electron", "muon")).select(("electron", "muon"))
    assert len(ev) == 1600 and dropped == {} and np.bincount(ev.label).tolist() == [800, 800]
    mean_kev = [ev.energy[ev.label == j].mean() / 1000 for j in (0, 1)]
    assert mean_kev == [pytest.approx(162, abs=1), pytest.approx(421, abs=1)]
    occupied = [np.mean([np.count_nonzero(ev.tracks[i]) for i in np.flatnonzero(ev.label == j)]) for j in (0, 1)]
    assert occupied == [pytest.approx(104, abs=0.5), pytest.approx(274.4, abs=0.5)]
    assert fit_window(ev, 1) == (296, 263)  # the thesis' "maximum window": a muon crossing the frame
    groups = ev.copies()  # the file repeats muons: 1,405 distinct frames, every copy a muon
    assert len(np.unique(groups)) == 1405 and set(ev.particle[np.bincount(groups)[groups] > 1]) == {"muon"}


def test_simulator_calibrated_against_the_thesis_file():
    """Simulated electrons and muons against the real eVSmu_tr1.npz: energy and box size (skipped without ../shared)."""
    path = SHARED / "damic-tfm" / "eVSmu_tr1.npz"
    if not path.exists():
        pytest.skip(f"{path} not found (it lives in ../shared beside the repo)")
    real, _ = read_events(path, ("electron", "muon")).select(("electron", "muon"))
    for j, particle in enumerate(("electron", "muon")):
        sim = [render_event(particle, np.random.default_rng([11, i])) for i in range(150)]
        sim_kev = np.mean([e["energy"].sum() for e in sim]) / 1000
        sim_side = np.median([max(e["loc"][2:]) for e in sim])
        real_kev = real.energy[real.label == j].mean() / 1000
        real_side = np.median(real.boxes[real.label == j, 2:].max(1))
        # electrons match closely; simulated muons deposit ~20 % less than the real ones (documented)
        assert sim_kev == pytest.approx(real_kev, rel=0.2 if particle == "electron" else 0.35), particle
        assert sim_side == pytest.approx(real_side, rel=0.35), particle


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_runs_remember_their_training_settings(damic_run, tmp_path):
    """Predicting and reporting need no training overrides: classes, window, data... come from the checkpoint,
    and nothing is simulated."""
    work, sim, args, _ = damic_run
    keep = [a for a in args if a.split("=")[0] in ("task.name", "train.checkpoint_dir", "train.progress",
                                                   "train.threads", "damic.test")]
    out = tmp_path / "pred.csv"
    proc = run(str(ROOT / "generate_submission.py"), *keep, "damic.classes=electron,muon,alpha,noise",
               f"damic.output.predictions={out}", cwd=tmp_path)
    assert "from the checkpoint: damic.train" in proc.stdout and len(pd.read_csv(out)) > 0
    proc = run(str(ROOT / "report.py"), *keep, f"damic.output.predictions={out}", f"damic.output.results_dir={tmp_path / 'r'}",
               cwd=tmp_path)
    assert "[validation]" in proc.stdout and not (tmp_path / "data").exists()  # scored, nothing simulated
    proc = run(str(ROOT / "generate_submission.py"), *keep, "damic.classes=electron,muon", check=False, cwd=tmp_path)
    assert proc.returncode == 2 and "damic.classes = 'electron,muon' conflicts with" in proc.stderr


@pytest.mark.xdist_group("damic_run")  # one process builds the fixture once
def test_priors_auto_estimates_the_mix_of_the_events_predicted(damic_run, tmp_path):
    """damic.test_priors=auto: the class fractions of the file to predict, estimated from the model's own
    probabilities, said on stdout and used for the decision: at the estimate the mean re-weighted probability
    of each class is its estimated fraction (the EM's fixed point), whatever the model's quality."""
    work, sim, args, _ = damic_run
    out = tmp_path / "pred.csv"
    proc = run("generate_submission.py", *[a for a in args if not a.startswith("damic.output.predictions")],
               "damic.test_priors=auto", f"damic.output.predictions={out}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("class priors estimated from the"))
    assert f"from the {len(list((sim / 'test').glob('*.npz')))} events predicted" in line
    fractions = {item.split()[0]: float(item.split()[1]) for item in line.split(": ")[1].split(", ")}
    pred = pd.read_csv(out)
    probs = pred[[f"p_{c}" for c in CLASSES]]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs.mean(axis=0), [fractions[c] for c in CLASSES], atol=2e-3)
    assert f"; {line}" in out.with_suffix(".config.ini").read_text()  # the estimate is recorded with the config


def test_estimated_priors_recover_a_test_files_mix():
    """The EM of estimate_priors, on the calibrated probabilities of a model trained 50/50: a 77/23 file is
    found to be about 77/23, and a 50/50 one about 50/50."""
    from idao.damic.task import AUTO_PRIORS, estimate_priors, parse_priors, resolve_priors, with_priors

    rng = np.random.default_rng(0)
    for muons in (0.23, 0.5):
        label = rng.random(20000) < muons
        x = rng.normal(np.where(label, 1.0, -1.0), 1.0)  # unit Gaussians at -1, +1: log-odds 2x at 50/50
        p_muon = 1 / (1 + np.exp(-2 * x))
        probs = np.column_stack([1 - p_muon, p_muon])
        assert estimate_priors(probs, (0.5, 0.5))[1] == pytest.approx(muons, abs=0.015)
    assert parse_priors(" Auto ", ("electron", "muon")) == AUTO_PRIORS
    moved = with_priors(probs[:5], (0.5, 0.5), resolve_priors(probs[:5], (0.5, 0.5), AUTO_PRIORS))
    np.testing.assert_allclose(moved.sum(1), 1.0)


def test_unlabelled_packed_file_is_predicted_and_bad_training_labels_are_errors(tmp_path):
    frames = np.zeros((4, 10, 10))
    frames[:, 3:5, 3:6] = 3.77
    np.savez(tmp_path / "only.npz", data_test=frames)
    ev = read_events(tmp_path / "only.npz", ("electron", "muon"), labelled=False)
    assert len(ev) == 4 and set(ev.particle) == {""}
    with pytest.raises(DataError, match="expected arrays data/labels"):
        read_events(tmp_path / "only.npz", ("electron", "muon"))  # training needs labels
    with pytest.raises(DataError, match="expected integers 0 to 1"):
        read_events(packed(tmp_path / "f.npz", frames, [0.0, 1.0, 0.5, 1.0]), ("electron", "muon"))


def test_all_zero_training_windows_are_an_error(tmp_path):
    from idao.damic.objective import fit_stats

    ev, _ = read_events(packed(tmp_path / "z.npz", np.zeros((4, 6, 6)), [0, 1, 0, 1]), ("electron", "muon")).select(
        ("electron", "muon"))
    with pytest.raises(DataError, match="no charge in any training frame"):
        fit_stats(TrackObjective(("electron", "muon"), (4, 4), bin=1), ev)


def test_test_priors_move_the_decision():
    from idao.damic.task import parse_priors, with_priors

    probs = np.array([[0.4, 0.6], [0.7, 0.3]])  # trained 50/50
    moved = with_priors(probs, (0.5, 0.5), parse_priors("electron=0.77,muon=0.23", ("electron", "muon")))
    assert moved[0].argmax() == 0 and moved[1].argmax() == 0  # a 77 % electron file: 0.6 muon is not enough
    np.testing.assert_allclose(moved.sum(1), 1.0)
    np.testing.assert_allclose(with_priors(probs, (0.5, 0.5), None), probs)


def test_track_features_tell_a_straight_track_from_a_blob_whatever_its_orientation():
    """The physics features a muon/electron decision rests on: a straight thin track is long, elongated, thin
    and even; a blob is none of these; flips and transposes leave every feature as it is."""
    from idao.damic.features import NAMES, track_features

    line = np.zeros((40, 40), np.float32)
    for i in range(40):
        line[i, i] = line[i, min(i + 1, 39)] = 30 * EV_PER_ELECTRON
    yy, xx = np.mgrid[:9, :9]
    blob = (200 * np.exp(-((yy - 4) ** 2 + (xx - 4) ** 2) / 6.0)).astype(np.float32) * EV_PER_ELECTRON
    f_line, f_blob = (dict(zip(NAMES, track_features(t))) for t in (line, blob))
    assert f_line["log_elongation"] > f_blob["log_elongation"] + 2
    assert f_line["log_length"] > f_blob["log_length"] + 1
    assert f_line["profile_cv"] < 0.2 and f_line["curvature_residual"] < 1.0
    # cut in quarters, a straight track's stretches keep its direction; a hook's do not; a track widening
    # steadily along its length (a muon crossing the CCD's depth) has a width slope, an even one none
    hook = np.zeros((40, 40), np.float32)
    for i in range(20):
        hook[i, 10 + i] = hook[20 + i // 2, 30 - 2 * (i // 2)] = hook[20 + i // 2, 29 - 2 * (i // 2)] = 100.0
    widening = np.zeros((60, 30), np.float32)
    for i in range(60):
        widening[i] = 1000 * np.exp(-((np.arange(30) - 15) ** 2) / (2 * (0.5 + i / 15) ** 2))
    f_hook, f_wide = (dict(zip(NAMES, track_features(t))) for t in (hook, widening))
    assert f_line["segment_alignment_min"] > 0.99 > 0.9 > f_hook["segment_alignment_min"]
    assert f_wide["segment_width_slope"] > 0.5 > 0.05 > f_line["segment_width_slope"]
    # the ridge: a short thick straight track (a muon crossing the CCD steeply) keeps a straight centre line and a
    # wandering one (a scattering electron) does not, though both are as wide (the parabola residual and the
    # quarters cannot tell them apart: each quarter of the straight one is as wide as it is long)
    rows, cols = np.mgrid[:20, :40]

    def band(centre):
        t = 800 * np.exp(-((rows - centre) ** 2) / (2 * 2.0 ** 2)) * ((cols >= 12) & (cols < 28))
        return np.where(t > 1, t, 0).astype(np.float32)

    thick, snake = band(10.0), band(10 + 3 * np.sin(cols / 2.5))
    f_thick, f_snake = (dict(zip(NAMES, track_features(t))) for t in (thick, snake))
    assert f_thick["ridge_residual_ratio"] < 0.05 < 0.5 < f_snake["ridge_residual_ratio"]
    assert abs(f_thick["curvature_residual"] - f_snake["curvature_residual"]) < 0.2
    assert f_wide["slice_width_slope"] > 0.5 > 0.05 > f_thick["slice_width_slope"]
    for track in (line, blob, hook, widening, thick, snake):
        for variant in (track[::-1], track[:, ::-1], track.T):
            np.testing.assert_allclose(track_features(np.ascontiguousarray(variant)), track_features(track),
                                       rtol=1e-4, atol=1e-4)


def test_pseudo_labelled_copies_of_validation_frames_are_not_trained_on(tmp_path):
    """Round 2 must not train on a test copy of a frame it validates on (it would score itself)."""
    from idao.damic.task import without_frames

    rng = np.random.default_rng(1)
    frames = rng.poisson(0.05, (4, 12, 12)).astype(float) * EV_PER_ELECTRON
    validation = read_events(packed(tmp_path / "val.npz", frames[1:2], [0]), ("electron", "muon"))
    test = read_events(packed(tmp_path / "test.npz", frames, [0, 0, 1, 1]), ("electron", "muon"), labelled=False)
    assert without_frames(test, validation).ids == ["test:0", "test:2", "test:3"]

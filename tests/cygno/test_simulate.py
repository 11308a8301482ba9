import csv
from collections import Counter

import numpy as np
import pytest

from idao.cygno.calibrate import BACKGROUND_STATS, compare
from idao.cygno.dataset import split_samples, train_samples
from idao.errors import DataError
from idao.cygno.simulate import PRIVATE_COUNTS, PUBLIC_COUNTS, TRAIN_COUNTS, TRAIN_STRAYS, plan_dataset, simulate_dataset


def test_full_scale_plan_has_the_real_counts():
    plan = plan_dataset(scale=1.0)
    counts = Counter(p["split"] for p in plan)
    assert counts == {"train": 13_404, "public_test": 1_502, "private_test": 15_058}
    train = Counter((p["particle"], p["energy"]) for p in plan if p["split"] == "train")
    assert train == {**TRAIN_COUNTS, **TRAIN_STRAYS}
    assert Counter((p["particle"], p["energy"]) for p in plan if p["split"] == "public_test") == PUBLIC_COUNTS
    assert Counter((p["particle"], p["energy"]) for p in plan if p["split"] == "private_test") == PRIVATE_COUNTS
    assert len({p["id"] for p in plan}) == len(plan)


def test_layout_labels_and_strays(tiny_dataset):
    assert sorted(p.name for p in tiny_dataset.iterdir()) == ["labels.csv", "private_test", "public_test", "train"]
    labels = list(csv.DictReader(open(tiny_dataset / "labels.csv")))
    assert {r["split"] for r in labels} == {"public_test", "private_test"}
    train = {s.label for s in train_samples(tiny_dataset)}
    assert {"ER1", "ER6", "ER20", "NR3", "NR10", "NR30"} <= train  # the unseen-class strays are there
    assert len(labels) == len(split_samples(tiny_dataset, "public_test")) + len(split_samples(tiny_dataset, "private_test"))


def test_deterministic_whatever_the_worker_count(tmp_path):
    a = simulate_dataset(tmp_path / "a", scale=0.002, seed=7, workers=1, progress=False)
    b = simulate_dataset(tmp_path / "b", scale=0.002, seed=7, workers=2, progress=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*.png"))
    for rel in files_a[:20]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes()
    c = simulate_dataset(tmp_path / "c", scale=0.002, seed=8, workers=1, progress=False)
    assert sorted(p.name for p in c.rglob("*.png")) != [p.name for p in files_a]


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(DataError, match="already exists; remove it or pass --overwrite"):
        simulate_dataset(tmp_path / "ds", scale=0.001, progress=False)


def test_energy_ordering_of_light():
    """More energy, more light; NR quenched below ER at the same energy; ER longer than NR."""
    from idao.cygno.calibrate import simulated_stats

    er10, er30 = simulated_stats("ER", 10, 20), simulated_stats("ER", 30, 20)
    nr10 = simulated_stats("NR", 10, 20)
    assert np.median(er30["light_r60"]) > 2.5 * np.median(er10["light_r60"])
    assert np.median(nr10["light_r60"]) < 0.8 * np.median(er10["light_r60"])


def test_calibrated_against_real_images(real_images):
    """Background within tight tolerances; each real event inside the simulator's central 99 % band."""
    rows = compare(real_images[0].parent, n=200)  # a 99 % band needs a few hundred draws
    tolerance = {"mode": 0.5, "mean": 0.1, "std": 0.15, "column_std": 0.15, "noise": 0.1}
    for r in rows:
        where = f"{r['cls']} {r['stat']}: real {r['real']:.2f}, simulated {r['sim']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]"
        if r["stat"] in BACKGROUND_STATS:
            assert abs(r["real"] - r["sim"]) <= tolerance[r["stat"]], where
        elif (r["cls"], r["stat"]) not in KNOWN_GAPS:
            assert r["lo"] <= r["real"] <= r["hi"], where


# NR 1 keV is invisible per pixel: it has no width. The real ER 30 keV track runs out of the 20 px circle: the
# simulator's ER 30 tracks are shorter and more regular than the real ones (projection-fit width 16-84 % half the
# real one, docs/studies/calibration.md), so its light within 20 px is not yet a plausible draw.
KNOWN_GAPS = {("NR1", "width"), ("ER30", "light_r20")}


def test_checks_free_disk_space_first(tmp_path, monkeypatch):
    from idao import atomic

    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda p: type("Usage", (), {"free": 50 * 2**20})())
    with pytest.raises(DataError, match=r"a simulated dataset of 29964 images needs \d+ MiB but only 50 MiB is free"):
        simulate_dataset(tmp_path / "ds", scale=1.0, progress=False)
    assert not (tmp_path / "ds").exists()

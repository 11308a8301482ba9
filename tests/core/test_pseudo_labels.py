"""Pseudo-labelling (train.pseudo_label): round 1, the confident test events, round 2 trained with them (in folds,
each fold with its own round-1 model's), the threshold and count recorded with the checkpoint and the
predictions; CYGNO's choice keeps each split's balance; e/gamma's; a task without pseudo-labels refuses them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from conftest import run
from idao.cygno.postprocess import SPLIT_LEVELS
from idao.cygno.pseudo import pseudo_labels
from idao.damic.simulate import simulate_dataset
from idao.tasks import Predictions


def test_cygno_pseudo_labels_keep_each_light_pair_balanced():
    rng = np.random.default_rng(0)
    rows = []
    for split, levels in SPLIT_LEVELS.items():
        for particle in ("ER", "NR"):
            for level in levels[particle]:
                n = int(rng.integers(5, 40))
                score = rng.uniform(0.9, 1.0, n) if particle == "ER" else rng.uniform(0.0, 0.1, n)
                rows += [(f"{split}-{particle}{level}-{i}", split, s, level) for i, s in enumerate(score)]
    rows += [("doubt", "private_test", 0.6, SPLIT_LEVELS["private_test"]["ER"][0])]  # not confident: never chosen
    raw = pd.DataFrame(rows, columns=["id", "split", "c", "e"])
    table = pd.DataFrame({"id": raw["id"], "classification_predictions": raw["c"], "regression_predictions": raw["e"]})
    chosen = pseudo_labels(None, Predictions(table, "", companions={".raw.csv": raw[["id", "split"]]}), 0.8)
    assert "doubt" not in set(chosen["id"]) and len(chosen) > 0
    for split, levels in SPLIT_LEVELS.items():
        for k, (er_level, nr_level) in enumerate(zip(levels["ER"], levels["NR"])):
            part = chosen[chosen["split"] == split]
            n_er = int(((part["particle"] == "ER") & (part["energy"] == er_level)).sum())
            n_nr = int(((part["particle"] == "NR") & (part["energy"] == nr_level)).sum())
            available = [int(((raw["split"] == split) & (raw["e"] == lv) & (raw["id"].str.contains(p))).sum())
                         for p, lv in (("ER", er_level), ("NR", nr_level))]
            assert n_er == n_nr == min(available), (split, k)
            for particle, level, best in (("ER", er_level, max), ("NR", nr_level, min)):  # the most confident kept
                pool = raw[(raw["split"] == split) & (raw["e"] == level) & raw["id"].str.contains(particle)]["c"]
                kept = part[(part["particle"] == particle) & (part["energy"] == level)]["score"]
                assert sorted(kept, reverse=best is max) == sorted(pool, reverse=best is max)[:len(kept)]


def test_a_second_round_trains_with_the_confident_test_events(tmp_path):
    """Round 1 (here in 2 folds) predicts the test events; each fold's round 2 adds those its own round-1 model
    called with confidence, labelled as called (a label from a model that trained on fold k would carry fold k
    into its own out-of-fold score); the threshold and the count go with the checkpoints and the predictions."""
    from idao.config import load_config
    from idao.folds import labels_written_for, read_pseudo_labels

    sim = simulate_dataset(tmp_path / "sim", events_per_class=24, seed=6)
    train_names = sorted(p.name for p in (sim / "train").glob("*.npz"))
    for path, name in zip(sorted((sim / "test").glob("*.npz")), train_names):  # test ids that repeat training ids
        path.rename(path.with_name(name))
    args = ["task.name=damic", f"damic.train={sim / 'train'}", f"damic.test={sim / 'test'}", "train.folds=2",
            "damic.model.model=track_trees", "damic.model.tree_rounds=40", f"train.checkpoint_dir={tmp_path / 'ck'}",
            f"damic.output.predictions={tmp_path / 'pred.csv'}", "train.progress=false", "train.threads=1"]
    out = run("train.py", *args, "train.pseudo_label=0.6").stdout
    labels = pd.read_csv(tmp_path / "ck" / "damic" / "pseudo_labels.csv", dtype={"id": str})
    n = len(labels)
    assert sorted(labels["fold"].unique()) == [0, 1] and (labels["confidence"] >= 0.6).all()
    assert (tmp_path / "ck" / "round1" / "damic" / "fold0" / "track_best.pt").is_file()  # round 1 kept apart
    counts = labels["fold"].value_counts()
    assert f"with the {n} pseudo-labelled test events (each fold with its own: fold0 {counts[0]}, fold1 {counts[1]})" in out
    mine = labels[labels["fold"] == 1]  # fold 1's labels are round 1's fold 1 model's calls
    round1 = run("generate_submission.py", *args, f"train.checkpoint_dir={tmp_path / 'ck' / 'round1'}",
                 "train.fold=1", f"damic.output.predictions={tmp_path / 'round1_fold1.csv'}")
    assert "from the checkpoint" not in round1.stdout  # round 1 was trained without pseudo-labels
    pred = pd.read_csv(tmp_path / "round1_fold1.csv", dtype={"id": str}).set_index("id").loc[mine["id"]]
    assert 0 < len(mine) <= 24 and list(pred["predicted"]) == list(mine["particle"])
    for k in range(2):  # what fold k's round 2 trained with: its own rows
        read = read_pseudo_labels(load_config(None, [*args, "train.pseudo_label=0.6", f"train.fold={k}"], echo=False),
                                  "damic")
        assert list(read["id"]) == list(labels.loc[labels["fold"] == k, "id"])
    same = load_config(None, [*args, "train.pseudo_label=0.6"], echo=False)  # train.resume reuses only these labels
    assert labels_written_for(same, "damic")
    for other in ({"train.folds": 3}, {"train.seed": 1}, {"train.pseudo_label": 0.7}, {"train.fold_validation": "fold"}):
        assert not labels_written_for(same.with_values(other), "damic"), other
    config = torch.load(tmp_path / "ck" / "damic" / "fold1" / "track_best.pt", weights_only=True)["config"]["train"]
    assert config["pseudo_label"] == 0.6 and config["pseudo_labelled"] == n
    run("generate_submission.py", *args)
    saved = (tmp_path / "pred.config.ini").read_text()
    assert "pseudo_label = 0.6" in saved and f"pseudo_labelled = {n}" in saved


def test_cygno_pseudo_labels_skip_copies_of_held_out_images(dataset_copy, tmp_path):
    """A test image that repeats a held-out training image (validated or scored) never enters round 2: it
    would let the networks train on what they are judged on."""
    import shutil

    from idao.config import load_config
    from idao.cygno.data import load_crops
    from idao.cygno.dataset import read_test_folder, train_samples
    from idao.cygno.pseudo import pseudo_crops

    held = train_samples(dataset_copy)[0]
    shutil.copy(held.path, dataset_copy / "public_test" / "copy_of_a_training_image.png")
    other = read_test_folder(dataset_copy / "public_test")[0]
    cfg = load_config(overrides=[f"cygno.root={dataset_copy}", "cygno.cache_dir=", f"train.checkpoint_dir={tmp_path}",
                                 "train.pseudo_label=0.9"], echo=False)
    (tmp_path / "cygno").mkdir()
    pd.DataFrame({"id": ["copy_of_a_training_image", other.id], "split": "public_test", "particle": ["ER", "NR"],
                  "energy": [3, 6], "score": [0.99, 0.01], "threshold": 0.9}).to_csv(
        tmp_path / "cygno" / "pseudo_labels.csv", index=False)
    held_out = load_crops([held], cfg.cygno, progress=False)
    assert pseudo_crops(cfg, held_out, progress=False).ids == [other.id]
    assert sorted(pseudo_crops(cfg, load_crops([], cfg.cygno, progress=False), progress=False).ids) == sorted(
        ["copy_of_a_training_image", other.id])  # nothing held out: both


def test_egamma_pseudo_labels_are_the_confident_calls():
    from idao.egamma.task import pseudo_labels

    p = np.array([0.95, 0.05, 0.6, 0.4, 0.81, 0.19, 0.8])
    table = pd.DataFrame({"id": [f"x:{i}" for i in range(len(p))], "p_electron": p})
    chosen = pseudo_labels(None, Predictions(table, ""), 0.8)
    assert list(chosen["id"]) == ["x:0", "x:1", "x:4", "x:5", "x:6"] and list(chosen["electron"]) == [1, 0, 1, 0, 1]


def test_egamma_round_two_trains_with_the_called_test_images(tmp_path):
    """e/gamma: the held-out test images round 1 called, labelled as called, added to training (at 0.5 every one:
    a model this small is not confident yet)."""
    args = ["task.name=egamma", f"egamma.train={tmp_path / 'data'}", "egamma.simulate_events=200",
            "egamma.model.epochs=2", f"train.checkpoint_dir={tmp_path / 'ck'}", "train.progress=false",
            "train.threads=1", f"egamma.output.export={tmp_path / 'model.safetensors'}", "train.pseudo_label=0.5"]
    out = run("train.py", *args).stdout
    labels = pd.read_csv(tmp_path / "ck" / "egamma" / "pseudo_labels.csv", dtype={"id": str})
    assert len(labels) == 40 and "with 40 pseudo-labelled test images" in out  # the 10 % held out
    run("generate_submission.py", *args, f"train.checkpoint_dir={tmp_path / 'ck' / 'round1'}",
        f"egamma.output.predictions={tmp_path / 'round1.csv'}")
    p = pd.read_csv(tmp_path / "round1.csv", dtype={"id": str}).set_index("id").loc[labels["id"], "p_electron"]
    assert list((p > 0.5).astype(int)) == list(labels["electron"])


def test_a_task_without_pseudo_labels_refuses_them_in_one_line(tmp_path):
    proc = run("train.py", "task.name=icecube", "train.pseudo_label=0.9", f"icecube.root={tmp_path / 'none'}",
               check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: train.pseudo_label = 0.9: task icecube does not")
    assert not (tmp_path / "none").exists()  # refused before anything was simulated

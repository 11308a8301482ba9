"""k-fold training (train.folds): folds that are disjoint, stratified and keep copies together; the out-of-fold
table covering every training event once; the fold ensemble averaging the members' raw outputs; a run killed in
a fold resuming there. On tiny simulated DAMIC data (the core does the same for every task)."""
from __future__ import annotations

import json
import signal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import run
from idao.config import load_config
from idao.damic.simulate import simulate_dataset
from idao.damic.task import load_model, prepare
from idao.engine import RunSettings, predict_outputs
from idao.errors import DataError
from idao.folds import finished_folds, out_of_fold_table
from idao.runtime import make_runtime
from idao.splits import fold_numbers, stratified_split, validation_split
from test_toy_detector import TOY

FOLDS = 3


def test_folds_are_disjoint_stratified_and_keep_copies_together():
    rng = np.random.default_rng(0)
    classes = rng.choice(["a", "b", "c"], size=301, p=[0.6, 0.3, 0.1])
    folds = fold_numbers(classes, FOLDS, seed=4)
    assert set(folds) == set(range(FOLDS))
    for c in "abc":  # every class dealt evenly: fold counts differ by at most one
        counts = np.bincount(folds[classes == c], minlength=FOLDS)
        assert counts.max() - counts.min() <= 1, (c, counts)
    groups = rng.integers(0, 120, size=len(classes))  # copies of ~120 events
    classes = np.array(["a", "b"])[groups % 2]  # a copy has its event's class
    folds = fold_numbers(classes, FOLDS, seed=4, groups=groups)
    assert all(len(set(folds[groups == g])) == 1 for g in np.unique(groups))
    cfg = SimpleNamespace(seed=4, folds=FOLDS, fold="1", fold_validation="fold")
    train, val, scored = validation_split(classes, 0.2, cfg, groups)
    assert sorted([*train, *val]) == list(range(len(classes))) and not set(groups[train]) & set(groups[val])
    np.testing.assert_array_equal(val, np.flatnonzero(folds == 1))
    np.testing.assert_array_equal(scored, val)


def test_copies_labelled_differently_still_stay_on_one_side():
    """Copies of one event given different classes (label noise): the group is never split, every event is
    placed once, and no class' validation share is more than its largest group over."""
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 60, size=200)
    classes = rng.choice(["a", "b"], size=200)  # a copy's class drawn apart from its twin's
    train, val = stratified_split(classes, 0.2, 5, groups)
    assert sorted([*train, *val]) == list(range(200)) and not set(groups[train]) & set(groups[val])
    largest = np.bincount(groups).max()
    for c in "ab":
        assert np.sum(classes[val] == c) < round(np.sum(classes == c) * 0.2) + largest


def test_a_split_that_leaves_nothing_to_validate_on_is_an_error():
    cfg = SimpleNamespace(seed=0, folds=3, fold="0", fold_validation="inner")
    with pytest.raises(DataError, match="leave nothing to validate on"):
        validation_split(np.array(["a", "b"] * 3), 0.2, cfg, source="tiny.npz")


def test_inner_validation_leaves_the_scored_fold_untouched():
    """train.fold_validation = inner: fold k is only scored; the epoch is chosen on a stratified share of the
    other folds, copies kept on one side; the three parts cover every event once."""
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 150, size=400)
    classes = np.array(["a", "b", "c"])[groups % 3]
    cfg = SimpleNamespace(seed=4, folds=FOLDS, fold="2", fold_validation="inner")
    split = validation_split(classes, 0.25, cfg, groups)
    np.testing.assert_array_equal(split.scored, np.flatnonzero(fold_numbers(classes, FOLDS, 4, groups) == 2))
    assert sorted([*split.train, *split.val, *split.scored]) == list(range(len(classes)))
    parts = [set(groups[idx]) for idx in split]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    for c in "abc":  # a quarter of each class of the training folds validates
        rest = np.sum(classes[np.r_[split.train, split.val]] == c)
        assert abs(np.sum(classes[split.val] == c) - rest / 4) <= 6
    one = validation_split(classes, 0.25, SimpleNamespace(seed=4, folds=1, fold="all", fold_validation="inner"), groups)
    np.testing.assert_array_equal(one.scored, one.val)  # one split: what picks the epoch is what is scored


@pytest.fixture(scope="module")
def damic_folds(tmp_path_factory):
    work = tmp_path_factory.mktemp("folds")
    sim = simulate_dataset(work / "sim", events_per_class=12, seed=3)
    args = ["task.name=damic", f"damic.train={sim / 'train'}", f"damic.test={sim / 'test'}",
            "damic.model.model=track_hybrid", "damic.model.epochs=2", "damic.model.drop_rate=0.3",
            f"train.folds={FOLDS}", "train.progress=false", "train.threads=1"]
    ref = [*args, f"train.checkpoint_dir={work / 'ref'}"]
    out = run("train.py", *ref).stdout
    return work, sim, args, ref, out


def test_oof_covers_every_training_event_once(damic_folds):
    work, sim, _, ref, out = damic_folds
    top = work / "ref" / "damic"
    oof = pd.read_csv(top / "oof.csv", dtype={"id": str})
    train_ids = sorted(p.stem for p in (sim / "train").glob("*.npz"))
    assert sorted(oof["id"]) == train_ids  # each once
    cv = json.loads((top / "cv.json").read_text())
    for k in range(FOLDS):  # each fold's rows are the events its models left out, scored; and its model's validation
        best = torch.load(top / f"fold{k}" / "track_best.pt", weights_only=True)["best"]
        assert cv["models"]["track"]["per_fold"][k] == pytest.approx(best)
        rows = oof[oof["fold"] == k]
        assert sorted(rows["id"]) == sorted(pd.read_csv(top / f"fold{k}" / "oof.csv", dtype={"id": str})["id"])
        assert cv["out_of_fold"]["accuracy"]["per_fold"][k] == pytest.approx((rows["predicted"] == rows["particle"]).mean())
    assert cv["out_of_fold"]["accuracy"]["pooled"] == pytest.approx((oof["predicted"] == oof["particle"]).mean())
    assert "out of fold (3 folds, each scored by the model that neither trained nor chose on it): accuracy" in out
    assert "track's validation log-loss (each model validated on a split of its training folds)" in out
    cfg = load_config(None, [*ref, "train.fold=1"], echo=False)
    events, split = prepare(cfg, make_runtime(cfg.train), simulate=False)
    assert sorted(events.subset(split.scored).ids) == sorted(oof.loc[oof["fold"] == 1, "id"])
    assert not set(events.subset(split.val).ids) & set(oof.loc[oof["fold"] == 1, "id"])  # chosen elsewhere


def test_the_report_scores_every_training_event_out_of_fold(damic_folds, tmp_path, capsys):
    """report.py with train.folds: the out-of-fold table scored as a set of its own (per class, confusion),
    its accuracy the share of rows oof.csv predicts right; a report of one fold's model (train.fold) leaves it."""
    work, _, _, ref, _ = damic_folds
    out = run("report.py", *ref, f"damic.output.predictions={tmp_path / 'none.csv'}",
              f"damic.output.results_dir={tmp_path / 'report'}").stdout
    oof = pd.read_csv(work / "ref" / "damic" / "oof.csv")
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    scored = metrics["metrics"]["out-of-fold"]
    assert metrics["cross_validation"]["validation"] == "inner"  # the plan's cv.json, in the ensemble's report
    assert scored["n"] == len(oof)
    assert scored["accuracy"] == pytest.approx((oof["predicted"] == oof["particle"]).mean())
    for name in ("accuracy", "balanced_accuracy", "auc"):  # cv.json's pooled figures are the report's
        pooled = metrics["cross_validation"]["out_of_fold"][name.replace("_", " ").replace("auc", "AUC")]["pooled"]
        assert pooled == pytest.approx(scored[name])
    assert np.sum(scored["confusion"]) == len(oof) and "[out-of-fold] n=" in out
    one = run("report.py", *ref, "train.fold=1", f"damic.output.predictions={tmp_path / 'none.csv'}",
              f"damic.output.results_dir={tmp_path / 'fold1'}").stdout  # one fold's model: not the others' table
    assert "[out-of-fold" not in one and "[validation]" in one
    other = load_config(None, [*ref, "train.fold_validation=fold"], echo=False)  # folds of another plan
    assert finished_folds(other, "damic", verbose=True) is None and out_of_fold_table(other, "damic") is None
    assert capsys.readouterr().out.count("written by folds of another plan (folds 3, seed 0, pseudo_labelled 0, "
                                         "validation inner; asked for") == 1


def test_the_fold_ensemble_averages_the_members_raw_outputs(damic_folds):
    work, sim, _, ref, _ = damic_folds
    cfg = load_config(None, ref, echo=False)
    rt = make_runtime(cfg.train)
    events = prepare(cfg, rt, simulate=False)[0]
    ensemble, objective = load_model(cfg, rt)
    members = [load_model(load_config(None, [*ref, f"train.fold={k}"], echo=False), rt) for k in range(FOLDS)]
    assert len({m[1].mean for m in members}) == FOLDS  # each fold standardised by its own training events
    expected = np.mean([predict_outputs(m, o, events, rt) for m, o in members], axis=0)
    np.testing.assert_allclose(predict_outputs(ensemble, objective, events, rt), expected, atol=1e-5)
    assert RunSettings.from_config(cfg, "damic").members("track")[2].parent.name == "fold2"
    pred = run("generate_submission.py", *ref, f"damic.output.predictions={work / 'pred.csv'}").stdout
    assert len(pd.read_csv(work / "pred.csv")) == len(list((sim / "test").glob("*.npz"))), pred


def test_a_run_killed_in_a_fold_resumes_in_that_fold(damic_folds):
    work, _, args, _, _ = damic_folds
    killed = [*args, f"train.checkpoint_dir={work / 'killed'}"]
    proc = run("train.py", *killed, env={"IDAO_FAULT_KILL_AT": "fold1/track:2"}, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (work / "killed" / "damic" / "fold0" / "done.json").is_file()
    assert not (work / "killed" / "damic" / "fold1" / "done.json").exists()
    out = run("train.py", *killed, "train.resume=true").stdout
    assert "fold0 (1 of 3): finished before" in out and "track: resuming from" in out
    for k in range(FOLDS):
        a, b = (torch.load(work / d / "damic" / f"fold{k}" / "track_last.pt", weights_only=True)["model"]
                for d in ("ref", "killed"))
        assert all(torch.equal(a[n], b[n]) for n in a), k
    pd.testing.assert_frame_equal(pd.read_csv(work / "ref" / "damic" / "oof.csv"),
                                  pd.read_csv(work / "killed" / "damic" / "oof.csv"))
    # another number of folds in the same folder: nothing of the 3-fold run is reused
    out = run("train.py", *[a for a in killed if not a.startswith("train.folds")], "train.folds=2",
              "train.resume=true").stdout
    assert "finished before" not in out and "resuming from" not in out
    oof = pd.read_csv(work / "killed" / "damic" / "oof.csv")
    assert sorted(oof["fold"].unique()) == [0, 1] and oof["id"].is_unique and len(oof) == 48


def test_fold_mistakes_are_one_error_line(damic_folds, tmp_path):
    work, _, _, ref, _ = damic_folds
    no_folds = [a for a in ref if not a.startswith("train.folds")]
    proc = run("generate_submission.py", *no_folds, f"damic.output.predictions={tmp_path / 'p.csv'}", check=False)
    assert proc.returncode == 2 and "trained in folds; set train.folds = 3" in proc.stderr
    proc = run("train.py", *ref, "train.fold=3", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: train.fold = '3'")
    proc = run("train.py", "task.name=toy", "train.folds=2", env=TOY, check=False)  # a task without the hook
    assert proc.returncode == 2 and "task toy has no out-of-fold predictions" in proc.stderr

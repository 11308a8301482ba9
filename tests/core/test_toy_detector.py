"""A new detector is one page: tests/toy_detector (data, a linear model, a metric) registered through $IDAO_TASKS
runs train / generate / report through the real scripts, and the core does the checks, the CSV and the report."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from conftest import ROOT, run

TOY = {"IDAO_TASKS": "toy=toy_detector.task", "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)])}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("toy")
    args = ["task.name=toy", f"train.checkpoint_dir={work / 'ck'}", f"toy.output.predictions={work / 'pred.csv'}",
            f"toy.output.results_dir={work / 'report'}", "train.progress=false", "train.seed=3"]
    outputs = [run(script, *args, env=TOY).stdout for script in ("train.py", "generate_submission.py", "report.py")]
    return work, args, outputs


def test_the_toy_detector_trains_predicts_and_reports(toy_run):
    work, _, outputs = toy_run
    assert "toy epoch 3/3" in outputs[0] and (work / "ck" / "toy" / "toy_best.pt").is_file()
    table = pd.read_csv(work / "pred.csv")
    assert list(table.columns) == ["id", "p_positive"] and len(table) == 100 and table["p_positive"].between(0, 1).all()
    assert "[toy.model]" in (work / "pred.config.ini").read_text()  # the config that produced it, beside it
    assert f"wrote {work / 'pred.csv'}: 100 points" in outputs[1]
    metrics = json.loads((work / "report" / "metrics.json").read_text())
    assert metrics["auc"] > 0.9 and metrics["provenance"]["idao"] and metrics["provenance"]["cpu"]  # a linear model learns the sign of a sum
    assert (work / "report" / "index.html").is_file() and "validation AUC" in outputs[2]


def test_the_core_adopts_and_checks_for_the_toy_detector(toy_run, tmp_path):
    """What the toy task never wrote: adopting the checkpoint's seed, and the one-line errors."""
    work, args, _ = toy_run
    report = run("report.py", *[a for a in args if a != "train.seed=3"], env=TOY).stdout
    assert "from the checkpoint: train.seed = 3" in report
    proc = run("generate_submission.py", *args, f"train.checkpoint_dir={tmp_path}", env=TOY, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {tmp_path / 'toy' / 'toy_best.pt'}: checkpoint (run train.py first) not found")
    proc = run("train.py", *args, "toy.events=0", env=TOY, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: toy.events = 0: expected 1 <= events")
    proc = run("train.py", "task.name=toy", env={**TOY, "IDAO_TASKS": "toy=no_such.module"}, check=False)
    assert proc.returncode == 2 and "module 'no_such.module' not found" in proc.stderr


def test_tensorboard_shows_each_epoch_once_after_a_resume(tmp_path):
    """train.tensorboard: the epochs' scalars for TensorBoard. A run resumed from an earlier checkpoint than its
    last logged epoch (a crash between logging and saving, or an older checkpoint put back) repeats those epochs;
    TensorBoard shows each once, with the values of the run that kept them."""
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["task.name=toy", "train.progress=false"]
    run("train.py", *args, f"train.checkpoint_dir={tmp_path / 'a'}", "toy.model.epochs=4", env=TOY)
    run("train.py", *args, f"train.checkpoint_dir={tmp_path / 'b'}", "toy.model.epochs=2", env=TOY)
    shutil.copy(tmp_path / "b" / "toy" / "toy_last.pt", tmp_path / "a" / "toy" / "toy_last.pt")  # back to epoch 2
    out = run("train.py", *args, f"train.checkpoint_dir={tmp_path / 'a'}", "toy.model.epochs=4", "train.resume=true",
              env=TOY).stdout
    assert "resuming from" in out and "at epoch 2" in out
    events = EventAccumulator(str(tmp_path / "a" / "toy" / "tensorboard" / "toy"))
    events.Reload()
    for tag in ("train_loss", "val_metric", "lr"):
        assert [e.step for e in events.Scalars(tag)] == [0, 1, 2, 3], tag
    log = pd.read_csv(tmp_path / "a" / "toy" / "toy_log.csv")  # the resumed run's epochs 2 and 3 are the ones shown
    assert [e.value for e in events.Scalars("val_metric")][2:] == pytest.approx(log["val_metric"][2:].tolist(), abs=1e-6)

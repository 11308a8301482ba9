"""Every bad setting or output place is one `error:` line and exit 2 before any work: no dataset simulated,
no checkpoint written, no traceback. Run through the real scripts from an empty folder, as a user would."""
from __future__ import annotations

import pytest

from conftest import ROOT, run

CASES = [  # (script, overrides, what the error line must say)
    ("train.py", ["data.val_fraction=1.5"], "data.val_fraction = 1.5: expected 0 < val_fraction < 1"),
    ("train.py", ["classifier.epochs=-1"], "classifier.epochs = -1: expected 1 <= epochs"),
    ("train.py", ["classifier.batch_size=0"], "classifier.batch_size = 0: expected 1 <= batch_size"),
    ("train.py", ["data.crop_mode=middle"], "data.crop_mode = 'middle': expected one of centre, spot"),
    ("train.py", ["data.crop=1000"], "data.crop = 1000: expected 16 <= crop <= 576"),
    ("train.py", ["data.crop=100", "data.bin=3"], "data.crop = 100: must be a multiple of data.bin (3)"),
    ("train.py", ["classifier.model=resnet9000"], "unknown model 'resnet9000'"),
    ("train.py", ["regressor.loss=l3"], "regressor.loss = 'l3': expected one of l1, mse, huber"),
    ("train.py", ["train.device=gpu"], "train.device = 'gpu': expected auto, cpu, cuda or cuda:N"),
    ("train.py", ["classifier.light_min=3"], "classifier.light_min = 3.0 is above classifier.light_max"),
    ("train.py", ["task.name=damic", "damic.val_fraction=0"], "damic.val_fraction = 0.0: expected 0 < val_fraction"),
    ("train.py", ["task.name=damic", "damic.model.box_target=middle"], "box_target = 'middle': expected one of"),
    ("train.py", ["task.name=damic", "damic.window=12x"], "damic.window = '12x': expected auto or HxW"),
    ("generate_submission.py", ["submission.postprocess=snapp"], "submission.postprocess = 'snapp': expected one of"),
    ("generate_submission.py", ["submission.balance=pair", "submission.postprocess=snap"], "needs submission.postprocess = light"),
    ("generate_submission.py", [], "checkpoint (run train.py first) not found"),
    ("report.py", [], "checkpoint (run train.py first) not found"),
]


@pytest.mark.parametrize("script, overrides, message", CASES, ids=[" ".join(c[1]) or c[0] for c in CASES])
def test_bad_setting_is_one_error_line_before_any_work(tmp_path, script, overrides, message):
    proc = run(str(ROOT / script), "data.root=data/sim", "train.checkpoint_dir=ck", *overrides, check=False,
               cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "ck").exists()  # nothing simulated or written


@pytest.mark.parametrize("script, key", [("train.py", "train.checkpoint_dir"),
                                         ("generate_submission.py", "submission.output"),
                                         ("report.py", "report.results_dir")])
def test_output_under_a_file_is_refused_before_any_work(tmp_path, script, key):
    (tmp_path / "a_file").write_text("not a folder")
    target = "a_file/out/x.csv" if key == "submission.output" else "a_file/out"
    ck = tmp_path / "ck" / "cygno"
    if script != "train.py":  # the jobs that read checkpoints need some to get as far as their outputs
        ck.mkdir(parents=True)
        for name in ("classifier_best.pt", "regressor_best.pt", "light.json"):
            (ck / name).write_text("")
        (tmp_path / "data" / "sim").mkdir(parents=True)
    proc = run(str(ROOT / script), "data.root=data/sim", "train.checkpoint_dir=ck", f"{key}={target}", check=False,
               cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and "a_file is a file" in proc.stderr and key in proc.stderr
    assert "Traceback" not in proc.stderr

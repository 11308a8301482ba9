"""Every bad setting or output place is one `error:` line and exit 2 before any work: no dataset simulated,
no checkpoint written, no traceback. Run from an empty folder, as a user would, through the scripts' own entry
point (``idao.cli.main``, which train.py, generate_submission.py and report.py call and nothing else): all cases
in one Python process, each in its own folder, so the suite pays the imports once, not once per case (the
end-to-end tests run the scripts themselves)."""
from __future__ import annotations

import json
import sys
import subprocess

import pytest

from conftest import ROOT

JOBS = {"train.py": "train", "generate_submission.py": "generate", "report.py": "report"}
HARNESS = """
import contextlib, io, json, os, sys
from idao.cli import main
results = []
for job, argv, cwd in json.loads(sys.stdin.read()):
    os.chdir(cwd)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(job, argv)
            code = 0
        except SystemExit as e:
            code = e.code
        except BaseException as e:  # a traceback reaches the user: report it as such
            code, err = 1, io.StringIO("Traceback: " + repr(e))
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def run_cases(cases: list) -> list:
    """[(script, argv, folder)] -> [(exit status, stderr)], in one process."""
    jobs = [[JOBS[script], argv, str(folder)] for script, argv, folder in cases]
    proc = subprocess.run([sys.executable, "-c", HARNESS], input=json.dumps(jobs), capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


CASES = [  # (script, overrides, what the error line must say)
    ("train.py", ["cygno.val_fraction=1.5"], "cygno.val_fraction = 1.5: expected 0 < val_fraction < 1"),
    ("train.py", ["cygno.classifier.epochs=-1"], "cygno.classifier.epochs = -1: expected 1 <= epochs"),
    ("train.py", ["cygno.classifier.batch_size=0"], "cygno.classifier.batch_size = 0: expected 1 <= batch_size"),
    ("train.py", ["cygno.crop_mode=middle"], "cygno.crop_mode = 'middle': expected one of centre, spot"),
    ("train.py", ["cygno.crop=1000"], "cygno.crop = 1000: expected 16 <= crop <= 576"),
    ("train.py", ["cygno.crop=100", "cygno.bin=3"], "cygno.crop = 100: must be a multiple of cygno.bin (3)"),
    ("train.py", ["cygno.classifier.model=resnet9000"], "unknown model 'resnet9000'"),
    ("train.py", ["cygno.regressor.loss=l3"], "cygno.regressor.loss = 'l3': expected one of l1, mse, huber"),
    ("train.py", ["train.device=gpu"], "train.device = 'gpu': expected auto, cpu, cuda or cuda:N"),
    ("train.py", ["cygno.classifier.light_min=3"], "cygno.classifier.light_min = 3.0 is above cygno.classifier.light_max"),
    ("train.py", ["task.name=damic", "damic.val_fraction=0"], "damic.val_fraction = 0.0: expected 0 < val_fraction"),
    ("train.py", ["task.name=damic", "damic.model.box_target=middle"], "box_target = 'middle': expected one of"),
    ("train.py", ["task.name=damic", "damic.window=12x"], "damic.window = '12x': expected auto or HxW"),
    ("train.py", ["task.name=egamma", "egamma.test_fraction=0.5", "egamma.val_fraction=0.5"],
     "egamma.val_fraction + egamma.test_fraction"),
    ("train.py", ["task.name=egamma", "egamma.block_rows=0"], "egamma.block_rows = 0"),
    ("train.py", ["task.name=egamma", "egamma.model.model=resnet9000"], "unknown model 'resnet9000'"),
    ("train.py", ["task.name=egamma", "egamma.train=nowhere.hdf5,also.hdf5"], "nowhere.hdf5"),
    ("train.py", ["task.name=icecube", "icecube.max_pulses=0"], "icecube.max_pulses = 0"),
    ("generate_submission.py", ["cygno.submission.postprocess=snapp"], "cygno.submission.postprocess = 'snapp': expected one of"),
    ("generate_submission.py", ["cygno.submission.balance=pair", "cygno.submission.postprocess=snap"], "needs cygno.submission.postprocess = light"),
    ("generate_submission.py", [], "checkpoint (run train.py first) not found"),
    ("report.py", [], "checkpoint (run train.py first) not found"),
]


@pytest.fixture(scope="module")
def bad_setting_runs(tmp_path_factory):
    folders = [tmp_path_factory.mktemp("empty") for _ in CASES]
    runs = run_cases([(script, ["cygno.root=data/sim", "train.checkpoint_dir=ck", *overrides], folder)
                      for (script, overrides, _), folder in zip(CASES, folders)])
    return list(zip(runs, folders))


@pytest.mark.parametrize("case", range(len(CASES)), ids=[" ".join(c[1]) or c[0] for c in CASES])
def test_bad_setting_is_one_error_line_before_any_work(bad_setting_runs, case):
    (code, stderr), folder = bad_setting_runs[case]
    message = CASES[case][2]
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert not (folder / "data").exists() and not (folder / "ck").exists()  # nothing simulated or written


OUTPUT_KEYS = [("train.py", "train.checkpoint_dir"), ("generate_submission.py", "cygno.output.submission"),
               ("report.py", "cygno.output.results_dir")]


@pytest.fixture(scope="module")
def output_runs(tmp_path_factory):
    cases = []
    for script, key in OUTPUT_KEYS:
        folder = tmp_path_factory.mktemp("outputs")
        (folder / "a_file").write_text("not a folder")
        target = "a_file/out/x.csv" if key == "cygno.output.submission" else "a_file/out"
        if script != "train.py":  # the jobs that read checkpoints need some to get as far as their outputs
            ck = folder / "ck" / "cygno"
            ck.mkdir(parents=True)
            for name in ("classifier_best.pt", "regressor_best.pt", "light.json"):
                (ck / name).write_text("")
            (folder / "data" / "sim").mkdir(parents=True)
        cases.append((script, ["cygno.root=data/sim", "train.checkpoint_dir=ck", f"{key}={target}"], folder))
    return run_cases(cases)


@pytest.mark.parametrize("case", range(len(OUTPUT_KEYS)), ids=[s for s, _ in OUTPUT_KEYS])
def test_output_under_a_file_is_refused_before_any_work(output_runs, case):
    code, stderr = output_runs[case]
    key = OUTPUT_KEYS[case][1]
    assert code == 2, stderr
    assert stderr.startswith("error: ") and "a_file is a file" in stderr and key in stderr
    assert "Traceback" not in stderr

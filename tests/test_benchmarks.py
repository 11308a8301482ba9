"""Every benchmark script runs, end to end, on tiny data: a smoke run each, so none can rot. The figures are
meaningless at this size; what is checked is that each script finishes and writes its markdown table."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import SHARED, run

FAST = ["train.progress=false", "train.threads=1"]
CYGNO_FAST = [*FAST, "cygno.classifier.epochs=1", "cygno.regressor.epochs=1", "cygno.cache_dir="]


def bench(script: str, *args: str, out) -> str:
    """Run ``benchmarks/<script>.py`` with ``--out``; the page it wrote."""
    run(f"benchmarks/{script}.py", *args, "--out", str(out))
    text = out.read_text()
    assert "|---" in text, text  # a markdown table
    return text


def test_cygno_benchmarks(tiny_dataset, tmp_path):
    data = [f"cygno.root={tiny_dataset}", f"train.checkpoint_dir={tmp_path / 'ck'}", *CYGNO_FAST]
    run("train.py", *data)  # the models submission_time scores
    assert "decode floor" in bench("submission_time", "--root", str(tiny_dataset), "--tta", "1/1",
                                   *data, out=tmp_path / "submission_time.md")
    bench("cygno_bound", "--events", "100", out=tmp_path / "cygno_bound.md")
    bench("cygno_pair_ceiling", "--root", str(tiny_dataset), "--epochs", "1", out=tmp_path / "pair.md")
    bench("data_throughput", "--scale", "0.003", "--workers", "1", out=tmp_path / "throughput.md")


@pytest.mark.parametrize("script, args", [
    ("cygno_scores", ("--scales", "0.005", "--seeds", "0", "--sweep", "", *CYGNO_FAST)),
    ("cygno_independent", ("--seeds", "0", "--train", "8", "--public", "2", "--private", "5", *CYGNO_FAST)),
    ("energy_target", ("--scale", "0.005", "--epochs", "1")),
    ("compare", ("--scale", "0.005", "--baseline-epochs", "1", *CYGNO_FAST)),
])
def test_cygno_scoring_benchmarks(script, args, tmp_path):
    """The ones that simulate, train and submit themselves, at the smallest size that has every class
    (one test each, so the test processes share them); cygno_scores keeps its point for cygno_decode."""
    keep = ("--keep", str(tmp_path / "keep")) if script == "cygno_scores" else ()
    text = bench(script, *keep, *args, out=tmp_path / f"{script}.md")
    if script == "cygno_scores":
        assert "ceiling (GBM / CNN)" in text and "worst gap to the labelled ceiling" in text
        decoded = bench("cygno_decode", str(tmp_path / "keep"), out=tmp_path / "decode.md")
        assert decoded.count("\n| ") == 1 + 24 + 1 + 1  # header, every combination of the grid; the best one per point


def real_slices(tmp_path, *names: str, each: int = 120) -> list[str]:
    """The first and last ``each`` frames (both classes) of the real thesis files, as packed files in
    ``tmp_path``: the benchmarks' whole path on real frames, in seconds."""
    sources = [SHARED / "damic-tfm" / name for name in names]
    if not all(p.is_file() for p in sources):
        pytest.skip(f"{sources[0].parent} not found (it lives in ../shared beside the repo)")
    for path in sources:
        with np.load(path) as z:
            keep = np.r_[0:each, len(z["labels"]) - each:len(z["labels"])]
            np.savez(tmp_path / path.name, data=z["data"][keep], labels=z["labels"][keep])
    return [str(tmp_path / name) for name in names]


def test_damic_cv(tmp_path):
    # electron vs noise, two folds, the fast tree model: the script's whole path (folds, copies, held-out part)
    data, = real_slices(tmp_path, "eVSn_1.npz")
    text = bench("damic_cv", "--data", data, "--folds", "2", "--holdout", "0.2", "damic.classes=electron,noise",
                 "damic.packed_labels=noise,electron", "damic.model.model=track_trees", "damic.model.tree_rounds=5",
                 *FAST, out=tmp_path / "damic_cv.md")
    assert "held-out" in text


def test_damic_cv_folds_are_the_engines(tmp_path):
    """damic_cv.py on the thesis' two files (a label map each) trains the engine's fold models: its per-fold
    accuracies, pooled, are the out-of-fold accuracy report.py gives after train.py train.folds=2 (damic_oof.py,
    one value of a varied setting: one run)."""
    both = real_slices(tmp_path, "eVSmu_tr1.npz", "eVSn_1.npz", each=40)
    common = ["damic.classes=electron,muon,noise", "damic.packed_labels=electron,muon;noise,electron",
              "damic.model.model=track_trees", "damic.model.tree_rounds=5", *FAST]
    cv = bench("damic_cv", "--data", ",".join(both), "--folds", "2", *common, out=tmp_path / "damic_cv_both.md")
    assert "| accuracy eVSmu_tr1 | accuracy eVSn_1 |" in cv
    folds = [row.split(" | ") for row in cv.splitlines() if row.startswith(("| 0 | clean", "| 1 | clean"))]
    pooled = sum(int(r[3]) * float(r[4]) for r in folds) / sum(int(r[3]) for r in folds)
    oof = bench("damic_oof", "--folds", "2", "--vary", "damic.model.class_balance=false", f"damic.train={','.join(both)}",
                *common, out=tmp_path / "damic_oof.md")
    assert "out-of-fold eVSmu_tr1 (80)" in oof and "[out-of-fold eVSn_1] n=80" in oof
    assert oof.count("\n| false | 0 |") == 1
    row = next(r for r in oof.splitlines() if r.startswith("| false | 0 |")).split(" | ")
    assert float(row[2]) == pytest.approx(pooled, abs=2e-4)


def test_egamma_benchmarks(tmp_path):
    text = bench("egamma_difficulty", "--events", "200", "--seeds", "1", "--settings", "default,noise=0.08",
                 out=tmp_path / "difficulty.md")
    assert text.count("\n| ") == 1 + 2  # the header and the two settings asked for
    bench("egamma_stream", "--events", "600", "--steps", "2", "--threads", "1", out=tmp_path / "stream.md")


def test_icecube_bench(tmp_path):
    text = bench("icecube_bench", "--files", "2", "--per-file", "150", "--train-files", "1", "--test-events", "60",
                 "--workers", "1", "icecube.model.epochs=1", *FAST, out=tmp_path / "bench.md")
    assert "line fit" in text


def test_icecube_shift(tmp_path):
    ck = tmp_path / "ck"
    run("train.py", "task.name=icecube", f"icecube.root={tmp_path / 'ice'}", "icecube.simulate_events=300",
        "icecube.model.epochs=1", f"train.checkpoint_dir={ck}", *FAST)
    bench("icecube_shift", "--checkpoint-dir", str(ck), "--events", "40", out=tmp_path / "shift.md")


def test_folds_benchmark(tmp_path):
    """The three-class run on slices of both real files (each with its own label map), its noisy copies and each
    file alone with estimated priors."""
    sliced = real_slices(tmp_path, "eVSmu_tr1.npz", "eVSn_1.npz")
    text = bench("folds", "--task", "damic", "--packed", ",".join(sliced), "--seeds", "0", "--compare", "1,2",
                 "--noisy-test", "--per-file-priors", "damic.classes=electron,muon,noise",
                 "damic.packed_labels=electron,muon;noise,electron", "damic.model.model=track_trees",
                 "damic.model.tree_rounds=5", *FAST, out=tmp_path / "folds.md")
    assert "| 0 | 2 |" in text and "noisy eVSn_1 accuracy" in text and "eVSmu_tr1 alone, priors auto, accuracy" in text
    assert "out-of-fold balanced accuracy" in text and "out-of-fold eVSn_1 accuracy" in text  # cv.json's; the report's

"""The three jobs every task runs, written once: check, adopt, then train / generate / report.

``run`` is what the scripts call. Before any expensive work it adopts the
checkpoint's training settings (generate and report only: one explicit step
that returns a new config and says what it took), checks every setting
(``task.check``), the job's inputs (``task.check_<job>``) and its outputs
(here). ``generate`` and ``report`` then do what no task repeats: refuse
non-finite predictions, write the CSV with its config beside it, write the
report folder, and print the closing lines.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .atomic import write_csv, write_text
from .checkpoint import check_checkpoint, checkpoint_exists, is_shipped, load_checkpoint, retire_shipped
from .engine import RunSettings
from .errors import ConfigError, DataError
from .reporting import write_report
from .runtime import make_runtime
from .folds import RECORDED, add_folds, check_folds, finished_folds, pseudo_label, train_round
from .schema import check_writable_dir
from .splits import fold_index
from .tasks import Predictions, Report, Task


def adopt_training(task: Task, cfg):
    """A copy of ``cfg`` holding the settings the task's checkpoint was trained with (``task.remembered``), where
    the user did not set them; printed. With no checkpoint yet, ``cfg`` as it is (``check_<job>`` says it is
    missing)."""
    path = task.checkpoint(cfg)
    if not checkpoint_exists(path):
        return cfg
    cfg, taken = cfg.adopting(load_checkpoint(path)["config"], (*task.remembered, *RECORDED), task.must_match,
                              where=str(path))
    if taken:
        print("from the checkpoint: " + ", ".join(taken))
    return cfg


def prepare(task: Task, cfg, job: str):
    """The config ``job`` runs with, every setting and path checked (``ConfigError`` before any work): where it
    writes, then the checkpoint's settings adopted, every setting, and what the job reads."""
    outputs = {"train": "train.checkpoint_dir", "generate": task.predictions_key, "report": task.results_key,
               "export": "export.dir"}
    if job not in outputs:
        raise ConfigError(f"job {job!r}: expected one of {', '.join(outputs)}")
    if job == "train":
        check_writable_dir(RunSettings.from_config(cfg, task.name).checkpoint_dir, "train.checkpoint_dir")
    else:
        folder = Path(cfg.value(outputs[job]))
        check_writable_dir(folder.parent if job == "generate" else folder, outputs[job])
        if job == "export" and not hasattr(task, "export_models"):
            raise ConfigError(f"task {task.name} has no ONNX export (export_models)")
        if job == "export" and cfg.train.folds > 1 and fold_index(cfg.train) is None:
            raise ConfigError(f"train.folds = {cfg.train.folds}: an ONNX file holds one model; export each fold "
                              "with train.fold = k")
        cfg = adopt_training(task, cfg)
    task.check(cfg)
    check_folds(task, cfg, job)
    if job == "generate" and is_shipped(task.checkpoint(cfg)):
        task.ensure_test_data(cfg)  # a fresh clone: the shipped models predict simulated data, as train does
    checks = {"train": task.check_train, "generate": task.check_generate, "report": task.check_report,
              "export": lambda cfg: check_checkpoint(task.checkpoint(cfg))}
    checks[job](cfg)
    return cfg


def run(task: Task, cfg, job: str, only: str | None = None):
    """Check, then run ``job`` (the scripts' one entry point)."""
    if only is not None and only not in task.models:
        raise ConfigError(f"--only {only}: task {task.name} trains {', '.join(task.models)}")
    if only is not None and cfg.train.pseudo_label > 0:
        raise ConfigError(f"--only {only} with train.pseudo_label: round 1 must train every model the predictions "
                          "need; drop --only")
    cfg = prepare(task, cfg, job)
    if job == "train":
        retire_shipped(RunSettings.from_config(cfg, task.name).top_dir)
        return pseudo_label(task, cfg, only) if cfg.train.pseudo_label > 0 else train_round(task, cfg, only)
    if job == "export":
        from .export import export  # onnx and onnxruntime load only for this job

        return export(task, cfg)
    return generate(task, cfg) if job == "generate" else report(task, cfg)


def generate(task: Task, cfg):
    """Predict, refuse non-finite numbers, write the CSV (and its companions) atomically, the config beside it."""
    rt = make_runtime(cfg.train)
    result: Predictions = task.predict(cfg, rt)
    numbers = result.table.select_dtypes("number").to_numpy(float)
    if not np.isfinite(numbers).all():
        raise DataError("predictions are not finite; refusing to write them")
    out = Path(cfg.value(task.predictions_key))
    for suffix, table in result.companions.items():
        write_csv(table, out.with_suffix(suffix), float_format=result.float_format)
    write_csv(result.table, out, float_format=result.float_format)
    write_text(out.with_suffix(".config.ini"), cfg.to_ini() + "".join(f"\n; {note}\n" for note in result.notes))
    print(f"wrote {out}: {result.summary}")
    return result.table


def report(task: Task, cfg):
    """Evaluate, then write the report folder: ``report.log``, ``metrics.json``, ``config.ini``, ``index.html``."""
    folder = Path(cfg.value(task.results_key))
    folder.mkdir(parents=True, exist_ok=True)
    rt = make_runtime(cfg.train)
    result: Report = task.evaluate(cfg, rt, folder)
    folds = finished_folds(cfg, task.name, verbose=True)
    if folds is not None:
        add_folds(result, folds[1], folds[0] / "cv.json")
    write_report(folder, result.log_text, result.metrics, cfg.to_ini(), result.images, result.title,
                 rt.provenance(), result.headline, result.banner, result.tables)
    print(result.log_text, end="")
    for line in result.closing:
        print(line)
    print(f"report: {folder / 'index.html'}")
    return result.metrics


def run_job(job: str, overrides=(), config=None, only: str | None = None, echo: bool = False):
    """What a script does, for a program (benchmarks, notebooks): load the settings with ``overrides``, resolve
    their paths, check and run ``job``; returns the job's result (train summaries, predictions table, metrics)."""
    from .config import CORE_PATH_KEYS, load_config
    from .tasks import get_task

    cfg = load_config(config, list(overrides), echo=echo)
    task = get_task(cfg.task.name)
    cfg.resolve_paths(CORE_PATH_KEYS + task.path_keys)
    return run(task, cfg, job, only)

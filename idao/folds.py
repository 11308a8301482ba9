"""What train.py does beyond one run of a task's ``train``: K folds (``train.folds``) with their out-of-fold
predictions, and pseudo-labelling rounds (``train.pseudo_label``). The core drives both; a task takes part
through optional hooks (``validation_predictions`` with ``score_out_of_fold``, ``pseudo_labels``; see
``idao/tasks.py``) and by drawing its validation split with ``splits.validation_split`` and loading models with
``RunSettings.members``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .atomic import write_csv, write_text
from .checkpoint import checkpoint_exists
from .engine import RunSettings
from .errors import ConfigError, DataError
from .runtime import make_runtime, training_runtime
from .splits import fold_index
from .tasks import Report, Task

RECORDED = ("train.pseudo_label", "train.pseudo_labelled", "train.fold_validation")  # from every task's checkpoint
VALIDATED = {"inner": "each model validated on a split of its training folds",  # train.fold_validation, in words
             "fold": "each model validated on the fold it left out"}
SCORED = {"inner": "each scored by the model that neither trained nor chose on it",  # the out-of-fold rows, in words
          "fold": "each scored by the model that did not train on it but chose its epoch on it"}


def check_folds(task: Task, cfg, job: str) -> None:
    """Folds need the task's out-of-fold predictions; a job that predicts must be told the models were trained
    in folds (the fold folders say so, but ``train.folds`` picks which checkpoints load)."""
    if cfg.train.folds > 1 and not (hasattr(task, "validation_predictions") and hasattr(task, "score_out_of_fold")):
        raise ConfigError(f"train.folds = {cfg.train.folds}: task {task.name} has no out-of-fold predictions "
                          "(validation_predictions, score_out_of_fold); train it with train.folds = 1")
    run = RunSettings.from_config(cfg, task.name)
    first = run.members(task.models[0])[0]
    in_folds = sorted(run.top_dir.glob(f"fold*/{first.name}"))
    if job != "train" and cfg.train.folds == 1 and not checkpoint_exists(first) and in_folds:
        raise ConfigError(f"{first}: not found, but {in_folds[0]} is: the models were trained in folds; set "
                          f"train.folds = {len(in_folds)} to predict with all of them (or train.fold = k for one)")
    if cfg.train.pseudo_label > 0 and not hasattr(task, "pseudo_labels"):
        raise ConfigError(f"train.pseudo_label = {cfg.train.pseudo_label}: task {task.name} does not pseudo-label "
                          "(pseudo_labels); set it to 0")
    if job == "train" and cfg.train.pseudo_label > 0 and fold_index(cfg.train) is not None:
        raise ConfigError(f"train.pseudo_label with train.fold = {cfg.train.fold}: pseudo-labels come from every "
                          "fold's models; train.fold = all")
    if job == "train" and cfg.train.pseudo_label > 0 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("train.pseudo_label: run the pseudo-labelling rounds in one process (not under torchrun)")
    if job != "train" and cfg.train.folds > 1:
        for k, path in enumerate(run.members(task.models[0])):
            if not path.is_file():
                raise ConfigError(f"{path}: not found; train that fold first (train.py train.folds = "
                                  f"{cfg.train.folds} train.fold = {k}, or train.resume = true for every missing one)")


def train_round(task: Task, cfg, only: str | None = None) -> list[dict]:
    """The task's models, once, or once per fold."""
    return cross_validate(task, cfg, only) if cfg.train.folds > 1 else task.train(cfg, only)


def pseudo_labels_path(cfg, task_name: str) -> Path:
    return RunSettings.from_config(cfg, task_name).top_dir / "pseudo_labels.csv"


def labelling_plan(cfg) -> dict:
    """What round 1's labels depend on beside the data: the threshold and round 1's fold plan. It is written
    beside ``pseudo_labels.csv`` (``.json``), and a resumed run reuses only labels of its own plan."""
    return dict(fold_plan(cfg), threshold=cfg.train.pseudo_label, pseudo_labelled=0)


def labels_written_for(cfg, task_name: str) -> bool:
    plan = pseudo_labels_path(cfg, task_name).with_suffix(".json")
    return plan.is_file() and json.loads(plan.read_text()) == labelling_plan(cfg)


def read_pseudo_labels(cfg, task_name: str) -> pd.DataFrame:
    """Round 1's pseudo-labels (``id`` and the task's label columns) for round 2: what a task's ``train`` adds to
    its training events. In folds, fold k's own: those round 1's fold k model made."""
    labels = pd.read_csv(pseudo_labels_path(cfg, task_name), dtype={"id": str})
    if "fold" not in labels.columns:
        return labels
    k = fold_index(cfg.train)
    if k is None:
        raise ConfigError(f"{pseudo_labels_path(cfg, task_name)}: the pseudo-labels of fold models are read one fold "
                          "at a time (train.fold = k)")
    return labels[labels["fold"] == k].drop(columns="fold")


def pseudo_positions(cfg, task_name: str, ids: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """Round 1's pseudo-labels for this run (``read_pseudo_labels``) and the position of each in ``ids``, the
    test events as the task reads them (a task calls it in round 2, ``train.pseudo_label`` > 0). A label of an
    event not there is an error naming the labels file: the test data changed since round 1."""
    labels = read_pseudo_labels(cfg, task_name)
    where = {i: k for k, i in enumerate(ids)}
    missing = [i for i in labels["id"] if i not in where]
    if missing:
        raise DataError(f"{pseudo_labels_path(cfg, task_name)}: {len(missing)} events not in the test data (e.g. "
                        f"{missing[0]!r}): it changed since round 1; train again without train.resume")
    return labels, np.array([where[i] for i in labels["id"]], dtype=int)


def pseudo_label(task: Task, cfg, only: str | None = None) -> list[dict]:
    """``train.pseudo_label`` = t: round 1 (without pseudo-labels, into ``<checkpoint_dir>/round1/``); its
    predictions of the test data, as generate_submission.py makes them; the test events it calls with confidence
    >= t, as the task picks them (``task.pseudo_labels``), written with t to ``<task>/pseudo_labels.csv``; then
    round 2 from scratch in the usual place, the task adding those events to its training events. In folds,
    each fold's round-1 model labels the test data for the same fold's round 2 (``fold`` column): a label made
    by a model that trained on fold k would carry fold k into the model scored on it. With ``train.resume``
    and labels of the same plan written (``labelling_plan``), round 1 is not run again and round 2 resumes."""
    labels_path, threshold = pseudo_labels_path(cfg, task.name), cfg.train.pseudo_label
    resuming = cfg.train.resume and labels_written_for(cfg, task.name)
    if not resuming:
        first = cfg.with_values({"train.pseudo_label": 0.0, "train.pseudo_labelled": 0,
                                 "train.checkpoint_dir": str(Path(cfg.train.checkpoint_dir) / "round1")})
        print(f"pseudo-labelling, round 1 (no pseudo-labels): {first.train.checkpoint_dir}")
        train_round(task, first, only)
        rt, parts = make_runtime(cfg.train), []
        for k in range(cfg.train.folds) if cfg.train.folds > 1 else [None]:
            by = first if k is None else first.with_values({"train.fold": str(k)})
            predicted = task.predict(by, rt)
            chosen = task.pseudo_labels(by, predicted, threshold)
            parts.append(chosen if k is None else chosen.assign(fold=k))
            print(f"pseudo-labels{'' if k is None else f' for fold{k}'}: {len(chosen)} of {len(predicted.table)} "
                  f"test events called with confidence >= {threshold}")
        write_csv(pd.concat(parts, ignore_index=True).assign(threshold=threshold), labels_path, float_format="%.7g")
        write_text(labels_path.with_suffix(".json"), json.dumps(labelling_plan(cfg)))  # last: the labels are whole
        print(f"pseudo-labels: {labels_path}")
    labels = pd.read_csv(labels_path)
    n = len(labels)  # in folds: all folds' rows together
    print(f"pseudo-labelling, round 2: training again with the {n} pseudo-labelled test events"
          + (" (each fold with its own: " + ", ".join(f"fold{k} {c}" for k, c in labels["fold"].value_counts(
              sort=False).sort_index().items()) + ")" if "fold" in labels else ""))
    return train_round(task, cfg.with_values({"train.pseudo_labelled": n, "train.resume": resuming}), only)


def fold_plan(cfg) -> dict:
    """What makes a fold's models what they are, beside the data: a finished fold of another plan is not
    reused by a resumed run."""
    return dict(folds=cfg.train.folds, seed=cfg.train.seed, pseudo_labelled=cfg.train.pseudo_labelled,
                validation=cfg.train.fold_validation)


def cross_validate(task: Task, cfg, only: str | None = None) -> list[dict]:
    """``train.folds`` = K: train each fold's models in ``fold<k>/`` (or just ``train.fold``), then write that
    fold's validation predictions (``oof.csv``) and ``done.json`` (its plan and each model's summary). With
    ``train.resume`` a fold done under the same plan with the models asked for is skipped, and one started
    under it resumes where it stopped; any other fold is trained from scratch. Once every fold is done: the
    whole out-of-fold table and ``cv.json`` (each model's validation metric per fold, mean and spread)."""
    top, folds, plan = RunSettings.from_config(cfg, task.name).top_dir, cfg.train.folds, fold_plan(cfg)
    chosen = fold_index(cfg.train)
    wanted = [only] if only else None
    results = []
    with training_runtime(cfg.train) as rt:  # under torchrun: one process group for every fold
        log = print if rt.dist.main else (lambda *a, **k: None)
        for k in range(folds) if chosen is None else [chosen]:
            folder = top / f"fold{k}"
            done = json.loads((folder / "done.json").read_text()) if (folder / "done.json").is_file() else {}
            started = json.loads((folder / "plan.json").read_text()) if (folder / "plan.json").is_file() else {}
            same = cfg.train.resume and done.get("plan") == plan
            if same and (wanted is None or set(wanted) <= {s["kind"] for s in done["summaries"]}):
                log(f"fold{k} ({k + 1} of {folds}): finished before ({folder / 'done.json'}); skipped")
                continue
            log(f"fold{k} ({k + 1} of {folds}): scored on fold {k}; trained on the others, "
                + ("validated on a split of them" if plan["validation"] == "inner" else f"validated on fold {k}"))
            resume = cfg.train.resume and started == plan
            if rt.dist.main:
                write_text(folder / "plan.json", json.dumps(plan))
            summaries = task.train(cfg.with_values({"train.fold": str(k), "train.resume": resume}), only)
            results += summaries
            if rt.dist.main:
                table = task.validation_predictions(cfg.with_values({"train.fold": str(k)}), make_runtime(cfg.train))
                table.insert(0, "fold", k)
                write_csv(table, folder / "oof.csv", float_format="%.7g")
                kept = [s for s in done.get("summaries", []) if done.get("plan") == plan
                        and s["kind"] not in {t["kind"] for t in summaries}]  # --only: the others stay recorded
                write_text(folder / "done.json", json.dumps(dict(plan=plan, summaries=kept + summaries), indent=1,
                                                            default=float))
            if rt.dist.enabled:
                torch.distributed.barrier()  # the next fold starts once rank 0 has written this one
        if rt.dist.main:
            summarize_folds(task, top, folds, plan)
    return results


def spread(values: list[float]) -> dict:
    """Per-fold values and their mean, std, min and max over the folds that have one (a fold of one class has no
    AUC: NaN, left out of the summary)."""
    v = np.array(values, float)
    ok = v[np.isfinite(v)]
    stats = [float(f(ok)) if len(ok) else float("nan") for f in (np.mean, np.std, np.min, np.max)]
    return dict(per_fold=v.tolist(), **dict(zip(("mean", "std", "min", "max"), stats)))


def summarize_folds(task: Task, top: Path, folds: int, plan: dict) -> dict | None:
    """With every fold done under ``plan``: ``oof.csv`` (each training event predicted once, by the fold that did
    not train on it) and ``cv.json``, printed; None while some fold is missing. ``cv.json`` holds the task's
    scores of the out-of-fold table (``out_of_fold``: each fold's, their spread, and all folds pooled) beside
    each model's validation metric (``models``: what each chose its epoch on; with ``inner`` not the fold)."""
    done = [top / f"fold{k}" / "done.json" for k in range(folds)]
    finished = [p.is_file() and json.loads(p.read_text()).get("plan") == plan for p in done]
    if not all(finished):
        print(f"folds done: {sum(finished)} of {folds}; the out-of-fold scores follow the last")
        return None
    oof = pd.concat([pd.read_csv(p.with_name("oof.csv"), dtype={"id": str}) for p in done], ignore_index=True)
    write_csv(oof, top / "oof.csv", float_format="%.7g")
    per_model: dict[str, list] = {}
    for p in done:
        for summary in json.loads(p.read_text())["summaries"]:
            per_model.setdefault(summary["kind"], []).append(summary)
    models = {kind: dict(metric=rows[0].get("metric_name", "metric"), **spread([r["best"] for r in rows]))
              for kind, rows in per_model.items()}
    by_fold = [task.score_out_of_fold(oof[oof["fold"] == k]) for k in range(folds)]
    pooled = task.score_out_of_fold(oof)
    scored = {name: dict(spread([f[name] for f in by_fold]), pooled=float(value)) for name, value in pooled.items()}
    cv = dict(plan, out_of_fold=scored, models=models)
    write_text(top / "cv.json", json.dumps(cv, indent=1))
    print(f"out of fold ({folds} folds, {SCORED[plan['validation']]}): "
          + "; ".join(f"{name} {c['pooled']:.4f} (folds {c['min']:.4f} to {c['max']:.4f})" for name, c in scored.items()))
    for kind, c in models.items():
        print(f"{kind}'s validation {c['metric']} ({VALIDATED[plan['validation']]}): "
              f"{c['mean']:.4f} ± {c['std']:.4f} (folds {c['min']:.4f} to {c['max']:.4f})")
    print(f"out-of-fold predictions of {len(oof)} training events: {top / 'oof.csv'}")
    return cv


def finished_folds(cfg, task_name: str, verbose: bool = False) -> tuple[Path, dict] | None:
    """The task's checkpoint folder and its ``cv.json``, for a report of the fold ensemble that ``cfg`` describes;
    None for one model, one fold's model (``train.fold``), folds not all done, or folds of another plan (said
    when ``verbose``)."""
    top = RunSettings.from_config(cfg, task_name).top_dir
    path = top / "cv.json"
    if cfg.train.folds <= 1 or fold_index(cfg.train) is not None or not path.is_file():
        return None
    cv = json.loads(path.read_text())
    plan = fold_plan(cfg)
    if any(cv.get(k) != v for k, v in plan.items()):
        if verbose:
            print(f"{path}: written by folds of another plan (" + ", ".join(f"{k} {cv.get(k)}" for k in plan)
                  + "; asked for: " + ", ".join(f"{k} {v}" for k, v in plan.items()) + "); not reported")
        return None
    return top, cv


def out_of_fold_table(cfg, task_name: str) -> tuple[pd.DataFrame, Path] | None:
    """The whole ``oof.csv`` of the finished folds ``cfg`` describes (``finished_folds``), and its path; else None."""
    found = finished_folds(cfg, task_name)
    path = found and found[0] / "oof.csv"
    if not path or not path.is_file():
        return None
    return pd.read_csv(path, dtype={"id": str}).drop_duplicates("id"), path


def add_folds(result: Report, cv: dict, path: Path) -> None:
    """The cross-validated figures (``cv.json``) in a report of the fold ensemble: the out-of-fold scores per fold
    and pooled, each model's validation metric per fold, and a warning that the ensemble's own validation
    figures are not held out."""
    result.metrics["cross_validation"] = cv
    folds, validation = [f"fold {k}" for k in range(cv["folds"])], cv.get("validation", "fold")
    scored = cv.get("out_of_fold", {})  # absent from a cv.json of an older version
    if scored:
        result.tables.append((f"Out of fold ({cv['folds']} folds, {SCORED[validation]}; {path})",
                              ["score", "pooled", "mean", "std", *folds],
                              [[name, c["pooled"], c["mean"], c["std"], *c["per_fold"]] for name, c in scored.items()]))
    result.tables.append((f"Validation metric of each fold model ({VALIDATED[validation]})",
                          ["model", "metric", "mean", "std", *folds],
                          [[kind, c["metric"], c["mean"], c["std"], *c["per_fold"]] for kind, c in cv["models"].items()]))
    result.closing.append(f"the {cv['folds']} fold models predicted together; every validation event above was in "
                          "the training folds of some of them. "
                          + ("Read the out-of-fold scores instead (oof.csv, " + SCORED[validation] + "): "
                             + "; ".join(f"{name} {c['pooled']:.4f}" for name, c in scored.items())
                             if scored else f"Read the out-of-fold table instead ({path.with_name('oof.csv')})"))

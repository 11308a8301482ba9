"""The task registry and the two contracts a detector package fills: ``Task`` and ``Objective``.

To add a detector ``foo`` (``docs/guides/new-detector.md`` walks through one;
``tests/toy_detector`` is a whole one in ~60 lines):

1. make a package with a ``config.ini`` holding its sections (its data
   section, one section per model with the keys of ``engine.ModelSettings``,
   its outputs), and a ``task.py`` whose module-level ``TASK`` satisfies
   ``Task`` below;
2. give each model an objective (a frozen dataclass satisfying ``Objective``)
   and train it with ``engine.fit``; register any network of its own with
   ``models.register_model``;
3. register it: add ``"foo": "idao.foo.task"`` to ``TASKS``, or, for a
   package outside idao, set ``IDAO_TASKS=foo=mypackage.foo.task``.

The jobs themselves (checks, adopting the checkpoint's settings, writing the
predictions CSV and the report folder) are the core's: ``idao/jobs.py``.
A task package imports only the core (``idao.*`` outside the task folders),
never another task; the core reaches a task only through ``get_task`` (a lazy
import by name), so there is no import circle.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from .errors import ConfigError

# task name -> module holding its TASK; the folder of the module is also where its config.ini lives
TASKS = {"cygno": "idao.cygno.task", "damic": "idao.damic.task", "egamma": "idao.egamma.task",
         "icecube": "idao.icecube.task"}
ALIASES = {"idao": "cygno"}  # task.name = idao keeps working
PLUGINS_VARIABLE = "IDAO_TASKS"  # "name=module,name=module": detectors that live outside this package


def registered() -> dict[str, str]:
    """The built-in tasks and those named in ``$IDAO_TASKS``."""
    tasks = dict(TASKS)
    for item in os.environ.get(PLUGINS_VARIABLE, "").split(","):
        name, sep, module = item.partition("=")
        if item.strip() and (not sep or not name.strip() or not module.strip()):
            raise ConfigError(f"{PLUGINS_VARIABLE} = {os.environ[PLUGINS_VARIABLE]!r}: expected name=module pairs, "
                              "e.g. foo=mypackage.foo.task")
        if sep:
            tasks[name.strip()] = module.strip()
    return tasks


def task_folders() -> list[Path]:
    """The folder of every registered task's module: where its ``config.ini`` lives (found without importing)."""
    folders = []
    for name, module in registered().items():
        if module.startswith("idao."):  # a built-in task: no import needed to find its folder
            folders.append(Path(__file__).resolve().parent / module.split(".")[1])
            continue
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            spec = None
        if spec is None or spec.origin is None:
            raise ConfigError(f"{PLUGINS_VARIABLE}: task {name!r}: module {module!r} not found on the Python path")
        folders.append(Path(spec.origin).parent)
    return folders


@dataclass
class Predictions:
    """What a task's ``predict`` hands the core, which checks and writes it (``jobs.generate``)."""

    table: pd.DataFrame  # one row per item predicted: the CSV a user hands on
    summary: str  # what the closing line says after "wrote <path>: "
    float_format: str = "%.7g"  # of the CSV and its companions
    companions: dict[str, pd.DataFrame] = field(default_factory=dict)  # suffix -> table written beside the CSV
    notes: list[str] = field(default_factory=list)  # recorded under the config beside the CSV (estimated priors)


@dataclass
class Report:
    """What a task's ``evaluate`` hands the core, which writes the report folder (``reporting.write_report``)."""

    title: str
    headline: str  # the numbers a user came for, first on the page
    log_text: str
    metrics: dict
    images: list[Path]
    tables: list[tuple[str, list[str], list[list]]] = field(default_factory=list)
    banner: str = ""  # e.g. SIMULATED DATA
    closing: list[str] = field(default_factory=list)  # lines printed after the log (CYGNO's simulated scores)


class Task(Protocol):
    """One detector: its settings, its data, its models, and what its three jobs do that no other task does."""

    name: str
    sections: tuple[str, ...]  # the config sections it owns (its data, models and outputs)
    models: tuple[str, ...]  # the models train.py can train, in order (--only picks one)
    path_keys: tuple[str, ...]  # "section.key" settings holding paths (resolved against their config file)
    predictions_key: str  # "section.key" of the CSV generate_submission.py writes
    results_key: str  # "section.key" of the folder report.py writes
    remembered: tuple[str, ...]  # settings generate / report take from the checkpoint unless the user set them
    must_match: tuple[str, ...]  # of those, the ones a user may not set to another value than the checkpoint's

    def check(self, cfg) -> None:
        """Every setting (ranges, choices, combinations), before any work: raise ``ConfigError`` (``idao/schema.py``)."""

    def check_train(self, cfg) -> None:
        """What training reads: the training data, or that it can be simulated where it is absent."""

    def check_generate(self, cfg) -> None:
        """What generate_submission.py reads: the checkpoints it loads, the data it predicts."""

    def check_report(self, cfg) -> None:
        """What report.py reads: the checkpoints, the training data (its validation split), labelled test data."""

    def checkpoint(self, cfg) -> Path:
        """The checkpoint whose recorded config generate and report adopt ``remembered`` settings from."""

    def ensure_data(self, cfg) -> Path | None:
        """The training data's location; with none there, simulate a small demo dataset first (and say so)."""

    def ensure_test_data(self, cfg) -> None:
        """The data generate_submission.py predicts; with none there, simulated first (and said so)."""

    def train(self, cfg, only: str | None = None) -> list[dict]:
        """Train the default models (or just ``only``); checkpoints go to ``<train.checkpoint_dir>/<name>/``."""

    def predict(self, cfg, rt) -> Predictions:
        """Predict the test data with the best checkpoints; validate the task's own format rules."""

    def evaluate(self, cfg, rt, folder: Path) -> Report:
        """Metrics of the validation split and every labelled test set, with the figures drawn into ``folder``."""

    # Optional: ``validation_predictions(cfg, rt) -> DataFrame``: the trained models' predictions of the events
    # their split scores (``Split.scored``: in a fold run, the fold they left out), one row each (an id, the
    # truth, the prediction), as the report scores them. With it the core trains in folds (``train.folds``) and
    # writes the out-of-fold table; without it folds are refused. It comes with
    # ``score_out_of_fold(table) -> {name: value}``: the headline figures of such rows (one fold's, or all folds'),
    # recorded in ``cv.json``.
    # Optional: ``pseudo_labels(cfg, predicted: Predictions, threshold) -> DataFrame``: the test events to add
    # (an ``id`` and the task's label columns), chosen from round 1's predictions; the task's ``train`` adds them
    # (``folds.pseudo_positions``) when ``train.pseudo_label`` > 0. Without it pseudo-labelling is refused.


class Objective(Protocol):
    """What one model learns; a frozen dataclass, saved in the checkpoint and rebuilt from it for inference.

    ``data`` is whatever the task trains on: it needs ``len(data)`` and random
    access by index through ``inputs``/``targets``. ``inputs`` is the batch
    builder (collate): it may return a tensor, or a dict of tensors (padded
    sequences and their masks, say) for a model that takes one.
    """

    metric_name: str  # printed beside the validation metric ("AUC", "MAE keV", "log-loss")
    higher_is_better: bool  # how ``metrics.better`` compares two validation values
    num_outputs: int

    def draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Per-item random draws for one global batch (augmentation), from the epoch's generator."""

    def inputs(self, data, idx: np.ndarray, rt, draws: torch.Tensor | None = None) -> Any:
        """The model input of items ``idx``, on ``rt.device``; augmented when training ``draws`` are given."""

    def targets(self, data, idx: np.ndarray, draws: torch.Tensor | None = None) -> torch.Tensor:
        """The loss targets of items ``idx`` (as augmented by ``draws``)."""

    def initial_bias(self, data) -> list[float]:
        """The output layer's starting bias (the engine zeroes its weights): e.g. the mean target."""

    def loss_fn(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The training loss of raw outputs ``out`` against ``targets``."""

    def predict(self, out: np.ndarray) -> np.ndarray:
        """Raw outputs -> the prediction users see (probabilities, keV, boxes...)."""

    def metric(self, pred: np.ndarray, data) -> float:
        """The validation metric of ``predict``'s output; it picks the best epoch and drives early stopping."""

    # Optional: ``test_views(x) -> list`` of inputs whose raw outputs are averaged at inference
    # (test-time augmentation); without it the engine predicts ``x`` alone.
    # Optional: ``scores(out, y) -> {name: mean}`` per-item means (accuracy, loss...) logged each epoch as
    # ``train_<name>`` (on the training batches as trained) and ``val_<name>``.
    # Optional: ``in_chans`` (default 1), the image channels a timm model is built for.
    # The data may offer ``epoch_order(generator) -> indices`` (e.g. chunk-aware shuffling of an HDF5 file).


class TaskDefaults:
    """What most tasks share, to inherit: nothing adopted from the checkpoint, the first model's best checkpoint
    as the one that records the training settings, no demo data of its own."""

    remembered: tuple[str, ...] = ()
    must_match: tuple[str, ...] = ()

    def checkpoint(self, cfg) -> Path:
        from .engine import RunSettings

        return RunSettings.from_config(cfg, self.name).members(self.models[0])[0]

    def ensure_data(self, cfg) -> Path | None:
        return None

    def ensure_test_data(self, cfg) -> None:
        """What ``generate_submission.py`` predicts; with none there, simulated first (by default where the
        training data's simulation puts its test part)."""
        self.ensure_data(cfg)


def canonical_name(name: str) -> str:
    name = ALIASES.get(name, name)
    tasks = registered()
    if name not in tasks:
        raise ConfigError(f"task.name = {name!r}: expected one of {', '.join([*tasks, *ALIASES])}")
    return name


def get_task(name: str) -> Task:
    """The task called ``name`` (or an alias of it), imported on first use."""
    return importlib.import_module(registered()[canonical_name(name)]).TASK

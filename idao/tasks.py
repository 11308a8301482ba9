"""The task registry and the two contracts a detector package fills: ``Task`` and ``Objective``.

To add a detector ``foo``:

1. make ``idao/foo/`` with a ``config.ini`` holding its sections (its data
   section, one section per model with the keys of ``engine.ModelSettings``,
   its outputs), and a ``task.py`` whose module-level ``TASK`` satisfies
   ``Task`` below;
2. give each model an objective (a frozen dataclass satisfying ``Objective``)
   and train it with ``engine.fit``; register any network of its own with
   ``models.register_model``;
3. add ``"foo": "idao.foo.task"`` to ``TASKS``.

A task package imports only the core (``idao.*`` outside the task folders),
never another task; the core reaches a task only through ``get_task`` (a lazy
import by name), so there is no import circle.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from .errors import ConfigError

# task name -> module holding its TASK; the folder of the module is also where its config.ini lives
TASKS = {"cygno": "idao.cygno.task", "damic": "idao.damic.task", "egamma": "idao.egamma.task",
         "icecube": "idao.icecube.task"}
ALIASES = {"idao": "cygno"}  # task.name = idao keeps working


class Task(Protocol):
    """One detector: its config sections, its demo data and the three jobs the scripts run."""

    name: str
    sections: tuple[str, ...]  # the config sections it owns (its data, models and outputs)
    models: tuple[str, ...]  # the models train.py trains, in order (--only picks one)
    path_keys: tuple[str, ...]  # "section.key" settings holding paths (resolved against their config file)

    def check(self, cfg, job: str) -> None:
        """Every setting, and the paths ``job`` (train, generate, report) reads and writes, checked before any
        expensive work: raise ``ConfigError``/``DataError`` (rules: ``idao/schema.py``)."""

    def ensure_data(self, cfg) -> Path:
        """The training data's location; with none there, simulate a small demo dataset first (and say so)."""

    def train(self, cfg, only: str | None = None) -> list[dict]:
        """Train ``models`` (or just ``only``); checkpoints go to ``<train.checkpoint_dir>/<name>/``."""

    def generate(self, cfg) -> Any:
        """Predict the test data with the best checkpoints; write the task's output CSV atomically."""

    def report(self, cfg) -> dict:
        """Metrics and plots of the validation split and every labelled test set; return the metrics."""


class Objective(Protocol):
    """What one model learns; a frozen dataclass, saved in the checkpoint and rebuilt from it for inference.

    ``data`` is whatever the task trains on: it needs ``len(data)`` and random
    access by index through ``inputs``/``targets``. ``inputs`` is the batch
    builder (collate): it may return a tensor, or a dict of tensors (padded
    sequences and their masks, say) for a model that takes one.
    """

    metric_name: str  # printed beside the validation metric ("AUC", "MAE keV", "log-loss")
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

    def better(self, new: float, best: float | None) -> bool:
        """Whether ``new`` beats ``best`` (None: nothing yet)."""

    # Optional: ``test_views(x) -> list`` of inputs whose raw outputs are averaged at inference
    # (test-time augmentation); without it the engine predicts ``x`` alone.
    # Optional: ``scores(out, y) -> {name: mean}`` per-item means (accuracy, loss...) logged each epoch as
    # ``train_<name>`` (on the training batches as trained) and ``val_<name>``.
    # Optional: ``in_chans`` (default 1), the image channels a timm model is built for.
    # The data may offer ``epoch_order(generator) -> indices`` (e.g. chunk-aware shuffling of an HDF5 file).


def canonical_name(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in TASKS:
        raise ConfigError(f"task.name = {name!r}: expected one of {', '.join([*TASKS, *ALIASES])}")
    return name


def get_task(name: str) -> Task:
    """The task called ``name`` (or an alias of it), imported on first use."""
    return importlib.import_module(TASKS[canonical_name(name)]).TASK

"""Settings checked whole before any work: value ranges, choices and the paths a job reads and writes.

Each task keeps its rules next to its defaults (``RULES`` in its ``task.py``);
the rules every run shares (``[train]``, and every model section) live here.
A broken rule is one ``ConfigError`` naming the key, its value and what is
allowed, raised before any simulation, decoding or training.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # low itself not allowed
    open_high: bool = False

    def check(self, key: str, value) -> None:
        too_low = self.low is not None and (value < self.low or (self.open_low and value == self.low))
        too_high = self.high is not None and (value > self.high or (self.open_high and value == self.high))
        if too_low or too_high:
            lo = "" if self.low is None else f"{self.low} {'<' if self.open_low else '<='} "
            hi = "" if self.high is None else f" {'<' if self.open_high else '<='} {self.high}"
            raise ConfigError(f"{key} = {value!r}: expected {lo}{key.rpartition('.')[2]}{hi}")


@dataclass(frozen=True)
class Choice:
    options: tuple

    def check(self, key: str, value) -> None:
        if value not in self.options:
            raise ConfigError(f"{key} = {value!r}: expected one of {', '.join(map(str, self.options))}")


FRACTION = Range(0, 1, open_low=True, open_high=True)
COUNT = Range(1)
NON_NEGATIVE = Range(0)
MODEL_RULES = {"epochs": COUNT, "batch_size": COUNT, "lr": Range(0, open_low=True), "weight_decay": NON_NEGATIVE,
               "warmup_epochs": NON_NEGATIVE, "patience": NON_NEGATIVE, "drop_rate": Range(0, 1, open_high=True)}
TRAIN_RULES = {"train.seed": NON_NEGATIVE, "train.threads": NON_NEGATIVE, "train.loader_workers": NON_NEGATIVE,
               "train.folds": Range(1, 20), "train.pseudo_label": Range(0, 1, open_high=True),
               "train.fold_validation": Choice(("inner", "fold"))}


def check_rules(cfg, rules: dict, model_sections=()) -> None:
    """Apply ``{"section.key": rule}`` and the model rules to every section in ``model_sections``."""
    all_rules = {**TRAIN_RULES, **rules, **{f"{s}.{k}": r for s in model_sections for k, r in MODEL_RULES.items()}}
    for key, rule in all_rules.items():
        section, _, name = key.rpartition(".")
        rule.check(key, getattr(cfg.section(section), name))
    fold = str(cfg.train.fold).strip()
    if fold != "all" and not (fold.isdigit() and int(fold) < cfg.train.folds):
        raise ConfigError(f"train.fold = {fold!r}: expected all or a fold number below train.folds "
                          f"({cfg.train.folds})")
    if 0 < cfg.train.pseudo_label < 0.5:
        raise ConfigError(f"train.pseudo_label = {cfg.train.pseudo_label}: expected 0 (off) or a confidence from 0.5 "
                          "up to 1 (exclusive)")
    device = str(cfg.train.device)
    if device not in ("auto", "cpu") and not (device == "cuda" or device.startswith("cuda:")):
        raise ConfigError(f"train.device = {device!r}: expected auto, cpu, cuda or cuda:N")


def check_readable(path: str | os.PathLike, key: str, kind: str = "file or folder") -> Path:
    """An input that must exist and be readable."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: {kind} not found ({key})")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise ConfigError(f"{path}: not readable, permission denied ({key})")
    return path


def check_writable_dir(path: str | os.PathLike, key: str) -> Path:
    """An output folder that exists and is writable, or can be created: its nearest existing parent must be a
    writable folder (not a file, not a read-only mount)."""
    path = Path(path).absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{path}: cannot be created, {probe} is a file ({key})")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{path}: not writable, permission denied on {probe} ({key})")
    return path

"""The CYGNO / IDAO 2021 task (``task.name = cygno``, alias ``idao``): its settings, checks and three jobs."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..models import check_model_name
from .objectives import OBJECTIVES, make_objective
from .postprocess import BALANCES, MODES
from .report import report
from .submit import generate
from .train import ensure_dataset, train

CROP_MODES = ("centre", "spot")


class CygnoTask:
    name = "cygno"
    sections = ("data", "classifier", "regressor", "submission", "report")
    models = tuple(OBJECTIVES)
    path_keys = ("data.root", "data.cache_dir", "submission.output", "submission.folders", "report.results_dir")

    def check(self, cfg) -> None:
        data = cfg.data
        if data.crop_mode not in CROP_MODES:
            raise ConfigError(f"data.crop_mode = {data.crop_mode!r}: expected one of {', '.join(CROP_MODES)}")
        if data.on_bad_file not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_file = {data.on_bad_file!r}: expected error or skip")
        sub = cfg.submission
        if sub.postprocess not in MODES:
            raise ConfigError(f"submission.postprocess = {sub.postprocess!r}: expected one of {', '.join(MODES)}")
        if sub.balance not in BALANCES or (sub.balance == "pair" and sub.postprocess != "light"):
            raise ConfigError(f"submission.balance = {sub.balance!r}: expected none, split, or pair "
                              "(pair needs submission.postprocess = light)")
        if sub.tta not in range(1, 9):
            raise ConfigError(f"submission.tta = {sub.tta}: expected 1 to 8 symmetries")
        for kind in self.models:
            check_model_name(getattr(cfg, kind).model)
            make_objective(kind, cfg)

    def ensure_data(self, cfg) -> Path:
        return ensure_dataset(cfg.data, cfg.train.progress)

    def train(self, cfg, only: str | None = None) -> list[dict]:
        return train(cfg, (only,) if only else self.models)

    def generate(self, cfg):
        return generate(cfg)

    def report(self, cfg) -> dict:
        return report(cfg)


TASK = CygnoTask()

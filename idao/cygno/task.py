"""The CYGNO / IDAO 2021 task (``task.name = cygno``, alias ``idao``): its settings, checks and three jobs."""
from __future__ import annotations

import sys
from pathlib import Path

from ..checkpoint import load_checkpoint
from ..engine import RunSettings
from ..errors import ConfigError
from ..models import check_model_name
from ..schema import COUNT, FRACTION, NON_NEGATIVE, Choice, Range, check_readable, check_rules, check_writable_dir
from .dataset import check_root
from .images import IMAGE_SIZE
from .light import LIGHT_MODEL_FILE
from .objectives import LOSSES, OBJECTIVES
from .postprocess import BALANCES, MODES
from .report import report
from .submit import generate, submission_models
from .train import ensure_dataset, train

CROP_MODES = ("centre", "spot")
RULES = {  # beside the defaults in config.ini; see idao/schema.py
    "data.simulate_scale": Range(0, 10), "data.simulate_seed": NON_NEGATIVE, "data.crop": Range(16, IMAGE_SIZE),
    "data.crop_mode": Choice(CROP_MODES), "data.bin": Range(1, 16), "data.workers": COUNT,
    "data.on_bad_file": Choice(("error", "skip")), "data.val_fraction": FRACTION,
    "classifier.light_min": Range(0, open_low=True), "classifier.light_max": Range(0, open_low=True),
    "regressor.light_min": Range(0, open_low=True), "regressor.light_max": Range(0, open_low=True),
    "regressor.target": Choice(("log", "linear")), "regressor.loss": Choice(tuple(LOSSES)),
    "submission.postprocess": Choice(MODES), "submission.balance": Choice(BALANCES),
    "submission.light_weight": NON_NEGATIVE, "submission.tta": Range(1, 8),
    "submission.tta_fraction": Range(0, 1, open_low=True), "submission.batch_size": COUNT,
}


class CygnoTask:
    name = "cygno"
    sections = ("data", "classifier", "regressor", "submission", "report")
    models = tuple(OBJECTIVES)
    path_keys = ("data.root", "data.cache_dir", "submission.output", "submission.folders", "report.results_dir")

    def check(self, cfg, job: str) -> None:
        check_rules(cfg, RULES, self.models)
        data, sub = cfg.data, cfg.submission
        if data.crop % data.bin:
            raise ConfigError(f"data.crop = {data.crop}: must be a multiple of data.bin ({data.bin})")
        for kind in self.models:
            section = getattr(cfg, kind)
            if section.light_min > section.light_max:
                raise ConfigError(f"{kind}.light_min = {section.light_min} is above {kind}.light_max = "
                                  f"{section.light_max}")
            check_model_name(section.model)
        if sub.balance == "pair" and sub.postprocess != "light":
            raise ConfigError("submission.balance = 'pair' needs submission.postprocess = light")
        run = RunSettings.from_config(cfg, self.name)
        root = Path(data.root)
        if job == "train":
            if root.exists():
                check_readable(root, "data.root", "dataset folder")
            elif data.simulate_scale > 0:
                check_writable_dir(root.parent, "data.root (a dataset is simulated there)")
            else:
                check_root(root)
            check_writable_dir(run.checkpoint_dir, "train.checkpoint_dir")
        else:
            for kind in submission_models(sub) if job == "generate" else self.models:
                check_readable(run.path(kind, "best"), "train.checkpoint_dir", "checkpoint (run train.py first)")
            check_readable(run.checkpoint_dir / LIGHT_MODEL_FILE, "train.checkpoint_dir",
                           "light model (run train.py first)")
        if job == "generate":
            for folder in str(sub.folders).split(",") if sub.folders else ():
                check_readable(folder.strip(), "submission.folders", "folder")
            check_writable_dir(Path(sub.output).parent, "submission.output")
        if job in ("train", "report") and data.cache_dir:
            check_writable_dir(data.cache_dir, "data.cache_dir")
        if job == "report":
            check_readable(root, "data.root", "dataset folder (report.py scores the data the models trained on)")
            check_writable_dir(cfg.report.results_dir, "report.results_dir")
            trained_on = load_checkpoint(run.path("classifier", "best"))["config"].get("data", {}).get("root")
            if trained_on and Path(trained_on).resolve() != root.resolve():
                print(f"warning: the checkpoints were trained on {trained_on} but data.root is {root}: the "
                      "'validation' numbers are not a held-out split of that data", file=sys.stderr)

    def ensure_data(self, cfg) -> Path:
        return ensure_dataset(cfg.data, cfg.train.progress)

    def train(self, cfg, only: str | None = None) -> list[dict]:
        return train(cfg, (only,) if only else self.models)

    def generate(self, cfg):
        return generate(cfg)

    def report(self, cfg) -> dict:
        return report(cfg)


TASK = CygnoTask()

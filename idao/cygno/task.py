"""The CYGNO / IDAO 2021 task (``task.name = cygno``, alias ``idao``): its settings, checks and three jobs."""
from __future__ import annotations

from pathlib import Path

from ..checkpoint import check_checkpoint
from ..config import split_list
from ..engine import RunSettings
from ..errors import ConfigError
from ..models import check_model
from ..schema import COUNT, FRACTION, NON_NEGATIVE, Choice, Range, check_readable, check_rules, check_writable_dir
from ..tasks import TaskDefaults
from .dataset import check_root
from .images import IMAGE_SIZE
from .light import LIGHT_MODEL_FILE
from .objectives import LOSSES, OBJECTIVES
from .postprocess import BALANCES, MODES
from .report import evaluate, trained_models
from .submit import predict, submission_models
from .train import NAME, ensure_dataset, train

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
    "submission.tta_fraction": Range(0, 1, open_low=True),
}


def check_trained(cfg, kinds) -> None:
    """The best checkpoints of ``kinds`` and the light model train.py wrote beside them."""
    run = RunSettings.from_config(cfg, NAME)
    for kind in kinds:
        check_checkpoint(run.path(kind, "best"))
    check_readable(run.checkpoint_dir / LIGHT_MODEL_FILE, "train.checkpoint_dir", "light model (run train.py first)")


class CygnoTask(TaskDefaults):
    name = NAME
    sections = ("data", "classifier", "regressor", "submission", "report")
    models = tuple(OBJECTIVES)
    path_keys = ("data.root", "data.cache_dir", "submission.output", "submission.folders", "report.results_dir")
    predictions_key = "submission.output"
    results_key = "report.results_dir"
    # the report's validation split must be the one the models were validated on
    remembered = ("data.root", "data.val_fraction", "train.seed")
    must_match = ()

    def check(self, cfg) -> None:
        check_rules(cfg, RULES, self.models)
        data, sub = cfg.data, cfg.submission
        if data.crop % data.bin:
            raise ConfigError(f"data.crop = {data.crop}: must be a multiple of data.bin ({data.bin})")
        for kind in self.models:
            section = getattr(cfg, kind)
            if section.light_min > section.light_max:
                raise ConfigError(f"{kind}.light_min = {section.light_min} is above {kind}.light_max = "
                                  f"{section.light_max}")
            check_model(section, kind)
        if sub.balance == "pair" and sub.postprocess != "light":
            raise ConfigError("submission.balance = 'pair' needs submission.postprocess = light")

    def check_train(self, cfg) -> None:
        data, root = cfg.data, Path(cfg.data.root)
        if root.exists():
            check_readable(root, "data.root", "dataset folder")
        elif data.simulate_scale > 0:
            check_writable_dir(root.parent, "data.root (a dataset is simulated there)")
        else:
            check_root(root)
        if data.cache_dir:
            check_writable_dir(data.cache_dir, "data.cache_dir")

    def check_generate(self, cfg) -> None:
        check_trained(cfg, submission_models(cfg.submission))
        for folder in split_list(cfg.submission.folders):
            check_readable(folder, "submission.folders", "folder")

    def check_report(self, cfg) -> None:
        check_trained(cfg, ("classifier",) + tuple(k for k in trained_models(cfg) if k != "classifier"))
        check_readable(cfg.data.root, "data.root", "dataset folder (report.py scores the data the models trained on)")
        if cfg.data.cache_dir:
            check_writable_dir(cfg.data.cache_dir, "data.cache_dir")

    ensure_data = staticmethod(lambda cfg: ensure_dataset(cfg.data, cfg.train.progress))
    predict = staticmethod(predict)
    evaluate = staticmethod(evaluate)

    def train(self, cfg, only: str | None = None) -> list[dict]:
        """The models the configured submission runs (the regressor only for the modes that read its keV), or
        just ``only``."""
        return train(cfg, (only,) if only else submission_models(cfg.submission))


TASK = CygnoTask()

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
from .pseudo import pseudo_labels
from .report import evaluate, export_models, score_out_of_fold, validation_predictions
from .submit import predict, submission_models
from .train import NAME, ensure_dataset, train

CROP_MODES = ("centre", "spot")
RULES = {  # beside the defaults in config.ini; see idao/schema.py
    "cygno.simulate_scale": Range(0, 10), "cygno.simulate_seed": NON_NEGATIVE, "cygno.crop": Range(16, IMAGE_SIZE),
    "cygno.crop_mode": Choice(CROP_MODES), "cygno.bin": Range(1, 16), "cygno.workers": COUNT,
    "cygno.on_bad_file": Choice(("error", "skip")), "cygno.val_fraction": FRACTION,
    "cygno.classifier.light_min": Range(0, open_low=True), "cygno.classifier.light_max": Range(0, open_low=True),
    "cygno.regressor.light_min": Range(0, open_low=True), "cygno.regressor.light_max": Range(0, open_low=True),
    "cygno.regressor.target": Choice(("log", "linear")), "cygno.regressor.loss": Choice(tuple(LOSSES)),
    "cygno.submission.postprocess": Choice(MODES), "cygno.submission.balance": Choice(BALANCES),
    "cygno.submission.light_weight": NON_NEGATIVE, "cygno.submission.tta": Range(1, 8),
    "cygno.submission.tta_fraction": Range(0, 1, open_low=True), "cygno.submission.overlap": Choice(("auto", "on", "off")),
    "cygno.submission.bf16": Choice(("auto", "on", "off")),
}


def check_trained(cfg, kinds) -> None:
    """The best checkpoints of ``kinds`` and the light model train.py wrote beside them."""
    run = RunSettings.from_config(cfg, NAME)
    for kind in kinds:
        for path in run.members(kind):
            check_checkpoint(path)
    check_readable(run.checkpoint_dir / LIGHT_MODEL_FILE, "train.checkpoint_dir", "light model (run train.py first)")


class CygnoTask(TaskDefaults):
    name = NAME
    sections = ("cygno", "cygno.classifier", "cygno.regressor", "cygno.submission", "cygno.output")
    models = tuple(OBJECTIVES)
    path_keys = ("cygno.root", "cygno.cache_dir", "cygno.submission.folders", "cygno.output.submission",
                 "cygno.output.results_dir")
    predictions_key = "cygno.output.submission"
    results_key = "cygno.output.results_dir"
    # the report's validation split must be the one the models were validated on
    remembered = ("cygno.root", "cygno.val_fraction", "train.seed")
    must_match = ()

    def check(self, cfg) -> None:
        check_rules(cfg, RULES, [f"cygno.{kind}" for kind in self.models])
        cygno, sub = cfg.cygno, cfg.section("cygno.submission")
        if cygno.crop % cygno.bin:
            raise ConfigError(f"cygno.crop = {cygno.crop}: must be a multiple of cygno.bin ({cygno.bin})")
        for kind in self.models:
            section = cfg.section(f"cygno.{kind}")
            if section.light_min > section.light_max:
                raise ConfigError(f"cygno.{kind}.light_min = {section.light_min} is above cygno.{kind}.light_max = "
                                  f"{section.light_max}")
            check_model(section, f"cygno.{kind}")
        if cfg.train.pseudo_label > 0 and sub.postprocess == "none":
            raise ConfigError("train.pseudo_label needs submitted energy levels (pseudo-labels are chosen per level): "
                              "cygno.submission.postprocess = light, split or snap")
        if sub.balance == "pair" and sub.postprocess != "light":
            raise ConfigError("cygno.submission.balance = 'pair' needs cygno.submission.postprocess = light")

    def check_train(self, cfg) -> None:
        cygno, root = cfg.cygno, Path(cfg.cygno.root)
        if root.exists():
            check_readable(root, "cygno.root", "dataset folder")
        elif cygno.simulate_scale > 0:
            check_writable_dir(root.parent, "cygno.root (a dataset is simulated there)")
        else:
            check_root(root)
        if cygno.cache_dir:
            check_writable_dir(cygno.cache_dir, "cygno.cache_dir")

    def check_generate(self, cfg) -> None:
        check_trained(cfg, submission_models(cfg.section("cygno.submission")))
        for folder in split_list(cfg.section("cygno.submission").folders):
            check_readable(folder, "cygno.submission.folders", "folder")

    def check_report(self, cfg) -> None:
        check_trained(cfg, ("classifier",))  # the regressor is reported when there is one
        check_readable(cfg.cygno.root, "cygno.root", "dataset folder (report.py scores the data the models trained on)")
        if cfg.cygno.cache_dir:
            check_writable_dir(cfg.cygno.cache_dir, "cygno.cache_dir")

    ensure_data = staticmethod(lambda cfg: ensure_dataset(cfg.cygno, cfg.train.progress))

    def ensure_test_data(self, cfg) -> None:
        """The test splits to predict, simulated where absent; the user's own folders
        (``cygno.submission.folders``) need no simulated dataset."""
        if not cfg.section("cygno.submission").folders:
            self.ensure_data(cfg)

    predict = staticmethod(predict)
    evaluate = staticmethod(evaluate)
    validation_predictions = staticmethod(validation_predictions)
    score_out_of_fold = staticmethod(score_out_of_fold)
    pseudo_labels = staticmethod(pseudo_labels)
    export_models = staticmethod(export_models)

    def train(self, cfg, only: str | None = None) -> list[dict]:
        """The models the configured submission runs (the regressor only for the modes that read its keV), or
        just ``only``."""
        return train(cfg, (only,) if only else submission_models(cfg.section("cygno.submission")))


TASK = CygnoTask()

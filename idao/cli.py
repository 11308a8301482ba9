"""The three scripts' command line: settings, task dispatch, and user errors as one line with exit status 2.

``train.py``, ``generate_submission.py`` and ``report.py`` (and the
``idao-train`` / ``idao-submit`` / ``idao-report`` commands) all come here:
the config is loaded and its paths resolved, ``task.name`` picks the task
from the registry, the task checks every setting before any work, then runs
the job.
"""
from __future__ import annotations

import argparse
import os
import sys

from .errors import IdaoError

JOBS = {
    "train": "Train the task's models on its training data (task.name picks the detector).",
    "generate": "Predict the task's test data with the best checkpoints and write its CSV.",
    "report": "Metrics and plots for the validation split and every labelled test set.",
    "export": "Write the task's trained models as ONNX, with their preprocessing and a model card.",
}


def run_cli(job) -> None:
    try:
        job()
    except IdaoError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def main(job: str, argv=None) -> None:
    run_cli(lambda: _main(job, argv))


def _main(job: str, argv=None) -> None:
    from .config import CORE_PATH_KEYS, add_config_args, describe_defaults, load_config
    from .tasks import get_task

    parser = argparse.ArgumentParser(description=JOBS[job], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="settings (section.key = default):\n" + describe_defaults())
    add_config_args(parser)
    if job == "train":
        parser.add_argument("--only", metavar="MODEL", help="train just this one of the task's models "
                                                            "(cygno: classifier or regressor)")
    args = parser.parse_args(argv)

    echo = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 echoes the overrides
    cfg = load_config(args.config, args.overrides, echo=echo)
    task = get_task(cfg.task.name)
    cfg.resolve_paths(CORE_PATH_KEYS + task.path_keys)
    if args.print_config:
        print(cfg.to_ini(), end="")
        return
    from .jobs import run  # the engine and the model zoo: not needed for --help or a bad task name

    run(task, cfg, job, getattr(args, "only", None))


def train_main(argv=None) -> None:
    main("train", argv)


def generate_main(argv=None) -> None:
    main("generate", argv)


def report_main(argv=None) -> None:
    main("report", argv)


def export_main(argv=None) -> None:
    main("export", argv)

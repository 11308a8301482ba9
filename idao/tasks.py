"""The tasks the three scripts serve; ``task.name`` in the config picks one (IDAO is the default)."""
from __future__ import annotations

from .errors import ConfigError

TASKS = ("idao", "damic")


def task_name(cfg) -> str:
    name = getattr(getattr(cfg, "task", None), "name", "idao")
    if name not in TASKS:
        raise ConfigError(f"task.name = {name!r}: expected one of {', '.join(TASKS)}")
    return name


def dispatch(job: str, idao_job):
    """A script's job: ``idao_job(cfg, args)`` for IDAO, else the same-named job of the chosen task."""

    def run(cfg, args):
        if task_name(cfg) == "damic":
            from .damic import task

            return getattr(task, job)(cfg)
        return idao_job(cfg, args)

    return run

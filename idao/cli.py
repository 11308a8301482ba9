"""Shared entry-point behaviour: user errors print one line and exit 2, no traceback."""
from __future__ import annotations

import argparse
import sys

from .errors import IdaoError


def run_cli(job) -> None:
    try:
        job()
    except IdaoError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def config_command(description: str, job, argv=None, add_arguments=None) -> None:
    """The scripts' shared CLI: ``--config``, ``section.key=value`` overrides, then ``job(cfg, args)``."""
    from .config import add_config_args, load_config

    parser = argparse.ArgumentParser(description=description)
    add_config_args(parser)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    run_cli(lambda: job(load_config(args.config, args.overrides), args))

"""Shared entry-point behaviour: user errors print one line and exit 2, no traceback."""
from __future__ import annotations

import sys

from .errors import IdaoError


def run_cli(job) -> None:
    try:
        job()
    except IdaoError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

"""File-name parsing for the IDAO 2021 dataset.

Train names carry the label (``..._ER_10_keV_...`` or ``..._He_NR_20_keV_...``);
test names are 40 lowercase hex digits. Names are matched by pattern, never by
position, because ER and NR names split into different numbers of parts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

ENERGIES = (1, 3, 6, 10, 20, 30)  # keV levels of the challenge
TRAIN_CLASSES = (("ER", 3), ("ER", 10), ("ER", 30), ("NR", 1), ("NR", 6), ("NR", 20))
UNSEEN_CLASSES = (("ER", 1), ("ER", 6), ("ER", 20), ("NR", 3), ("NR", 10), ("NR", 30))

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TRAIN = re.compile(rf"^{_FLOAT}__CYGNO_.*_(?P<particle>ER|NR)_(?P<energy>\d+)_keV_.*?(?:;1)?\.png$")
_LABEL = re.compile(r"_(ER|NR)_(\d+)_keV")
_TEST = re.compile(r"^(?P<id>[0-9a-f]{40})\.png$")


@dataclass(frozen=True)
class ParsedName:
    id: str  # file name without ``.png``: the submission id
    particle: str | None  # "ER" / "NR", None for test images
    energy: int | None  # keV, None for test images


def parse_name(name: str | Path) -> ParsedName:
    """Map an IDAO file name to (id, particle, energy); raise with the name if it is neither form."""
    name = Path(name).name
    m = _TEST.match(name)
    if m:
        return ParsedName(m["id"], None, None)
    m = _TRAIN.match(name)
    if m:
        energy = int(m["energy"])
        if energy <= 0:
            raise DataError(f"{name}: energy token '{energy}_keV' is not a positive number of keV")
        return ParsedName(name[: -len(".png")], m["particle"], energy)
    if not name.endswith(".png"):
        raise DataError(f"{name}: not a .png file")
    if _LABEL.search(name) is None and "__CYGNO" in name:
        raise DataError(f"{name}: train name without an '_ER_<E>_keV' or '_NR_<E>_keV' token")
    raise DataError(
        f"{name}: not an IDAO file name (expected '<angle>__CYGNO_60_40_ER_<E>_keV_..._run<r>_ev<n>;1.png', "
        "the He_NR form, or '<40 hex>.png')"
    )


def class_name(particle: str, energy: int) -> str:
    return f"{particle}{energy}"

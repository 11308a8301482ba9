"""Finding the IDAO dataset on disk: which files, which split, which label.

Layout: ``root/train/{ER,NR}/*.png``, ``root/public_test/*.png``,
``root/private_test/*.png``. Simulated datasets also carry ``root/labels.csv``
with the test-split truth; real ones do not, and nothing may require it.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .names import class_name, parse_name

TEST_SPLITS = ("public_test", "private_test")
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class Sample:
    path: Path
    id: str
    particle: str | None  # None where the label is unknown
    energy: int | None

    @property
    def label(self) -> str:
        return class_name(self.particle, self.energy) if self.particle else "?"


def list_pngs(folder: Path) -> list[Path]:
    """The .png files of a folder, sorted; an error if the folder is missing or holds none."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".png" and not p.name.startswith("."))
    if not files:
        raise DataError(f"{folder}: no .png files in this folder")
    return files


def read_folder(folder: str | Path, expect_particle: str | None = None) -> list[Sample]:
    """Samples of one folder; with ``expect_particle`` every name must carry that label."""
    folder = Path(folder)
    samples = []
    for path in list_pngs(folder):
        name = parse_name(path)
        if expect_particle is not None and name.particle != expect_particle:
            found = name.particle or "no label (a test name)"
            raise DataError(f"{path}: name says {found} but the file is under {folder.name}/")
        samples.append(Sample(path, name.id, name.particle, name.energy))
    return samples


def read_test_folder(folder: str | Path) -> list[Sample]:
    """Images to predict: any ``.png`` name; the id is the name without ``.png`` (labelled IDAO names keep
    their label, which the report can use). The leaderboard's own test names are 40 hex digits."""
    samples = []
    for path in list_pngs(Path(folder)):
        try:
            name = parse_name(path)
        except DataError:
            samples.append(Sample(path, path.stem, None, None))
        else:
            samples.append(Sample(path, name.id, name.particle, name.energy))
    return samples


def check_root(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            f"{root}: dataset root not found; point cygno.root at an 'idao_dataset' folder "
            "or run 'idao-simulate' to make one"
        )
    return root


def train_samples(root: str | Path) -> list[Sample]:
    root = check_root(root)
    return read_folder(root / "train" / "ER", "ER") + read_folder(root / "train" / "NR", "NR")


def split_samples(root: str | Path, split: str) -> list[Sample]:
    """Samples of a test split, labelled from labels.csv where that exists (simulated data)."""
    root = check_root(root)
    samples = read_folder(root / split)
    labels = read_labels(root)
    if labels is None:
        return samples
    return [Sample(s.path, s.id, *labels.get(s.id, (None, None))) for s in samples]


def read_labels(root: Path) -> dict[str, tuple[str, int]] | None:
    """Test-split truth from ``root/labels.csv`` (simulated datasets), or None."""
    path = Path(root) / LABELS_FILE
    if not path.exists():
        return None
    labels = {}
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                labels[row["id"]] = (row["particle"], int(row["energy"]))
            except (KeyError, TypeError, ValueError) as e:
                raise DataError(f"{path}: line {i}: expected columns id,split,particle,energy ({e})") from e
    return labels


def describe(root: str | Path) -> str:
    """Counts per split and class, for logs and for ``idao-simulate --describe``."""
    root = check_root(root)
    lines = []
    train = train_samples(root)
    counts = Counter(s.label for s in train)
    lines.append(f"train: {len(train)} images: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for split in TEST_SPLITS:
        if (root / split).is_dir():
            samples = split_samples(root, split)
            counts = Counter(s.label for s in samples)
            detail = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            lines.append(f"{split}: {len(samples)} images" + (f": {detail}" if "?" not in counts else ""))
    return "\n".join(lines)

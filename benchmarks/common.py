"""What the benchmark scripts share: the markdown output, the PNG-decode floor, and scoring a CYGNO
submission against a simulated dataset's ``labels.csv`` (with the package's own metric)."""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from idao.atomic import write_text
from idao.cygno.dataset import TEST_SPLITS, read_labels, split_samples
from idao.cygno.images import read_image
from idao.cygno.metrics import summarize


def publish(lines: list[str], out: str | None) -> None:
    """Print the markdown and write it atomically to ``out`` (a page under docs/benchmarks/)."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        write_text(out, text)


def test_paths(root: Path) -> list[Path]:
    return [s.path for split in TEST_SPLITS for s in split_samples(root, split)]


def decode_floor(paths, workers: int = 2) -> float:
    """Seconds to decode ``paths`` (whole PNGs) and nothing else: the reference a submission's time is quoted
    against (a centred crop decodes only its rows and those above it, so a submission can come under it)."""
    t = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        for _ in pool.map(read_image, paths, chunksize=32):
            pass
    return time.perf_counter() - t


def test_truth(root: Path) -> dict:
    """``{split: (samples, is_er, energy)}`` of the labelled test splits of a simulated dataset."""
    labels = read_labels(root)
    out = {}
    for split in TEST_SPLITS:
        samples = split_samples(root, split)
        out[split] = (samples, np.array([labels[s.id][0] == "ER" for s in samples]),
                      np.array([labels[s.id][1] for s in samples]))
    return out


def score_predictions(root: Path, predict) -> dict:
    """``{split: summarize(...)}`` where ``predict(split, samples) -> (ER score, keV)``."""
    out = {}
    for split, (samples, is_er, energy) in test_truth(root).items():
        score, pred = predict(split, samples)
        out[split] = summarize(is_er, energy, score, pred)
    return out


def score_submission(root: Path, sub) -> dict:
    """``{split: summarize(...)}`` of a submission table indexed by id."""
    def predict(split, samples):
        rows = sub.loc[[s.id for s in samples]]
        return rows.iloc[:, 0].to_numpy(), rows.iloc[:, 1].to_numpy()

    return score_predictions(root, predict)

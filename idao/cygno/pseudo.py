"""CYGNO pseudo-labels (``train.pseudo_label``): confidently called test images added to the networks' training.

Each test split holds its classes in equal numbers, pair by pair of light (the
k-th ER level beside the k-th NR level of the split, as ``postprocess.balance_pairs``
groups them). The IDAO 2021 4th-place team kept that structure when they
pseudo-labelled, and so does this: per split and light pair, as many ER as NR
images, the most confident of each. The energy label is the submitted level.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..folds import pseudo_positions
from ..splits import fingerprint
from ..tasks import Predictions
from .data import CropSet, load_crops
from .dataset import read_test_folder
from .postprocess import SPLIT_LEVELS
from .submit import COLUMNS, test_folders


def pseudo_labels(cfg, predicted: Predictions, threshold: float) -> pd.DataFrame:
    """``id, split, particle, energy, score`` of the test images to add: per split and light pair, the ``n``
    most confident ER (score >= threshold) and NR (score <= 1 - threshold) images, ``n`` the fewer of the two.
    A folder that is not a known split (no class structure to keep) gives none."""
    table = predicted.companions[".raw.csv"][["id", "split"]].merge(predicted.table, on="id")
    score, level = table[COLUMNS[1]].to_numpy(float), table[COLUMNS[2]].to_numpy(float)
    chosen = []
    for split, levels in SPLIT_LEVELS.items():
        in_split = table["split"].to_numpy() == split
        for er_level, nr_level in zip(levels["ER"], levels["NR"]):
            er = np.flatnonzero(in_split & (score >= threshold) & (level == er_level))
            nr = np.flatnonzero(in_split & (score <= 1 - threshold) & (level == nr_level))
            n = min(len(er), len(nr))
            chosen += [(i, "ER") for i in er[np.argsort(-score[er], kind="stable")][:n]]
            chosen += [(i, "NR") for i in nr[np.argsort(score[nr], kind="stable")][:n]]
    idx = np.array([i for i, _ in chosen], dtype=int)
    return pd.DataFrame({"id": table["id"].to_numpy()[idx], "split": table["split"].to_numpy()[idx],
                         "particle": [p for _, p in chosen], "energy": level[idx].astype(int), "score": score[idx]})


def pseudo_crops(cfg, held_out: CropSet, progress: bool = True) -> CropSet | None:
    """The pseudo-labelled test images of round 1, as labelled crops, less any copy of a ``held_out`` crop (round
    2 would train on what it is validated or scored on); None where ``train.pseudo_label`` is off."""
    if cfg.train.pseudo_label <= 0:
        return None
    samples = [s for folder in test_folders(cfg) for s in read_test_folder(folder)]
    labels, positions = pseudo_positions(cfg, "cygno", [s.id for s in samples])
    crops = load_crops([samples[i] for i in positions], cfg.cygno, progress)
    rows = labels.set_index("id").loc[crops.ids]  # cygno.on_bad_file = skip may leave some out
    crops = CropSet(crops.images, crops.ids, rows["particle"].to_numpy(str), rows["energy"].to_numpy(int))
    seen = {fingerprint(image) for image in held_out.images}
    return crops.subset(np.flatnonzero([fingerprint(image) not in seen for image in crops.images]))

"""CYGNO's ``generate_submission.py``: predict test folders and write the leaderboard CSV.

The CSV is validated before it is written (one row per image, unique ids,
finite values, scores in [0, 1]) and written atomically, with the resolved
config beside it. The raw model outputs go to ``<output>.raw.csv`` so that the
report can compare post-processing modes without running the models again.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import split_list
from ..engine import RunSettings, predict_outputs, with_fields
from ..errors import CheckpointError, DataError
from ..runtime import native_bf16
from ..tasks import Predictions
from .data import CropSet, load_crops
from .dataset import TEST_SPLITS, check_root, read_test_folder
from .light import LIGHT_MODEL_FILE, LightModel
from .objectives import load_models
from .postprocess import REGRESSED, postprocess

COLUMNS = ["id", "classification_predictions", "regression_predictions"]
SPOT_COLUMNS = ("light", "width", "elongation")  # light.measure_spots, in the raw CSV
NEUTRAL_KEV = 6.0  # for images that could not be read: mid-range, the least costly single guess


def load_light_model(cfg) -> LightModel:
    """The light (and shape) model train.py fitted on the training split and wrote beside the checkpoints;
    checked here, before any image is read, to hold the shape model when ``cygno.submission.shape`` asks for it."""
    path = RunSettings.from_config(cfg, "cygno").checkpoint_dir / LIGHT_MODEL_FILE
    model = LightModel.load(path)
    if cfg.section("cygno.submission").shape and model.shape is None:
        raise CheckpointError(f"{path}: no shape model (written by an older train.py); run train.py again or set "
                              "submission.shape=false")
    return model


def test_folders(cfg) -> list[Path]:
    if cfg.section("cygno.submission").folders:
        return [Path(f) for f in split_list(cfg.section("cygno.submission").folders)]
    root = check_root(cfg.cygno.root)
    folders = [root / split for split in TEST_SPLITS if (root / split).is_dir()]
    if not folders:
        raise DataError(f"{root}: no public_test or private_test folder to predict")
    return folders


def least_confident(part: pd.DataFrame, sub_cfg, light_model) -> np.ndarray:
    """Rows of one split whose submitted ER score (after post-processing) lies nearest the cut: the
    ``cygno.submission.tta_fraction`` of them that more views of the image can still move across it."""
    score, _ = decode(part, sub_cfg, light_model)
    return np.argsort(np.abs(score - 0.5), kind="stable")[: math.ceil(sub_cfg.tta_fraction * len(part))]


def inference_runtime(sub_cfg, rt):
    """``rt`` with bf16 inference where ``cygno.submission.bf16`` asks for it (auto: on a CPU with hardware bf16)."""
    return dataclasses.replace(rt, cpu_bf16=sub_cfg.bf16 == "on" or (sub_cfg.bf16 == "auto" and native_bf16()))


def submission_models(sub_cfg) -> tuple[str, ...]:
    """The models a submission runs: the regressor only for the post-processing modes that read its keV."""
    return ("classifier", "regressor") if sub_cfg.postprocess in REGRESSED else ("classifier",)


def regressed_kev(models: dict, crops, rt) -> np.ndarray:
    """The regressor's keV per crop, or NaN where it was not loaded (not needed)."""
    if "regressor" not in models:
        return np.full(len(crops), np.nan)
    regressor, objective = models["regressor"]
    return objective.predict(predict_outputs(regressor, objective, crops, rt))


def predict_folders(cfg, folders: list[Path], light_model, rt) -> pd.DataFrame:
    """Raw predictions for every image: id, split (folder name), ER probability and keV.

    Test-time augmentation is spent where it counts: every image is scored
    once, then the least confident ``cygno.submission.tta_fraction`` of each split
    again as the mean over ``cygno.submission.tta`` flips / turns (1.0: every image).
    The regressor runs only for the post-processing modes that read its keV
    (``REGRESSED``); with ``light`` the energy column is left empty (NaN).
    """
    rt = inference_runtime(cfg.section("cygno.submission"), rt)
    if rt.cpu_bf16:
        print("inference in bf16 (cygno.submission.bf16 = " + cfg.section("cygno.submission").bf16 + ")")
    models = load_models(cfg, rt, submission_models(cfg.section("cygno.submission")))
    classifier, tta = models["classifier"]
    frames, seen = [], {}
    for folder in folders:
        samples = read_test_folder(folder)
        for s in samples:
            if s.id in seen:
                raise DataError(f"{s.path}: id {s.id!r} also found as {seen[s.id]}; ids must be unique")
            seen[s.id] = s.path
        refine = tta.views > 1 and cfg.section("cygno.submission").tta_fraction < 1
        first = with_fields(tta, views=1) if refine else tta
        logits = []  # with overlap: the first pass, run on each batch of crops while the workers decode the next

        def score(images):  # in-process: the decode workers are already running
            logits.append(predict_outputs(classifier, first, CropSet.unlabelled(images), in_process))

        in_process = dataclasses.replace(rt, loader_workers=0)

        overlap = cfg.section("cygno.submission").overlap
        overlap = overlap == "on" or (overlap == "auto" and rt.device.type != "cpu")
        crops = load_crops(samples, cfg.cygno, rt.show_progress, on_chunk=score if overlap else None,
                           chunk=rt.batch_size)
        logit = np.concatenate(logits) if logits else predict_outputs(classifier, first, crops, rt)  # no overlap
        spots = crops.spots()
        part = pd.DataFrame({"id": crops.ids, "split": folder.name, "score": tta.predict(logit),
                             "energy": regressed_kev(models, crops, rt),
                             **{c: spots[:, j] for j, c in enumerate(SPOT_COLUMNS)}})
        if refine:  # the other views of the doubtful events, averaged with the identity's logit already in hand
            doubt = least_confident(part, cfg.section("cygno.submission"), light_model)
            rest = predict_outputs(classifier, with_fields(tta, first_view=1), crops, rt, doubt)
            part.loc[doubt, "score"] = tta.predict((logit[doubt] + (tta.views - 1) * rest) / tta.views)
        frames.append(part)
        decoded = set(crops.ids)
        unread = [s.id for s in samples if s.id not in decoded]
        if unread:  # only with cygno.on_bad_file=skip: the leaderboard still needs a row per image
            warnings.warn(f"{folder}: {len(unread)} unreadable image(s) get neutral predictions "
                          f"(score 0.5, {NEUTRAL_KEV} keV), e.g. {unread[0]}", stacklevel=2)
            frames.append(pd.DataFrame({"id": unread, "split": folder.name, "score": 0.5, "energy": NEUTRAL_KEV,
                                        **{c: np.nan for c in SPOT_COLUMNS}}))
    return pd.concat(frames, ignore_index=True)


def decode(raw: pd.DataFrame, sub_cfg, light_model):
    """(ER score, keV) of every row of ``raw``, split by split (each split has its own class set)."""
    mode, balance = sub_cfg.postprocess, sub_cfg.balance
    score, energy = np.empty(len(raw)), np.empty(len(raw))
    shape = raw[list(SPOT_COLUMNS[1:])].to_numpy(float) if sub_cfg.shape else None
    for split, idx in raw.groupby("split").indices.items():
        score[idx], energy[idx] = postprocess(raw["energy"].values[idx], raw["score"].values[idx], split, mode,
                                              balance, raw["light"].values[idx], light_model, sub_cfg.light_weight,
                                              None if shape is None else shape[idx])
    unread = raw["light"].isna().to_numpy()  # unreadable images stay neutral
    return np.where(unread, 0.5, score), np.where(unread, NEUTRAL_KEV, energy)


def submission_table(raw: pd.DataFrame, sub_cfg, light_model) -> pd.DataFrame:
    score, energy = decode(raw, sub_cfg, light_model)
    return pd.DataFrame({COLUMNS[0]: raw["id"], COLUMNS[1]: score, COLUMNS[2]: energy})


def validate_submission(df: pd.DataFrame, expected_ids) -> None:
    """Every format rule of the leaderboard; raise naming the first rule broken."""
    if list(df.columns) != COLUMNS:
        raise DataError(f"submission columns are {list(df.columns)}; expected {COLUMNS}")
    if df["id"].duplicated().any():
        raise DataError(f"submission has duplicate ids, e.g. {df['id'][df['id'].duplicated()].iloc[0]!r}")
    missing = set(expected_ids) - set(df["id"])
    if missing or len(df) != len(set(expected_ids)):
        raise DataError(f"submission has {len(df)} rows for {len(set(expected_ids))} images "
                        f"({len(missing)} missing, e.g. {sorted(missing)[:1]})")
    for col in COLUMNS[1:]:
        values = df[col].to_numpy(float)
        if not np.isfinite(values).all():
            raise DataError(f"submission column {col} has non-finite values")
    score = df[COLUMNS[1]].to_numpy(float)
    if score.min() < 0 or score.max() > 1:
        raise DataError("classification_predictions must lie in [0, 1]")


def predict(cfg, rt) -> Predictions:
    """The leaderboard table, validated; the raw model outputs go beside it as ``<output>.raw.csv``."""
    folders = test_folders(cfg)
    light_model = load_light_model(cfg)
    raw = predict_folders(cfg, folders, light_model, rt)
    sub = submission_table(raw, cfg.section("cygno.submission"), light_model)
    validate_submission(sub, raw["id"])
    counts = ", ".join(f"{k} {v}" for k, v in raw["split"].value_counts(sort=False).items())
    mode = cfg.section("cygno.submission")
    # full precision: scores near 1 written to 7 digits tie, and ties cost AUC (3.4 private points on the main job)
    return Predictions(sub, f"{len(sub)} rows ({counts}); post-processing {mode.postprocess} + balance {mode.balance}",
                       float_format="%.17g", companions={".raw.csv": raw})

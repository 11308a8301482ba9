"""CYGNO's ``report.py``: metrics and plots for the validation split and every labelled test split.

Validation predictions come from the best checkpoints; test-split numbers come
from the submission CSV itself (and its raw companion), joined with the
simulated truth in ``labels.csv``, so the report scores exactly what would be
uploaded. Real test splits have no labels and are reported as such.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoint import checkpoint_exists
from ..engine import RunSettings, predict_outputs
from ..errors import DataError
from ..export import Exportable
from ..reporting import load_histories, plot_learning_curves
from ..tasks import Report
from .dataset import check_root, read_labels
from .data import INPUT_OFFSET, INPUT_SCALE
from .images import IMAGE_SIZE, PEDESTAL
from .metrics import summarize
from .objectives import OBJECTIVES, load_models
from .plots import (SplitResult, plot_confusion, plot_energy_comparison, plot_energy_correlation,
                    plot_energy_histograms, plot_roc, plot_split_energies, plot_split_scores, plot_split_shapes)
from .postprocess import REGRESSED, postprocess
from .submit import COLUMNS, SPOT_COLUMNS, inference_runtime, load_light_model
from .train import NAME, prepare

POSTPROCESS_CHOICES = (("none", "none"), ("snap", "none"), ("split", "none"), ("split", "split"),
                       ("light", "none"), ("light", "split"), ("light", "pair"))


def trained_models(cfg) -> tuple[str, ...]:
    """The models that have a best checkpoint (the regressor is trained only where asked for)."""
    run = RunSettings.from_config(cfg, NAME)
    return tuple(kind for kind in OBJECTIVES if all(checkpoint_exists(p) for p in run.members(kind)))


def validation_result(cfg, light_model, rt, val=None) -> SplitResult:
    """The validation crops (``val``, default: the split's) through the models and the configured decode."""
    if val is None:
        _, crops, split = prepare(cfg, rt)
        val = crops.subset(split.scored)
    pred = {"regressor": np.full(len(val), np.nan)}  # NaN: no regressor trained
    rt = inference_runtime(cfg.section("cygno.submission"), rt)  # the precision of the submission
    for kind, (model, objective) in load_models(cfg, rt, trained_models(cfg)).items():
        pred[kind] = objective.predict(predict_outputs(model, objective, val, rt))
    # validation holds the training classes, the public split's set: decoded with that split's levels, so that its
    # score reads like a public score; but not balanced (its classes are as unequal as the training folders')
    spots = val.spots()
    sub = cfg.section("cygno.submission")
    score, final = postprocess(pred["regressor"], pred["classifier"], "public_test", sub.postprocess, "none", spots[:, 0],
                               light_model, sub.light_weight, spots[:, 1:] if sub.shape else None)
    return SplitResult(val.is_er, val.energy, score, pred["regressor"], final, spots[:, 0], pred["classifier"],
                       spots[:, 1:])


def validation_predictions(cfg, rt) -> pd.DataFrame:
    """One row per validation crop, as the report scores it: truth, the submitted score and keV, the classifier's."""
    _, crops, split = prepare(cfg, rt)
    val = crops.subset(split.scored)
    r = validation_result(cfg, load_light_model(cfg), rt, val)
    return pd.DataFrame({"id": val.ids, "particle": val.particle, "true_energy": val.energy,
                         COLUMNS[1]: r.score, COLUMNS[2]: r.final_energy, "classifier": r.raw_score})


def score_out_of_fold(table: pd.DataFrame) -> dict:
    """The leaderboard figures of ``validation_predictions``' rows: score, AUC (ER positive), MAE keV."""
    m = summarize(table["particle"] == "ER", table["true_energy"], table[COLUMNS[1]], table[COLUMNS[2]])
    return {"score": m["score"], "AUC": m["auc"], "MAE keV": m["mae"]}


def export_models(cfg, rt) -> dict:
    """The trained networks for ``idao-export``, with a batch of validation crops' inputs; the light decode (a
    table of numbers, ``light.json`` beside the checkpoints) goes into their JSON."""
    check_root(cfg.cygno.root)  # its training crops give the example inputs: never simulated here
    run = RunSettings.from_config(cfg, NAME)
    decode = asdict(load_light_model(cfg))  # what light.json holds, checked on reading
    _, crops, split = prepare(cfg, rt)
    image = dict(size=IMAGE_SIZE, pedestal=PEDESTAL, crop=cfg.cygno.crop, crop_mode=cfg.cygno.crop_mode,
                 subtract_pedestal=cfg.cygno.pedestal, offset=INPUT_OFFSET, scale=INPUT_SCALE,
                 steps="pedestal: each column minus its median plus `pedestal`, clipped to 0-255 (crop_mode centre: "
                       "the median of the rows from the top to the crop's last row, the only rows decoded; spot: "
                       "the whole column); crop; mean over bin x bin blocks; (x - offset) / scale; (B, 1, H, W) "
                       "float32")
    return {kind: Exportable(model, objective, objective.inputs(crops, split.scored[:8], rt), run.members(kind)[0],
                             dict(image=image, light_decode=decode))
            for kind, (model, objective) in load_models(cfg, rt, trained_models(cfg)).items()}


def submitted_table(cfg, root: Path) -> pd.DataFrame | None:
    """The submission CSV beside its raw companion and, where known (simulated data), the truth; None if absent."""
    out = Path(cfg.section("cygno.output").submission)
    raw_path = out.with_suffix(".raw.csv")
    if not out.exists() or not raw_path.exists():
        return None
    sub, raw = pd.read_csv(out, dtype={"id": str}), pd.read_csv(raw_path, dtype={"id": str})
    if list(sub.columns) != COLUMNS:
        raise DataError(f"{out}: columns {list(sub.columns)}; expected {COLUMNS}")
    missing = [c for c in ("score", "energy", *SPOT_COLUMNS) if c not in raw.columns]
    if missing:
        raise DataError(f"{raw_path}: columns {missing} missing (written by an older version?); "
                        "run generate_submission.py again")
    table = raw.merge(sub, on="id", validate="one_to_one")
    labels = read_labels(root) or {}
    truth = pd.DataFrame([(k, p, e) for k, (p, e) in labels.items()], columns=["id", "particle", "true_energy"])
    table = table.merge(truth, on="id", how="left")
    table["true"] = np.where(table["particle"].isna(), None,
                             table["particle"].astype(str) + table["true_energy"].fillna(0).astype(int).astype(str))
    return table


def split_views(table: pd.DataFrame) -> dict:
    """Per split: submitted score and energy, and the true class where labelled (for the unlabelled-split plots)."""
    return {split: pd.DataFrame({"score": part[COLUMNS[1]].to_numpy(float), "energy": part[COLUMNS[2]].to_numpy(float),
                                 "true": part["true"].to_numpy(), **{c: part[c].to_numpy(float) for c in SPOT_COLUMNS}})
            for split, part in table.groupby("split", sort=False)}


def scored_test_splits(table: pd.DataFrame | None) -> dict:
    """The labelled test splits of the submitted table, as SplitResults."""
    results = {}
    for split, part in (table.groupby("split", sort=False) if table is not None else ()):
        if part["particle"].isna().any():
            continue  # a folder without labels (real data, or another folder)
        results[split] = SplitResult(
            (part["particle"] == "ER").to_numpy(), part["true_energy"].to_numpy(int),
            part[COLUMNS[1]].to_numpy(float), part["energy"].to_numpy(float), part[COLUMNS[2]].to_numpy(float),
            part["light"].to_numpy(float), part["score"].to_numpy(float), part[list(SPOT_COLUMNS[1:])].to_numpy(float))
    return results


def postprocess_table(results: dict, light_model, light_weight: float, shape: bool) -> list[dict]:
    """Score of each post-processing mode on each labelled test split (from the raw predictions); mode light
    with and without the shape model when it is on."""
    rows = []
    for split, r in results.items():
        for mode, balance in POSTPROCESS_CHOICES:
            if mode in REGRESSED and not r.regressed:
                continue
            for with_shape in ((True, False) if shape and mode == "light" else (False,)):
                score, energy = postprocess(r.raw_energy, r.raw_score, split, mode, balance, r.light, light_model,
                                            light_weight, r.shape if with_shape else None)
                m = summarize(r.is_er, r.energy, score, energy)
                rows.append(dict(split=split, mode=mode + (" + shape" if with_shape else "")
                                 + (f" + balance {balance}" if balance != "none" else ""),
                                 auc=m["auc"], mae=m["mae"], score=m["score"]))
    return rows


def format_log(metrics: dict, pp_rows: list[dict], note: str) -> str:
    lines = [note, ""]
    for split, m in metrics.items():
        lines.append(f"[{split}] n={m['n']}  AUC={m['auc']:.6f}  MAE={m['mae']:.4f} keV  "
                     f"score={m['score']:.1f}  accuracy={m['accuracy']:.4f}")
        for cls, c in m["per_class"].items():
            lines.append(f"    {cls:>5}: n={c['n']:5d}  MAE={c['mae']:.3f} keV  type accuracy={c['accuracy']:.3f}")
    if pp_rows:
        lines += ["", "post-processing modes (same raw predictions):"]
        lines += [f"    {r['split']:>13} {r['mode']:<24} AUC={r['auc']:.6f}  MAE={r['mae']:.4f}  score={r['score']:.1f}"
                  for r in pp_rows]
    return "\n".join(lines) + "\n"


def evaluate(cfg, rt, folder: Path) -> Report:
    light_model = load_light_model(cfg)
    root = Path(cfg.cygno.root)
    table = submitted_table(cfg, root)  # checked before the models run on the validation split
    results = {"validation": validation_result(cfg, light_model, rt)}
    tests = scored_test_splits(table)
    results.update(tests)
    note = ("test splits scored from " + cfg.section("cygno.output").submission + " against " + str(root / "labels.csv")
            if tests else "no labelled test splits (real data has none, or generate_submission.py has not run)")
    metrics = {name: summarize(r.is_er, r.energy, r.score, r.final_energy) for name, r in results.items()}
    sub = cfg.section("cygno.submission")
    pp_rows = postprocess_table(tests, light_model, sub.light_weight, sub.shape)

    histories = load_histories(RunSettings.from_config(cfg, NAME), OBJECTIVES)
    images = [folder / "roc_auc.png", folder / "confusion.png", folder / "learning_curves.png"]
    plot_roc(results, images[0])
    plot_confusion(results, images[1])
    plot_learning_curves(histories, images[2])
    regressed = {name: r for name, r in results.items() if r.regressed}  # validation, when a regressor is trained
    if regressed:
        images += [folder / "energy_correlation.png", folder / "energy_comparison.png"]
        plot_energy_correlation(regressed, images[-2])
        plot_energy_comparison(regressed, images[-1])
        images += plot_energy_histograms(regressed, folder)
    splits = split_views(table) if table is not None else {}
    if splits:  # what a user can check on a split without labels
        images += [folder / "split_scores.png", folder / "split_energies.png"]
        plot_split_scores(splits, images[-2])
        plot_split_energies(splits, images[-1])
        if light_model.shape is not None:
            images.append(folder / "split_shapes.png")
            plot_split_shapes(splits, light_model, images[-1])
        note += "\nsubmitted splits: " + "; ".join(f"{name} n={len(part)}, called ER {np.mean(part['score'] > 0.5):.1%}"
                                                    for name, part in splits.items()) + " (classes balanced: expect ~50 %)"

    log_text = format_log(metrics, pp_rows, note)
    mode = f"{sub.postprocess} + balance {sub.balance}"
    scored = [f"{s.split('_')[0]} {metrics[s]['score']:.1f}" for s in ("public_test", "private_test") if s in metrics]
    headline = (" · ".join(scored) if scored else f"validation AUC {metrics['validation']['auc']:.4f}") + \
        f" — post-processing {mode}"
    banner = "SIMULATED DATA: test labels from the simulator's labels.csv" if tests else ""
    tables = [("Splits", ["split", "n", "AUC", "MAE keV", "score", "type accuracy"],
               [[name, m["n"], m["auc"], m["mae"], m["score"], m["accuracy"]] for name, m in metrics.items()])]
    tables += [(f"{name}: per true class", ["class", "n", "type accuracy", "MAE keV"],
                [[c, v["n"], v["accuracy"], v["mae"]] for c, v in m["per_class"].items()]) for name, m in metrics.items()]
    if pp_rows:
        tables.append(("Post-processing modes (same raw predictions)", ["split", "mode", "AUC", "MAE keV", "score"],
                       [[r["split"], r["mode"], r["auc"], r["mae"], r["score"]] for r in pp_rows]))
    closing = [f"simulated {split.split('_')[0]} score: {metrics[split]['score']:.1f} (AUC {metrics[split]['auc']:.4f}, "
               f"MAE {metrics[split]['mae']:.3f} keV)" for split in ("public_test", "private_test") if split in metrics]
    return Report("idao report: CYGNO", headline, log_text, dict(metrics=metrics, postprocess=pp_rows), images, tables,
                  banner, closing)

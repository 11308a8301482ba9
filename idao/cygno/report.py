"""CYGNO's ``report.py``: metrics and plots for the validation split and every labelled test split.

Validation predictions come from the best checkpoints; test-split numbers come
from the submission CSV itself (and its raw companion), joined with the
simulated truth in ``labels.csv``, so the report scores exactly what would be
uploaded. Real test splits have no labels and are reported as such.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..engine import RunSettings, predict_outputs
from ..errors import DataError
from ..reporting import load_histories, plot_learning_curves, write_report
from ..runtime import make_runtime
from .dataset import read_labels
from .metrics import summarize
from .objectives import OBJECTIVES, load_models
from .plots import (SplitResult, plot_confusion, plot_energy_comparison, plot_energy_correlation,
                    plot_energy_histograms, plot_roc)
from .postprocess import postprocess
from .submit import COLUMNS
from .train import NAME, prepare

POSTPROCESS_CHOICES = (("none", False), ("snap", False), ("split", False), ("split", True))


def validation_result(cfg) -> SplitResult:
    rt = make_runtime(cfg.train)
    _, crops, _, val_idx = prepare(cfg, rt)
    val = crops.subset(val_idx)
    pred = {}
    for kind, (model, objective) in load_models(cfg, rt).items():
        pred[kind] = objective.predict(predict_outputs(model, objective, val, 256, rt))
    # validation holds the training classes (plus strays): snap to the nearest of the six levels
    final = postprocess(pred["regressor"], pred["classifier"], None, "snap")
    return SplitResult(val.is_er, val.energy, pred["classifier"], pred["regressor"], final)


def scored_test_splits(cfg, root: Path) -> dict:
    """Labelled test splits from the submission CSV and its raw companion."""
    labels = read_labels(root)
    out = Path(cfg.submission.output)
    raw_path = out.with_suffix(".raw.csv")
    if labels is None or not out.exists() or not raw_path.exists():
        return {}
    sub, raw = pd.read_csv(out, dtype={"id": str}), pd.read_csv(raw_path, dtype={"id": str})
    if list(sub.columns) != COLUMNS:
        raise DataError(f"{out}: columns {list(sub.columns)}; expected {COLUMNS}")
    table = raw.merge(sub, on="id", validate="one_to_one")
    truth = pd.DataFrame([(k, p, e) for k, (p, e) in labels.items()], columns=["id", "particle", "true_energy"])
    table = table.merge(truth, on="id", how="left")
    results = {}
    for split, part in table.groupby("split", sort=False):
        if part["particle"].isna().any():
            continue  # a folder without labels (real data, or another folder)
        results[split] = SplitResult(
            (part["particle"] == "ER").to_numpy(), part["true_energy"].to_numpy(int),
            part[COLUMNS[1]].to_numpy(float), part["energy"].to_numpy(float), part[COLUMNS[2]].to_numpy(float))
    return results


def postprocess_table(results: dict) -> list[dict]:
    """Score of each post-processing mode on each labelled test split (from the raw predictions)."""
    rows = []
    for split, r in results.items():
        for mode, balance in POSTPROCESS_CHOICES:
            energy = postprocess(r.raw_energy, r.score, split, mode, balance)
            m = summarize(r.is_er, r.energy, r.score, energy)
            rows.append(dict(split=split, mode=mode + (" + balance" if balance else ""),
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
        lines += [f"    {r['split']:>13} {r['mode']:<16} AUC={r['auc']:.6f}  MAE={r['mae']:.4f}  score={r['score']:.1f}"
                  for r in pp_rows]
    return "\n".join(lines) + "\n"


def report(cfg) -> dict:
    folder = Path(cfg.report.results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    results = {"validation": validation_result(cfg)}
    root = Path(cfg.data.root)
    tests = scored_test_splits(cfg, root)
    results.update(tests)
    note = ("test splits scored from " + cfg.submission.output + " against " + str(root / "labels.csv")
            if tests else "no labelled test splits (real data has none, or generate_submission.py has not run)")
    metrics = {name: summarize(r.is_er, r.energy, r.score, r.final_energy) for name, r in results.items()}
    pp_rows = postprocess_table(tests)

    histories = load_histories(RunSettings.from_config(cfg, NAME).checkpoint_dir, OBJECTIVES)
    images = [folder / "roc_auc.png", folder / "energy_correlation.png", folder / "energy_comparison.png",
              folder / "confusion.png", folder / "learning_curves.png"]
    plot_roc(results, images[0])
    plot_energy_correlation(results, images[1])
    plot_energy_comparison(results, images[2])
    plot_confusion(results, images[3])
    plot_learning_curves(histories, images[4])
    images += plot_energy_histograms(results, folder)

    log_text = format_log(metrics, pp_rows, note)
    write_report(folder, log_text, dict(metrics=metrics, postprocess=pp_rows), cfg.to_ini(), images,
                 "idao report: CYGNO")
    print(log_text, end="")
    for split in ("public_test", "private_test"):
        if split in metrics:
            print(f"simulated {split.split('_')[0]} score: {metrics[split]['score']:.1f} "
                  f"(AUC {metrics[split]['auc']:.4f}, MAE {metrics[split]['mae']:.3f} keV)")
    print(f"report: {folder / 'index.html'}")
    return metrics

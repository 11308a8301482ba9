"""The calorimeter electron / photon task (``task.name = egamma``): settings, checks and the three jobs.

train: random stratified train / validation / test splits of the HDF5 files,
per-channel standardisation from the training split, ``engine.fit`` (best
validation AUC kept), then the best weights exported as ``.safetensors``.
generate: P(electron) for ``egamma.test`` (or the held-out test split) as a CSV.
report: ROC with a bootstrap interval, accuracies, curves, score distributions
and example images of the validation and test sets.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import building_dir, write_text
from ..checkpoint import check_checkpoint
from ..config import split_list
from ..distributed import main_process_first
from ..engine import ModelSettings, RunSettings, fit, load_trained, predict_outputs
from ..errors import ConfigError, DataError
from ..export import Exportable
from ..folds import pseudo_positions
from ..metrics import binary_auc
from ..models import check_model
from ..reporting import load_histories
from ..runtime import make_runtime, training_runtime
from ..schema import COUNT, FRACTION, NON_NEGATIVE, check_readable, check_rules, check_writable_dir
from ..splits import Split, fingerprint, stratified_split, validation_split
from ..tasks import Predictions, Report, TaskDefaults
from .export import export
from .io import ImageSet, expand, open_h5, read_images
from .objective import EgammaObjective, fit_channel_stats
from .plots import plot_accuracy_curves, plot_examples, plot_roc, plot_scores

NAME = "egamma"
MODEL = "egamma"  # checkpoints egamma_best.pt / egamma_last.pt
RULES = {"egamma.simulate_events": NON_NEGATIVE, "egamma.simulate_seed": NON_NEGATIVE,
         "egamma.val_fraction": FRACTION, "egamma.test_fraction": FRACTION, "egamma.block_rows": COUNT,
         "egamma.shuffle_blocks": COUNT, "egamma.output.bootstrap": NON_NEGATIVE,
         "egamma.energy_threshold": NON_NEGATIVE}
# what generate_submission.py and report.py take from the checkpoint unless set: the data and its splits
REMEMBERED = ("egamma.train", "egamma.val_fraction", "egamma.test_fraction", "train.seed", "egamma.model.model")


def model_section(cfg):
    return cfg.section("egamma.model")


def output_section(cfg):
    return cfg.section("egamma.output")


def ensure_data(ecfg) -> None:
    """With nothing at ``egamma.train`` (one folder) and ``simulate_events`` > 0, simulate the two files there."""
    parts = split_list(ecfg.train)
    if len(parts) != 1 or Path(parts[0]).exists() or ecfg.simulate_events <= 0:
        return
    from .simulate import simulate_dataset

    folder = Path(parts[0])
    print(f"No calorimeter data at {folder}: simulating {ecfg.simulate_events} electrons and photons there "
          f"(seed {ecfg.simulate_seed}). Set egamma.train to use the real files.")
    with building_dir(folder) as partial:
        simulate_dataset(partial, ecfg.simulate_events, ecfg.simulate_seed)


def read(ecfg, text: str, labelled: bool) -> ImageSet:
    return read_images(text, labelled, ecfg.block_rows, ecfg.shuffle_blocks)


def splits(data: ImageSet, ecfg, train_cfg) -> tuple[Split, np.ndarray]:
    """The training split and the test indices: random, stratified by class, seeded; the same for every job. The
    test part is held out first, so folds (``train.folds``) split only the rest."""
    rest, test = stratified_split(data.label, ecfg.test_fraction, train_cfg.seed)
    split = validation_split(data.label[rest], ecfg.val_fraction / (1 - ecfg.test_fraction), train_cfg,
                             seed=train_cfg.seed + 1)
    return split.within(rest), test


def prepare(cfg, rt, simulate: bool = True):
    if simulate:
        with main_process_first(rt.dist):
            ensure_data(cfg.egamma)
    data = read(cfg.egamma, cfg.egamma.train, labelled=True)
    counts = [int((data.label == c).sum()) for c in (1, 0)]
    if min(counts) < 10:
        raise DataError(f"{cfg.egamma.train}: training needs both classes, found {counts[0]} electrons and "
                        f"{counts[1]} photons")
    return data, splits(data, cfg.egamma, cfg.train)


def is_simulated(data: ImageSet) -> bool:
    """Whether the first file was written by idao's simulator (its ``simulated`` attribute)."""
    with open_h5(data.sources[0].path) as f:
        return "simulated" in f.attrs


def pseudo_labels(cfg, predicted: Predictions, threshold: float) -> pd.DataFrame:
    """``id, electron, confidence`` of the test images called electron (or photon) with probability >= threshold."""
    p = predicted.table["p_electron"].to_numpy(float)
    confidence = np.maximum(p, 1 - p)
    keep = confidence >= threshold
    return pd.DataFrame({"id": predicted.table["id"][keep], "electron": (p[keep] > 0.5).astype(int),
                         "confidence": confidence[keep]})


def fingerprints(images: ImageSet, batch: int = 4096) -> list[str]:
    return [fingerprint(x) for start in range(0, len(images), batch)
            for x in images.read(np.arange(start, min(start + batch, len(images))))]


def training_images(cfg, data: ImageSet, split: Split, test_idx: np.ndarray) -> ImageSet:
    """The images to train on: ``split.train`` of ``data`` and, in a pseudo-labelling round 2, the test images
    round 1 called, labelled as called: from the held-out test part, or from ``egamma.test``'s files (read after
    the training files, as one set), less any copy of an image the run holds out (validated or scored on)."""
    if cfg.train.pseudo_label <= 0:
        return data.subset(split.train)
    both, test_part = data, test_idx
    if str(cfg.egamma.test).strip():
        both = read(cfg.egamma, f"{cfg.egamma.train},{cfg.egamma.test}", labelled=False)
        both.label = np.r_[data.label, np.full(len(both) - len(data), -1)]
        test_part = np.arange(len(data), len(both))
    labels, positions = pseudo_positions(cfg, NAME, [both.ids[i] for i in test_part])
    held_out = set(fingerprints(data.subset(split.held_out())))
    keep = [k for k, f in enumerate(fingerprints(both.subset(test_part[positions]))) if f not in held_out]
    images = both.subset(np.r_[split.train, test_part[positions[keep]]].astype(int))
    images.label[len(split.train):] = labels["electron"].to_numpy(int)[keep]
    return images


def train(cfg) -> list[dict]:
    run = RunSettings.from_config(cfg, NAME)
    settings = ModelSettings.from_section(model_section(cfg), "egamma.model")
    with training_runtime(cfg.train) as rt:
        data, (split, test_idx) = prepare(cfg, rt)
        train_idx, val_idx = split.train, split.val
        threshold = cfg.egamma.energy_threshold
        mean, std = fit_channel_stats(data.subset(train_idx), threshold)
        objective = EgammaObjective(mean, std, model_section(cfg).augment, threshold)
        images = training_images(cfg, data, split, test_idx)
        if rt.dist.main:
            print(f"calorimeter images: {len(data)} ({int(data.label.sum())} electrons) in {len(data.sources)} files; "
                  f"training on {len(train_idx)}, validating on {len(val_idx)}, {len(test_idx)} held out for test"
                  + (f"; with {len(images) - len(train_idx)} pseudo-labelled test images"
                     if cfg.train.pseudo_label > 0 else "")
                  + f"; channel mean {np.round(mean, 4).tolist()} std {np.round(std, 4).tolist()} (training split)")
            write_text(run.checkpoint_dir / "config.ini", cfg.to_ini())
        result = fit(MODEL, settings, objective, images, data.subset(val_idx), rt, run, {})
        if rt.dist.main and run.fold is not None:
            print(f"fold {run.fold}: not exported (egamma.output.export holds one model; train.folds = 1 writes it)")
        elif rt.dist.main:
            model, objective = load_model(cfg, rt, run)
            path = export(model.cpu(), objective, settings.model, cfg.to_ini(), output_section(cfg).export)
            print(f"exported the best weights ({settings.model}, epoch {result['best_epoch'] + 1}) to {path}")
        return [result]


def load_model(cfg, rt, run: RunSettings | None = None):
    run = run or RunSettings.from_config(cfg, NAME)
    return load_trained(run.members(MODEL), ModelSettings.from_section(model_section(cfg), "egamma.model"), {},
                        EgammaObjective, rt)


def to_predict(cfg, prepared=None) -> ImageSet:
    """``egamma.test``, or the held-out test split of the training files (``prepared``: the training data and
    splits already read, so they are not read again)."""
    if str(cfg.egamma.test).strip():
        return read(cfg.egamma, cfg.egamma.test, labelled=False)
    data, (_, test_idx) = prepared or prepare(cfg, make_runtime(cfg.train), simulate=False)
    return data.subset(test_idx)


def predict(cfg, rt) -> Predictions:
    model, objective = load_model(cfg, rt)
    data = to_predict(cfg)
    p = objective.predict(predict_outputs(model, objective, data, rt))
    return Predictions(pd.DataFrame({"id": data.ids, "p_electron": p}),
                       f"{len(p)} images, {np.mean(p > 0.5):.1%} called electrons", float_format="%.6g")


def export_models(cfg, rt) -> dict:
    """The classifier for ``idao-export``, with a batch of validation images' inputs (channel standardisation
    included: it is in the objective, and the exported graph starts after it)."""
    model, objective = load_model(cfg, rt)
    data, (split, _) = prepare(cfg, rt, simulate=False)
    return {MODEL: Exportable(model, objective, objective.inputs(data, np.sort(split.scored[:8]), rt),
                              RunSettings.from_config(cfg, NAME).members(MODEL)[0])}


def validation_predictions(cfg, rt) -> pd.DataFrame:
    """The validation images: id, truth (1: electron) and the electron probability, as the report scores them."""
    model, objective = load_model(cfg, rt)
    data, (split, _) = prepare(cfg, rt, simulate=False)
    val = data.subset(split.scored)
    return pd.DataFrame({"id": val.ids, "electron": val.label.astype(int),
                         "p_electron": objective.predict(predict_outputs(model, objective, val, rt))})


def score_out_of_fold(table: pd.DataFrame) -> dict:
    """AUC (electron positive) and accuracy of ``validation_predictions``' rows, as the report scores them."""
    m = summarize(table["electron"].to_numpy(int), table["p_electron"].to_numpy(float), resamples=0)
    return {"AUC": m["auc"], "accuracy": m["accuracy"]}


def bootstrap_auc(y: np.ndarray, p: np.ndarray, n: int, seed: int = 0) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles of the AUC over ``n`` resamples of the events (NaN when n = 0)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        values.append(binary_auc(y[i] == 1, p[i]))
    values = [v for v in values if np.isfinite(v)]  # a resample of one class has no AUC
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))) if values else (np.nan, np.nan)


def summarize(y: np.ndarray, p: np.ndarray, resamples: int) -> dict:
    auc = binary_auc(y == 1, p)
    low, high = bootstrap_auc(y, p, resamples)
    return dict(n=int(len(y)), auc=auc, auc_ci95=[low, high], accuracy=float(np.mean((p > 0.5) == (y == 1))),
                electron_efficiency=float(np.mean(p[y == 1] > 0.5)), photon_rejection=float(np.mean(p[y == 0] <= 0.5)))


def test_result(cfg, prepared) -> tuple[np.ndarray, np.ndarray] | None:
    """Labels and P(electron) of the predictions CSV (what a user hands on), when its images are labelled."""
    out = Path(output_section(cfg).predictions)
    if not out.exists():
        return None
    data = to_predict(cfg, prepared)
    if data.label is None:
        return None
    table = pd.read_csv(out, dtype={"id": str}).set_index("id").reindex(data.ids)
    if table["p_electron"].isna().any():
        raise DataError(f"{out}: no prediction for {int(table['p_electron'].isna().sum())} of the images to predict; "
                        "run generate_submission.py again")
    return data.label, table["p_electron"].to_numpy(float)


def evaluate(cfg, rt, folder: Path) -> Report:
    run = RunSettings.from_config(cfg, NAME)
    model, objective = load_model(cfg, rt, run)
    prepared = prepare(cfg, rt, simulate=False)
    data, (split, _) = prepared
    val = data.subset(split.scored)
    results = {"validation": (val.label, objective.predict(predict_outputs(model, objective, val, rt)))}
    test = test_result(cfg, prepared)
    if test is not None:
        results["test"] = test
    resamples = output_section(cfg).bootstrap
    metrics = {name: summarize(y, p, resamples) for name, (y, p) in results.items()}
    history, _, best_epoch = next(iter(load_histories(run, [MODEL]).values()))  # fold 0 of folds
    kept = history[best_epoch]
    metrics["training"] = dict(of="fold 0 of the ensemble" if run.folds > 1 and run.fold is None else "the model",
                               best_epoch=best_epoch + 1, epochs=len(history), model=model_section(cfg).model,
                               train_accuracy=kept.get("train_accuracy"), val_accuracy=kept.get("val_accuracy"),
                               train_loss=kept["train_loss"], val_loss=kept.get("val_loss"))
    images = [folder / n for n in ("roc.png", "accuracy_curves.png", "scores.png", "examples.png")]
    plot_roc(results, images[0])
    plot_accuracy_curves(history, best_epoch, images[1])
    plot_scores(results, images[2])
    first = np.sort(np.concatenate([np.flatnonzero(val.label == c)[:4] for c in (1, 0)]))
    plot_examples(val.read(first), val.label[first], images[3])
    shown = "test" if "test" in metrics else "validation"
    m = metrics[shown]
    headline = (f"{shown}: ROC-AUC {m['auc']:.4f} (95 % {m['auc_ci95'][0]:.4f}-{m['auc_ci95'][1]:.4f}) · accuracy "
                f"{m['accuracy']:.4f} · {model_section(cfg).model}, epoch {best_epoch + 1} of {len(history)}")
    lines = [headline, ""] + [
        f"[{n}] n={v['n']}  AUC={v['auc']:.4f} [{v['auc_ci95'][0]:.4f}, {v['auc_ci95'][1]:.4f}]  accuracy="
        f"{v['accuracy']:.4f}  electron efficiency={v['electron_efficiency']:.4f}  photon rejection="
        f"{v['photon_rejection']:.4f}" for n, v in metrics.items() if n != "training"]
    t = metrics["training"]
    lines.append(f"[training] kept epoch {t['best_epoch']}/{t['epochs']}: train accuracy {t['train_accuracy']:.4f}, "
                 f"validation accuracy {t['val_accuracy']:.4f}")
    log_text = "\n".join(lines) + "\n"
    tables = [("Sets", ["set", "n", "AUC", "AUC 95 % low", "AUC 95 % high", "accuracy", "electron efficiency",
                        "photon rejection"],
               [[n, v["n"], v["auc"], *v["auc_ci95"], v["accuracy"], v["electron_efficiency"], v["photon_rejection"]]
                for n, v in metrics.items() if n != "training"]),
              ("Per epoch", ["epoch", "train loss", "train accuracy", "val loss", "val accuracy", "val AUC"],
               [[h["epoch"] + 1, h["train_loss"], h.get("train_accuracy"), h.get("val_loss"), h.get("val_accuracy"),
                 h["val_metric"]] for h in history])]
    banner = "SIMULATED DATA (idao.egamma.simulate): not the real calorimeter files" if is_simulated(data) else ""
    return Report("idao report: calorimeter electron vs photon", headline, log_text, metrics, images, tables, banner)


class EgammaTask(TaskDefaults):
    name = NAME
    sections = ("egamma", "egamma.model", "egamma.output")
    models = (MODEL,)
    path_keys = ("egamma.train", "egamma.test", "egamma.output.predictions", "egamma.output.results_dir",
                 "egamma.output.export")
    predictions_key = "egamma.output.predictions"
    results_key = "egamma.output.results_dir"
    remembered = REMEMBERED
    must_match = ("egamma.model.model",)

    def check(self, cfg) -> None:
        check_rules(cfg, RULES, ("egamma.model",))
        ecfg = cfg.egamma
        if ecfg.val_fraction + ecfg.test_fraction >= 1:
            raise ConfigError(f"egamma.val_fraction + egamma.test_fraction = {ecfg.val_fraction + ecfg.test_fraction}: "
                              "expected below 1 (something must be left to train on)")
        check_model(model_section(cfg), "egamma.model")

    def check_train(self, cfg) -> None:
        ecfg, parts = cfg.egamma, split_list(cfg.egamma.train)
        if not parts:
            raise ConfigError("egamma.train is empty: name the HDF5 files or folders to train on")
        if not (len(parts) == 1 and not Path(parts[0]).exists() and ecfg.simulate_events > 0):
            for p in parts:
                check_readable(p, "egamma.train")
            expand(ecfg.train)
        check_writable_dir(Path(output_section(cfg).export).parent, "egamma.output.export")

    def check_generate(self, cfg) -> None:
        check_checkpoint(self.checkpoint(cfg))
        for p in split_list(cfg.egamma.train):
            check_readable(p, "egamma.train (the held-out splits come from it)")
        if str(cfg.egamma.test).strip():
            expand(cfg.egamma.test)

    check_report = check_generate  # the same inputs: the model, the training files' splits, the test files

    ensure_data = staticmethod(lambda cfg: ensure_data(cfg.egamma))
    train = staticmethod(lambda cfg, only=None: train(cfg))  # one model: ``only`` can only name it
    predict = staticmethod(predict)
    evaluate = staticmethod(evaluate)
    validation_predictions = staticmethod(validation_predictions)
    score_out_of_fold = staticmethod(score_out_of_fold)
    pseudo_labels = staticmethod(pseudo_labels)
    export_models = staticmethod(export_models)


TASK = EgammaTask()

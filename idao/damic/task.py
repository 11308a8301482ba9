"""The DAMIC-M task (``task.name = damic``): its settings, checks and three jobs (train, predict CSV, report).

The core does the rest: ``engine.fit`` trains, checkpoints are atomic,
pickle-free files (``<checkpoint_dir>/damic/track_best.pt`` / ``track_last.pt``,
with the window and the training-set standardisation inside the saved
objective), outputs carry the resolved config.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from ..atomic import write_text
from ..checkpoint import check_checkpoint, load_checkpoint
from ..config import split_list
from ..distributed import main_process_first
from ..engine import ModelSettings, RunSettings, fit, load_trained, predict_outputs, save_fitted
from ..errors import ConfigError, DataError
from ..export import Exportable
from ..models import build_model, check_model
from ..schema import FRACTION, NON_NEGATIVE, Choice, Range, check_readable, check_rules
from ..reporting import load_histories, plot_learning_curves
from ..runtime import training_runtime
from ..folds import out_of_fold_table, pseudo_positions
from ..splits import Split, validation_split
from ..tasks import Predictions, Report, TaskDefaults
from ..trees import fit_trees
from .models import BLEND, TREES, model_inputs
from .simulate import SIMULATED
from .objective import TrackObjective, class_balance, fit_feature_stats, fit_stats, fit_window
from .io import CLASS_NAMES, Events, check_labels, concat, drop_repeated_frames, read_events
from .metrics import accuracy_by, classification_metrics, iou
from .plots import TrackResult, plot_accuracy_vs, plot_confusion, plot_iou, plot_roc

NAME = "damic"
MODEL = "track"  # the one model: checkpoints track_best.pt / track_last.pt
COMPAT_KEYS = ("classes", "window", "bin", "log_scale", "add_noise")  # a checkpoint must match these
BOX_TARGETS = ("corner", "centre_log")
# what generate_submission.py and report.py read from the checkpoint unless set (the data too: the report's
# validation split must be the one the model was validated on)
REMEMBERED = ("damic.classes", "damic.packed_labels", "damic.window", "damic.bin", "damic.log_scale", "damic.add_noise",
              "damic.train", "damic.val_fraction", "train.seed", "damic.model.model", "damic.model.class_balance")
RULES = {  # beside the defaults in config.ini; see idao/schema.py
    "damic.simulate_events": NON_NEGATIVE, "damic.simulate_seed": NON_NEGATIVE, "damic.val_fraction": FRACTION,
    "damic.bin": Range(1, 16), "damic.model.box_weight": Range(0, 1, open_high=True),
    "damic.model.box_target": Choice(BOX_TARGETS), "damic.model.tree_rounds": Range(1),
    "damic.model.tree_lr": Range(0, 1, open_low=True),
}


def names(text: str, key: str) -> tuple[str, ...]:
    items = tuple(split_list(text))
    if not items:
        raise ConfigError(f"damic.{key} is empty")
    return items


def model_classes(dcfg) -> tuple[str, ...]:
    classes = names(dcfg.classes, "classes")
    unknown = [c for c in classes if c not in CLASS_NAMES]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise ConfigError(f"damic.classes = {dcfg.classes!r}: expected two or more distinct names of {CLASS_NAMES}")
    return classes


def parse_window(text, bin_factor: int) -> tuple[int, int] | None:
    """None for ``auto``; else (H, W) from ``HxW``, a multiple of ``bin``."""
    if str(text).strip().lower() == "auto":
        return None
    try:
        h, w = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise ConfigError(f"damic.window = {text!r}: expected auto or HxW, e.g. 128x128") from None
    if h % bin_factor or w % bin_factor or h <= 0 or w <= 0:
        raise ConfigError(f"damic.window = {text!r}: both sides must be positive multiples of damic.bin ({bin_factor})")
    return h, w


def compat_settings(cfg) -> dict:
    """What a checkpoint must have been trained with to be resumed or loaded: its inputs, and the class weighting
    its probabilities' prior comes from."""
    return {"damic": {k: getattr(cfg.damic, k) for k in COMPAT_KEYS},
            "damic.model": {"class_balance": model_section(cfg).class_balance}}


def label_maps(dcfg) -> list[tuple[str, ...]]:
    """``damic.packed_labels``: the class of label value 0, 1, ... of the packed training files, either one list
    for all of them or one per ``damic.train`` source, separated by ``;`` (``electron,muon;noise,electron``;
    empty for a folder of per-event files)."""
    maps = [tuple(split_list(m)) for m in str(dcfg.packed_labels).split(";")]
    sources = split_list(dcfg.train)
    if len(maps) > 1 and len(maps) != len(sources):
        raise ConfigError(f"damic.packed_labels = {dcfg.packed_labels!r}: {len(maps)} label maps for "
                          f"{len(sources)} damic.train sources; give one map, or one per source in their order")
    unknown = sorted({c for m in maps for c in m} - set(CLASS_NAMES))
    if unknown or not any(maps):
        raise ConfigError(f"damic.packed_labels = {dcfg.packed_labels!r}: expected names of {CLASS_NAMES}"
                          + (f", found {unknown}" if unknown else ""))
    return maps


def label_map(dcfg, source, training: bool) -> tuple[str, ...] | None:
    """The label map of ``source``: a training source's own; a file to predict takes the map of that training
    file, else of the one training file of its name, or the only map; else none (its labels, not needed to
    predict, are then not scored)."""
    maps, sources = label_maps(dcfg), split_list(dcfg.train)
    if len(maps) == 1:
        return maps[0]
    if training or source in sources:
        return maps[sources.index(source)]
    named = [m for s, m in zip(sources, maps) if Path(s).name == Path(source).name and m]
    return named[0] if len(named) == 1 else None


def load_events(text, dcfg, labelled: bool = True, classes: tuple[str, ...] | None = None,
                verbose: bool = True) -> Events:
    """All events of the comma-separated sources in ``text``; with ``classes``, only those (the rest counted). In
    training data (``labelled``) a frame read from an earlier source is left out of a later one (kept once); every
    event to predict is predicted."""
    parts = [read_events(s, label_map(dcfg, s, labelled), labelled) for s in split_list(text)]
    if not parts:
        raise ConfigError("no DAMIC data to read: damic.train / damic.test is empty")
    if labelled:
        parts, repeated = drop_repeated_frames(parts)
        if repeated and verbose:
            print(f"{text}: {repeated} event frames already read from an earlier file left out (kept once)")
    events = concat(parts)
    if classes is None:
        return events
    events, dropped = events.select(classes)
    if dropped and verbose:
        print(f"{text}: left out events of classes not in damic.classes: "
              + ", ".join(f"{c or 'unlabelled'} {n}" for c, n in dropped.items()))
    if len(events) == 0:
        raise DataError(f"{text}: no events of the classes {', '.join(classes)}")
    return events


def ensure_data(dcfg, key: str = "train") -> Path | None:
    """With no data at ``damic.train`` (``key``: or ``damic.test``) and ``simulate_events`` > 0, simulate a
    train/ and test/ pair into its parent first."""
    sources = split_list(getattr(dcfg, key))
    first = Path(sources[0]) if sources else None
    if first is None or first.exists() or dcfg.simulate_events <= 0:
        return first
    from .simulate import simulate_dataset

    print(f"No DAMIC data at {first}: simulating {dcfg.simulate_events} events per class into {first.parent} "
          f"(seed {dcfg.simulate_seed}). Set damic.{key} to use real data.")
    simulate_dataset(first.parent, dcfg.simulate_events, dcfg.simulate_seed)
    return first


def prepare(cfg, rt, simulate: bool = True) -> tuple[Events, Split]:
    """Training events and their stratified split: the same for train and report (which never simulates: it
    scores the data the checkpoint was trained on)."""
    if simulate:
        with main_process_first(rt.dist):
            ensure_data(cfg.damic)
    classes = model_classes(cfg.damic)
    events = load_events(cfg.damic.train, cfg.damic, classes=classes, verbose=rt.dist.main)
    counts = {c: int((events.particle == c).sum()) for c in classes}
    if min(counts.values()) < 2:
        raise DataError(f"{cfg.damic.train}: every class of damic.classes needs training events, found "
                        + ", ".join(f"{c} {n}" for c, n in counts.items()))
    split = validation_split(events.particle, cfg.damic.val_fraction, cfg.train, events.copies(), cfg.damic.train,
                             "event frame", rt.dist.main)
    return events, split


def model_section(cfg):
    return cfg.section("damic.model")


def make_objective(cfg, train: Events) -> TrackObjective:
    """The objective for ``train``: its window (unless fixed) and its standardisation, measured on it alone."""
    dcfg, mcfg = cfg.damic, model_section(cfg)
    window = parse_window(dcfg.window, dcfg.bin) or fit_window(train, dcfg.bin)
    objective = TrackObjective(model_classes(dcfg), window, dcfg.bin, dcfg.log_scale, dcfg.add_noise, mcfg.augment,
                               mcfg.box_weight, mcfg.box_target, reads=model_inputs(mcfg.model))
    mean, std = fit_stats(objective, train)
    if mcfg.class_balance:  # every class the same total weight: the probabilities then carry a uniform prior
        weights, fractions = class_balance(train.label, len(objective.classes))
    else:
        weights, fractions = (), tuple(float(np.mean(train.label == j)) for j in range(len(objective.classes)))
    # the features are measured (and cached) only for models that read them
    feature_mean, feature_std = fit_feature_stats(train) if "features" in objective.reads else ((), ())
    return dataclasses.replace(objective, mean=mean, std=std, class_fractions=fractions, class_weights=weights,
                               feature_mean=feature_mean, feature_std=feature_std)


AUTO_PRIORS = "auto"  # damic.test_priors = auto: estimated from the events predicted (``estimate_priors``)


def parse_priors(text, classes: tuple[str, ...]) -> np.ndarray | str | None:
    """``damic.test_priors`` ("electron=0.77,muon=0.23") as fractions in class order; ``AUTO_PRIORS`` for auto;
    None when empty."""
    if not str(text).strip():
        return None
    if str(text).strip().lower() == AUTO_PRIORS:
        return AUTO_PRIORS
    try:
        values = {k.strip(): float(v) for k, _, v in (item.partition("=") for item in str(text).split(","))}
    except ValueError:
        raise ConfigError(f"damic.test_priors = {text!r}: expected auto or class=fraction pairs, e.g. "
                          "electron=0.77,muon=0.23") from None
    if set(values) != set(classes) or min(values.values()) <= 0:
        raise ConfigError(f"damic.test_priors = {text!r}: give a positive fraction for each of {', '.join(classes)}")
    priors = np.array([values[c] for c in classes])
    return priors / priors.sum()


def estimate_priors(probs: np.ndarray, training: tuple[float, ...], iterations: int = 1000) -> np.ndarray:
    """The class fractions of a set of events, from the model's probabilities alone: re-weight them to the current
    estimate, average, repeat (the EM of Saerens, Latinne & Decaestecker 2002). Sound where the probabilities are
    calibrated, as the default blend's are (each part kept at its lowest validation log-loss)."""
    training = np.maximum(np.asarray(training, float), 1e-9)
    priors = training.copy()
    for _ in range(iterations):
        weighted = probs * (priors / training)
        new = (weighted / weighted.sum(axis=1, keepdims=True)).mean(0)
        if np.abs(new - priors).max() < 1e-7:
            break
        priors = new
    return new


def resolve_priors(probs: np.ndarray, training: tuple[float, ...], priors: np.ndarray | str | None):
    """The priors to decide with: as set, estimated from ``probs`` for ``AUTO_PRIORS``, or None (the model's own)."""
    return estimate_priors(probs, training) if isinstance(priors, str) and training else priors


def with_priors(probs: np.ndarray, training: tuple[float, ...], priors: np.ndarray | None) -> np.ndarray:
    """Class probabilities re-weighted from the prior the model carries (``training``: the training set's class
    fractions, or equal ones for a class-balanced model) to the test file's expected ones (Bayes' rule)."""
    if priors is None or not training:
        return probs
    weighted = probs * (priors / np.maximum(np.asarray(training), 1e-9))
    return weighted / weighted.sum(axis=1, keepdims=True)


def train_model(cfg, train: Events, val: Events, rt, run: RunSettings) -> dict:
    objective = make_objective(cfg, train)
    without_noise = sum(n is None and p != "noise" for n, p in zip(train.noise, train.particle))
    if objective.add_noise and without_noise and rt.dist.main:
        print(f"warning: damic.add_noise is on but {without_noise} training events have no noise frame "
              "(packed files carry none); they are used as they are")
    if rt.dist.main:
        print(f"{MODEL}: window {objective.window[0]}x{objective.window[1]} px, bin {objective.bin}, "
              f"standardisation mean {objective.mean:.4g} std {objective.std:.4g} (training set)")
    settings = ModelSettings.from_section(model_section(cfg), "damic.model")
    if settings.model == TREES:
        return fit_tree_model(cfg, settings, objective, train, val, rt, run)
    if settings.model == BLEND:
        return fit_blend(cfg, settings, objective, train, val, rt, run)
    return fit(MODEL, settings, objective, train, val, rt, run, compat_settings(cfg))


def boost(cfg, objective: TrackObjective, train: Events, val: Events, seed: int):
    """Boosted trees on the training tracks' features, as many rounds as the validation log-loss likes best (the
    networks' "best epoch"); returns them and one history row per round."""
    mcfg = model_section(cfg)
    x, x_val = (objective.features(d, np.arange(len(d))).numpy() for d in (train, val))
    return fit_trees(x, train.label, len(objective.classes), x_val, val.label, seed, mcfg.tree_rounds, mcfg.tree_lr,
                     objective.class_weights)


def fit_tree_model(cfg, settings: ModelSettings, objective: TrackObjective, train: Events, val: Events, rt,
                   run: RunSettings) -> dict:
    """``track_trees``, saved as an ordinary checkpoint."""
    trees, history = boost(cfg, objective, train, val, run.seed)
    model = build_model(TREES, num_outputs=objective.num_outputs)
    model.load_state_dict(trees.state_dict())
    summary = save_fitted(MODEL, settings, model, objective, history, rt, run)
    if rt.dist.main:
        print(f"{MODEL}: {TREES}, {summary['best_epoch'] + 1} of {len(history)} boosting rounds kept "
              f"(validation log-loss {summary['best']:.4f})")
    return summary


def fit_blend(cfg, settings: ModelSettings, objective: TrackObjective, train: Events, val: Events, rt,
              run: RunSettings) -> dict:
    """``track_blend``: the features network trained by the loop (checkpoints ``track_network_*``, resumable),
    its best epoch joined with the boosted trees; the blend's validation log-loss is its one history row."""
    network_settings = dataclasses.replace(settings, model="track_features")
    network = fit(f"{MODEL}_network", network_settings, objective, train, val, rt, run, compat_settings(cfg))
    trees, rounds = boost(cfg, objective, train, val, run.seed)
    model = build_model(BLEND, drop_rate=settings.drop_rate, num_outputs=objective.num_outputs)
    with main_process_first(rt.dist):  # under torchrun only rank 0 writes the network's checkpoint
        model.network.load_state_dict(load_checkpoint(run.path(f"{MODEL}_network", "best"))["model"])
    model.trees.load_state_dict(trees.state_dict())
    losses = [objective.metric(objective.predict(predict_outputs(model, objective, d, rt)), d) for d in (train, val)]
    history = [dict(epoch=0, train_loss=losses[0], val_metric=losses[1])]
    summary = save_fitted(MODEL, settings, model, objective, history, rt, run)
    if rt.dist.main:
        print(f"{MODEL}: {BLEND}, network epoch {network['best_epoch'] + 1} (validation log-loss {network['best']:.4f})"
              f" + {np.argmin([r['val_metric'] for r in rounds]) + 1} of {len(rounds)} boosting rounds; the blend's "
              f"validation log-loss {summary['best']:.4f}")
    return dict(summary, epochs_run=network["epochs_run"])  # the blend's own history is one row


def pseudo_labels(cfg, predicted: Predictions, threshold: float) -> pd.DataFrame:
    """``id, particle, confidence`` of the test events whose most likely class has a probability >= threshold."""
    table = predicted.table
    confidence = table[[c for c in table.columns if c.startswith("p_")]].to_numpy(float).max(1)
    keep = confidence >= threshold
    return pd.DataFrame({"id": table["id"][keep], "particle": table["predicted"][keep], "confidence": confidence[keep]})


def pseudo_events(cfg) -> Events | None:
    """The pseudo-labelled test events of round 1 (``damic.test``), labelled; None where pseudo-labelling is off."""
    if cfg.train.pseudo_label <= 0:
        return None
    events = load_events(cfg.damic.test, cfg.damic, labelled=False)
    labels, positions = pseudo_positions(cfg, NAME, events.ids)
    chosen = events.subset(positions)
    chosen.particle = labels["particle"].to_numpy(str)
    chosen.ids = [f"pseudo:{i}" for i in chosen.ids]  # test ids may repeat training ids (files of one name)
    return chosen


def without_frames(events: Events, of: Events) -> Events:
    """``events`` less those whose frame is one of ``of``'s: a pseudo-labelled copy of a held-out frame would
    let round 2 train on what it is validated or scored on."""
    if events.digest is None or of.digest is None:
        return events
    return events.subset(np.flatnonzero(~np.isin(events.digest, of.digest)))


def train(cfg) -> list[dict]:
    run = RunSettings.from_config(cfg, NAME)
    with training_runtime(cfg.train) as rt:
        events, split = prepare(cfg, rt)
        fitted, extra = events.subset(split.train), pseudo_events(cfg)
        if extra is not None:
            extra = without_frames(extra, events.subset(split.held_out()))
            fitted = concat([fitted, extra]).select(model_classes(cfg.damic))[0]  # labels set on the whole
        if rt.dist.main:
            counts = ", ".join(f"{c} {n}" for c, n in zip(*np.unique(events.particle, return_counts=True)))
            print(f"DAMIC events: {len(events)} ({counts}); training on {len(split.train)}, validating on "
                  f"{len(split.val)}"
                  + (f"; with {len(extra)} pseudo-labelled test events" if extra is not None else ""))
            write_text(run.checkpoint_dir / "config.ini", cfg.to_ini())
        return [train_model(cfg, fitted, events.subset(split.val), rt, run)]


def load_model(cfg, rt, run: RunSettings | None = None):
    """The best checkpoint and the objective (window, statistics) it was trained with."""
    run = run or RunSettings.from_config(cfg, NAME)
    return load_trained(run.members(MODEL), ModelSettings.from_section(model_section(cfg), "damic.model"),
                        compat_settings(cfg), TrackObjective, rt)


def frame_boxes(objective: TrackObjective, events: Events, box_fraction: np.ndarray) -> np.ndarray:
    """Predicted boxes (fractions of the centred window) -> frame pixels: row, col, height, width."""
    start, _, offset = objective.placement(events, np.arange(len(events)), None)
    px = box_fraction * np.tile(np.array(objective.window, dtype=float), 2)
    origin = events.boxes[:, :2] + start - offset
    return np.column_stack([origin + px[:, :2], px[:, 2:]])


def predictions(model, objective: TrackObjective, events: Events, rt,
                priors: np.ndarray | str | None = None) -> tuple[pd.DataFrame, str | None]:
    """One row per event: id, class probabilities (for the test ``priors`` when given), predicted class, box;
    and, for ``damic.test_priors = auto``, the line that says which priors were estimated."""
    pred = objective.predict(predict_outputs(model, objective, events, rt))
    n = len(objective.classes)
    resolved, estimated = resolve_priors(pred[:, :n], objective.class_fractions, priors), None
    if resolved is not priors:  # estimated from these events
        estimated = f"class priors estimated from the {len(events)} events predicted: " + ", ".join(
            f"{c} {p:.3f}" for c, p in zip(objective.classes, resolved))
        print(estimated)
    pred[:, :n] = with_priors(pred[:, :n], objective.class_fractions, resolved)
    table = pd.DataFrame({"id": events.ids})
    for j, c in enumerate(objective.classes):
        table[f"p_{c}"] = pred[:, j]
    table["predicted"] = np.array(objective.classes)[pred[:, :n].argmax(1)]
    box = frame_boxes(objective, events, pred[:, n:])
    for j, col in enumerate(BOX_COLUMNS):
        table[col] = box[:, j]
    return table, estimated


BOX_COLUMNS = ("box_row", "box_col", "box_height", "box_width")


def predict(cfg, rt) -> Predictions:
    """Every event of ``damic.test``: class probabilities (summing to 1), predicted class, box."""
    model, objective = load_model(cfg, rt)
    events = load_events(cfg.damic.test, cfg.damic, labelled=False)
    table, estimated = predictions(model, objective, events, rt,
                                   parse_priors(cfg.damic.test_priors, objective.classes))
    probs = table[[f"p_{c}" for c in objective.classes]].to_numpy()
    if not np.allclose(probs.sum(1), 1, atol=1e-4):
        raise DataError("predicted class probabilities do not sum to 1; refusing to write them")
    counts = ", ".join(f"{c} {n}" for c, n in table["predicted"].value_counts().items())
    return Predictions(table, f"{len(table)} events (predicted {counts})", float_format="%.6g",
                       notes=[estimated] if estimated else [])


def export_models(cfg, rt) -> dict:
    """The track model for ``idao-export``, with a batch of validation events' inputs."""
    model, objective = load_model(cfg, rt)
    events, split = prepare(cfg, rt, simulate=False)
    return {MODEL: Exportable(model, objective, objective.inputs(events, split.scored[:8], rt),
                              RunSettings.from_config(cfg, NAME).members(MODEL)[0])}


def validation_predictions(cfg, rt) -> pd.DataFrame:
    """The validation events as the report scores them: the prediction table (no test priors) and the truth."""
    model, objective = load_model(cfg, rt)
    events, split = prepare(cfg, rt, simulate=False)
    val = events.subset(split.scored)
    table = predictions(model, objective, val, rt)[0]
    table.insert(1, "particle", val.particle)
    return table


def score_out_of_fold(table: pd.DataFrame) -> dict:
    """Accuracy, balanced accuracy and AUC of ``validation_predictions``' rows, as the report scores them."""
    classes = [c[2:] for c in table.columns if c.startswith("p_")]
    label = np.array([classes.index(p) for p in table["particle"]], dtype=int)
    m = classification_metrics(label, table[[f"p_{c}" for c in classes]].to_numpy(float), classes)
    return {"accuracy": m["accuracy"], "balanced accuracy": m["balanced_accuracy"], "AUC": m["auc"]}


def track_result(objective: TrackObjective, events: Events, table: pd.DataFrame) -> TrackResult:
    """Truth of ``events`` beside the predictions in ``table`` (same order)."""
    box = table[list(BOX_COLUMNS)].to_numpy(float)
    overlap = np.where(events.particle != "noise", iou(box, events.boxes), np.nan)
    return TrackResult(objective.classes, events.label, table[[f"p_{c}" for c in objective.classes]].to_numpy(float), overlap,
                       events.energy, events.elongation.astype(float))


def test_results(cfg, objective: TrackObjective) -> dict:
    """Labelled test sources scored from the predictions CSV itself (what a user would hand on)."""
    out = Path(cfg.section("damic.output").predictions)
    if not out.exists() or not split_list(cfg.damic.test):
        return {}
    table = pd.read_csv(out, dtype={"id": str})
    missing = [c for c in ["id", *(f"p_{c}" for c in objective.classes), *BOX_COLUMNS] if c not in table.columns]
    if missing:
        raise DataError(f"{out}: columns {missing} missing; it was not written for classes {','.join(objective.classes)}")
    results = {}
    for source in split_list(cfg.damic.test):
        events, _ = read_events(source, label_map(cfg.damic, source, False), labelled=False).select(objective.classes)
        if len(events) == 0:
            continue  # unlabelled data
        rows = table.set_index("id").reindex(events.ids)
        if rows["predicted"].isna().any():
            raise DataError(f"{out}: no prediction for {int(rows['predicted'].isna().sum())} events of {source}; "
                            "run generate_submission.py again")
        results[Path(source).name] = track_result(objective, events, rows.reset_index())
    return results


def out_of_fold_results(cfg, objective: TrackObjective, events: Events) -> dict:
    """With ``train.folds`` > 1, every training event scored by the fold model that did not train on it
    (``oof.csv``): all together and, for several training files, each file apart (the e/mu and e/noise files of
    the thesis' three-class run are scored as the thesis scored them, one file at a time)."""
    found = out_of_fold_table(cfg, NAME)
    if found is None:
        return {}
    table, path = found[0].set_index("id"), found[1]
    missing = [i for i in events.ids if i not in table.index]
    if missing or (table.loc[events.ids, "particle"].to_numpy() != events.particle).any():
        raise DataError(f"{path}: its events or their classes differ from the training data's (e.g. "
                        f"{(missing or events.ids)[0]!r}): the data changed since the folds were trained; train again")
    table = table.loc[events.ids].reset_index()
    source = events.sources()
    parts = {"out-of-fold": np.arange(len(events))}
    if len(np.unique(source)) > 1:
        parts.update({f"out-of-fold {s}": np.flatnonzero(source == s) for s in dict.fromkeys(source)})
    return {name: track_result(objective, events.subset(idx), table.iloc[idx]) for name, idx in parts.items()}


def summarize(r: TrackResult) -> dict:
    m = classification_metrics(r.label, r.probs, r.classes)
    correct = r.probs.argmax(1) == r.label
    ious = r.iou[np.isfinite(r.iou)]
    m.update(mean_iou=float(ious.mean()) if len(ious) else float("nan"),
             accuracy_by_energy_kev=accuracy_by(r.energy / 1000.0, correct),
             accuracy_by_elongation_px=accuracy_by(r.elongation, correct))
    return m


def format_log(metrics: dict, note: str) -> str:
    lines = [note, ""]
    for split, m in metrics.items():
        lines.append(f"[{split}] n={m['n']}  accuracy={m['accuracy']:.4f}  balanced accuracy={m['balanced_accuracy']:.4f}  "
                     f"AUC={m['auc']:.4f}  mean IoU={m['mean_iou']:.3f}")
        lines.append(f"    {'class':>9} {'precision':>9} {'recall':>7} {'F1':>6} {'support':>7} {'AUC':>7}")
        for c, v in m["per_class"].items():
            lines.append(f"    {c:>9} {v['precision']:9.3f} {v['recall']:7.3f} {v['f1']:6.3f} {v['support']:7d} "
                         f"{v['auc']:7.3f}")
        mac = m["macro"]
        lines.append(f"    {'macro':>9} {mac['precision']:9.3f} {mac['recall']:7.3f} {mac['f1']:6.3f}")
        lines.append(f"    confusion (rows true, columns predicted: {', '.join(m['per_class'])}): {m['confusion']}")
        for key, unit in (("accuracy_by_energy_kev", "keV"), ("accuracy_by_elongation_px", "px")):
            lines.append(f"    accuracy by {key.split('_')[2]}: " + ", ".join(
                f"{b['low']:.3g}-{b['high']:.3g} {unit} {b['accuracy']:.2f} (n={b['n']})" for b in m[key]))
    return "\n".join(lines) + "\n"


def evaluate(cfg, rt, folder: Path) -> Report:
    run = RunSettings.from_config(cfg, NAME)
    model, objective = load_model(cfg, rt, run)
    events, split = prepare(cfg, rt, simulate=False)
    val = events.subset(split.scored)
    results = {"validation": track_result(objective, val, predictions(model, objective, val, rt)[0])}
    tests = test_results(cfg, objective)
    results.update(tests)
    results.update(out_of_fold_results(cfg, objective, events))
    note = (f"test sets scored from {cfg.section('damic.output').predictions}"
            + (f" with class priors {cfg.damic.test_priors}" if cfg.damic.test_priors else "") if tests
            else "no labelled test set (damic.test unlabelled or empty, or generate_submission.py has not run)")
    metrics = {name: summarize(r) for name, r in results.items()}
    images = [folder / name for name in ("confusion.png", "roc_per_class.png", "roc_per_class_log.png",
                                         "iou_histogram.png", "accuracy_vs_energy_elongation.png",
                                         "learning_curves.png")]
    plot_confusion(results, images[0])
    plot_roc(results, images[1])
    plot_roc(results, images[2], log_fpr=True)
    plot_iou(results, images[3])
    plot_accuracy_vs(results, images[4])
    plot_learning_curves(load_histories(run, [MODEL]), images[5])
    banner = simulated_banner(events)
    log_text = format_log(metrics, f"{banner}\n{note}" if banner else note)
    shown = next((n for n in metrics if n != "validation"), "validation")
    headline = (f"{shown}: accuracy {metrics[shown]['accuracy']:.4f} · balanced {metrics[shown]['balanced_accuracy']:.4f}"
                f" · AUC {metrics[shown]['auc']:.4f} · mean IoU {metrics[shown]['mean_iou']:.3f}")
    tables = [("Sets", ["set", "n", "accuracy", "balanced accuracy", "AUC", "mean IoU"],
               [[n, m["n"], m["accuracy"], m["balanced_accuracy"], m["auc"], m["mean_iou"]] for n, m in metrics.items()])]
    tables += [(f"{n}: per class", ["class", "precision", "recall", "F1", "support", "AUC"],
                [[c, v["precision"], v["recall"], v["f1"], v["support"], v["auc"]] for c, v in m["per_class"].items()])
               for n, m in metrics.items()]
    return Report("idao report: DAMIC-M tracks", headline, log_text, dict(classes=list(objective.classes), metrics=metrics),
                  images, tables, banner)


def simulated_banner(events: Events) -> str:
    """Which training events idao's simulator made (by their file names), so that no figure on them is read as
    a figure on real data."""
    simulated = np.array([i.startswith(SIMULATED) for i in events.ids])
    if not simulated.any():
        return ""
    if simulated.all():
        return "SIMULATED DATA (idao.damic.simulate)"
    counts = ", ".join(f"{c} {n}" for c, n in zip(*np.unique(events.particle[simulated], return_counts=True)))
    return (f"PARTLY SIMULATED: {counts} of the {len(events)} training events are from idao.damic.simulate, the rest "
            "real; figures on those classes are on the simulator")


class DamicTask(TaskDefaults):
    name = NAME
    sections = ("damic", "damic.model", "damic.output")
    models = (MODEL,)
    path_keys = ("damic.train", "damic.test", "damic.output.predictions", "damic.output.results_dir")
    predictions_key = "damic.output.predictions"
    results_key = "damic.output.results_dir"
    remembered = REMEMBERED
    must_match = tuple(f"damic.{k}" for k in COMPAT_KEYS) + ("damic.packed_labels",)

    def check(self, cfg) -> None:
        check_rules(cfg, RULES, ("damic.model",))
        dcfg, mcfg = cfg.damic, model_section(cfg)
        classes = model_classes(dcfg)
        label_maps(dcfg)
        parse_window(dcfg.window, dcfg.bin)
        check_model(mcfg, "damic.model")
        if mcfg.model == TREES and any(cfg.is_set(f"damic.model.{k}") for k in ("epochs", "lr", "batch_size")):
            raise ConfigError(f"damic.model.epochs / lr / batch_size do not apply to {TREES} (boosted trees); set "
                              "damic.model.tree_rounds / damic.model.tree_lr instead")
        parse_priors(dcfg.test_priors, classes)

    def check_train(self, cfg) -> None:
        dcfg = cfg.damic
        if not split_list(dcfg.train):
            raise ConfigError("damic.train is empty: name the training files or folders")
        if cfg.train.pseudo_label > 0 and not split_list(dcfg.test):
            raise ConfigError("train.pseudo_label: damic.test is empty; pseudo-labels come from the events predicted")
        pseudo = split_list(dcfg.test) if cfg.train.pseudo_label > 0 else []  # read after round 1: checked now
        per_source = len(label_maps(dcfg)) > 1
        for source, key in [*((s, "damic.train") for s in split_list(dcfg.train)), *((s, "damic.test") for s in pseudo)]:
            if Path(source).exists() or dcfg.simulate_events <= 0:
                check_readable(source, key)
                if key == "damic.train":
                    check_labels(source, label_map(dcfg, source, True), per_source)

    def check_generate(self, cfg) -> None:
        check_checkpoint(self.checkpoint(cfg))
        if not split_list(cfg.damic.test):
            raise ConfigError("damic.test is empty: name the files or folders to predict")
        for source in split_list(cfg.damic.test):
            check_readable(source, "damic.test")

    def check_report(self, cfg) -> None:
        check_checkpoint(self.checkpoint(cfg))
        for source in split_list(cfg.damic.train):
            check_readable(source, "damic.train (report.py scores the data the model trained on)")

    ensure_data = staticmethod(lambda cfg: ensure_data(cfg.damic))
    ensure_test_data = staticmethod(lambda cfg: ensure_data(cfg.damic, "test"))
    train = staticmethod(lambda cfg, only=None: train(cfg))  # one model: ``only`` can only name it
    predict = staticmethod(predict)
    evaluate = staticmethod(evaluate)
    validation_predictions = staticmethod(validation_predictions)
    score_out_of_fold = staticmethod(score_out_of_fold)
    pseudo_labels = staticmethod(pseudo_labels)
    export_models = staticmethod(export_models)


TASK = DamicTask()

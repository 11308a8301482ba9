"""The IceCube task (``task.name = icecube``): settings, checks and the three jobs.

train: a pulse transformer on the training batch files (von Mises-Fisher
loss, best validation angular error kept), then the event classifier
(``classes.py``) where the events say their type, with the reconstruction
each predicted class is routed to. generate: ``event_id,azimuth,zenith`` for
the test batch files (``icecube.method``: routed by class, the network, or a
baseline: line fit, 2 dots), and beside it ``<submission>.events.csv``: each
event's classes (learned and rule-based). report: the mean angular error of
the submitted directions and both baselines on the same events, per true and
per predicted class, contained / up-going, the classifier's confusion matrix,
plots and a 3D event display.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..atomic import write_text
from ..checkpoint import check_checkpoint, checkpoint_exists
from ..distributed import main_process_first
from ..engine import ModelSettings, RunSettings, fit, load_trained, predict_outputs, save_fitted
from ..errors import DataError
from ..export import Exportable
from ..models import build_model, check_model
from ..reporting import load_histories, plot_learning_curves
from ..runtime import training_runtime
from ..schema import COUNT, FRACTION, NON_NEGATIVE, Choice, Range, check_readable, check_rules
from ..splits import Split, validation_split
from ..tasks import Predictions, Report, TaskDefaults
from ..trees import fit_trees
from .io import PulseSet, angles_of, angular_error, direction_of, read_split, with_test_truth
from .baselines import METHODS, baseline_directions
from .classes import CLASSES, EventClassObjective, labels, rule_classes, summaries
from .objective import DirectionObjective
from .plots import plot_classes, plot_error_histograms, plot_error_vs, plot_event

NAME = "icecube"
MODEL = "direction"  # checkpoints direction_best.pt / direction_last.pt
CLASSIFIER = "classes"  # the event classifier: classes_best.pt
TREES = "event_trees"  # its model (models.py)
COMPAT_KEYS = ("max_pulses",)
RULES = {"icecube.simulate_events": NON_NEGATIVE, "icecube.simulate_seed": NON_NEGATIVE,
         "icecube.max_files": NON_NEGATIVE, "icecube.val_fraction": FRACTION, "icecube.max_pulses": COUNT,
         "icecube.cache_files": COUNT, "icecube.method": Choice(("routed", "model", *METHODS)),
         "icecube.class_rounds": COUNT, "icecube.class_lr": Range(0, open_low=True), "icecube.veto_border": NON_NEGATIVE}
REMEMBERED = ("icecube.root", "icecube.max_files", "icecube.val_fraction", "icecube.max_pulses", "train.seed",
              "icecube.model.model")


def check_files(root, split: str) -> None:
    """The Kaggle layout's files for ``split`` (train or test) under ``root``."""
    for part in (split, f"{split}_meta.parquet", "sensor_geometry.csv"):
        check_readable(Path(root) / part, "icecube.root")


def model_section(cfg):
    return cfg.section("icecube.model")


def output_section(cfg):
    return cfg.section("icecube.output")


def ensure_data(icfg) -> None:
    root = Path(icfg.root)
    if root.exists() or icfg.simulate_events <= 0:
        return
    from .simulate import simulate_dataset

    print(f"No IceCube data at {root}: simulating {icfg.simulate_events} training and {icfg.simulate_events // 5} "
          f"test events there (seed {icfg.simulate_seed}). Set icecube.root to use the Kaggle files.")
    simulate_dataset(root, icfg.simulate_events, icfg.simulate_events // 5, seed=icfg.simulate_seed)


def prepare(cfg, rt, simulate: bool = True) -> tuple[PulseSet, Split]:
    if simulate:
        with main_process_first(rt.dist):
            ensure_data(cfg.icecube)
    icfg = cfg.icecube
    data = read_split(icfg.root, "train", True, cache_files=icfg.cache_files, max_files=icfg.max_files)
    data.world = rt.dist.world  # each process reads its own share of the files (PulseSet.epoch_order)
    return data, validation_split(np.zeros(len(data), int), icfg.val_fraction, cfg.train)


def classifier_settings(cfg) -> ModelSettings:
    """The event classifier as a model section: boosted trees, ``class_rounds`` rounds at ``class_lr``."""
    icfg = cfg.icecube
    return ModelSettings(TREES, False, 0.0, icfg.class_rounds, 0, icfg.class_lr, 0.0, 0, 0)


def fit_classifier(cfg, data: PulseSet, train_idx, val_idx, rt, run: RunSettings) -> dict | None:
    """Track / starting / cascade trees on the training events' summaries, where the events say their type; then
    the routes: per predicted class, the reconstruction with the lowest mean error on the validation events."""
    y = labels(data)
    if y is None:
        if rt.dist.main:
            print(f"{CLASSIFIER}: the training events carry no event_type (real data): no classifier trained; "
                  "generate_submission.py still writes the rule-based classes")
        return None
    missing = [c for k, c in enumerate(CLASSES) if not (y[train_idx] == k).any()]
    if missing:
        if rt.dist.main:
            print(f"{CLASSIFIER}: no training event of class {', '.join(missing)}: no classifier trained; "
                  "icecube.method = routed uses the network for every event")
        return None
    settings = classifier_settings(cfg)
    x_train, x_val = summaries(data, train_idx), summaries(data, val_idx)
    trees, history = fit_trees(x_train, y[train_idx], len(CLASSES), x_val, y[val_idx], run.seed, settings.epochs,
                               settings.lr)
    model = build_model(TREES, num_outputs=len(CLASSES))
    model.load_state_dict(trees.state_dict())
    val = data.subset(val_idx)
    predicted = EventClassObjective().predict(model(torch.from_numpy(x_val)).detach().numpy()).argmax(1)
    errors = {m: angular_error(baseline_directions(val, m), val.direction) for m in METHODS}
    if checkpoint_exists(run.path(MODEL, "best")):
        network, objective = load_model(cfg, rt, run)
        errors["model"] = angular_error(model_directions(network, objective, val, rt), val.direction)
    fallback = "model" if "model" in errors else "linefit"  # for a class no validation event is predicted as
    routes = tuple(min(errors, key=lambda m: errors[m][predicted == k].mean()) if (predicted == k).any() else fallback
                   for k in range(len(CLASSES)))
    summary = save_fitted(CLASSIFIER, settings, model, EventClassObjective(routes=routes), history, rt, run)
    if rt.dist.main:
        print(f"{CLASSIFIER}: {summary['best_epoch'] + 1} of {len(history)} boosting rounds kept (validation log-loss "
              f"{summary['best']:.4f}, accuracy {np.mean(predicted == y[val_idx]):.3f}); routes (icecube.method = "
              f"routed): " + ", ".join(f"{c} -> {r}" for c, r in zip(CLASSES, routes)))
    return summary


def train(cfg, only: str | None = None) -> list[dict]:
    run = RunSettings.from_config(cfg, NAME)
    with training_runtime(cfg.train) as rt:
        data, split = prepare(cfg, rt)
        train_idx, val_idx = split.train, split.val
        if rt.dist.main:
            print(f"IceCube events: {len(data)} in {len(data.cache.paths)} batch files; training on {len(train_idx)}, "
                  f"validating on {len(val_idx)}; at most {cfg.icecube.max_pulses} pulses per event")
            write_text(run.checkpoint_dir / "config.ini", cfg.to_ini())
        summaries_ = []
        if only in (None, MODEL):
            objective = DirectionObjective(cfg.icecube.max_pulses)
            summaries_.append(fit(MODEL, ModelSettings.from_section(model_section(cfg), "icecube.model"), objective,
                                  data.subset(train_idx), data.subset(val_idx), rt, run,
                                  {"icecube": {k: getattr(cfg.icecube, k) for k in COMPAT_KEYS}}))
        if only == CLASSIFIER or (only is None and cfg.icecube.classify):
            summaries_.append(fit_classifier(cfg, data, train_idx, val_idx, rt, run))
        return [s for s in summaries_ if s is not None]


def load_model(cfg, rt, run: RunSettings | None = None):
    run = run or RunSettings.from_config(cfg, NAME)
    return load_trained(run.members(MODEL), ModelSettings.from_section(model_section(cfg), "icecube.model"),
                        {"icecube": {k: getattr(cfg.icecube, k) for k in COMPAT_KEYS}}, DirectionObjective, rt)


def load_classifier(cfg, rt, run: RunSettings | None = None):
    """(model, objective) of the event classifier, or None where none was trained (real data, classify=false)."""
    run = run or RunSettings.from_config(cfg, NAME)
    paths = run.members(CLASSIFIER)
    if not all(checkpoint_exists(p) for p in paths):
        return None
    return load_trained(paths, classifier_settings(cfg), {}, EventClassObjective, rt)


def class_probabilities(classifier, data: PulseSet, rt) -> np.ndarray | None:
    if classifier is None:
        return None
    model, objective = classifier
    return objective.predict(predict_outputs(model, objective, data, rt))


def model_directions(model, objective, data: PulseSet, rt) -> np.ndarray:
    order = np.argsort(data.file, kind="stable")  # one batch file at a time
    out = np.zeros((len(data), 3))
    out[order] = objective.predict(predict_outputs(model, objective, data, rt, order))
    return out


def routes(objective) -> tuple:
    """Per class, the reconstruction its events are routed to: a fold ensemble's is the one most of its members
    chose on their own validation splits (a tie: the earliest fold's of those tied)."""
    members = getattr(objective, "members", [objective])
    return tuple(Counter(choices).most_common(1)[0][0] for choices in zip(*(m.routes for m in members)))


def directions(cfg, data: PulseSet, rt, probs: np.ndarray | None = None, method: str | None = None) -> np.ndarray:
    """(N, 3) directions of ``data``'s events by ``method`` (default ``icecube.method``): the network, a
    baseline, or ``routed``: each event by the reconstruction its predicted class is routed to (``probs``: the
    classifier's output)."""
    method = method or cfg.icecube.method
    if method in METHODS:
        return baseline_directions(data, method)
    if method == "model":
        model, objective = load_model(cfg, rt)
        return model_directions(model, objective, data, rt)
    loaded = load_classifier(cfg, rt)
    if loaded is None:  # no event classifier (the training events had no types): the network for every event
        return directions(cfg, data, rt, method="model")
    assert probs is not None, "routed directions need the classifier's probabilities"
    route = np.array(routes(loaded[1]))[probs.argmax(1)]
    out = np.zeros((len(data), 3))
    for m in set(route):
        where = np.flatnonzero(route == m)
        out[where] = directions(cfg, data.subset(where), rt, method=m)
    return out


def events_table(data: PulseSet, direction: np.ndarray, probs: np.ndarray | None, veto_border: float) -> pd.DataFrame:
    """One row per event: pulses, the rule-based classes and, where a classifier exists, its class and probabilities."""
    table = pd.DataFrame({"event_id": data.event_id,
                          "n_pulses": [len(data.pulses(i)[1]) for i in range(len(data))],
                          **rule_classes(data, direction, veto_border)})
    if probs is not None:
        table["event_class"] = np.array(CLASSES)[probs.argmax(1)]
        for j, c in enumerate(CLASSES):
            table[f"p_{c}"] = probs[:, j]
    return table


def predict(cfg, rt) -> Predictions:
    """``event_id,azimuth,zenith`` of every test event (``icecube.method``), and the events' classes beside it."""
    icfg = cfg.icecube
    data = read_split(icfg.root, "test", labelled=False, cache_files=icfg.cache_files)
    probs = class_probabilities(load_classifier(cfg, rt), data, rt)
    direction = directions(cfg, data, rt, probs)
    azimuth, zenith = angles_of(direction)
    table = pd.DataFrame({"event_id": data.event_id, "azimuth": azimuth, "zenith": zenith})
    events = events_table(data, direction, probs, icfg.veto_border)
    classes = "learned and rule-based classes" if probs is not None else "rule-based classes (no classifier trained)"
    method = icfg.method if icfg.method != "routed" or probs is not None else "routed: no classifier, the network"
    return Predictions(table, f"{len(table)} events ({method}); {classes} in .events.csv", float_format="%.6f",
                       companions={".events.csv": events})


def export_models(cfg, rt) -> dict:
    """The direction network (inputs: padded pulses, their mask, the baselines' seeds; any pulse count) and the
    event classifier where there is one, for ``idao-export``, with a batch of validation events' inputs."""
    run = RunSettings.from_config(cfg, NAME)
    data, split = prepare(cfg, rt, simulate=False)
    idx = np.sort(split.scored[:8])
    model, objective = load_model(cfg, rt, run)
    out = {MODEL: Exportable(model, objective, objective.inputs(data, idx, rt), run.members(MODEL)[0])}
    classifier = load_classifier(cfg, rt, run)
    if classifier is not None:
        out[CLASSIFIER] = Exportable(*classifier, torch.from_numpy(summaries(data, idx)), run.members(CLASSIFIER)[0])
    return out


def validation_predictions(cfg, rt) -> pd.DataFrame:
    """The validation events as submitted (``icecube.method``): direction, true direction, angular error, and
    the classes (``events_table``)."""
    data, split = prepare(cfg, rt, simulate=False)
    val = data.subset(split.scored)
    probs = class_probabilities(load_classifier(cfg, rt), val, rt)
    direction = directions(cfg, val, rt, probs)
    (azimuth, zenith), (true_azimuth, true_zenith) = angles_of(direction), angles_of(val.direction)
    table = pd.DataFrame({"event_id": val.event_id, "azimuth": azimuth, "zenith": zenith, "true_azimuth": true_azimuth,
                          "true_zenith": true_zenith, "angular_error": angular_error(direction, val.direction),
                          **val.extra})  # the simulated truth (event_type...), where known
    return table.merge(events_table(val, direction, probs, cfg.icecube.veto_border), on="event_id")


def score_out_of_fold(table: pd.DataFrame) -> dict:
    """The mean angular error (rad) of ``validation_predictions``' rows."""
    return {"mean angular error": float(table["angular_error"].mean())}


def mean_error(err: np.ndarray, where: np.ndarray) -> dict:
    return dict(n=int(where.sum()), mean_angular_error=float(err[where].mean()) if where.any() else float("nan"))


def summarize(true: np.ndarray, pred: np.ndarray, baselines: dict, events: pd.DataFrame, extra: dict) -> dict:
    """Errors of the submitted directions (``pred``) and each baseline (``{method: directions}``) on the same events; per
    true type (simulated), per predicted class and per rule-based class; the classifier's confusion matrix."""
    err = angular_error(pred, true)
    base = {k: angular_error(v, true) for k, v in baselines.items()}
    up_true = true[:, 2] < 0  # came from below: up-going
    m = dict(n=int(len(true)), mean_angular_error=float(err.mean()), median_angular_error=float(np.median(err)),
             **{f"{k}_mean_angular_error": float(e.mean()) for k, e in base.items()},
             ratio_to_linefit=float(err.mean() / base["linefit"].mean()),
             up_down_accuracy=float(np.mean(up_true == (pred[:, 2] < 0))),
             linefit_up_down_accuracy=float(np.mean(up_true == (baselines["linefit"][:, 2] < 0))))
    if "event_type" in extra:
        kind = extra["event_type"]
        m["by_event_type"] = {k: dict(mean_error(err, kind == k), **{b: float(e[kind == k].mean()) for b, e in base.items()})
                              for k in CLASSES if (kind == k).any()}
    rules = {"contained": events["contained"].to_numpy(), "not contained": ~events["contained"].to_numpy(),
             "predicted up-going": events["up_going"].to_numpy(), "predicted down-going": ~events["up_going"].to_numpy()}
    m["by_rule"] = {k: mean_error(err, v) for k, v in rules.items()}
    if "event_class" in events:
        predicted = events["event_class"].to_numpy()
        m["by_predicted_class"] = {k: mean_error(err, predicted == k) for k in CLASSES}
        if "event_type" in extra:
            counts = np.zeros((len(CLASSES), len(CLASSES)), int)
            np.add.at(counts, ([CLASSES.index(k) for k in extra["event_type"]], [CLASSES.index(k) for k in predicted]), 1)
            recall = np.diag(counts) / np.maximum(counts.sum(1), 1)
            m["classes"] = dict(accuracy=float(np.trace(counts) / counts.sum()), confusion=counts.tolist(),
                                labels=list(CLASSES), recall=dict(zip(CLASSES, recall.tolist())),
                                balanced_accuracy=float(recall[counts.sum(1) > 0].mean()))
    return m


def evaluate(cfg, rt, folder: Path) -> Report:
    run = RunSettings.from_config(cfg, NAME)
    classifier = load_classifier(cfg, rt, run)
    data, split = prepare(cfg, rt, simulate=False)
    sets = {"validation": (data.subset(split.scored), None)}
    truth_path = Path(cfg.icecube.root) / "test_truth.parquet"
    out = Path(output_section(cfg).submission)
    if truth_path.exists() and out.exists():
        test = with_test_truth(cfg.icecube.root,
                               read_split(cfg.icecube.root, "test", labelled=False, cache_files=cfg.icecube.cache_files))
        sub = pd.read_csv(out).set_index("event_id").reindex(test.event_id)
        if sub["azimuth"].isna().any():
            raise DataError(f"{out}: no prediction for {int(sub['azimuth'].isna().sum())} test events; "
                            "run generate_submission.py again")
        sets["test"] = (test, direction_of(sub["azimuth"], sub["zenith"]))
    metrics, results = {}, {}
    for name, (events, submitted) in sets.items():
        probs = class_probabilities(classifier, events, rt)
        pred = submitted if submitted is not None else directions(cfg, events, rt, probs)  # as the submission would
        baselines = {method: baseline_directions(events, method) for method in METHODS}
        table = events_table(events, pred, probs, cfg.icecube.veto_border)
        metrics[name] = summarize(events.direction, pred, baselines, table, events.extra)
        results[name] = (events, pred, angular_error(pred, events.direction),
                         angular_error(baselines["linefit"], events.direction), table)
    images = [folder / n for n in ("angular_error.png", "error_vs.png", "classes.png", "event_display.png",
                                   "learning_curves.png")]
    plot_error_histograms({n: (err, err_line) for n, (_, _, err, err_line, _) in results.items()}, images[0])
    shown = "test" if "test" in results else "validation"
    events, pred, err, err_line, table = results[shown]
    n_pulses = table["n_pulses"].to_numpy()
    plot_error_vs(events, err, err_line, n_pulses, images[1], shown)
    plot_classes(metrics[shown], images[2], shown)
    plot_event(events, int(np.argmax(n_pulses)), pred, images[3])
    plot_learning_curves(load_histories(run, [MODEL]), images[4])
    m = metrics[shown]
    headline = (f"{shown} ({cfg.icecube.method}): mean angular error {m['mean_angular_error']:.4f} rad (line fit {m['linefit_mean_angular_error']:.4f}, "
                f"2 dots {m['twodots_mean_angular_error']:.4f}; ratio to the line fit {m['ratio_to_linefit']:.2f}) · "
                f"up/down-going accuracy {m['up_down_accuracy']:.3f}"
                + (f" · event classes {m['classes']['accuracy']:.3f} right (balanced {m['classes']['balanced_accuracy']:.3f})"
                   if "classes" in m else ""))
    lines = [headline, ""]
    for name, v in metrics.items():
        lines.append(f"[{name}] n={v['n']}  mean angular error {v['mean_angular_error']:.4f} (median "
                     f"{v['median_angular_error']:.4f})  line fit {v['linefit_mean_angular_error']:.4f}  2 dots "
                     f"{v['twodots_mean_angular_error']:.4f}  up/down accuracy {v['up_down_accuracy']:.3f} (line fit "
                     f"{v['linefit_up_down_accuracy']:.3f})")
        for k, c in v.get("by_event_type", {}).items():
            lines.append(f"    true {k:>9}: n={c['n']}  submitted {c['mean_angular_error']:.4f}  line fit {c['linefit']:.4f}"
                         f"  2 dots {c['twodots']:.4f}")
        for group in ("by_predicted_class", "by_rule"):
            for k, c in v.get(group, {}).items():
                lines.append(f"    {'predicted ' + k if group == 'by_predicted_class' else k:>24}: n={c['n']}  submitted "
                             f"{c['mean_angular_error']:.4f}")
    log_text = "\n".join(lines) + "\n"
    tables = [("Sets", ["set", "n", "submitted mean error (rad)", "line fit", "2 dots", "ratio to the line fit",
                        "up/down accuracy", "event classes right"],
               [[n, v["n"], v["mean_angular_error"], v["linefit_mean_angular_error"], v["twodots_mean_angular_error"],
                 v["ratio_to_linefit"], v["up_down_accuracy"], v.get("classes", {}).get("accuracy", "")]
                for n, v in metrics.items()])]
    tables += [(f"{n}: by true event type", ["type", "n", "submitted", "line fit", "2 dots"],
                [[k, c["n"], c["mean_angular_error"], c["linefit"], c["twodots"]] for k, c in v["by_event_type"].items()])
               for n, v in metrics.items() if "by_event_type" in v]
    tables += [(f"{n}: by predicted and rule-based class", ["events", "n", "submitted mean error (rad)"],
                [[f"predicted {k}", c["n"], c["mean_angular_error"]] for k, c in v.get("by_predicted_class", {}).items()]
                + [[k, c["n"], c["mean_angular_error"]] for k, c in v["by_rule"].items()])
               for n, v in metrics.items()]
    banner = "SIMULATED DATA (idao.icecube.simulate)" if "event_type" in data.extra else ""
    return Report("idao report: IceCube neutrino directions and event classes", headline, log_text, metrics, images,
                  tables, banner)


class IceCubeTask(TaskDefaults):
    name = NAME
    sections = ("icecube", "icecube.model", "icecube.output")
    models = (MODEL, CLASSIFIER)
    path_keys = ("icecube.root", "icecube.output.submission", "icecube.output.results_dir")
    predictions_key = "icecube.output.submission"
    results_key = "icecube.output.results_dir"
    remembered = REMEMBERED
    must_match = ("icecube.max_pulses",)

    def check(self, cfg) -> None:
        check_rules(cfg, RULES, ("icecube.model",))
        check_model(model_section(cfg), "icecube.model")

    def check_train(self, cfg) -> None:
        icfg = cfg.icecube
        if Path(icfg.root).exists() or icfg.simulate_events <= 0:
            check_files(icfg.root, "train")

    def check_generate(self, cfg) -> None:
        if cfg.icecube.method in ("model", "routed"):
            check_checkpoint(self.checkpoint(cfg))
        check_files(cfg.icecube.root, "test")

    def check_report(self, cfg) -> None:
        check_checkpoint(self.checkpoint(cfg))
        check_files(cfg.icecube.root, "train")  # the validation split
        check_files(cfg.icecube.root, "test")

    ensure_data = staticmethod(lambda cfg: ensure_data(cfg.icecube))
    train = staticmethod(train)
    predict = staticmethod(predict)
    evaluate = staticmethod(evaluate)
    validation_predictions = staticmethod(validation_predictions)
    score_out_of_fold = staticmethod(score_out_of_fold)
    export_models = staticmethod(export_models)


TASK = IceCubeTask()

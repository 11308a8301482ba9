"""The IceCube task (``task.name = icecube``): settings, checks and the three jobs.

train: a pulse transformer on the training batch files (von Mises-Fisher
loss, best validation angular error kept). generate: ``event_id,azimuth,zenith``
for the test batch files, from the network or the line fit. report: the mean
angular error of the network and of the line fit on the same events, per
event type, up/down-going accuracy, plots and a 3D event display.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_text
from ..checkpoint import check_checkpoint
from ..distributed import main_process_first
from ..engine import ModelSettings, RunSettings, fit, load_trained, predict_outputs
from ..errors import DataError
from ..models import check_model
from ..reporting import load_histories, plot_learning_curves
from ..runtime import training_runtime
from ..schema import COUNT, FRACTION, NON_NEGATIVE, Choice, check_readable, check_rules
from ..splits import stratified_split
from ..tasks import Predictions, Report, TaskDefaults
from .io import PulseSet, angles_of, angular_error, direction_of, read_split, with_test_truth
from .linefit import line_fit_all
from .objective import DirectionObjective
from .plots import plot_error_histograms, plot_error_vs, plot_event

NAME = "icecube"
MODEL = "direction"  # checkpoints direction_best.pt / direction_last.pt
COMPAT_KEYS = ("max_pulses",)
RULES = {"icecube.simulate_events": NON_NEGATIVE, "icecube.simulate_seed": NON_NEGATIVE,
         "icecube.max_files": NON_NEGATIVE, "icecube.val_fraction": FRACTION, "icecube.max_pulses": COUNT,
         "icecube.cache_files": COUNT, "icecube.method": Choice(("model", "linefit"))}
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


def prepare(cfg, rt, simulate: bool = True) -> tuple[PulseSet, np.ndarray, np.ndarray]:
    if simulate:
        with main_process_first(rt.dist):
            ensure_data(cfg.icecube)
    icfg = cfg.icecube
    data = read_split(icfg.root, "train", True, cache_files=icfg.cache_files, max_files=icfg.max_files)
    data.world = rt.dist.world  # each process reads its own share of the files (PulseSet.epoch_order)
    train_idx, val_idx = stratified_split(np.zeros(len(data), int), icfg.val_fraction, cfg.train.seed)
    return data, train_idx, val_idx


def train(cfg) -> list[dict]:
    run = RunSettings.from_config(cfg, NAME)
    with training_runtime(cfg.train) as rt:
        data, train_idx, val_idx = prepare(cfg, rt)
        if rt.dist.main:
            print(f"IceCube events: {len(data)} in {len(data.cache.paths)} batch files; training on {len(train_idx)}, "
                  f"validating on {len(val_idx)}; at most {cfg.icecube.max_pulses} pulses per event")
            write_text(run.checkpoint_dir / "config.ini", cfg.to_ini())
        objective = DirectionObjective(cfg.icecube.max_pulses)
        return [fit(MODEL, ModelSettings.from_section(model_section(cfg), "icecube.model"), objective,
                    data.subset(train_idx), data.subset(val_idx), rt, run,
                    {"icecube": {k: getattr(cfg.icecube, k) for k in COMPAT_KEYS}})]


def load_model(cfg, rt, run: RunSettings | None = None):
    run = run or RunSettings.from_config(cfg, NAME)
    return load_trained(run.path(MODEL, "best"), ModelSettings.from_section(model_section(cfg), "icecube.model"),
                        {"icecube": {k: getattr(cfg.icecube, k) for k in COMPAT_KEYS}}, DirectionObjective, rt)


def model_directions(model, objective, data: PulseSet, rt) -> np.ndarray:
    order = np.argsort(data.file, kind="stable")  # one batch file at a time
    out = np.zeros((len(data), 3))
    out[order] = objective.predict(predict_outputs(model, objective, data, rt, order))
    return out


def predict(cfg, rt) -> Predictions:
    """``event_id,azimuth,zenith`` of every test event, from the network or the line fit (``icecube.method``)."""
    icfg = cfg.icecube
    data = read_split(icfg.root, "test", labelled=False, cache_files=icfg.cache_files)
    if icfg.method == "linefit":
        direction = line_fit_all(data)
    else:
        model, objective = load_model(cfg, rt)
        direction = model_directions(model, objective, data, rt)
    azimuth, zenith = angles_of(direction)
    table = pd.DataFrame({"event_id": data.event_id, "azimuth": azimuth, "zenith": zenith})
    return Predictions(table, f"{len(table)} events ({icfg.method})", float_format="%.6f")


def summarize(true: np.ndarray, pred: np.ndarray, line: np.ndarray, err: np.ndarray, err_line: np.ndarray,
              extra: dict) -> dict:
    up_true, up_pred = true[:, 2] < 0, pred[:, 2] < 0  # came from below: up-going
    m = dict(n=int(len(true)), mean_angular_error=float(err.mean()), median_angular_error=float(np.median(err)),
             linefit_mean_angular_error=float(err_line.mean()), ratio_to_linefit=float(err.mean() / err_line.mean()),
             up_down_accuracy=float(np.mean(up_true == up_pred)),
             linefit_up_down_accuracy=float(np.mean(up_true == (line[:, 2] < 0))))
    if "event_type" in extra:
        m["by_event_type"] = {str(k): dict(n=int((extra["event_type"] == k).sum()),
                                           mean_angular_error=float(err[extra["event_type"] == k].mean()),
                                           linefit=float(err_line[extra["event_type"] == k].mean()))
                              for k in np.unique(extra["event_type"])}
    return m


def evaluate(cfg, rt, folder: Path) -> Report:
    run = RunSettings.from_config(cfg, NAME)
    model, objective = load_model(cfg, rt, run)
    data, _, val_idx = prepare(cfg, rt, simulate=False)
    sets = {"validation": (data.subset(val_idx), None)}
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
        pred = submitted if submitted is not None else model_directions(model, objective, events, rt)
        line = line_fit_all(events)
        err, err_line = angular_error(pred, events.direction), angular_error(line, events.direction)
        n_pulses = np.array([len(events.pulses(i)[1]) for i in range(len(events))])  # events are in file order
        metrics[name] = summarize(events.direction, pred, line, err, err_line, events.extra)
        results[name] = (events, pred, err, err_line, n_pulses)
    images = [folder / n for n in ("angular_error.png", "error_vs.png", "event_display.png", "learning_curves.png")]
    plot_error_histograms({n: (err, err_line) for n, (_, _, err, err_line, _) in results.items()}, images[0])
    shown = "test" if "test" in results else "validation"
    events, pred, err, err_line, n_pulses = results[shown]
    plot_error_vs(events, err, err_line, n_pulses, images[1], shown)
    plot_event(events, int(np.argmax(n_pulses)), pred, images[2])
    plot_learning_curves(load_histories(run.checkpoint_dir, [MODEL]), images[3])
    m = metrics[shown]
    headline = (f"{shown}: mean angular error {m['mean_angular_error']:.4f} rad (line fit {m['linefit_mean_angular_error']:.4f}, "
                f"ratio {m['ratio_to_linefit']:.2f}) · up/down-going accuracy {m['up_down_accuracy']:.3f}")
    lines = [headline, ""]
    for name, v in metrics.items():
        lines.append(f"[{name}] n={v['n']}  mean angular error {v['mean_angular_error']:.4f} (median "
                     f"{v['median_angular_error']:.4f})  line fit {v['linefit_mean_angular_error']:.4f}  up/down accuracy "
                     f"{v['up_down_accuracy']:.3f} (line fit {v['linefit_up_down_accuracy']:.3f})")
        for k, t in v.get("by_event_type", {}).items():
            lines.append(f"    {k:>9}: n={t['n']}  network {t['mean_angular_error']:.4f}  line fit {t['linefit']:.4f}")
    log_text = "\n".join(lines) + "\n"
    tables = [("Sets", ["set", "n", "network mean error (rad)", "line fit mean error", "ratio", "up/down accuracy"],
               [[n, v["n"], v["mean_angular_error"], v["linefit_mean_angular_error"], v["ratio_to_linefit"],
                 v["up_down_accuracy"]] for n, v in metrics.items()])]
    tables += [(f"{n}: by event type", ["type", "n", "network", "line fit"],
                [[k, t["n"], t["mean_angular_error"], t["linefit"]] for k, t in v["by_event_type"].items()])
               for n, v in metrics.items() if "by_event_type" in v]
    banner = "SIMULATED DATA (idao.icecube.simulate)" if "event_type" in data.extra else ""
    return Report("idao report: IceCube neutrino directions", headline, log_text, metrics, images, tables, banner)


class IceCubeTask(TaskDefaults):
    name = NAME
    sections = ("icecube", "icecube.model", "icecube.output")
    models = (MODEL,)
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
        if cfg.icecube.method == "model":
            check_checkpoint(self.checkpoint(cfg))
        check_files(cfg.icecube.root, "test")

    def check_report(self, cfg) -> None:
        check_checkpoint(self.checkpoint(cfg))
        check_files(cfg.icecube.root, "train")  # the validation split
        check_files(cfg.icecube.root, "test")

    ensure_data = staticmethod(lambda cfg: ensure_data(cfg.icecube))
    train = staticmethod(lambda cfg, only=None: train(cfg))  # one model: ``only`` can only name it
    predict = staticmethod(predict)
    evaluate = staticmethod(evaluate)


TASK = IceCubeTask()

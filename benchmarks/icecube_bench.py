"""IceCube in one run on one simulated dataset: the network against both baselines per event class, the event
classifier, input and model throughput by DataLoader workers, and memory against file count.

1. Simulates ``--files`` training batch files of ``--per-file`` events and a test split.
2. Trains the default network and event classifier with train.py on the first ``--train-files`` of them.
3. On the test split: mean angular error of the network, the line fit and 2 dots, per true event class and
   per predicted class; the classifier's confusion matrix.
4. Throughput with ``train.loader_workers`` 0, 1, 2: the input path alone (every test event through the
   objective's batches, no model), inference (input + forward) and one training epoch (train.py).
5. Peak memory of a loading epoch over 1, 4 and 16 files, each in a fresh process.

    python benchmarks/icecube_bench.py --out docs/benchmarks/icecube_bench.md
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import publish  # benchmarks/common.py

ROOT = Path(__file__).resolve().parents[1]


def loading_epoch(root: str, files: int) -> dict:
    import torch

    from idao.icecube.io import read_split
    from idao.icecube.objective import DirectionObjective

    rt = type("RT", (), {"device": torch.device("cpu")})()
    data = read_split(root, "train", True, max_files=files)
    objective = DirectionObjective()
    order = data.epoch_order(torch.Generator().manual_seed(0))
    t = time.time()
    for s in range(0, len(order), 256):
        objective.inputs(data, order[s : s + 256], rt)
    return dict(files=files, events=len(data), events_per_s=len(data) / (time.time() - t),
                peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def input_rate(objective, data, rt) -> float:
    """Events/s of the input path alone: every event of ``data`` batched as inference batches it, no model."""
    from idao.engine import batch_inputs

    order = data.file.argsort(kind="stable")
    plan = [(order[s : s + rt.batch_size], None) for s in range(0, len(order), rt.batch_size)]
    t = time.time()
    for _ in batch_inputs(objective, data, plan, rt):
        pass
    return len(data) / (time.time() - t)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(loading_epoch(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--per-file", type=int, default=2000)
    parser.add_argument("--train-files", type=int, default=5, help="files the network trains on (main job: 5)")
    parser.add_argument("--test-events", type=int, default=4000)
    parser.add_argument("--workers", default="0,1,2", help="the train.loader_workers values timed")
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run (default: none)")
    args = parser.parse_args()
    import dataclasses

    import numpy as np
    import torch

    from idao.config import load_config
    from idao.icecube.baselines import METHODS, baseline_directions
    from idao.icecube.classes import CLASSES
    from idao.icecube.io import angular_error, read_split, with_test_truth
    from idao.icecube.simulate import simulate_dataset
    from idao.icecube.task import class_probabilities, directions, load_classifier, load_model, model_directions
    from idao.runtime import make_runtime

    work = Path(tempfile.mkdtemp(prefix="icecube-bench-"))
    root = work / "data"
    t = time.time()
    simulate_dataset(root, args.files * args.per_file, args.test_events, args.per_file, seed=5)
    sim_s = time.time() - t
    overrides = ["task.name=icecube", f"icecube.root={root}", f"icecube.max_files={args.train_files}",
                 f"train.checkpoint_dir={work / 'ck'}", "train.progress=false", *args.overrides]
    t = time.time()
    subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides], check=True, capture_output=True)
    train_s = time.time() - t
    cfg = load_config(None, overrides, echo=False)
    rt = make_runtime(cfg.train)
    model, objective = load_model(cfg, rt)
    test = with_test_truth(root, read_split(root, "test", labelled=False))
    true, kinds = test.direction, test.extra["event_type"]
    probs = class_probabilities(load_classifier(cfg, rt), test, rt)
    errors = {"routed": angular_error(directions(cfg, test, rt, probs, "routed"), true),
              "network": angular_error(model_directions(model, objective, test, rt), true)}
    errors |= {m: angular_error(baseline_directions(test, m), true) for m in METHODS}
    predicted = np.array(CLASSES)[probs.argmax(1)]
    n_train = int(args.train_files * args.per_file * (1 - cfg.icecube.val_fraction))
    epochs = cfg.section("icecube.model").epochs
    lines = [f"Simulated: {args.files} training files x {args.per_file} events, {args.test_events} test events "
             f"({sim_s:.0f} s; the simulator's default mix: 12 % through-going tracks, 8 % starting, 80 % cascades). "
             f"The network (`pulse_transformer`, defaults) and the event classifier trained with train.py on "
             f"{args.train_files} files ({n_train} events, {epochs} epochs) in {train_s:.0f} s; torch threads "
             f"{torch.get_num_threads()}, 2 CPU cores, one run. Command: `python benchmarks/icecube_bench.py"
             + (f" --workers {args.workers}" if args.workers != "0,1,2" else "") + "`.", "",
             "Mean angular error (rad) on the test split. routed (the default `icecube.method`): each event by the "
             "reconstruction that was best on the validation events of its predicted class; ratio: routed / line fit.", "",
             "| events | n | routed | network | line fit | 2 dots | ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    groups = [("all", np.ones(len(true), bool))] + [(f"true {k}", kinds == k) for k in CLASSES]
    groups += [(f"predicted {k}", predicted == k) for k in CLASSES]
    for name, m in groups:
        e = {k: v[m].mean() for k, v in errors.items()}
        lines.append(f"| {name} | {m.sum()} | **{e['routed']:.4f}** | {e['network']:.4f} | {e['linefit']:.4f} | "
                     f"{e['twodots']:.4f} | {e['routed'] / e['linefit']:.2f} |")
    lines += ["", "Event classifier (boosted trees on pulse summaries), rows true, columns predicted:", "",
              "| true \\ predicted | " + " | ".join(CLASSES) + " | recall |", "|---|" + "---:|" * (len(CLASSES) + 1)]
    for k in CLASSES:
        row = [int(((kinds == k) & (predicted == c)).sum()) for c in CLASSES]
        lines.append(f"| {k} | " + " | ".join(map(str, row)) + f" | {row[CLASSES.index(k)] / max(sum(row), 1):.3f} |")
    routes = load_classifier(cfg, rt)[1].routes
    lines.append(f"\nAccuracy {np.mean(predicted == kinds):.3f}. Routes chosen on the validation events: "
                 + ", ".join(f"{c} -> {r}" for c, r in zip(CLASSES, routes)) + ".")
    lines += ["", "| train.loader_workers | input path alone, events/s | inference, events/s | training epoch, events/s |",
              "|---:|---:|---:|---:|"]
    test.pulses(0)  # the file read, outside the timings
    for w in [int(w) for w in args.workers.split(",")]:
        rt_w = dataclasses.replace(rt, loader_workers=w)
        inputs = input_rate(objective, test, rt_w)
        t = time.time()
        model_directions(model, objective, test, rt_w)
        infer = len(test) / (time.time() - t)
        out = subprocess.run([sys.executable, str(ROOT / "train.py"), *overrides, "icecube.model.epochs=1",
                              f"train.checkpoint_dir={work / f'ck{w}'}", f"train.loader_workers={w}", "--only",
                              "direction"], check=True, capture_output=True, text=True).stdout
        rate = re.search(r"\(([\d.]+)s, (\d+) img/s\)", out).group(2)
        lines.append(f"| {w} | {inputs:.0f} | {infer:.0f} | {rate} |")
        print(lines[-1], flush=True)
    lines += ["", "| training files read in one loading epoch | events | events/s | peak memory MB |", "|---:|---:|---:|---:|"]
    for files in (1, 4, 16):
        if files <= args.files:
            out = subprocess.run([sys.executable, __file__, "--child", str(root), str(files)], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            lines.append(f"| {files} | {r['events']} | {r['events_per_s']:.0f} | {r['peak_mb']:.0f} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()

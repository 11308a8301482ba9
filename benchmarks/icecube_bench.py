"""IceCube in one run on one simulated dataset: line fit vs the network, speeds, and memory against file count.

1. Simulates ``--files`` training batch files of ``--per-file`` events and a test split.
2. Trains the default network with train.py on the first ``--train-files`` of them (the main job's settings).
3. On the test split: mean angular error of the network and of the line fit, per event type; events/s of
   the network's inference (pulse selection, padding and the forward pass) and of the line fit.
4. Peak memory of a loading epoch (every event through the objective's ``inputs``) over 1, 4 and 16 files,
   each in a fresh process.

    python benchmarks/icecube_bench.py --out docs/benchmarks/icecube_bench.md
"""
from __future__ import annotations

import argparse
import json
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


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(loading_epoch(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--per-file", type=int, default=2000)
    parser.add_argument("--train-files", type=int, default=5, help="files the network trains on (main job: 5)")
    parser.add_argument("--test-events", type=int, default=4000)
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run (default: none)")
    args = parser.parse_args()
    import torch

    from idao.icecube.io import angular_error, read_split, with_test_truth
    from idao.icecube.linefit import line_fit_all
    from idao.icecube.simulate import simulate_dataset
    from idao.icecube.task import load_model, model_directions
    from idao.runtime import make_runtime
    from idao.config import load_config

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
    test.pulses(0)  # the file read, outside the timings
    t = time.time()
    net = model_directions(model, objective, test, rt)
    net_s = time.time() - t
    t = time.time()
    line = line_fit_all(test)
    line_s = time.time() - t
    err_net, err_line = angular_error(net, true), angular_error(line, true)
    n_train = int(args.train_files * args.per_file * (1 - cfg.icecube.val_fraction))
    epochs = cfg.section("icecube.model").epochs
    lines = [f"Simulated: {args.files} training files x {args.per_file} events, {args.test_events} test events "
             f"({sim_s:.0f} s). The network (`pulse_transformer`, defaults) trained with train.py on "
             f"{args.train_files} files ({n_train} events, {epochs} epochs) in {train_s:.0f} s "
             f"({n_train * epochs / train_s:.0f} events/s including validation); torch threads {torch.get_num_threads()}, "
             "2 CPU cores, one run. Command: `python benchmarks/icecube_bench.py`.", "",
             "| events (test split) | n | network mean error (rad) | line fit mean error (rad) | ratio |",
             "|---|---:|---:|---:|---:|",
             f"| all | {len(true)} | **{err_net.mean():.4f}** | {err_line.mean():.4f} | **{err_net.mean() / err_line.mean():.2f}** |"]
    for kind in sorted(set(kinds)):
        m = kinds == kind
        lines.append(f"| {kind} | {m.sum()} | {err_net[m].mean():.4f} | {err_line[m].mean():.4f} | "
                     f"{err_net[m].mean() / err_line[m].mean():.2f} |")
    lines += ["", "| speed | events/s |", "|---|---:|",
              f"| network inference (pulse selection + padding + forward, batch 256) | {len(true) / net_s:.0f} |",
              f"| line fit | {len(true) / line_s:.0f} |",
              f"| network training (train.py, incl. validation) | {n_train * epochs / train_s:.0f} |", "",
              "| training files read in one loading epoch | events | events/s | peak memory MB |", "|---:|---:|---:|---:|"]
    for files in (1, 4, 16):
        if files <= args.files:
            out = subprocess.run([sys.executable, __file__, "--child", str(root), str(files)], capture_output=True,
                                 text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            lines.append(f"| {files} | {r['events']} | {r['events_per_s']:.0f} | {r['peak_mb']:.0f} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()

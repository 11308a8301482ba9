"""A trained IceCube model against simulator physics it was not trained on: one knob moved at a time.

Each point simulates fresh test events (seed 11) with one ``Physics`` setting
changed, and scores the network and the line fit on them: mean angular error,
their ratio, and the network's error per event type. Train first (the main job
does), then::

    python benchmarks/icecube_shift.py --checkpoint-dir checkpoints --out docs/benchmarks/icecube_shift.md
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


from idao.config import load_config
from idao.icecube.io import angular_error, read_split, with_test_truth
from idao.icecube.linefit import line_fit_all
from idao.icecube.simulate import Physics, simulate_dataset
from idao.icecube.task import TASK, load_model, model_directions
from idao.jobs import adopt_training
from idao.runtime import make_runtime

from common import publish  # benchmarks/common.py

POINTS = [("default", {}), ("attenuation 30 m (-25 %)", dict(attenuation=30.0)),
          ("attenuation 50 m (+25 %)", dict(attenuation=50.0)), ("scattering delay x2", dict(delay_per_m=1.0)),
          ("scattering delay x0.5", dict(delay_per_m=0.25)), ("dark noise x3", dict(noise_pulses=45.0)),
          ("more cascades (track/starting/cascade 0.2/0.2/0.6)", dict(type_fractions=(0.2, 0.2, 0.6)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint-dir", default="checkpoints", help="train.checkpoint_dir of the trained model")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--out")
    args = parser.parse_args()
    cfg = load_config(None, ["task.name=icecube", f"train.checkpoint_dir={args.checkpoint_dir}"], echo=False)
    cfg = adopt_training(TASK, cfg)  # the pulse cap and model the checkpoint was trained with
    rt = make_runtime(cfg.train)
    model, objective = load_model(cfg, rt)
    work = Path(tempfile.mkdtemp(prefix="icecube-shift-"))
    lines = [f"The model in `{args.checkpoint_dir}` (max_pulses {objective.max_pulses}) on {args.events} fresh test "
             "events per point (seed 11), one simulator knob moved at a time. Command: `python benchmarks/icecube_shift.py "
             f"--checkpoint-dir {args.checkpoint_dir}`.", "",
             "| simulator physics | network (rad) | line fit (rad) | ratio | network: track / starting / cascade |",
             "|---|---:|---:|---:|---|"]
    ratios = []
    for k, (name, knobs) in enumerate(POINTS):
        root = simulate_dataset(work / str(k), 10, args.events, args.events, seed=11, p=Physics(**knobs))
        test = with_test_truth(root, read_split(root, "test", labelled=False))
        net = angular_error(model_directions(model, objective, test, rt), test.direction)
        line = angular_error(line_fit_all(test), test.direction)
        per = " / ".join(f"{net[test.extra['event_type'] == t].mean():.3f}" for t in ("track", "starting", "cascade"))
        ratios.append((net.mean() / line.mean(), name))
        lines.append(f"| {name} | {net.mean():.3f} | {line.mean():.3f} | {net.mean() / line.mean():.2f} | {per} |")
        print(lines[-1], flush=True)
    worst = max(ratios)
    lines += ["", f"Worst ratio to the line fit: **{worst[0]:.2f}** ({worst[1]})."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

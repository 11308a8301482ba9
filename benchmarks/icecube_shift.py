"""A trained IceCube model against simulator physics it was not trained on: one knob moved at a time.

Each point simulates fresh test events (seed 11) with one ``Physics`` setting
changed, and scores the submission (routed), the network alone, the line fit and 2 dots
on them, overall and per true event class, with the submission's ratio to the line fit. Train first (the main job
does), then::

    python benchmarks/icecube_shift.py --checkpoint-dir checkpoints --out docs/benchmarks/icecube_shift.md
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


from idao.config import load_config
from idao.icecube.io import angular_error, read_split, with_test_truth
from idao.icecube.baselines import METHODS, baseline_directions
from idao.icecube.classes import CLASSES
from idao.icecube.simulate import Physics, simulate_dataset
from idao.icecube.task import TASK, class_probabilities, directions, load_classifier, load_model, model_directions
from idao.jobs import adopt_training
from idao.runtime import make_runtime

from common import publish  # benchmarks/common.py

POINTS = [("default", {}), ("attenuation 30 m (-25 %)", dict(attenuation=30.0)),
          ("attenuation 50 m (+25 %)", dict(attenuation=50.0)), ("scattering delay x2", dict(delay_per_m=1.0)),
          ("scattering delay x0.5", dict(delay_per_m=0.25)), ("dark noise x3", dict(noise_pulses=45.0)),
          ("coincident muons x3 (0.3)", dict(coincident_muons=0.3)),
          ("cascade light ring 2x wider (0.7 rad)", dict(cascade_spread=0.7)),
          ("cascade light half isotropic", dict(cascade_isotropic=0.5)),
          ("softer cascade spectrum (E^-2)", dict(spectral_index=2.0)),
          ("more tracks (track / starting / cascade 0.3 / 0.2 / 0.5)", dict(track_fraction=0.3, starting_fraction=0.2))]
METHODS_SHOWN = ("routed", "network", "linefit", "twodots")


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
    classifier = load_classifier(cfg, rt)
    work = Path(tempfile.mkdtemp(prefix="icecube-shift-"))
    lines = [f"The model in `{args.checkpoint_dir}` (max_pulses {objective.max_pulses}) on {args.events} fresh test "
             "events per point (seed 11), one simulator knob moved at a time. Mean angular error (rad) of the submission "
             "(routed: each event by the reconstruction its predicted class was routed to on validation), the network "
             "alone, the line fit and 2 dots, overall and per true event class; ratio: routed / line fit. Command: "
             f"`python benchmarks/icecube_shift.py --checkpoint-dir {args.checkpoint_dir}`.", "",
             "| simulator physics | all: routed / network / line fit / 2 dots | ratio | track | starting | cascade | worst class ratio |",
             "|---|---|---:|---|---|---|---:|"]
    worst = []
    for k, (name, knobs) in enumerate(POINTS):
        root = simulate_dataset(work / str(k), 10, args.events, args.events, seed=11, p=Physics(**knobs))
        test = with_test_truth(root, read_split(root, "test", labelled=False))
        probs = class_probabilities(classifier, test, rt)
        errors = {"routed": angular_error(directions(cfg, test, rt, probs, "routed"), test.direction),
                  "network": angular_error(model_directions(model, objective, test, rt), test.direction)}
        errors |= {m: angular_error(baseline_directions(test, m), test.direction) for m in METHODS}
        kinds = test.extra["event_type"]

        def cell(m):
            return " / ".join(f"{errors[x][m].mean():.3f}" for x in METHODS_SHOWN) + \
                f" ({errors['routed'][m].mean() / errors['linefit'][m].mean():.2f})"

        ratios = {c: errors["routed"][kinds == c].mean() / errors["linefit"][kinds == c].mean() for c in CLASSES}
        c_worst = max(ratios, key=ratios.get)
        worst.append((ratios[c_worst], f"{c_worst}, {name}"))
        lines.append(f"| {name} | {' / '.join(f'{errors[x].mean():.3f}' for x in METHODS_SHOWN)} | "
                     f"{errors['routed'].mean() / errors['linefit'].mean():.2f} | "
                     + " | ".join(cell(kinds == c) for c in CLASSES) + f" | {ratios[c_worst]:.2f} ({c_worst}) |")
        print(lines[-1], flush=True)
    ratio, where = max(worst)
    lines += ["", f"Worst class ratio to the line fit over every point: **{ratio:.2f}** ({where})."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

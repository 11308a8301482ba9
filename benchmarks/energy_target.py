"""Which energy target and loss extrapolate best to the unseen energies? Trains the regressor once per choice.

    python benchmarks/energy_target.py --root DATASET   (or --scale 0.2 to simulate one)

Prints raw (not post-processed) MAE on the public split (training energies) and
the private split (ER 6/20 and NR 3/10 interpolate; ER 1 and NR 30 extrapolate).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


from idao.config import load_config
from idao.cygno.data import load_crops
from idao.cygno.dataset import split_samples
from idao.cygno.metrics import mae
from idao.cygno.objectives import compat_settings, load_models, make_objective
from idao.cygno.simulate import simulate_dataset
from idao.cygno.train import prepare
from idao.engine import ModelSettings, RunSettings, fit, predict_outputs
from idao.runtime import make_runtime

from common import publish  # benchmarks/common.py

CHOICES = (("log", "l1"), ("linear", "l1"), ("log", "mse"), ("log", "huber"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root")
    parser.add_argument("--scale", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="idao-energy-"))
    root = Path(args.root) if args.root else simulate_dataset(work / "idao_dataset", args.scale, progress=False)
    lines = [f"Command: `python benchmarks/energy_target.py --scale {args.scale} --epochs {args.epochs}`"
             f"{' (own dataset)' if args.root else ''}; raw regressor outputs, not post-processed.", "",
             "| target | loss | val MAE | public MAE | private MAE | private MAE per class |", "|---|---|---:|---:|---:|---|"]
    for target, loss in CHOICES:
        cfg = load_config(overrides=[f"cygno.root={root}", f"cygno.cache_dir={work / 'cache'}",
                                         f"train.checkpoint_dir={work / f'ck-{target}-{loss}'}",
                                         "train.progress=false", f"cygno.regressor.epochs={args.epochs}",
                                         f"cygno.regressor.target={target}", f"cygno.regressor.loss={loss}"], echo=False)
        rt = make_runtime(cfg.train)
        _, crops, (tr, va, _) = prepare(cfg, rt)
        result = fit("regressor", ModelSettings.from_section(cfg.section("cygno.regressor"), "cygno.regressor"), make_objective("regressor", cfg),
                     crops.subset(tr), crops.subset(va), rt, RunSettings.from_config(cfg, "cygno"), compat_settings(cfg))
        model, head = load_models(cfg, rt, ("regressor",))["regressor"]
        row = {}
        for split in ("public_test", "private_test"):
            data = load_crops(split_samples(root, split), cfg.cygno, progress=False)
            pred = head.predict(predict_outputs(model, head, data, rt))
            row[split] = mae(data.energy, pred)
            if split == "private_test":
                per = {c: mae(data.energy[data.classes == c], pred[data.classes == c]) for c in sorted(set(data.classes))}
        detail = ", ".join(f"{c} {v:.2f}" for c, v in sorted(per.items(), key=lambda kv: int(kv[0][2:])))
        lines.append(f"| {target} | {loss} | {result['best']:.3f} | {row['public_test']:.3f} | {row['private_test']:.3f} | "
                     f"{detail} |")
        print(lines[-1], flush=True)
    publish(lines, args.out)


if __name__ == "__main__":
    main()

"""DAMIC-M out of fold: K fold models on all of the training data (``train.folds``), scored by ``report.py`` on
the out-of-fold table, each training file apart; for each seed and each value of one setting (``--vary``)::

    python benchmarks/damic_oof.py --seeds 0,1,2 --vary damic.model.class_balance=false,true \\
        damic.classes=electron,muon,noise \\
        damic.train=../shared/data/damic-tfm/eVSmu_tr1.npz,../shared/data/damic-tfm/eVSn_1.npz \\
        "damic.packed_labels=electron,muon;noise,electron"

The three scripts' own jobs (``idao.jobs.run_job``), nothing re-implemented: a user gets the same figures from
``train.py ... train.folds=5`` then ``report.py ... train.folds=5``. With ``train.fold_validation = inner``
(the default) each fold model picks its epoch on a split of its training folds, so the fold it is scored on is
one nothing was chosen on; with ``fold`` it picks it on that fold, and the figures read high. The report's
out-of-fold sections of the last run are printed in full under the table.
"""
from __future__ import annotations

import argparse
import shlex
import tempfile
import time
from pathlib import Path

from idao.config import load_config
from idao.jobs import run_job

from common import publish  # benchmarks/common.py


PROTOCOLS = {"inner": "train.fold_validation = inner: each fold model chose its epoch on a split of its training "
                      "folds, so the fold it is scored on is one nothing was chosen on",
             "fold": "train.fold_validation = fold: each fold model chose its best epoch on the fold it is scored on: "
                     "mildly optimistic"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--vary", default="", help="KEY=V1,V2,...: one run per value and seed (default: none)")
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.folds < 2:
        parser.error(f"--folds {args.folds}: out of fold needs 2 folds or more")
    key, values = args.vary.split("=", 1) if args.vary else ("", "")
    work = Path(tempfile.mkdtemp(prefix="damic-oof-"))
    rows, log, protocols = [], "", {}
    for value in values.split(",") if key else [None]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            folder = work / f"{value}_seed{seed}"
            run = ["task.name=damic", f"train.folds={args.folds}", f"train.seed={seed}", "train.progress=false",
                   f"train.checkpoint_dir={folder / 'ck'}", "damic.test=", *args.overrides,
                   *([f"{key}={value}"] if key else [])]
            protocols[load_config(None, run, echo=False).train.fold_validation] = None
            t0 = time.time()
            run_job("train", run)
            seconds = time.time() - t0
            metrics = run_job("report", [*run, f"damic.output.results_dir={folder / 'report'}"])["metrics"]
            oof = {name: m for name, m in metrics.items() if name.startswith("out-of-fold")}
            rows.append(dict(value=value, seed=seed, train_s=seconds,
                             **{f"{name} ({m['n']})": m["accuracy"] for name, m in oof.items()}))
            log = (folder / "report" / "report.log").read_text()
    names = [k for k in rows[0] if k not in ("value", "seed", "train_s")]
    lines = [f"Command: `python benchmarks/damic_oof.py --seeds {args.seeds} --folds {args.folds}"
             + (f" --vary {args.vary}" if key else "") + (" " + shlex.join(args.overrides) if args.overrides else "")
             + "`; 2 CPU cores.", "",
             f"Out-of-fold accuracy ({args.folds} folds; " + "; ".join(PROTOCOLS[p] for p in protocols) + ").", "",
             "| " + (f"{key} | " if key else "") + "seed | " + " | ".join(names) + " | train s |",
             "|" + ("---|" if key else "") + "---:|" * (len(names) + 2)]
    lines += ["| " + (f"{r['value']} | " if key else "") + f"{r['seed']} | "
              + " | ".join(f"{r[n]:.4f}" for n in names) + f" | {r['train_s']:.0f} |" for r in rows]
    for value in dict.fromkeys(r["value"] for r in rows):
        part = [r for r in rows if r["value"] == value]
        lines.append(f"\n- {key + ' = ' + value + ': ' if key else ''}worst over seeds "
                     + ", ".join(f"{n} {min(r[n] for r in part):.4f}" for n in names))
    sections = [s for s in log.split("\n[") if s.startswith("out-of-fold")]
    banner = [line for line in log.splitlines()[:1] if "SIMULATED" in line]  # which training events were simulated
    lines += ["", *banner, "", f"The report's out-of-fold sections, last run ({key + ' = ' + str(rows[-1]['value']) + ', ' if key else ''}"
              f"seed {rows[-1]['seed']}):", "", "```"] + ["[" + s.rstrip() for s in sections] + ["```"]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

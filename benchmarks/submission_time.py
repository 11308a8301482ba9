"""Submission time against the PNG-decode floor, for each test-time augmentation setting, in one run.

    python benchmarks/submission_time.py --root data/idao_dataset --tta 8/1,8/0.25,8/0.1,1/1 --overlap off,on --out docs/benchmarks/submission_time.md

Each setting is ``cygno.submission.tta/cygno.submission.tta_fraction``, run with each ``cygno.submission.overlap``.
Needs a trained model (``train.py``) for that dataset. Each setting predicts every test PNG from cold files
(no crop cache); the floor is the time to only decode the same PNGs with the same two processes, measured
right before it, so the ratio holds on a noisy machine. Scores need the simulated ``labels.csv``.
"""
from __future__ import annotations

import argparse
import time


from idao.jobs import run_job

from common import decode_floor, publish, score_submission, test_paths  # benchmarks/common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/idao_dataset")
    parser.add_argument("--tta", default="8/1,8/0.25,8/0.1,4/1,1/1", help="tta/tta_fraction settings")
    parser.add_argument("--overlap", default="auto", help="cygno.submission.overlap values to run each setting with")
    parser.add_argument("--bf16", default="auto", help="cygno.submission.bf16 values to run each setting with")
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*", help="config overrides for every run (default: none)")
    args = parser.parse_args()
    paths = test_paths(args.root)
    lines = [f"`python benchmarks/submission_time.py --root {args.root} --tta {args.tta} --overlap {args.overlap} "
             f"--bf16 {args.bf16}" + (" " + " ".join(args.overrides) if args.overrides else "")
             + f"`: {len(paths)} test PNGs, 2 CPU cores, cold files.", "",
             "| cygno.submission.tta | tta_fraction | overlap | bf16 | submission s | decode floor s | ratio | public | private |",
             "|---:|---:|---|---|---:|---:|---:|---:|---:|"]
    for setting in args.tta.split(","):
        tta, _, fraction = setting.partition("/")
        for overlap, bf16 in [(o, b) for o in args.overlap.split(",") for b in args.bf16.split(",")]:
            floor = decode_floor(paths)
            t = time.perf_counter()
            sub = run_job("generate", [f"cygno.root={args.root}", "cygno.cache_dir=", f"cygno.submission.tta={tta}",
                                       f"cygno.submission.tta_fraction={fraction or 1}", f"cygno.submission.overlap={overlap}",
                                       f"cygno.submission.bf16={bf16}", "train.progress=false", "cygno.output.submission=/tmp/idao-submission-time/sub.csv",
                                       *args.overrides]).set_index("id")
            seconds = time.perf_counter() - t
            scores = [f"{m['score']:.2f}" for m in score_submission(args.root, sub).values()]
            lines.append(f"| {tta} | {fraction or 1} | {overlap} | {bf16} | {seconds:.1f} | {floor:.1f} | {seconds / floor:.2f} | "
                         f"{' | '.join(scores)} |")
            print(lines[-1], flush=True)
    publish(lines, args.out)


if __name__ == "__main__":
    main()

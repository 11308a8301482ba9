"""How well could any model do on the simulator? An oracle bound for the CYGNO scores.

    python benchmarks/cygno_bound.py --out docs/benchmarks/cygno_bound.md

The oracle knows each event's true light (after the gain fluctuation) and true
spot width, the quantities the simulator draws before any pixel noise, and the
exact distributions they come from (``idao.cygno.simulate``); it does not see
the track's shape, so its score is not a bound where elongation helps (ER 6 keV
and up). Per split it calls the most probable of the split's six
classes and scores the call with the leaderboard's metric. Within a light pair
whose electron track is far shorter than the blur (ER 1 / NR 3 and ER 3 / NR 6:
ER ranges 0.02 and 0.15 mm, blur ~0.7 mm), shape adds nothing the width does
not carry, so that pair's type error bounds every model's: the MAE its events alone add
caps the score at 1000 x (1 - that MAE) for any decoder on this simulator
(AUC <= 1). Monte Carlo, seeded; a few seconds.
"""
from __future__ import annotations

import argparse

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

from idao.cygno.metrics import summarize
from idao.cygno.names import TRAIN_CLASSES, UNSEEN_CLASSES
from idao.cygno.simulate import ER_RANGE_MM, PX_MM, SPOT_SIGMA, Physics, _interp_log, event_light, light_logpdf

from common import publish  # benchmarks/common.py
from cygno_scores import SWEEP  # benchmarks/cygno_scores.py: the same physics points

SPLITS = {"public": TRAIN_CLASSES, "private": UNSEEN_CLASSES}
ROUND_ER = {1: 3, 3: 6}  # ER keV -> the NR keV of its light pair, where the ER track is far shorter than the blur


def oracle_split(classes, n: int, rng: np.random.Generator, physics: Physics) -> dict:
    """Draw n events per class of (true light, true width) and score the oracle's calls on them."""
    light, width, is_er, energy = [], [], [], []
    for particle, kev in classes:
        mean, spread = SPOT_SIGMA[particle]
        light.append(event_light(particle, kev, rng, physics, n))
        width.append(rng.normal(mean, spread, n) * physics.diffusion)
        is_er.append(np.full(n, particle == "ER"))
        energy.append(np.full(n, float(kev)))
    light, width, is_er, energy = map(np.concatenate, (light, width, is_er, energy))
    # log p(light, width | class) for each of the split's classes (equally likely, as in the test splits)
    ll = np.stack([light_logpdf(light, p, e, physics)
                   + norm.logpdf(width, SPOT_SIGMA[p][0] * physics.diffusion, SPOT_SIGMA[p][1] * physics.diffusion)
                   for p, e in classes], 1)
    er_cols = np.array([p == "ER" for p, _ in classes])
    p_er = np.exp(logsumexp(ll[:, er_cols], 1) - logsumexp(ll, 1))
    called = ll.argmax(1)
    kev = np.array([e for _, e in classes], float)[called]
    out = summarize(is_er, energy, p_er, kev)
    # the MAE that the round pair's events alone add (their ER track under a quarter of the blur): a floor
    round_pair = np.isin(energy, [e for p, e in classes if p == "ER" and e in ROUND_ER]) & is_er
    round_pair |= np.isin(energy, [ROUND_ER[e] for p, e in classes if p == "ER" and e in ROUND_ER]) & ~is_er
    out["round_mae"] = float(np.abs(kev - energy)[round_pair].sum() / len(energy))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--physics", default="", help="simulator knobs, e.g. nr_quenching=0.75")
    parser.add_argument("--sweep", nargs="?", const=SWEEP, default="",
                        help="also score each of these physics points alone (default: cygno_scores.py's sweep)")
    parser.add_argument("--out", help="also write the markdown here")
    args = parser.parse_args(argv)
    physics = Physics.parse(args.physics)
    rng = np.random.default_rng(args.seed)
    lines = ["# CYGNO: how well could any model do on the simulator?", "",
             "An oracle that knows each event's true light (after the gain fluctuation) and true spot width, and the "
             "exact distributions the simulator draws them from, calls the most probable of the split's six classes. "
             "It does not see the track's shape, so where elongation helps (ER 6 keV and up) a model can beat it. "
             "In the round pairs (ER 1 / NR 3, ER 3 / NR 6) the ER track is far shorter than the blur, the width and "
             "light carry all there is, and the MAE those pairs' events alone add caps *any* decoder's score on this "
             "simulator at 1000 x (1 - that MAE).", "",
             f"Command: `python benchmarks/cygno_bound.py{' --physics ' + args.physics if args.physics else ''}"
             f"{' --sweep' if args.sweep else ''}` "
             f"({args.events:,} events per class, seed {args.seed}).", "",
             "| split | oracle score | AUC | MAE (keV) | round pair's MAE: score at most | type accuracy per class |",
             "|---|---:|---:|---:|---:|---|"]
    for name, classes in SPLITS.items():
        m = oracle_split(classes, args.events, rng, physics)
        per_class = ", ".join(f"{c} {v['accuracy']:.3f}" for c, v in m["per_class"].items())
        bound = 1000 * (1 - m["round_mae"])
        lines.append(f"| {name} | {m['score']:.0f} | {m['auc']:.4f} | {m['mae']:.3f} | {m['round_mae']:.3f}: {bound:.0f} | "
                     f"{per_class} |")
    track_px = {kev: _interp_log(ER_RANGE_MM, kev) * physics.er_range / PX_MM for kev in (1, 3, 6, 10)}
    lines += ["", "ER track length before blur (px, before projection): "
              + ", ".join(f"{k} keV {v:.1f}" for k, v in track_px.items())
              + f"; blur sigma ER {SPOT_SIGMA['ER'][0]} px, NR {SPOT_SIGMA['NR'][0]} px."]
    if args.sweep:
        lines += ["", "## At each point of the physics sweep", "",
                  "One knob moved at a time from the defaults (as in `cygno_scores.py`); the oracle sees true light and "
                  "width, so the knobs that act only on what is measured (`noise`) or on the track's shape "
                  "(`er_range`) leave it unchanged: there the loss is the model's.", "",
                  "| physics | public oracle | private oracle | private round pair: score at most | "
                  "private type accuracy per class |", "|---|---:|---:|---:|---|"]
        for point in args.sweep.split(","):
            knobs = ",".join(filter(None, [args.physics, point]))
            public, private = (oracle_split(classes, args.events, rng, Physics.parse(knobs)) for classes in SPLITS.values())
            per_class = ", ".join(f"{c} {v['accuracy']:.3f}" for c, v in private["per_class"].items())
            lines.append(f"| {point} | {public['score']:.0f} | {private['score']:.0f} | "
                         f"{1000 * (1 - private['round_mae']):.0f} | {per_class} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()

"""How much a light pair's images hold: models trained on the *labelled* private events of one pair.

    python benchmarks/cygno_pair_ceiling.py --root /tmp/cyg_full --pair 1,3 --submission results/submission.csv

The pipeline never sees private labels: it must carry what it learns on the training classes over to the
unseen ones. This asks the opposite question, to tell "the decoder or the transfer loses it" from "the images do
not hold it": on 80 % of the pair's events (labelled, seed 0) it trains densenet_tiny on the same 64 px input
(flips and turns, AdamW, one-cycle) and a gradient boosting on the three numbers the light model decodes from
(light, width, elongation), and reports their type accuracy on the other 20 %, cut at the median (the classes
are balanced), beside the submission's accuracy on the same events when ``--submission`` is given.
With ``--train-root`` (another labelled dataset of the same physics, e.g. a full-scale one) the models train on
all of that dataset's events of the pair instead and are scored on all of ``--root``'s: many more labels than
the split holds. Neither is a bound: a bigger model or more events could do better.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.ensemble import HistGradientBoostingClassifier

import idao.cygno.models  # noqa: F401  (registers densenet_tiny)
from common import publish
from idao.config import load_config
from idao.cygno.data import augment, load_crops, to_input
from idao.cygno.dataset import split_samples
from idao.cygno.light import measure_spots
from idao.models import build_model

BIN, BATCH, LR = 2, 64, 3e-3


def accuracy_at_median(p: np.ndarray, is_er: np.ndarray) -> float:
    """Type accuracy with the cut at the median score: the pair's two classes are balanced."""
    return float(np.mean((p > np.median(p)) == is_er))


def spot_model(seed: int = 0) -> HistGradientBoostingClassifier:
    """The gradient boosting that measures what (light, width, elongation) can tell inside a labelled pair."""
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, random_state=seed)


def train_cnn(x: np.ndarray, y: np.ndarray, epochs: int, seed: int, classes: int = 1) -> torch.nn.Module:
    """densenet_tiny on crops ``x``: one ER logit (``y`` in {0, 1}), or ``classes`` logits (``y`` the class)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model("densenet_tiny", num_outputs=classes)
    steps_per_epoch = max(len(x) // BATCH, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.05)
    total = max(epochs * steps_per_epoch, 20)  # tiny data: OneCycleLR divides by its warm-up's step count
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, LR, total_steps=total, pct_start=0.1)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for step in range(steps_per_epoch):
            b = np.sort(order[step * BATCH : (step + 1) * BATCH])
            inputs = augment(to_input(x[b], BIN, torch.device("cpu")), torch.from_numpy(rng.integers(0, 8, len(b))))
            out, target = model(inputs), torch.from_numpy(y[b])
            loss = (F.binary_cross_entropy_with_logits(out.squeeze(1), target.float()) if classes == 1
                    else F.cross_entropy(out, target.long()))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict_cnn(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Mean ER probability (one logit) or class probabilities (several) over the 8 flips and turns."""
    out = []
    for start in range(0, len(x), 256):
        inputs = to_input(x[start : start + 256], BIN, torch.device("cpu"))
        views = [model(augment(inputs, torch.full((len(inputs),), k))) for k in range(8)]
        probs = [torch.sigmoid(v).squeeze(1) if v.shape[1] == 1 else torch.softmax(v, 1) for v in views]
        out.append(torch.stack(probs).mean(0))
    return torch.cat(out).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a labelled dataset (labels.csv beside the test folders)")
    parser.add_argument("--cache-dir", default="", help="cygno.cache_dir for its crops")
    parser.add_argument("--train-root", help="train on this labelled dataset's pair events (all of root's are tested)")
    parser.add_argument("--pair", default="1,3", help="ER keV,NR keV of a private light pair")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--submission", help="a submission CSV for this dataset, scored on the same events")
    parser.add_argument("--out", help="also write the markdown lines here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    er_kev, nr_kev = map(int, args.pair.split(","))

    def pair_events(root):
        cfg = load_config(overrides=[f"cygno.root={root}", f"cygno.cache_dir={args.cache_dir}"], echo=False)
        crops = load_crops(split_samples(root, "private_test"), cfg.cygno, progress=False)
        is_er = crops.is_er
        events = np.flatnonzero(is_er & (crops.energy == er_kev) | ~is_er & (crops.energy == nr_kev))
        return crops.subset(np.random.default_rng(args.seed).permutation(events))

    crops = pair_events(args.root)
    if args.train_root:
        fitted, held = pair_events(args.train_root), crops
    else:
        cut = int(0.8 * len(crops.ids))
        fitted, held = crops.subset(np.arange(cut)), crops.subset(np.arange(cut, len(crops.ids)))
    t = time.perf_counter()
    cnn = train_cnn(fitted.images, fitted.is_er.astype(np.float32), args.epochs, args.seed)
    cnn_s = time.perf_counter() - t
    rows = {"densenet_tiny on the labelled pair": accuracy_at_median(predict_cnn(cnn, held.images), held.is_er)}
    gbm = spot_model(args.seed).fit(measure_spots(fitted.images), fitted.is_er)
    rows["gradient boosting on light, width, elongation (labelled pair)"] = accuracy_at_median(
        gbm.predict_proba(measure_spots(held.images))[:, 1], held.is_er)
    if args.submission:
        sub = pd.read_csv(args.submission, dtype={"id": str}).set_index("id")
        called_er = sub.loc[held.ids].iloc[:, 0].to_numpy() > 0.5
        rows["the submission (no private labels)"] = float(np.mean(called_er == held.is_er))
    source = f" --train-root {args.train_root}" if args.train_root else ""
    lines = [f"`python benchmarks/cygno_pair_ceiling.py --root {args.root}{source} --pair {args.pair} --epochs {args.epochs}`: "
             f"ER {er_kev} / NR {nr_kev} keV, {len(fitted.ids)} labelled training events, {len(held.ids)} test events "
             f"(CNN trained in {cnn_s:.0f} s).", "", f"| model | type accuracy on the {'test events' if args.train_root else 'held-out 20 %'} |", "|---|---:|"]
    lines += [f"| {name} | {acc:.3f} |" for name, acc in rows.items()]
    publish(lines, args.out)


if __name__ == "__main__":
    main()

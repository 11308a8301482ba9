"""``train.py``: train the ER/NR classifier and the energy regressor on the train split."""
from __future__ import annotations

from pathlib import Path

from .atomic import write_text
from .cli import config_command
from .tasks import dispatch
from .data import ensure_dataset, load_crops, stratified_split
from .dataset import describe, train_samples
from .distributed import current, main_process_first
from .engine import fit, training_runtime
from .heads import KINDS, compat_settings, make_head


def prepare(cfg):
    """Dataset root, training crops and the stratified (train, val) indices: the same for train and report."""
    with main_process_first():  # rank 0 simulates and fills the crop cache; the others reuse both
        root = ensure_dataset(cfg.data)
        crops = load_crops(train_samples(root), cfg.data, cfg.train.progress and current().main)
    train_idx, val_idx = stratified_split(crops.classes, cfg.data.val_fraction, cfg.train.seed)
    return root, crops, train_idx, val_idx


def train(cfg, kinds=KINDS) -> list[dict]:
    """Train ``kinds`` in turn; under torchrun, one process per device with DDP."""
    with training_runtime(cfg) as rt:
        root, crops, train_idx, val_idx = prepare(cfg)
        if rt.dist.main:
            print(describe(root))
            print(f"training on {len(train_idx)} images, validating on {len(val_idx)}"
                  + (f", {rt.dist.world} processes" if rt.dist.enabled else ""))
            write_text(Path(cfg.train.checkpoint_dir) / "config.ini", cfg.to_ini())
        return [fit(kind, getattr(cfg, kind), make_head(kind, cfg), crops.subset(train_idx), crops.subset(val_idx),
                    rt, cfg, compat_settings(cfg)) for kind in kinds]


def main(argv=None) -> None:
    def only(parser):
        parser.add_argument("--only", choices=KINDS, help="IDAO: train just one of the two models")

    config_command(__doc__, dispatch("train", lambda cfg, args: train(cfg, [args.only] if args.only else KINDS)), argv, only)

"""``train.py``: train the ER/NR classifier and the energy regressor on the train split."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed

from .atomic import write_text
from .cli import config_command
from .tasks import dispatch
from .data import ensure_dataset, load_crops, stratified_split
from .dataset import describe, train_samples
from .distributed import current, init_distributed, main_process_first
from .engine import fit, make_runtime, resolve_device
from .heads import KINDS, compat_settings, make_head


def prepare(cfg):
    """Dataset root, training crops and the stratified (train, val) indices: the same for train and report."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    with main_process_first():  # rank 0 simulates and fills the crop cache; the others reuse both
        root = ensure_dataset(cfg.data)
        crops = load_crops(train_samples(root), cfg.data, cfg.train.progress and current().main)
    train_idx, val_idx = stratified_split(crops.classes, cfg.data.val_fraction, cfg.train.seed)
    return root, crops, train_idx, val_idx


def train(cfg, kinds=KINDS) -> list[dict]:
    """Train ``kinds`` in turn; under torchrun, one process per device with DDP."""
    dist_info, device = init_distributed(resolve_device(cfg.train.device))
    rt = make_runtime(cfg, dist_info, device)
    root, crops, train_idx, val_idx = prepare(cfg)
    if dist_info.main:
        print(describe(root))
        print(f"training on {len(train_idx)} images, validating on {len(val_idx)}"
              + (f", {dist_info.world} processes" if dist_info.enabled else ""))
        write_text(Path(cfg.train.checkpoint_dir) / "config.ini", cfg.to_ini())
    try:
        return [fit(kind, getattr(cfg, kind), make_head(kind, cfg), crops.subset(train_idx), crops.subset(val_idx),
                    rt, cfg, compat_settings(cfg)) for kind in kinds]
    finally:
        if dist_info.enabled:
            torch.distributed.destroy_process_group()


def main(argv=None) -> None:
    def only(parser):
        parser.add_argument("--only", choices=KINDS, help="IDAO: train just one of the two models")

    config_command(__doc__, dispatch("train", lambda cfg, args: train(cfg, [args.only] if args.only else KINDS)), argv, only)

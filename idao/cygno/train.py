"""CYGNO training: the ER/NR classifier and the energy regressor, trained in turn on the train split."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..atomic import write_text
from ..distributed import main_process_first
from ..engine import ModelSettings, RunSettings, fit
from ..runtime import training_runtime
from ..splits import Split, copy_groups, fingerprint, validation_split
from .data import CropSet, load_crops
from .dataset import check_root, describe, train_samples
from .light import LIGHT_MODEL_FILE, LightModel
from .objectives import OBJECTIVES, compat_settings, make_objective
from .pseudo import pseudo_crops

NAME = "cygno"


def ensure_dataset(data_cfg, progress: bool = True) -> Path:
    """The dataset root; with none there and ``simulate_scale`` > 0, simulate one first and say so."""
    root = Path(data_cfg.root)
    if not root.exists() and data_cfg.simulate_scale > 0:
        from .simulate import simulate_dataset

        print(f"No dataset at {root}: simulating one (scale {data_cfg.simulate_scale}, "
              f"seed {data_cfg.simulate_seed}). Set cygno.root to use real data.")
        simulate_dataset(root, data_cfg.simulate_scale, data_cfg.simulate_seed, data_cfg.workers, progress=progress)
    return check_root(root)


def prepare(cfg, rt) -> tuple[Path, CropSet, Split]:
    """Dataset root, training crops and their stratified split: the same for train and report."""
    with main_process_first(rt.dist):  # rank 0 simulates and fills the crop cache; the others reuse both
        root = ensure_dataset(cfg.cygno, rt.show_progress)
        crops = load_crops(train_samples(root), cfg.cygno, rt.show_progress)
    groups = copy_groups([fingerprint(image) for image in crops.images])
    split = validation_split(crops.classes, cfg.cygno.val_fraction, cfg.train, groups, root / "train", "image crop",
                             rt.dist.main)
    return root, crops, split


def train(cfg, kinds=tuple(OBJECTIVES)) -> list[dict]:
    """Train ``kinds`` in turn; under torchrun, one process per device with DDP."""
    run = RunSettings.from_config(cfg, NAME)
    with training_runtime(cfg.train) as rt:
        root, crops, split = prepare(cfg, rt)
        train_idx, val_idx = split.train, split.val
        if rt.dist.main:
            print(describe(root))
            print(f"training on {len(train_idx)} images, validating on {len(val_idx)}"
                  + (f", {rt.dist.world} processes" if rt.dist.enabled else ""))
            write_text(run.checkpoint_dir / "config.ini", cfg.to_ini())
            fitted = crops.subset(train_idx)
            light = LightModel.fit(fitted.spots()[:, 0], fitted.is_er, fitted.energy, fitted.images)
            light.save(run.checkpoint_dir / LIGHT_MODEL_FILE)
            if run.fold is not None:  # the fold ensemble decodes with the light model of every training image
                LightModel.fit(crops.spots()[:, 0], crops.is_er, crops.energy, crops.images).save(
                    run.top_dir / LIGHT_MODEL_FILE)
            print("light model, median light per keV: " + "; ".join(
                f"{p} " + ", ".join(f"{e:g}: {m:.0f}" for e, m in zip(t.kevs, t.medians)) + f", s0={t.s0:.0f} f={t.f:.3f}"
                for p, t in (("ER", light.er), ("NR", light.nr))))
        fitted = crops.subset(train_idx)
        extra = pseudo_crops(cfg, crops.subset(split.held_out()), rt.show_progress)
        if extra is not None:  # the networks learn from them; the light model keeps to the true labels
            fitted = CropSet.joined(fitted, extra)
            if rt.dist.main:
                print(f"with {len(extra)} pseudo-labelled test images: " + ", ".join(
                    f"{c} {n}" for c, n in zip(*np.unique(extra.classes, return_counts=True))))
        return [fit(kind, ModelSettings.from_section(cfg.section(f"cygno.{kind}"), f"cygno.{kind}"), make_objective(kind, cfg),
                    fitted, crops.subset(val_idx), rt, run, compat_settings(cfg))
                for kind in kinds]

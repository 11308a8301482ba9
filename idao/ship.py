"""``idao-ship``: a trained checkpoint folder made into the models the repository ships.

Every ``<name>_best.pt`` of ``<checkpoint_dir>/<task>`` becomes ``<name>_best.safetensors`` + ``.json``
(nothing in them runs code on load; ``load_checkpoint`` reads them where no ``.pt`` is) and gets a model card
with the command that rebuilds it and its held-out scores. The ``.pt`` files and the TensorBoard logs are
removed: they are what a retrain writes, and a retrain's ``.pt`` takes precedence over the shipped pair::

    idao-ship checkpoints/egamma --rebuild "python train.py task.name=egamma" --scores "test AUC 0.78 (...)"
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

from .atomic import write_text
from .cards import model_card
from .checkpoint import load_checkpoint, load_safe, safe_pair, save_safe
from .config import CORE_PATH_KEYS, split_list
from .errors import IdaoError
from .tasks import get_task


def relative_paths(config: dict) -> dict:
    """The config with its paths (resolved to absolute ones when trained) relative to the working directory:
    a clone elsewhere adopts ``data/...`` (where its own run simulates) rather than this machine's folders."""
    config = {section: dict(values) for section, values in config.items()}
    for key in CORE_PATH_KEYS + get_task(config["task"]["name"]).path_keys:
        section, name = key.rsplit(".", 1)
        if isinstance(config.get(section, {}).get(name), str):
            config[section][name] = ",".join(os.path.relpath(p) if os.path.isabs(p) else p
                                             for p in split_list(config[section][name]))
    return config


def ship(folder: Path, rebuild: str, scores: str) -> list[Path]:
    """The shipped pairs written from ``folder``'s best checkpoints (checked to load back before the ``.pt``
    files go)."""
    best = sorted(folder.glob("*_best.pt"))
    if not best:
        raise IdaoError(f"{folder}: no <name>_best.pt checkpoints to ship; run train.py first")
    written = []
    for path in best:
        state = {**load_checkpoint(path), "rebuild": rebuild}  # named by the error a changed architecture gives
        state["config"] = relative_paths(state["config"])
        save_safe(state, path)
        again = load_safe(path)
        if set(again["model"]) != set(state["model"]) or any(
                not torch.equal(again["model"][k], v) for k, v in state["model"].items()):
            raise IdaoError(f"{safe_pair(path)[0]}: the weights read back differ from {path.name}; not shipped")
        name = path.name.removesuffix("_best.pt")
        task = state["config"]["task"]["name"]
        write_text(folder / f"{name}_model_card.md", model_card(task, name, state, {
            "Files": [f"`{safe_pair(path)[0].name}` (weights) and `{safe_pair(path)[1].name}` (config, objective, "
                      "history, provenance): no pickle, nothing that runs code on load. A training into this folder "
                      "removes every shipped model in it first (never a mix of shipped and retrained models); "
                      f"`rm {folder}/*.pt && git checkout {folder}` brings them back."],
            "Rebuild": ["```bash", rebuild, "idao-ship " + str(folder) + " --rebuild '...' --scores '...'", "```"],
            "Held-out scores": [scores or "(not given)"]}))
        written.append(safe_pair(path)[0])
    for pt in folder.glob("*.pt"):
        pt.unlink()
    shutil.rmtree(folder / "tensorboard", ignore_errors=True)
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="<checkpoint_dir>/<task>, e.g. checkpoints/egamma")
    parser.add_argument("--rebuild", required=True, help="the exact command that trained these models")
    parser.add_argument("--scores", default="", help="held-out scores, for the model cards")
    args = parser.parse_args(argv)
    try:
        for path in ship(args.folder, args.rebuild, args.scores):
            print(f"shipped {path} (+ {path.with_suffix('.json').name}, model card)")
    except IdaoError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()

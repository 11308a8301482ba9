"""Training and inference: one loop for every model of every task, read top to bottom.

What a model learns lives in its *objective* (the ``Objective`` protocol in
``idao/tasks.py``): per-item random draws, how a batch becomes the model's
input, the targets, the loss, the output transform and the validation metric.
An objective is a dataclass saved in the checkpoint, so inference rebuilds
exactly the preprocessing a model was trained with.

``fit`` trains one model with AdamW and a warm-up + cosine schedule, keeps
``<name>_last.pt`` and ``<name>_best.pt`` up to date atomically, logs one CSV
row per epoch, stops early on the validation metric, and resumes exactly:
every epoch's shuffling and augmentation come from a generator seeded by
(seed, epoch), and the checkpoint holds everything else. It takes explicit
settings (``ModelSettings``, ``RunSettings``), never the config object.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .atomic import write_text
from .checkpoint import check_compatible, load_checkpoint, load_weights, save_checkpoint
from .distributed import all_sum, gather_shards, sync_buffers, unwrap, wrap_model
from .errors import CheckpointError, ConfigError
from .metrics import better
from .models import build_model
from .runtime import Runtime, autocast
from .splits import fold_index


@dataclass(frozen=True)
class ModelSettings:
    """One model section of the config (``[classifier]``, ``[damic.model]``...): the network and its optimisation."""

    model: str
    pretrained: bool
    drop_rate: float
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: int
    patience: int

    @classmethod
    def from_section(cls, section, name: str) -> "ModelSettings":
        values = vars(section)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values]
        if missing:
            raise ConfigError(f"[{name}] lacks the model keys {', '.join(missing)}")
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls)})


@dataclass(frozen=True)
class RunSettings:
    """What one training run shares across its models: seed, resume, where checkpoints go, the config to record."""

    seed: int
    resume: bool
    checkpoint_dir: Path  # <train.checkpoint_dir>/<task>/, or its fold<k>/ when one fold is trained or scored
    config: dict  # the resolved config, saved in every checkpoint
    folds: int = 1  # train.folds
    fold: int | None = None  # the one fold this run is about; None: a single split, or every fold
    tensorboard: bool = False  # train.tensorboard

    @classmethod
    def from_config(cls, cfg, task_name: str) -> "RunSettings":
        """From ``[train]``: checkpoints of a task go to ``<train.checkpoint_dir>/<task name>/``, those of fold k
        to its ``fold<k>/``."""
        top, fold = Path(cfg.train.checkpoint_dir) / task_name, fold_index(cfg.train)
        return cls(cfg.train.seed, cfg.train.resume, top if fold is None else top / f"fold{fold}", cfg.as_dict(),
                   cfg.train.folds, fold, cfg.train.tensorboard)

    @property
    def top_dir(self) -> Path:
        """The task's checkpoint folder, above any fold's."""
        return self.checkpoint_dir if self.fold is None else self.checkpoint_dir.parent

    def path(self, name: str, which: str) -> Path:
        return self.checkpoint_dir / f"{name}_{which}.pt"

    def members(self, name: str) -> list[Path]:
        """The best checkpoints of model ``name`` that predict together: one per fold where the models were trained
        in folds and no single fold is asked for, else the one."""
        if self.folds > 1 and self.fold is None:
            return [self.top_dir / f"fold{k}" / f"{name}_best.pt" for k in range(self.folds)]
        return [self.path(name, "best")]


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LR multiplier: linear warm-up, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def init_output_layer(model: torch.nn.Module, bias: list[float]) -> None:
    """Start every model at a constant output (zero weights, bias at the mean target).

    MobileNets' random heads start with outputs of std 1-7, and an L1 loss that far
    off makes Adam inflate the whole network; a constant start trains stably.
    """
    layer = model.get_classifier()
    torch.nn.init.zeros_(layer.weight)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor(bias, dtype=layer.bias.dtype))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


# Fault injection for the resume tests: IDAO_FAULT_KILL_AT=classifier:5 sends SIGKILL to this
# process right after the classifier's 5th optimizer step (fold1/classifier:5: in fold 1).
_KILL_AT = os.environ.get("IDAO_FAULT_KILL_AT", "")


def train_one_epoch(model, objective, optimizer, scheduler, data, batch_size: int, rt: Runtime, generator,
                    name: str, step0: int = 0) -> tuple[float, dict]:
    """One pass over ``data`` in global batches of ``batch_size``; each process takes every world-th item.
    Returns the mean loss and the means of the objective's optional ``scores`` (``train_<name>``).

    The random draws (order, then the objective's per-item augmentation draws)
    are made for the whole global batch on every process, so N processes see
    exactly the batches and augmentations that one process would.
    """
    model.train()
    rank, world = rt.dist.rank, rt.dist.world
    order = epoch_order(data, generator)
    total, count, sums = 0.0, 0, {}
    plan = []  # (items, draws) of this process, every batch drawn up front: the same for any loader_workers
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        draws = objective.draw(len(batch), generator)
        if len(batch) >= world:  # too few for every process: skipped by all alike
            plan.append((batch[rank::world], draws[rank::world]))
    inputs = batch_inputs(objective, data, plan, rt)
    for i, ((idx, draws), x) in enumerate(tqdm(zip(plan, inputs), total=len(plan), desc="train", leave=False,
                                               disable=not rt.show_progress, mininterval=2)):
        y = objective.targets(data, idx, draws).to(rt.device)
        with autocast(rt.device, rt.amp):
            out = squeeze(model(x).float())
        loss = objective.loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
        count += len(idx)
        if hasattr(objective, "scores"):
            for key, value in objective.scores(out.detach(), y).items():
                sums[key] = sums.get(key, 0.0) + value * len(idx)
        if _KILL_AT == f"{name}:{step0 + i + 1}":
            os.kill(os.getpid(), signal.SIGKILL)
    keys = sorted(sums)
    total, count, *values = all_sum([total, count, *(sums[k] for k in keys)], rt.device, rt.dist)
    return total / max(count, 1), {f"train_{k}": v / max(count, 1) for k, v in zip(keys, values)}


class _PlannedBatches(torch.utils.data.Dataset):
    """Batch k of a plan as the objective builds it, on the CPU: what a DataLoader worker runs."""

    def __init__(self, objective, data, plan, rt: Runtime):
        self.objective, self.data, self.plan = objective, data, plan
        self.rt = dataclasses.replace(rt, device=torch.device("cpu"), loader_workers=0)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int):
        idx, draws = self.plan[k]
        return self.objective.inputs(self.data, idx, self.rt, draws)


def to_device(x, device: torch.device):
    """A model input (a tensor, a dict of them, or a fold ensemble's tuple of either) on ``device``."""
    if isinstance(x, tuple):
        return tuple(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    return x.to(device, non_blocking=True)


def batch_inputs(objective, data, plan: list, rt: Runtime):
    """The model inputs of ``plan`` ((items, draws) per batch), in order.

    With ``rt.loader_workers`` > 0 they are built by that many background
    processes (a DataLoader, each worker reading the data on its own: an
    IceCube worker keeps its own few batch files), each up to 4 batches ahead
    of the model; the batches are the same either way. The loader gets its
    own generator, so starting it leaves the global RNG (dropout) untouched.
    """
    if rt.loader_workers == 0:
        return (objective.inputs(data, idx, rt, draws) for idx, draws in plan)
    loader = torch.utils.data.DataLoader(_PlannedBatches(objective, data, plan, rt), batch_size=None,
                                         num_workers=rt.loader_workers, prefetch_factor=4,
                                         pin_memory=rt.device.type == "cuda",
                                         generator=torch.Generator().manual_seed(0))
    return (to_device(x, rt.device) for x in loader)


def epoch_order(data, generator) -> np.ndarray:
    """The epoch's item order: ``data.epoch_order(generator)`` where the data has one (a chunked file shuffles
    whole chunks, then items within a few chunks, so reads stay sequential), else a full permutation."""
    if hasattr(data, "epoch_order"):
        return np.asarray(data.epoch_order(generator))
    return torch.randperm(len(data), generator=generator).numpy()


def squeeze(out: torch.Tensor) -> torch.Tensor:
    """(B, 1) -> (B,) for single-output models; several outputs stay (B, K)."""
    return out[:, 0] if out.shape[1] == 1 else out


@torch.inference_mode()
def predict_outputs(model, objective, data, rt: Runtime, indices=None) -> np.ndarray:
    """Raw model outputs for items ``indices`` (default: all) of ``data``, in batches of ``rt.batch_size``
    (``train.predict_batch_size``), in inference mode."""
    model.eval()
    indices = np.arange(len(data)) if indices is None else np.asarray(indices)
    outs = []
    plan = [(indices[start : start + rt.batch_size], None) for start in range(0, len(indices), rt.batch_size)]
    for x in tqdm(batch_inputs(objective, data, plan, rt), total=len(plan), desc="predict", leave=False,
                  disable=not rt.show_progress, mininterval=2):
        views = objective.test_views(x) if hasattr(objective, "test_views") else [x]  # test-time augmentation
        with autocast(rt.device, rt.amp, rt.cpu_bf16):
            outs.append((sum(squeeze(model(v).float()) for v in views) / len(views)).cpu().numpy())
    if outs:
        return np.concatenate(outs)
    return np.zeros((0,) + (() if objective.num_outputs == 1 else (objective.num_outputs,)), np.float32)


def evaluate(model, objective, data, rt: Runtime) -> tuple[float, dict]:
    """Validation metric, and the objective's optional ``scores`` on the same outputs (``val_<name>``); with
    several processes each predicts every world-th item, then all gather."""
    raw = unwrap(model)
    sync_buffers(raw, rt.dist)
    out = predict_outputs(raw, objective, data, rt, np.arange(len(data))[rt.dist.rank :: rt.dist.world])
    out = np.asarray(gather_shards(out, len(data), rt.dist), dtype=np.float32)
    scores = {}
    if hasattr(objective, "scores"):
        y = objective.targets(data, np.arange(len(data)))
        scores = {f"val_{k}": v for k, v in objective.scores(torch.from_numpy(out), y).items()}
    return objective.metric(objective.predict(out), data), scores


def write_log(history: list[dict], path: Path) -> None:
    """One CSV row per epoch, rewritten whole so a resumed run's log has no gaps or repeats."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


def tensorboard_writer(run: RunSettings, name: str, first_epoch: int, main: bool):
    """A SummaryWriter for model ``name`` (rank 0, ``train.tensorboard``), or None. ``purge_step``: a resumed run
    hides what the killed one logged from ``first_epoch`` on, so every epoch shows once."""
    if not (main and run.tensorboard):
        return None
    from torch.utils.tensorboard import SummaryWriter  # imported here: only runs that log pay for it

    return SummaryWriter(str(run.checkpoint_dir / "tensorboard" / name), purge_step=first_epoch)


EXAMPLES = 6  # validation items drawn in TensorBoard each epoch, for objectives that can show them


def log_examples(writer, model, objective, val_set, rt: Runtime, epoch: int) -> None:
    """The first validation items as one figure, each captioned with the model's prediction and its truth
    (objectives with ``examples``: CYGNO crops, DAMIC windows), to see what the network gets wrong as it trains."""
    if writer is None or not hasattr(objective, "examples") or len(val_set) == 0:
        return
    from .reporting import example_grid  # matplotlib: loaded only by runs that log

    idx = np.arange(min(EXAMPLES, len(val_set)))
    predicted = objective.predict(predict_outputs(unwrap(model), objective, val_set, rt, idx))
    writer.add_figure("validation examples", example_grid(*objective.examples(val_set, idx, predicted)), epoch)


def log_epoch(writer, row: dict) -> None:
    """One history row (``train_loss``, ``val_metric``, ``lr``, the objective's scores) as scalars at its epoch."""
    if writer is not None:
        for key, value in row.items():
            if key not in ("epoch", "seconds"):
                writer.add_scalar(key, value, row["epoch"])
        writer.flush()


def fit(name: str, settings: ModelSettings, objective, train_set, val_set, rt: Runtime, run: RunSettings,
        compat: dict) -> dict:
    """Train model ``name`` (checkpoint prefix) for ``objective``; return its best checkpoint's summary.

    ``compat`` holds the settings (``{section: {key: value}}``) a checkpoint must
    match to be resumed. Only the main process prints and saves.
    """
    seed, main = run.seed, rt.dist.main
    log = print if main else (lambda *a, **k: None)
    last_path, best_path = run.path(name, "last"), run.path(name, "best")
    log_path = run.checkpoint_dir / f"{name}_log.csv"
    fault_name = name if run.fold is None else f"fold{run.fold}/{name}"  # what IDAO_FAULT_KILL_AT names
    state = None
    if run.resume and last_path.exists():
        state = load_checkpoint(last_path)
        check_compatible(state, last_path, settings.model, compat)

    torch.manual_seed(seed)
    model = build_model(settings.model, settings.pretrained, settings.drop_rate, objective.num_outputs,
                        getattr(objective, "in_chans", 1))
    if state:
        load_weights(model, state, last_path)
    else:
        init_output_layer(model, objective.initial_bias(train_set))
    model.to(rt.device, memory_format=rt.fmt)  # before the optimizer, so resumed optimizer state lands there too
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    schedule = warmup_cosine(settings.epochs * steps_per_epoch, settings.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start_epoch, best, best_epoch, history = 0, None, -1, []
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, best_epoch, history = state["epoch"] + 1, state["best"], state["best_epoch"], state["history"]
        log(f"{name}: resuming from {last_path} at epoch {start_epoch}")
    model = wrap_model(model, rt.device, rt.dist)
    writer = tensorboard_writer(run, name, start_epoch, main)

    for epoch in range(start_epoch, settings.epochs):
        if settings.patience and epoch - best_epoch > settings.patience:
            log(f"{name}: early stop, no better validation metric for {settings.patience} epochs")
            break
        t0 = time.time()
        torch.manual_seed(seed * 1_000_003 + epoch)  # dropout and any other global draws
        loss, scores = train_one_epoch(model, objective, optimizer, scheduler, train_set, settings.batch_size, rt,
                                       epoch_generator(seed, epoch), fault_name, epoch * steps_per_epoch)
        metric, val_scores = evaluate(model, objective, val_set, rt)
        scores = {k: round(v, 6) for k, v in {**scores, **val_scores}.items()}
        improved = better(metric, best, objective.higher_is_better)
        if improved:
            best, best_epoch = metric, epoch
        seconds = time.time() - t0
        row = dict(epoch=epoch, train_loss=round(loss, 6), val_metric=round(metric, 6),
                   lr=optimizer.param_groups[0]["lr"], seconds=round(seconds, 2))
        history.append({**scores, **row})  # train_loss is the engine's own
        log_epoch(writer, history[-1])
        log_examples(writer, model, objective, val_set, rt, epoch)
        log(f"{name} epoch {epoch + 1}/{settings.epochs}: loss {loss:.4f}  val {objective.metric_name} {metric:.4f}"
            f"{'  *best*' if improved else ''}  ({seconds:.1f}s, {len(train_set) / seconds:.0f} img/s)")
        if main:
            state = dict(model=unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                         scheduler=scheduler.state_dict(), epoch=epoch, best=best, best_epoch=best_epoch,
                         history=history, kind=name, model_name=settings.model, config=run.config,
                         objective=dataclasses.asdict(objective), metric_name=objective.metric_name,
                         world_size=rt.dist.world, provenance=rt.provenance())
            if improved:
                save_checkpoint(state, best_path)
            save_checkpoint(state, last_path)
            write_log(history, log_path)
    if writer is not None:
        writer.close()
    return dict(kind=name, best=best, best_epoch=best_epoch, epochs_run=len(history), metric_name=objective.metric_name)


def save_fitted(name: str, settings: ModelSettings, model: torch.nn.Module, objective, history: list[dict],
                rt: Runtime, run: RunSettings) -> dict:
    """Checkpoint a model fitted outside the loop above (boosted trees: ``trees.py``) in the same format, as
    both best and last (there is nothing to resume), with its history as the log; main process only."""
    best, best_epoch = None, -1
    for h in history:
        if better(h["val_metric"], best, objective.higher_is_better):
            best, best_epoch = h["val_metric"], h["epoch"]
    if rt.dist.main:
        state = dict(model=model.state_dict(), epoch=len(history) - 1, best=best, best_epoch=best_epoch,
                     history=history, kind=name, model_name=settings.model, config=run.config,
                     objective=dataclasses.asdict(objective), metric_name=objective.metric_name,
                     world_size=rt.dist.world, provenance=rt.provenance())
        save_checkpoint(state, run.path(name, "best"))
        save_checkpoint(state, run.path(name, "last"))
        write_log(history, run.checkpoint_dir / f"{name}_log.csv")
        writer = tensorboard_writer(run, name, 0, True)
        for row in history:  # boosting rounds as epochs
            log_epoch(writer, row)
        if writer is not None:
            writer.close()
    return dict(kind=name, best=best, best_epoch=best_epoch, epochs_run=len(history), metric_name=objective.metric_name)


class FoldEnsemble(torch.nn.Module):
    """The fold models of one kind as one model: the mean of their raw outputs (logits, log-energy, direction
    vectors, box coordinates: each objective's own output space), each member fed the inputs its own objective
    builds (``EnsembleObjective``)."""

    def __init__(self, members: list[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, inputs: tuple):
        return sum(m(x) for m, x in zip(self.members, inputs)) / len(self.members)


class EnsembleObjective:
    """The objectives of a ``FoldEnsemble``'s members: batches are built by each (their standardisations differ
    by fold; once where all are equal); everything else (``predict``, ``metric``, class names...) is the first
    member's, which the members share."""

    def __init__(self, members: list):
        self.members = members
        self.same = all(m == members[0] for m in members)

    def __getattr__(self, name):
        members = self.__dict__.get("members")  # absent while unpickling (a loader worker)
        if not members:
            raise AttributeError(name)
        return getattr(members[0], name)

    def inputs(self, data, idx, rt, draws=None) -> tuple:
        if self.same:
            return (self.members[0].inputs(data, idx, rt, draws),) * len(self.members)
        return tuple(m.inputs(data, idx, rt, draws) for m in self.members)

    def test_views(self, inputs: tuple) -> list:
        """The members' test-time views, view by view (one view each without ``test_views``)."""
        views = [m.test_views(x) if hasattr(m, "test_views") else [x] for m, x in zip(self.members, inputs)]
        return [tuple(v) for v in zip(*views)]


def with_fields(objective, **changes):
    """``dataclasses.replace`` for an objective, or a fold ensemble's (every member changed alike)."""
    if isinstance(objective, EnsembleObjective):
        return EnsembleObjective([dataclasses.replace(m, **changes) for m in objective.members])
    return dataclasses.replace(objective, **changes)


def load_trained(paths, settings: ModelSettings, compat: dict, objective_class, rt: Runtime):
    """The checkpoint at ``paths`` (one path, or a list: ``RunSettings.members``), checked against the config,
    with the objective it was trained with; several checkpoints (the fold models) load as one
    ``FoldEnsemble`` with its ``EnsembleObjective``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    loaded = [_load_one(Path(p), settings, compat, objective_class, rt) for p in paths]
    if len(loaded) == 1:
        return loaded[0]
    return FoldEnsemble([m for m, _ in loaded]).eval(), EnsembleObjective([o for _, o in loaded])


def _load_one(path: Path, settings: ModelSettings, compat: dict, objective_class, rt: Runtime):
    state = load_checkpoint(path)
    check_compatible(state, path, settings.model, compat)
    try:
        objective = objective_class(**state["objective"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: written by another version of idao (no usable objective: {e}); "
                              "retrain with this version") from e
    model = build_model(settings.model, pretrained=False, drop_rate=settings.drop_rate,
                        num_outputs=objective.num_outputs, in_chans=getattr(objective, "in_chans", 1))
    load_weights(model, state, path)
    return model.to(rt.device, memory_format=rt.fmt).eval(), objective

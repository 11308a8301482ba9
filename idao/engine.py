"""Training and inference: one loop for every model of every task, read top to bottom.

What a model learns lives in its *head* (``idao/heads.py`` for IDAO,
``idao/damic/head.py`` for DAMIC-M): ``draw`` (per-item random draws),
``inputs`` and ``targets`` (a batch as tensors), ``loss_fn``, ``predict``,
``metric``/``better`` and ``initial_bias``; a head is a dataclass saved in the
checkpoint, so inference rebuilds exactly the preprocessing it was trained
with. ``fit`` trains one model with AdamW and a warm-up + cosine schedule,
keeps ``<name>_last.pt`` and ``<name>_best.pt`` up to date atomically, logs one
CSV row per epoch, stops early on the validation metric, and resumes exactly:
every epoch's shuffling and augmentation come from a generator seeded by
(seed, epoch), and the checkpoint holds everything else.
"""
from __future__ import annotations

import contextlib
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
import torch.distributed
from tqdm import tqdm

from .atomic import write_text
from .checkpoint import check_compatible, load_checkpoint, load_weights, save_checkpoint
from .distributed import DistInfo, all_sum, gather_shards, init_distributed, sync_buffers, unwrap, wrap_model
from .models import build_model


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def memory_format(cfg):
    """channels_last: measured 1.5-1.8x faster training and up to 2x faster inference on CPU (docs/benchmarks.md)."""
    return torch.channels_last if cfg.train.channels_last else torch.contiguous_format


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on CUDA (no scaler needed); a no-op on CPU."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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


@dataclass(frozen=True)
class Runtime:
    """Where and how the tensors run: one place for what every loop needs besides the data."""

    device: torch.device
    amp: bool
    fmt: torch.memory_format
    progress: bool
    dist: DistInfo = DistInfo()


def make_runtime(cfg, dist_info: DistInfo | None = None, device: torch.device | None = None) -> Runtime:
    """The runtime every job uses; also applies ``train.threads`` (torch's CPU threads, 0: its default)."""
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = device or resolve_device(cfg.train.device)
    return Runtime(device, cfg.train.amp and device.type == "cuda", memory_format(cfg), cfg.train.progress,
                   dist_info or DistInfo())


@contextlib.contextmanager
def training_runtime(cfg):
    """A training job's runtime: joins torchrun's process group when launched by it, and leaves it at the end."""
    dist_info, device = init_distributed(resolve_device(cfg.train.device))
    try:
        yield make_runtime(cfg, dist_info, device)
    finally:
        if dist_info.enabled:
            torch.distributed.destroy_process_group()


# Fault injection for the resume tests: IDAO_FAULT_KILL_AT=classifier:5 sends SIGKILL to this
# process right after the classifier's 5th optimizer step.
_KILL_AT = os.environ.get("IDAO_FAULT_KILL_AT", "")


def train_one_epoch(model, head, optimizer, scheduler, data, batch_size: int, rt: Runtime, generator,
                    name: str, step0: int = 0) -> float:
    """One pass over ``data`` in global batches of ``batch_size``; each process takes every world-th item.

    The random draws (order, then the head's per-item augmentation draws) are
    made for the whole global batch on every process, so N processes see
    exactly the batches and augmentations that one process would.
    """
    model.train()
    rank, world = rt.dist.rank, rt.dist.world
    order = torch.randperm(len(data), generator=generator).numpy()
    total, count = 0.0, 0
    batches = range(0, len(order), batch_size)
    for i, start in enumerate(tqdm(batches, desc="train", leave=False, disable=not (rt.progress and rt.dist.main),
                                   mininterval=2)):
        batch = order[start : start + batch_size]
        draws = head.draw(len(batch), generator)
        if len(batch) < world:  # too few for every process: skipped by all alike
            continue
        idx, draws = batch[rank::world], draws[rank::world]
        x = head.inputs(data, idx, rt, draws)
        y = head.targets(data, idx, draws).to(rt.device)
        with autocast(rt.device, rt.amp):
            out = squeeze(model(x).float())
        loss = head.loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item() * len(idx)
        count += len(idx)
        if _KILL_AT == f"{name}:{step0 + i + 1}":
            os.kill(os.getpid(), signal.SIGKILL)
    total, count = all_sum([total, count], rt.device)
    return total / max(count, 1)


def squeeze(out: torch.Tensor) -> torch.Tensor:
    """(B, 1) -> (B,) for single-output models; several outputs stay (B, K)."""
    return out[:, 0] if out.shape[1] == 1 else out


@torch.inference_mode()
def predict_outputs(model, head, data, batch_size: int, rt: Runtime, indices=None) -> np.ndarray:
    """Raw model outputs for items ``indices`` (default: all) of ``data``, batched, in inference mode."""
    model.eval()
    indices = np.arange(len(data)) if indices is None else np.asarray(indices)
    outs = []
    for start in tqdm(range(0, len(indices), batch_size), desc="predict", leave=False,
                      disable=not (rt.progress and rt.dist.main), mininterval=2):
        x = head.inputs(data, indices[start : start + batch_size], rt)
        with autocast(rt.device, rt.amp):
            outs.append(squeeze(model(x).float()).cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0,) + (() if head.num_outputs == 1 else (head.num_outputs,)),
                                                       np.float32)


def evaluate(model, head, data, rt: Runtime) -> float:
    """Validation metric; with several processes each predicts every world-th item, then all gather."""
    raw = unwrap(model)
    sync_buffers(raw)
    out = predict_outputs(raw, head, data, 256, rt, np.arange(len(data))[rt.dist.rank :: rt.dist.world])
    out = np.asarray(gather_shards(out, len(data)), dtype=np.float32)
    return head.metric(head.predict(out), data)


def checkpoint_path(cfg, kind: str, which: str) -> Path:
    return Path(cfg.train.checkpoint_dir) / f"{kind}_{which}.pt"


def write_log(history: list[dict], path: Path) -> None:
    """One CSV row per epoch, rewritten whole so a resumed run's log has no gaps or repeats."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(path, buf.getvalue())


def fit(name: str, model_cfg, head, train_set, val_set, rt: Runtime, cfg, compat: dict) -> dict:
    """Train model ``name`` (checkpoint prefix) with ``head``; return its best checkpoint's summary.

    ``model_cfg`` holds the model and optimisation settings (model, lr, epochs, ...);
    ``compat`` the settings a checkpoint must match to be resumed. Only the main
    process prints and saves.
    """
    seed, main = cfg.train.seed, rt.dist.main
    log = print if main else (lambda *a, **k: None)
    last_path, best_path = checkpoint_path(cfg, name, "last"), checkpoint_path(cfg, name, "best")
    log_path = Path(cfg.train.checkpoint_dir) / f"{name}_log.csv"
    state = None
    if cfg.train.resume and last_path.exists():
        state = load_checkpoint(last_path)
        check_compatible(state, last_path, model_cfg.model, compat)

    torch.manual_seed(seed)
    model = build_model(model_cfg.model, model_cfg.pretrained, model_cfg.drop_rate, head.num_outputs)
    if state:
        load_weights(model, state, last_path)
    else:
        init_output_layer(model, head.initial_bias(train_set))
    model.to(rt.device, memory_format=rt.fmt)  # before the optimizer, so resumed optimizer state lands there too
    optimizer = torch.optim.AdamW(model.parameters(), lr=model_cfg.lr, weight_decay=model_cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / model_cfg.batch_size)
    schedule = warmup_cosine(model_cfg.epochs * steps_per_epoch, model_cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start_epoch, best, best_epoch, history = 0, None, -1, []
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, best_epoch, history = state["epoch"] + 1, state["best"], state["best_epoch"], state["history"]
        log(f"{name}: resuming from {last_path} at epoch {start_epoch}")
    model = wrap_model(model, rt.device)

    for epoch in range(start_epoch, model_cfg.epochs):
        if model_cfg.patience and epoch - best_epoch > model_cfg.patience:
            log(f"{name}: early stop, no better validation metric for {model_cfg.patience} epochs")
            break
        t0 = time.time()
        torch.manual_seed(seed * 1_000_003 + epoch)  # dropout and any other global draws
        loss = train_one_epoch(model, head, optimizer, scheduler, train_set, model_cfg.batch_size, rt,
                               epoch_generator(seed, epoch), name, epoch * steps_per_epoch)
        metric = evaluate(model, head, val_set, rt)
        improved = head.better(metric, best)
        if improved:
            best, best_epoch = metric, epoch
        seconds = time.time() - t0
        history.append(dict(epoch=epoch, train_loss=round(loss, 6), val_metric=round(metric, 6),
                            lr=optimizer.param_groups[0]["lr"], seconds=round(seconds, 2)))
        log(f"{name} epoch {epoch + 1}/{model_cfg.epochs}: loss {loss:.4f}  val {head.metric_name} {metric:.4f}"
            f"{'  *best*' if improved else ''}  ({seconds:.1f}s, {len(train_set) / seconds:.0f} img/s)")
        if main:
            state = dict(model=unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                         scheduler=scheduler.state_dict(), epoch=epoch, best=best, best_epoch=best_epoch,
                         history=history, kind=name, model_name=model_cfg.model, config=cfg.as_dict(),
                         head=dataclasses.asdict(head), world_size=rt.dist.world)
            if improved:
                save_checkpoint(state, best_path)
            save_checkpoint(state, last_path)
            write_log(history, log_path)
    return dict(kind=name, best=best, best_epoch=best_epoch, epochs_run=len(history))


def load_trained(name: str, cfg, model_cfg, compat: dict, head_class, rt: Runtime):
    """The best checkpoint of ``name``, checked against the config, with the head it was trained with."""
    path = checkpoint_path(cfg, name, "best")
    state = load_checkpoint(path)
    check_compatible(state, path, model_cfg.model, compat)
    head = head_class(**state["head"])
    model = build_model(model_cfg.model, pretrained=False, drop_rate=model_cfg.drop_rate, num_outputs=head.num_outputs)
    load_weights(model, state, path)
    return model.to(rt.device, memory_format=rt.fmt).eval(), head

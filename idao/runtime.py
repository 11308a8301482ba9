"""Where and how the tensors run: device, autocast, memory format, progress bars, process group.

Every job builds one ``Runtime`` from the ``[train]`` section and hands it to
the engine and the task's objective; it is the one source of truth for the
device and for this process's rank.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed

from . import __version__
from .distributed import DistInfo, init_distributed


@functools.cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@functools.cache
def _cpu_model() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def _cpu() -> str:
    """The CPU model, its vector extension as torch uses it and torch's threads (now: ``train.threads`` may have
    changed them): floating-point results, and so trained weights, differ between CPUs (AVX-512 vs AMX kernels)
    by a few events' worth of score."""
    return f"{_cpu_model()}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool, cpu_bf16: bool = False):
    """bf16 autocast on CUDA (no scaler needed); on CPU only where ``cpu_bf16`` asks for it (inference on a CPU
    that computes bf16 natively, see ``native_bf16``)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cpu_bf16 and device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX-512 BF16): there bf16 inference of the CYGNO
    classifier runs 2.1-2.5x faster than fp32 (2 cores, batches of 256)."""
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@dataclass(frozen=True)
class Runtime:
    """What every loop needs besides the data and the model."""

    device: torch.device
    amp: bool
    fmt: torch.memory_format
    progress: bool
    batch_size: int = 256  # inference batches (train.predict_batch_size)
    dist: DistInfo = DistInfo()
    loader_workers: int = 0  # processes building input batches (train.loader_workers)
    cpu_bf16: bool = False  # bf16 autocast for inference on CPU (a task sets it where measured harmless)

    def provenance(self) -> dict:
        """What produced an output: versions, git commit (when run from a checkout), date, device, CPU, processes."""
        return dict(idao=__version__, torch=str(torch.__version__), python=platform.python_version(),
                    git_commit=_git_commit(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    device=str(self.device), cpu=_cpu(), world_size=self.dist.world)

    @property
    def show_progress(self) -> bool:
        """tqdm bars only on the main process, only when asked for and only on a terminal (never in log files)."""
        return self.progress and self.dist.main and sys.stderr.isatty()


def make_runtime(train_cfg, dist_info: DistInfo | None = None, device: torch.device | None = None) -> Runtime:
    """The runtime of a job from the ``[train]`` section; applies ``threads`` (torch's CPU threads, 0: default).

    channels_last was measured 1.5-1.8x faster for training and up to 2x for inference on CPU.
    """
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    device = device or resolve_device(train_cfg.device)
    fmt = torch.channels_last if train_cfg.channels_last else torch.contiguous_format
    return Runtime(device, train_cfg.amp and device.type == "cuda", fmt, train_cfg.progress, train_cfg.predict_batch_size,
                   dist_info or DistInfo(), train_cfg.loader_workers)


@contextlib.contextmanager
def training_runtime(train_cfg):
    """A training job's runtime: joins torchrun's process group when launched by it, and leaves it at the end
    (unless an outer one, such as the fold loop's, joined it: a group is set up once per process)."""
    joined = torch.distributed.is_available() and torch.distributed.is_initialized()
    dist_info, device = init_distributed(resolve_device(train_cfg.device))
    try:
        yield make_runtime(train_cfg, dist_info, device)
    finally:
        if dist_info.enabled and not joined:
            torch.distributed.destroy_process_group()

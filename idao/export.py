"""``idao-export``: a task's trained models as ONNX, for the experiments' own software (ONNX Runtime, C++ chains).

Each task hands over its models with one batch of real inputs (``task.export_models``); the network becomes
``<export.dir>/<task>/<model>.onnx`` with a dynamic batch axis (and IceCube's pulse axis), checked on that
batch with ONNX Runtime against PyTorch before anything is written. Beside it, ``<model>.json`` holds what is
not tensor maths (the objective: crop, bin, window, standardisation, classes..., and the task's data
settings) and ``<model>_model_card.md`` says what the model was trained on and how well it did.
"""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import torch

from .atomic import write_bytes
from .cards import model_card
from .checkpoint import load_checkpoint
from .errors import DataError
from .runtime import make_runtime
from .splits import fold_index

TOLERANCE = 1e-4  # max abs difference between ONNX Runtime's and PyTorch's raw outputs


@dataclasses.dataclass
class Exportable:
    """What a task's ``export_models`` hands over for one model."""

    model: torch.nn.Module
    objective: object  # a dataclass: its fields (crop, bin, window, standardisation...) go into the JSON
    example: object  # one batch of real inputs, as the model takes them
    checkpoint: Path  # the checkpoint it was loaded from (its config and history make the model card)
    extra: dict = dataclasses.field(default_factory=dict)  # more preprocessing (CYGNO's light decode)


class Positional(torch.nn.Module):
    """A model whose input is a dict (padded pulses and their mask) or a tuple (an image and its features), called
    with those tensors one by one: ONNX graphs take named tensors."""

    def __init__(self, model: torch.nn.Module, keys: list[str] | None):
        super().__init__()
        self.model, self.keys = model, keys

    def forward(self, *tensors):
        return self.model(dict(zip(self.keys, tensors)) if self.keys else tuple(tensors))


def flat(example) -> tuple[list[str], tuple]:
    """Input names and tensors of a model input: a tensor, a dict or a tuple of them."""
    if isinstance(example, dict):
        return list(example), tuple(example.values())
    if isinstance(example, (tuple, list)):
        return [f"input{i}" for i in range(len(example))], tuple(example)
    return ["input"], (example,)


def resized(example, items: tuple[str, ...]):
    """The first 3 items of ``example`` and, of the inputs named in ``items``, the first half of axis 1: an
    export must hold on other sizes than the one it was traced on."""
    if isinstance(example, dict):
        return {k: v[:3, :max(1, v.shape[1] // 2)] if k in items else v[:3] for k, v in example.items()}
    return tuple(t[:3] for t in example) if isinstance(example, (tuple, list)) else example[:3]


def export_graph(model: torch.nn.Module, names: list[str], tensors: tuple, items: tuple[str, ...],
                 dynamo: bool) -> bytes:
    """ONNX bytes of ``model`` traced on ``tensors``: axis 0 the batch, axis 1 of the inputs in ``items`` free."""
    axes = {n: {0: "batch", **({1: "items"} if n in items else {})} for n in names}
    buffer = io.BytesIO()
    if not dynamo:
        torch.onnx.export(model, tensors, buffer, input_names=names, output_names=["output"],
                          dynamic_axes={**axes, "output": {0: "batch"}}, dynamo=False)
        return buffer.getvalue()
    dims = {"batch": torch.export.Dim("batch"), "items": torch.export.Dim("items")}
    shapes = tuple({axis: dims[dim] for axis, dim in axes[n].items()} for n in names)
    program = torch.onnx.export(model, tensors, input_names=names, output_names=["output"], verbose=False,
                                dynamic_shapes=(shapes,) if isinstance(model, Positional) else shapes,
                                dynamo=True)  # Positional's *tensors is one argument of the signature
    program.save(buffer)
    return buffer.getvalue()


def to_onnx(model: torch.nn.Module, example, items: tuple[str, ...] = ()) -> tuple[bytes, list[str], float]:
    """The ONNX bytes of ``model``, its input names, and the largest difference from PyTorch that ONNX Runtime
    shows on ``example`` and on a resized copy. The TorchScript exporter first; the dynamo one where it lacks an
    operator (the DAMIC CNN's 2x2 -> 4x4 pool) or bakes a size into the graph (the pulse transformer's
    attention), which the resized copy reveals."""
    model = model.cpu().eval().to(memory_format=torch.contiguous_format)
    names, tensors = flat(example)
    tensors = tuple(t.cpu().contiguous() for t in tensors)
    if not isinstance(example, torch.Tensor):
        model = Positional(model, names if isinstance(example, dict) else None).eval()
    failures = []
    for dynamo in (False, True):
        try:
            onnx = export_graph(model, names, tensors, items, dynamo)
        except (torch.onnx.errors.UnsupportedOperatorError, torch.onnx.errors.SymbolicValueError,
                torch.onnx.OnnxExporterError) as e:
            failures.append(f"{'dynamo' if dynamo else 'TorchScript'} exporter: {str(e).splitlines()[0]}")
            continue
        difference = max(check_with_onnxruntime(onnx, names, model, x) for x in (tensors, resized(example, items)))
        if difference <= TOLERANCE:  # NaN is not: check_with_onnxruntime gives inf for it
            return onnx, names, difference
        failures.append(f"{'dynamo' if dynamo else 'TorchScript'} exporter: ONNX Runtime differs from PyTorch "
                        f"by {difference:.3g} (> {TOLERANCE})")
    raise DataError("not exported: " + "; ".join(failures))


def check_with_onnxruntime(onnx: bytes, names: list[str], model: torch.nn.Module, example) -> float:
    """Max abs difference between ONNX Runtime's outputs and PyTorch's on ``example`` (inf where ONNX Runtime
    cannot run it: a size fixed in the graph)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    tensors = flat(example)[1]
    with torch.inference_mode():
        expected = model(*tensors).float().numpy()
    try:
        got = session.run(None, {n: t.numpy() for n, t in zip(names, tensors)})[0]
    except Exception:  # onnxruntime's own error types: the graph does not hold at this size
        return float("inf")
    if got.shape != expected.shape or not np.isfinite(got).all() or not np.isfinite(expected).all():
        return float("inf")
    return float(np.abs(got - expected).max())


def jsonable(value):
    """Arrays and tensors as lists (the statistics a user applies), anything else as its text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def export(task, cfg) -> list[Path]:
    """Every model ``task.export_models`` hands over, as ``.onnx`` + ``.json`` + ``<model>_model_card.md`` in
    ``<export.dir>/<task>/`` (``fold<k>/`` for ``train.fold = k``). All are exported and checked before any
    file is written: a failing model leaves the folder as it was."""
    rt = dataclasses.replace(make_runtime(cfg.train), device=torch.device("cpu"))
    folder, fold = Path(cfg.export.dir) / task.name, fold_index(cfg.train)
    if fold is not None:
        folder = folder / f"fold{fold}"
    files, lines = {}, []
    for name, item in task.export_models(cfg, rt).items():
        try:
            onnx, names, difference = to_onnx(item.model, item.example, getattr(item.objective, "item_inputs", ()))
        except DataError as e:
            raise DataError(f"{name}: {e}") from None
        preprocessing = dict(inputs=names, objective=dataclasses.asdict(item.objective), **item.extra,
                             task_settings=cfg.as_dict()[task.name],
                             output="raw; the objective's predict() turns it into the prediction")
        text = json.dumps(preprocessing, indent=1, default=jsonable)
        card = model_card(task.name, name, load_checkpoint(item.checkpoint), {
            "Preprocessing": [f"`{name}.json`:", "", "```json", text, "```"],
            "Checks": [f"ONNX Runtime matches PyTorch to {difference:.2e} (max abs) on a batch of validation inputs "
                       "and on a resized copy"]})
        files.update({f"{name}.onnx": onnx, f"{name}.json": text, f"{name}_model_card.md": card})
        lines.append(f"exported {name}: {folder / (name + '.onnx')} (ONNX Runtime within {difference:.1e} of PyTorch)")
    for file, content in files.items():  # each atomically
        write_bytes(folder / file, content if isinstance(content, bytes) else content.encode())
    print("\n".join(lines))
    return [folder / f for f in files if f.endswith(".onnx")]

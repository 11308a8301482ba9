"""Model registry: a task registers its own small networks by name; any other name is a timm model.

Every model takes single-channel images (or whatever its objective's
``inputs`` returns) and has ``num_outputs`` outputs and ``get_classifier()``
(the last layer, which the engine starts at a constant output).
"""
from __future__ import annotations

from typing import Callable

import timm
import torch

from .errors import ConfigError

# name -> factory(num_outputs, drop_rate) for networks timm does not name; filled by the tasks
_REGISTRY: dict[str, Callable[..., torch.nn.Module]] = {}


def register_model(name: str):
    """Decorator: ``@register_model("track_cnn")`` over a ``factory(num_outputs, drop_rate)``."""

    def add(factory):
        _REGISTRY[name] = factory
        return factory

    return add


def check_model_name(name: str) -> None:
    """Fail before any work when ``name`` is neither registered nor a timm model."""
    if name not in _REGISTRY and name not in timm.list_models():
        raise ConfigError(f"unknown model {name!r}: use one of {sorted(_REGISTRY)} or a timm model name "
                          "(timm.list_models())")


def check_model(section, key: str) -> None:
    """A model section's ``model`` and ``pretrained``, checked before any work: a registered network has no
    pretrained weights, and a timm model must have some for ``pretrained = true``."""
    check_model_name(section.model)
    if not section.pretrained:
        return
    if section.model in _REGISTRY:
        raise ConfigError(f"{key}.pretrained = true: {section.model} is idao's own network and has no pretrained "
                          f"weights; set {key}.pretrained = false or choose a timm model")
    if not timm.is_model_pretrained(section.model):
        raise ConfigError(f"{key}.pretrained = true: timm has no pretrained weights for {section.model}")


def build_model(name: str, pretrained: bool = False, drop_rate: float = 0.0, num_outputs: int = 1,
                in_chans: int = 1) -> torch.nn.Module:
    """A registered model (it knows its own input), or a timm model of ``in_chans`` image channels with
    ``num_outputs`` outputs."""
    check_model_name(name)
    if name in _REGISTRY:
        if pretrained:
            raise ConfigError(f"{name} has no pretrained weights; set pretrained = false")
        return _REGISTRY[name](num_outputs, drop_rate)
    return timm.create_model(name, pretrained=pretrained, in_chans=in_chans, num_classes=num_outputs,
                             drop_rate=drop_rate)

"""Model construction: every model is a timm model with one input channel and one output.

``densenet_tiny`` is a small member of the DenseNet family (timm's DenseNet
class with fewer, narrower blocks) for CPU training; any name from
``timm.list_models()`` works too. On a GPU use densenet121/201 and mobilenetv2_100.
"""
from __future__ import annotations

import timm
import torch
from timm.models.densenet import DenseNet

from .errors import ConfigError

# Small DenseNets that timm does not name; built from timm's own DenseNet class.
SMALL_DENSENETS = {"densenet_tiny": dict(growth_rate=16, block_config=(4, 8, 8))}


def build_model(name: str, pretrained: bool = False, drop_rate: float = 0.0, num_outputs: int = 1) -> torch.nn.Module:
    """A single-channel timm model with ``num_outputs`` outputs (IDAO: one logit or one energy)."""
    if name in SMALL_DENSENETS:
        if pretrained:
            raise ConfigError(f"{name} has no pretrained weights; set pretrained = false")
        return DenseNet(**SMALL_DENSENETS[name], in_chans=1, num_classes=num_outputs, drop_rate=drop_rate)
    if name not in timm.list_models():
        raise ConfigError(f"unknown model {name!r}: use one of {sorted(SMALL_DENSENETS)} or a timm model name")
    return timm.create_model(name, pretrained=pretrained, in_chans=1, num_classes=num_outputs,
                             drop_rate=drop_rate)

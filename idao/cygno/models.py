"""CYGNO's small CPU models: ``densenet_tiny``, a DenseNet-family classifier built from timm's own class.

On a GPU use timm's full models instead (``densenet121`` / ``densenet201``, ``mobilenetv2_100``).
"""
from __future__ import annotations

from timm.models.densenet import DenseNet

from ..models import register_model


@register_model("densenet_tiny")
def densenet_tiny(num_outputs: int, drop_rate: float = 0.0) -> DenseNet:
    """Growth 16, blocks 4-8-8: small enough to train on 2 CPU cores within the 5-minute main job."""
    return DenseNet(growth_rate=16, block_config=(4, 8, 8), in_chans=1, num_classes=num_outputs, drop_rate=drop_rate)

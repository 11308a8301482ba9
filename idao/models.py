"""Model construction: single-channel models with as many outputs as the head needs.

``densenet_tiny`` is a small member of the DenseNet family (timm's DenseNet
class with fewer, narrower blocks) for CPU training; ``track_cnn`` is the
DAMIC-M thesis' small CNN; any name from ``timm.list_models()`` works too. On a GPU use densenet121/201 and mobilenetv2_100.
"""
from __future__ import annotations

import timm
import torch
from timm.models.densenet import DenseNet

from .errors import ConfigError

class TrackCNN(torch.nn.Module):
    """The DAMIC-M thesis' layout: 5 x (conv 3x3 + max-pool 2) with 32-32-64-64-128 filters, dropout, dense.

    BatchNorm is added (it trains faster and steadier from scratch), and an
    adaptive 4x4 pool before the dense layers keeps coarse position (for the
    box head) while accepting any window size.
    """

    def __init__(self, num_outputs: int, drop_rate: float = 0.0, widths=(32, 32, 64, 64, 128)):
        super().__init__()
        layers, prev = [], 1
        for width in widths:
            layers += [torch.nn.Conv2d(prev, width, 3, padding=1, bias=False), torch.nn.BatchNorm2d(width),
                       torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2, ceil_mode=True)]
            prev = width
        self.features = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
        self.hidden = torch.nn.Sequential(torch.nn.Dropout(drop_rate), torch.nn.Linear(prev * 16, 128),
                                          torch.nn.ReLU(inplace=True), torch.nn.Dropout(drop_rate))
        self.fc = torch.nn.Linear(128, num_outputs)

    def get_classifier(self) -> torch.nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.features(x)))


# Small DenseNets that timm does not name; built from timm's own DenseNet class.
SMALL_DENSENETS = {"densenet_tiny": dict(growth_rate=16, block_config=(4, 8, 8))}


def build_model(name: str, pretrained: bool = False, drop_rate: float = 0.0, num_outputs: int = 1) -> torch.nn.Module:
    """A single-channel timm model with ``num_outputs`` outputs (IDAO: one logit or one energy)."""
    if name == "track_cnn":
        if pretrained:
            raise ConfigError(f"{name} has no pretrained weights; set pretrained = false")
        return TrackCNN(num_outputs, drop_rate)
    if name in SMALL_DENSENETS:
        if pretrained:
            raise ConfigError(f"{name} has no pretrained weights; set pretrained = false")
        return DenseNet(**SMALL_DENSENETS[name], in_chans=1, num_classes=num_outputs, drop_rate=drop_rate)
    if name not in timm.list_models():
        raise ConfigError(f"unknown model {name!r}: use track_cnn, one of {sorted(SMALL_DENSENETS)} or a timm model name")
    return timm.create_model(name, pretrained=pretrained, in_chans=1, num_classes=num_outputs,
                             drop_rate=drop_rate)

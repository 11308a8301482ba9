"""Calorimeter image models (2 channels: energy, time): the organisers' example CNN and a ResNet-15.

Any timm model name works too (built with ``in_chans = 2``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..models import register_model

CHANNELS = 2


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout))


class ExampleCNN(nn.Module):
    """The ML4SCI example for 32x32 crops: Conv16-Conv16-MaxPool-Conv32-Conv32-MaxPool-Dense256-Dense128,
    dropout 0.2 (``drop_rate`` replaces it when set), one logit."""

    def __init__(self, num_outputs: int, drop_rate: float = 0.2):
        super().__init__()
        drop = drop_rate or 0.2
        layers, prev = [], CHANNELS
        for width in (16, 16, "pool", 32, 32, "pool"):
            if width == "pool":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(prev, width, 3, padding=1), nn.ReLU(inplace=True)]
                prev = width
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.hidden = nn.Sequential(nn.Dropout(drop), nn.Linear(32 * 8 * 8, 256), nn.ReLU(inplace=True), nn.Dropout(drop),
                                    nn.Linear(256, 128), nn.ReLU(inplace=True), nn.Dropout(drop))
        self.fc = nn.Linear(128, num_outputs)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(self.features(x)))


class Block(nn.Module):
    """Two 3x3 convolutions with a shortcut (a 1x1 projection where the size changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, stride), nn.ReLU(inplace=True), conv_bn(cout, cout))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet15(nn.Module):
    """ResNet-15 as used on these crops (end-to-end e/gamma papers): a stem convolution and 7 residual blocks
    of two 3x3 convolutions (16, 16, 16 | 32, 32 | 64, 64 channels, halving the size at each stage),
    global average pooling, one logit: 15 weighted layers before the output."""

    def __init__(self, num_outputs: int, drop_rate: float = 0.0, widths=(16, 16, 16, 32, 32, 64, 64)):
        super().__init__()
        blocks, prev = [], widths[0]
        for width in widths:
            blocks.append(Block(prev, width, 2 if width != prev else 1))
            prev = width
        self.features = nn.Sequential(conv_bn(CHANNELS, widths[0]), nn.ReLU(inplace=True), *blocks,
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(drop_rate))
        self.fc = nn.Linear(prev, num_outputs)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


register_model("egamma_cnn")(ExampleCNN)
register_model("resnet15")(ResNet15)

"""DAMIC-M's model: the thesis' small track CNN."""
from __future__ import annotations

import torch

from ..models import register_model


class TrackCNN(torch.nn.Module):
    """The DAMIC-M thesis' layout: 5 x (conv 3x3 + max-pool 2) with 32-32-64-64-128 filters, dropout, dense.

    BatchNorm is added (it trains faster and steadier from scratch), and an
    adaptive 4x4 pool before the dense layers keeps coarse position (for the
    box outputs) while accepting any window size.
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


register_model("track_cnn")(TrackCNN)

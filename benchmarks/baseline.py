"""The organisers' IDAO 2021 baseline recipe, re-implemented from its description.

One conv layer (1->16, kernel 5) + BatchNorm + ReLU + MaxPool(19, stride 7) on a
120 px centre crop of the raw image, then Linear(3600->500) and Linear(500->1);
Adam 1e-3, batch size 1, 2 epochs; BCE for the classifier, MSE on keV for the
regressor, trained as two separate networks. Input is the raw 8-bit crop / 255.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

CROP = 120


class BaselineNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
                                      nn.MaxPool2d(19, stride=7))  # 120 -> 15: 16 x 15 x 15 = 3600
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3600, 500), nn.Linear(500, 1))

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)


def _inputs(crops: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(crops, dtype=np.float32) / 255.0).unsqueeze(1)


def train_baseline(crops: np.ndarray, target: np.ndarray, loss: str, seed: int = 0, epochs: int = 2) -> BaselineNet:
    torch.manual_seed(seed)
    model = BaselineNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss() if loss == "bce" else nn.MSELoss()
    x, y = _inputs(crops), torch.as_tensor(target, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for i in torch.randperm(len(x), generator=g):
            opt.zero_grad()
            # batch size 1 in train mode: BatchNorm normalises over the 120 x 120 pixels of one image
            loss_fn(model(x[i : i + 1]), y[i : i + 1]).backward()
            opt.step()
    return model.eval()


@torch.inference_mode()
def predict_baseline(model: BaselineNet, crops: np.ndarray, batch: int = 256) -> np.ndarray:
    return torch.cat([model(_inputs(crops[i : i + batch])) for i in range(0, len(crops), batch)]).numpy()

"""DAMIC-M's models: the thesis' small track CNN, the same CNN helped by the track's physics features, a small
network on the features alone, boosted trees on them, and the blend of those two.

``INPUTS`` says what each registered model reads, so the objective feeds it
the image, the features (``features.py``), or both as a tuple; any timm model
reads the image.
"""
from __future__ import annotations

import math

import torch

from ..models import register_model
from ..trees import BoostedTrees
from .features import NAMES as FEATURE_NAMES

INPUTS = {"track_cnn": "image", "track_hybrid": "image+features", "track_features": "features",
          "track_trees": "features+box", "track_blend": "features"}
BOX_OUTPUTS = 4  # after the class logits: the box (encoded as damic.model.box_target says)
TREES = "track_trees"  # fitted by boosting (trees.py), not by the training loop
BLEND = "track_blend"  # its network trained by the loop, then its trees boosted


def model_inputs(name: str) -> str:
    return INPUTS.get(name, "image")


FEATURE_WIDTH = 64  # the features' hidden layers


def _feature_mlp(drop_rate: float) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(len(FEATURE_NAMES), FEATURE_WIDTH), torch.nn.ReLU(inplace=True),
                               torch.nn.Dropout(drop_rate), torch.nn.Linear(FEATURE_WIDTH, FEATURE_WIDTH),
                               torch.nn.ReLU(inplace=True))


class TrackCNN(torch.nn.Module):
    """The DAMIC-M thesis' layout: 5 x (conv 3x3 + max-pool 2) with 32-32-64-64-128 filters, dropout, dense.

    BatchNorm is added (it trains faster and steadier from scratch), and an
    adaptive 4x4 pool before the dense layers keeps coarse position (for the
    box outputs) while accepting any window size. With ``features`` the
    track's physics features pass through a small MLP whose output joins the
    CNN's before the last layer (input: an (image, features) tuple).
    """

    def __init__(self, num_outputs: int, drop_rate: float = 0.0, widths=(32, 32, 64, 64, 128),
                 features: bool = False):
        super().__init__()
        layers, prev = [], 1
        for width in widths:
            layers += [torch.nn.Conv2d(prev, width, 3, padding=1, bias=False), torch.nn.BatchNorm2d(width),
                       torch.nn.ReLU(inplace=True), torch.nn.MaxPool2d(2, ceil_mode=True)]
            prev = width
        self.features = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
        self.hidden = torch.nn.Sequential(torch.nn.Dropout(drop_rate), torch.nn.Linear(prev * 16, 128),
                                          torch.nn.ReLU(inplace=True), torch.nn.Dropout(drop_rate))
        self.physics = _feature_mlp(drop_rate) if features else None
        self.fc = torch.nn.Linear(128 + (FEATURE_WIDTH if features else 0), num_outputs)

    def get_classifier(self) -> torch.nn.Module:
        return self.fc

    def forward(self, x) -> torch.Tensor:
        if self.physics is None:
            return self.fc(self.hidden(self.features(x)))
        image, physics = x
        return self.fc(torch.cat([self.hidden(self.features(image)), self.physics(physics)], dim=1))


class FeatureMLP(torch.nn.Module):
    """The physics features alone: fast (seconds per epoch), no image."""

    def __init__(self, num_outputs: int, drop_rate: float = 0.0):
        super().__init__()
        self.body = _feature_mlp(drop_rate)
        self.fc = torch.nn.Linear(FEATURE_WIDTH, num_outputs)

    def get_classifier(self) -> torch.nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


register_model("track_cnn")(TrackCNN)
register_model("track_hybrid")(lambda num_outputs, drop_rate: TrackCNN(num_outputs, drop_rate, features=True))
register_model("track_features")(FeatureMLP)


class TrackTrees(BoostedTrees):
    """Boosted trees on the physics features (the best AUC on eVSmu_tr1, docs/studies/damic.md); its box is the
    track finder's own (the centred crop the features were measured on), passed in beside the features."""

    def __init__(self, num_outputs: int, drop_rate: float = 0.0):
        super().__init__(num_outputs - BOX_OUTPUTS)

    def forward(self, x) -> torch.Tensor:
        features, box = x
        return torch.cat([super().forward(features), box.float()], dim=1)


register_model(TREES)(TrackTrees)


class TrackBlend(torch.nn.Module):
    """``track_features`` and ``track_trees`` together: the mean of their class probabilities (as logits), the
    network's box. The trees rank electrons and muons better, the network is better calibrated (docs/studies/damic.md);
    their average does better than either. Both parts are ordinary state-dict entries of one checkpoint."""

    def __init__(self, num_outputs: int, drop_rate: float = 0.0):
        super().__init__()
        self.network = FeatureMLP(num_outputs, drop_rate)
        self.trees = BoostedTrees(num_outputs - BOX_OUTPUTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        n = self.trees.num_classes
        log_probs = torch.stack([out[:, :n].log_softmax(1), self.trees(x).log_softmax(1)])
        return torch.cat([torch.logsumexp(log_probs, 0) - math.log(2), out[:, n:]], dim=1)


register_model(BLEND)(TrackBlend)

"""The direction network: self-attention over an event's pulses (a transformer encoder), pooled to one vector.

Every pulse attends to every other (positions, times, charges), so the model
learns the space-time pattern a line fit summarises in one slope; masked mean
and max pooling make it independent of the number and order of pulses. The
baselines' answers come in beside the pooled pulses (``seed``), and the
output adds a learned, per-event share of each baseline's direction to the
head's own vector: the network can follow them where they are right (tracks)
and overrule them where not (cascades).
"""
from __future__ import annotations

import torch
from torch import nn

from ..models import register_model
from ..trees import BoostedTrees

FEATURES = 6  # per pulse: x, y, z, time, log10 charge, auxiliary
SEED_FEATURES = 8  # per event: the line fit's and 2 dots' directions and lengths (objective.seeds)


class PulseTransformer(nn.Module):
    def __init__(self, num_outputs: int, drop_rate: float = 0.0, width: int = 64, heads: int = 4, layers: int = 3):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(FEATURES, width), nn.GELU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, drop_rate, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.seed = nn.Sequential(nn.Linear(SEED_FEATURES, width), nn.GELU())
        self.head = nn.Sequential(nn.LayerNorm(3 * width), nn.Linear(3 * width, width), nn.GELU())
        self.fc = nn.Linear(width, num_outputs)
        self.gate = nn.Linear(width, 2)  # how far to follow each baseline's direction, per event
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, batch: dict) -> torch.Tensor:
        x, mask = batch["x"], batch["mask"]
        h = self.encoder(self.embed(x), src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        top = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        seed = batch["seed"]
        h = self.head(torch.cat([mean, top, self.seed(seed)], dim=1))
        gate = self.gate(h)  # the output is the head's own vector plus a learned share of each baseline's
        return self.fc(h) + gate[:, :1] * seed[:, 0:3] + gate[:, 1:] * seed[:, 4:7]


register_model("pulse_transformer")(PulseTransformer)


# the event classifier (classes.py): boosted trees fitted by scikit-learn, kept as tensors (trees.py)
register_model("event_trees")(lambda num_outputs, drop_rate=0.0: BoostedTrees(num_outputs))

"""The direction network: self-attention over an event's pulses (a transformer encoder), pooled to one vector.

Every pulse attends to every other (positions, times, charges), so the model
learns the space-time pattern a line fit summarises in one slope; masked mean
and max pooling make it independent of the number and order of pulses.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models import register_model

FEATURES = 6  # per pulse: x, y, z, time, log10 charge, auxiliary


class PulseTransformer(nn.Module):
    def __init__(self, num_outputs: int, drop_rate: float = 0.0, width: int = 64, heads: int = 4, layers: int = 3):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(FEATURES, width), nn.GELU(), nn.Linear(width, width))
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, drop_rate, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(2 * width), nn.Linear(2 * width, width), nn.GELU())
        self.fc = nn.Linear(width, num_outputs)

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, batch: dict) -> torch.Tensor:
        x, mask = batch["x"], batch["mask"]
        h = self.encoder(self.embed(x), src_key_padding_mask=~mask)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
        top = h.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1)
        return self.fc(self.head(torch.cat([mean, top], dim=1)))


register_model("pulse_transformer")(PulseTransformer)

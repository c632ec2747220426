# Copyright 2026 The bevformer_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Transformer feed-forward block with residual (mmcv ``FFN``, two layers)."""

from __future__ import annotations

import torch
from torch import nn


class FFN(nn.Module):
    """
    x + Linear(Dropout(ReLU(Linear(x)))).

    Submodule names reproduce mmcv's so official keys load: ``layers.0.0`` (first Linear),
    ``layers.1`` (second Linear).
    """

    def __init__(self, embed_dims: int, feedforward_channels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(
                nn.Linear(embed_dims, feedforward_channels),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ),
            nn.Linear(feedforward_channels, embed_dims),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block: x [..., C] -> [..., C]."""
        return x + self.layers(x)

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

"""Learned BEV positional encoding (mmdet ``LearnedPositionalEncoding``)."""

from __future__ import annotations

import torch
from torch import nn


class LearnedPositionalEncoding(nn.Module):
    """
    One learned vector per BEV column and per BEV row, concatenated (columns first).

    Parameters
    ----------
    num_feats
        channels per axis; the encoding has 2 * num_feats channels.
    row_num_embed, col_num_embed
        table sizes (at least bev_h, bev_w).

    """

    def __init__(self, num_feats: int, row_num_embed: int, col_num_embed: int) -> None:
        super().__init__()
        self.row_embed = nn.Embedding(row_num_embed, num_feats)
        self.col_embed = nn.Embedding(col_num_embed, num_feats)

    def forward(self, bev_h: int, bev_w: int) -> torch.Tensor:
        """-> [bev_h * bev_w, 2 * num_feats], BEV index q = row * bev_w + col."""
        device = self.col_embed.weight.device
        x_embed = self.col_embed(torch.arange(bev_w, device=device))  # [W, F]
        y_embed = self.row_embed(torch.arange(bev_h, device=device))  # [H, F]
        pos = torch.cat(
            (x_embed[None].expand(bev_h, -1, -1), y_embed[:, None].expand(-1, bev_w, -1)), dim=-1
        )  # [H, W, 2F]
        return pos.flatten(0, 1)  # [H*W, 2F]

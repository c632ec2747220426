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

"""BEVFormer temporal self-attention (TSA): deformable attention over [history, current] BEV."""

from __future__ import annotations

from bevformer_ros.model.ms_deform_attn import multi_scale_deformable_attn, offset_normalizer
import torch
from torch import nn


class TemporalSelfAttention(nn.Module):
    """
    Deformable self-attention over the history and the current BEV.

    Each BEV query samples the history BEV and the current BEV around its reference point; the two
    results are averaged.

    Offsets and weights are predicted from ``cat(history, query + bev_pos)``, one set per queue
    entry.
    """

    num_bev_queue = 2  # one history BEV and the current one, as in every official config

    def __init__(
        self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
        self.embed_dims, self.num_heads, self.num_points = embed_dims, num_heads, num_points
        num_bev_queue = self.num_bev_queue
        num_levels = 1  # the BEV is a single level
        self.sampling_offsets = nn.Linear(
            embed_dims * num_bev_queue, num_bev_queue * num_heads * num_levels * num_points * 2
        )
        self.attention_weights = nn.Linear(
            embed_dims * num_bev_queue, num_bev_queue * num_heads * num_levels * num_points
        )
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        bev_pos: torch.Tensor,
        value: torch.Tensor,
        reference_points: torch.Tensor,
        bev_hw: tuple[int, int],
    ) -> torch.Tensor:
        """
        Attend to the BEV queue and add the residual.

        Parameters
        ----------
        query
            [B, HW, C], the layer input (also the residual).
        bev_pos
            [B or 1, HW, C].
        value
            [B, 2, HW, C], the queue (history BEV, current BEV).
        reference_points
            [B, 2, HW, 2], (x, y) in [0, 1] per queue entry.
        bev_hw
            (bev_h, bev_w).

        Returns
        -------
            [B, HW, C].

        """
        B, HW, C = query.shape
        nq, M, P = self.num_bev_queue, self.num_heads, self.num_points
        offset_input = torch.cat([value[:, 0], query + bev_pos], -1)  # [B, HW, 2C]
        v = self.value_proj(value).reshape(B * nq, HW, M, C // M)  # [B*2, HW, M, D]
        offsets = self.sampling_offsets(offset_input).view(B, HW, M, nq, 1, P, 2)
        weights = self.attention_weights(offset_input).view(B, HW, M, nq, P).softmax(-1)
        # queue entry becomes part of the batch: [B, HW, M, 2, ...] -> [B*2, HW, M, 1, P(, 2)]
        offsets = offsets.permute(0, 3, 1, 2, 4, 5, 6).reshape(B * nq, HW, M, 1, P, 2)
        weights = weights.permute(0, 3, 1, 2, 4).reshape(B * nq, HW, M, 1, P)
        bev_h, bev_w = bev_hw
        # offsets are in BEV cells
        normalizer = offset_normalizer(offsets, [(bev_w, bev_h)])[0]  # [2]
        # [B*2, HW, M, 1, P, 2]
        locations = reference_points.reshape(B * nq, HW, 1, 1, 1, 2) + offsets / normalizer
        out = multi_scale_deformable_attn(v, [bev_hw], locations, weights)  # [B*2, HW, C]
        out = out.view(B, nq, HW, C)
        out = (out[:, 0] + out[:, 1]) / nq  # [B, HW, C], average of history and current
        return self.dropout(self.output_proj(out)) + query

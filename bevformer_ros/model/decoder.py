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

"""BEVFormer detection decoder: object queries attend to each other and the BEV; box refinement."""

from __future__ import annotations

from bevformer_ros.model.ffn import FFN
from bevformer_ros.model.ms_deform_attn import multi_scale_deformable_attn, offset_normalizer
import torch
from torch import nn


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """log(x / (1 - x)) with both terms clamped to >= eps (official mmdet formula)."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class MultiheadAttention(nn.Module):
    """
    mmcv ``MultiheadAttention`` wrapper: q = k = x + pos, v = x, residual x.

    Keys as mmcv: ``attn.in_proj_weight``, ``attn.out_proj.weight``...
    """

    def __init__(self, embed_dims: int, num_heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x, pos [B, Q, C] -> [B, Q, C]."""
        q = x + pos
        # need_weights=True takes PyTorch's explicit softmax path, as mmcv's call does; the fused
        # kernel of need_weights=False rounds differently (~4e-6 on the logits of the reference
        # fixture).
        out = self.attn(q, q, x, need_weights=True)[0]
        return x + self.dropout(out)


class CustomMSDeformableAttention(nn.Module):
    """Single-level deformable attention of object queries over the BEV (offsets in BEV cells)."""

    def __init__(
        self, embed_dims: int = 256, num_heads: int = 8, num_points: int = 4, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
        self.num_heads, self.num_points = num_heads, num_points
        num_levels = 1
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        value: torch.Tensor,
        reference_points: torch.Tensor,
        bev_hw: tuple[int, int],
    ) -> torch.Tensor:
        """
        Sample the BEV around each query's reference point.

        Parameters
        ----------
        x
            [B, Q, C] queries (residual)
        pos
            [B, Q, C] query positions.
        value
            [B, HW, C] BEV features.
        reference_points
            [B, Q, 2] (x, y) in [0, 1] of the BEV.
        bev_hw
            (bev_h, bev_w).

        Returns
        -------
            [B, Q, C].

        """
        B, Q, C = x.shape
        M, P = self.num_heads, self.num_points
        query = x + pos
        v = self.value_proj(value).view(B, value.shape[1], M, C // M)  # [B, HW, M, D]
        offsets = self.sampling_offsets(query).view(B, Q, M, 1, P, 2)
        weights = self.attention_weights(query).view(B, Q, M, P).softmax(-1).view(B, Q, M, 1, P)
        bev_h, bev_w = bev_hw
        normalizer = offset_normalizer(offsets, [(bev_w, bev_h)])[0]  # [2]
        # [B, Q, M, 1, P, 2]
        locations = reference_points[:, :, None, None, None, :] + offsets / normalizer
        out = multi_scale_deformable_attn(v, [bev_hw], locations, weights)  # [B, Q, C]
        return self.dropout(self.output_proj(out)) + x


class DetrTransformerDecoderLayer(nn.Module):
    """Post-norm layer: self-attention, norm, BEV cross-attention, norm, FFN, norm."""

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        ffn_dims: int,
        num_points: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(
            [
                MultiheadAttention(embed_dims, num_heads, dropout),
                CustomMSDeformableAttention(embed_dims, num_heads, num_points, dropout),
            ]
        )
        self.ffns = nn.ModuleList([FFN(embed_dims, ffn_dims, dropout)])
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(3)])

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        bev: torch.Tensor,
        reference_points: torch.Tensor,
        bev_hw: tuple[int, int],
    ) -> torch.Tensor:
        """Refine the queries x [B, Q, C] -> [B, Q, C]."""
        x = self.norms[0](self.attentions[0](x, pos))
        x = self.norms[1](self.attentions[1](x, pos, bev, reference_points, bev_hw))
        return self.norms[2](self.ffns[0](x))


class DetectionTransformerDecoder(nn.Module):
    """Decoder layers; with ``reg_branches`` each layer refines the (x, y, z) reference points."""

    def __init__(
        self,
        num_layers: int,
        embed_dims: int,
        num_heads: int,
        ffn_dims: int,
        num_points: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                DetrTransformerDecoderLayer(embed_dims, num_heads, ffn_dims, num_points, dropout)
                for _ in range(num_layers)
            ]
        )

    def forward(
        self,
        query: torch.Tensor,
        query_pos: torch.Tensor,
        bev: torch.Tensor,
        reference_points: torch.Tensor,
        bev_hw: tuple[int, int],
        reg_branches: nn.ModuleList | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Run all layers, refining the reference points after each one.

        Parameters
        ----------
        query, query_pos
            [B, Q, C].
        bev
            [B, HW, C].
        reference_points
            [B, Q, 3], sigmoid space (x, y, z in [0, 1] of pc_range).
        bev_hw
            (bev_h, bev_w).
        reg_branches
            one regression MLP per layer (box refinement) or None.

        Returns
        -------
            states [L, B, Q, C] and references [L, B, Q, 3] (the reference points after each
            layer).

        """
        x = query
        states, references = [], []
        for lid, layer in enumerate(self.layers):
            x = layer(x, query_pos, bev, reference_points[..., :2], bev_hw)
            if reg_branches is not None:
                tmp = reg_branches[lid](x)  # [B, Q, 10]: offsets of (x, y) are [0:2], of z is [4]
                new_ref = torch.cat(
                    [
                        tmp[..., :2] + inverse_sigmoid(reference_points[..., :2]),
                        tmp[..., 4:5] + inverse_sigmoid(reference_points[..., 2:3]),
                    ],
                    -1,
                )
                reference_points = new_ref.sigmoid().detach()
            states.append(x)
            references.append(reference_points)
        return torch.stack(states), torch.stack(references)

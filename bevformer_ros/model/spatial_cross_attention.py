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

"""BEVFormer spatial cross-attention (SCA).

BEV queries sample the camera features around their projected pillar points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from bevformer_ros.model.ms_deform_attn import multi_scale_deformable_attn


class MSDeformableAttention3D(nn.Module):
    """Deformable attention whose sampling points are anchored at a query's Z projected pillar points.

    The P offsets of each head and level are split into P/Z groups of Z: offset ``i * Z + z`` is added to
    pillar point z. There is no output projection (SpatialCrossAttention owns it).
    """

    def __init__(
        self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 8
    ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.num_levels, self.num_points = num_levels, num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)

    def forward(
        self,
        query: torch.Tensor,
        value: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        """Sample each row's camera features around the projected pillar points.

        Args:
            query: [R, Lq, C], one row per (sample, camera).
            value: [R, S, C], that camera's flattened feature levels.
            reference_points: [R, Lq, Z, 2], projected pillar points (u/W, v/H).
            spatial_shapes: (H_l, W_l) per level.

        Returns:
            [R, Lq, C].
        """
        R, Lq, C = query.shape
        M, L, P = self.num_heads, self.num_levels, self.num_points
        Z = reference_points.shape[2]
        v = self.value_proj(value).view(R, value.shape[1], M, C // M)  # [R, S, M, D]
        offsets = self.sampling_offsets(query).view(R, Lq, M, L, P, 2)
        weights = self.attention_weights(query).view(R, Lq, M, L * P).softmax(-1).view(R, Lq, M, L, P)
        normalizer = offsets.new_tensor([[w, h] for h, w in spatial_shapes])  # [L, 2], offsets are in pixels
        offsets = (offsets / normalizer[:, None, :]).view(R, Lq, M, L, P // Z, Z, 2)
        locations = reference_points[:, :, None, None, None] + offsets  # [R, Lq, M, L, P/Z, Z, 2]
        return multi_scale_deformable_attn(v, spatial_shapes, locations.view(R, Lq, M, L, P, 2), weights)


@dataclass(frozen=True)
class VisibleQueries:
    """For each row (sample, camera), the BEV queries that camera sees, padded to the longest row.

    index: [B*N, max_len] flat index into the B*HW queries (ascending within a row; padding repeats
        queries the camera does not see, with ``valid`` False).
    valid: [B*N, max_len] bool.
    reference_points: [B*N, max_len, Z, 2] their projected pillar points (padding at 0, as officially).
    count: [B, HW] number of cameras that see each query, at least 1.
    """

    index: torch.Tensor
    valid: torch.Tensor
    reference_points: torch.Tensor
    count: torch.Tensor


def visible_queries(
    reference_points_cam: torch.Tensor, bev_mask: torch.Tensor, camera_mask: torch.Tensor | None = None
) -> VisibleQueries:
    """Gather layout of SCA (the official per-camera ``nonzero`` rebatching), computed once per frame.

    Args:
        reference_points_cam: [N, B, HW, Z, 2]; bev_mask: [N, B, HW, Z] (from encoder.point_sampling).
        camera_mask: optional [B, N] bool, False for a camera without a usable image (dropout). Such a
            camera sees no query, exactly as if its bev_mask were all False, so it adds nothing and the
            per-query camera count (the normalisation) leaves it out.
    """
    N, B, HW, Z = bev_mask.shape
    device = bev_mask.device
    if camera_mask is not None:
        bev_mask = bev_mask & camera_mask.to(device=device, dtype=torch.bool).t()[:, :, None, None]
    seen = bev_mask.any(-1)  # [N, B, HW]: a query attends if any of its pillar points is visible
    rows = seen.transpose(0, 1).reshape(B * N, HW)  # [B*N, HW]
    counts = rows.sum(-1)  # [B*N]
    max_len = max(int(counts.max()), 1)  # sizes the batch: one host sync per frame
    # stable sort on "not visible": the visible query indices first, ascending, then the others as padding
    order = torch.argsort((~rows).to(torch.uint8), dim=1, stable=True)[:, :max_len]  # [B*N, max_len]
    valid = torch.arange(max_len, device=device) < counts[:, None]  # [B*N, max_len]
    row_offset = torch.arange(B * N, device=device)[:, None] * HW
    ref = reference_points_cam.transpose(0, 1).reshape(B * N * HW, Z, 2)[order + row_offset]
    ref = torch.where(valid[..., None, None], ref, 0.0)  # [B*N, max_len, Z, 2]
    sample_offset = torch.arange(B, device=device).repeat_interleave(N)[:, None] * HW
    count = seen.sum(0).clamp(min=1)  # [B, HW]
    return VisibleQueries(index=order + sample_offset, valid=valid, reference_points=ref, count=count)


class SpatialCrossAttention(nn.Module):
    """BEV queries attend to the features of the cameras that see them.

    Per camera, the BEV queries with at least one visible pillar point attend to that camera's features;
    the results are summed over cameras and divided by the number of cameras that see the query (min 1).

    Like the official code, only the visible queries of each camera are computed: they are gathered into a
    padded batch of rows (sample, camera) (see ``visible_queries``), which saves most of the work since a
    camera sees a fraction of the BEV.
    """

    def __init__(
        self,
        embed_dims: int = 256,
        num_heads: int = 8,
        num_levels: int = 4,
        num_points: int = 8,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.deformable_attention = MSDeformableAttention3D(embed_dims, num_heads, num_levels, num_points)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        value: torch.Tensor,
        visible: VisibleQueries,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        """Attend to the cameras and add the residual.

        Args:
            query: [B, HW, C], the layer input (also the residual).
            value: [B, N, S, C], camera features (+ camera and level embeddings), levels flattened.
            visible: gather layout from ``visible_queries``.
            spatial_shapes: (H_l, W_l) per level.

        Returns:
            [B, HW, C].
        """
        B, HW, C = query.shape
        N = value.shape[1]
        queries = query.reshape(B * HW, C)[visible.index]  # [B*N, max_len, C]
        out = self.deformable_attention(
            queries, value.reshape(B * N, -1, C), visible.reference_points, spatial_shapes
        )  # [B*N, max_len, C]
        out = torch.where(visible.valid[..., None], out, 0.0).view(B, N, -1, C)
        index = visible.index.view(B, N, -1)
        slots = query.new_zeros(B * HW, C)
        # Within one camera the indices are distinct, so index_add_ is deterministic; cameras are summed in
        # order, as officially.
        for cam in range(N):
            slots.index_add_(0, index[:, cam].reshape(-1), out[:, cam].reshape(-1, C))
        slots = slots.view(B, HW, C) / visible.count[..., None].to(query.dtype)
        return self.dropout(self.output_proj(slots)) + query

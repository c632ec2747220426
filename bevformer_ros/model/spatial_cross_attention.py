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

"""
BEVFormer spatial cross-attention (SCA).

BEV queries sample the camera features around their projected pillar points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bevformer_ros.model.ms_deform_attn import multi_scale_deformable_attn, offset_normalizer
import torch
from torch import nn


class MSDeformableAttention3D(nn.Module):
    """
    Deformable attention whose sampling points are anchored at a query's Z projected pillar points.

    The P offsets of each head and level are split into P/Z groups of Z: offset ``i * Z + z`` is
    added to pillar point z. There is no output projection (SpatialCrossAttention owns it).
    """

    def __init__(
        self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4, num_points: int = 8
    ) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(
                f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})'
            )
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
        """
        Sample each row's camera features around the projected pillar points.

        Parameters
        ----------
        query
            [R, Lq, C], one row per (sample, camera).
        value
            [R, S, C], that camera's flattened feature levels.
        reference_points
            [R, Lq, Z, 2], projected pillar points (u/W, v/H).
        spatial_shapes
            (H_l, W_l) per level.

        Returns
        -------
            [R, Lq, C].

        """
        R, Lq, C = query.shape
        M, L, P = self.num_heads, self.num_levels, self.num_points
        Z = reference_points.shape[2]
        v = self.value_proj(value).view(R, value.shape[1], M, C // M)  # [R, S, M, D]
        offsets = self.sampling_offsets(query).view(R, Lq, M, L, P, 2)
        weights = (
            self.attention_weights(query).view(R, Lq, M, L * P).softmax(-1).view(R, Lq, M, L, P)
        )
        # offsets are in pixels
        normalizer = offset_normalizer(offsets, [(w, h) for h, w in spatial_shapes])  # [L, 2]
        offsets = (offsets / normalizer[:, None, :]).view(R, Lq, M, L, P // Z, Z, 2)
        locations = reference_points[:, :, None, None, None] + offsets  # [R, Lq, M, L, P/Z, Z, 2]
        return multi_scale_deformable_attn(
            v, spatial_shapes, locations.view(R, Lq, M, L, P, 2), weights
        )


@dataclass(frozen=True)
class VisibleQueries:
    """
    For each row (sample, camera), the BEV queries that camera sees, padded to one length K.

    index: [B*N, K] flat index into the B*HW queries, distinct within a row (the visible ones
        first, ascending, then as padding the queries the camera does not see, ``valid`` False).
    valid: [B*N, K] bool.
    reference_points: [B*N, K, Z, 2] their projected pillar points (padding at 0, as officially).
    count: [B, HW] number of cameras that see each query, at least 1.
    max_visible: [] float32, the most queries one camera sees; above K results would be lost (the
        exported graph outputs it so that the caller can refuse such a frame, see ``capacity``).
    """

    index: torch.Tensor
    valid: torch.Tensor
    reference_points: torch.Tensor
    count: torch.Tensor
    max_visible: torch.Tensor


def camera_hits(bev_mask: torch.Tensor, camera_mask: torch.Tensor | None = None) -> torch.Tensor:
    """
    Return which camera sees which BEV query: bev_mask [N, B, HW, Z] -> [B, N, HW] bool.

    A query is seen when any of its pillar points is visible; a camera masked out (camera_mask [B,
    N] False) sees none.
    """
    if camera_mask is not None:
        mask = camera_mask.to(device=bev_mask.device, dtype=torch.bool).t()  # [N, B]
        bev_mask = bev_mask & mask[:, :, None, None]
    # not any(-1): it exports as an int64 ReduceSum, which TensorRT 8.x does not take
    return (bev_mask.float().amax(-1) > 0).transpose(0, 1)  # [B, N, HW]


def most_visible(hits: torch.Tensor) -> torch.Tensor:
    """
    Return the most queries one camera sees, [] float32, of hits [B, N, HW] (`camera_hits`).

    Counts are float32 (exact below 2**24): TensorRT 8.x reduces and clips float types only.
    """
    return hits.float().sum(-1).max()


def visible_first(rows: torch.Tensor) -> torch.Tensor:
    """
    Per row of rows [R, HW] bool: the indices of the True entries ascending, then of the others.

    A stable partition by prefix sums and one scatter, no sort: TensorRT caps TopK at k = 3840,
    and small and base keep 5625 and 10000 queries per camera. The prefix sums are float32
    (exact below 2**24 entries), the one CumSum type every TensorRT version takes.
    """
    R, HW = rows.shape
    seen = torch.cumsum(rows.float(), dim=1)  # [R, HW]
    unseen = torch.arange(1, HW + 1, device=rows.device, dtype=torch.float32) - seen  # [R, HW]
    # rank of each entry in the partitioned row: a permutation of 0..HW-1
    slot = torch.where(rows, seen - 1, seen[:, -1:] + unseen - 1).long()  # [R, HW]
    positions = torch.arange(HW, device=rows.device).expand(R, HW)  # [R, HW]
    # slot is a permutation, so the scatter overwrites every entry of its base; an empty_like
    # base was exported as an int64 constant of [R, HW] (1.9 MB in base's graph)
    return positions.scatter(1, slot, positions)  # [R, HW]


def visible_queries(
    reference_points_cam: torch.Tensor,
    bev_mask: torch.Tensor,
    camera_mask: torch.Tensor | None = None,
    capacity: int | None = None,
) -> VisibleQueries:
    """
    Gather layout of SCA (the official per-camera ``nonzero`` rebatching), once per frame.

    Parameters
    ----------
    reference_points_cam
        [N, B, HW, Z, 2].
    bev_mask
        [N, B, HW, Z] (encoder.point_sampling).
    camera_mask
        optional [B, N] bool, False for a camera without a usable image (dropout). Such a camera
        sees no query, exactly as if its bev_mask were all False, so it adds nothing and the
        per-query camera count (the normalisation) leaves it out.
    capacity
        row length K. None: the most queries one camera sees (eager torch, one host sync per
        frame). An int gives static shapes for export: K >= HW computes every query for every
        camera (dense); a smaller K keeps the K first visible queries of each camera, and a camera
        that sees more is reported by ``max_visible`` (never silently truncated: the caller checks
        it).

    """
    N, B, HW, Z = bev_mask.shape
    device = bev_mask.device
    hits = camera_hits(bev_mask, camera_mask)  # [B, N, HW]
    rows = hits.reshape(B * N, HW)  # [B*N, HW]
    max_visible = most_visible(hits)  # []
    K = max(int(max_visible), 1) if capacity is None else min(int(capacity), HW)
    positions = torch.arange(HW, device=device)  # [HW]
    if K >= HW:  # dense: every query in place
        order = positions.expand(B * N, HW)  # [B*N, HW]
    else:
        order = visible_first(rows)[:, :K]  # [B*N, K]
    valid = torch.gather(rows, 1, order)  # [B*N, K]
    row_offset = torch.arange(B * N, device=device)[:, None] * HW  # [B*N, 1]
    ref = reference_points_cam.transpose(0, 1).reshape(B * N * HW, Z, 2)[order + row_offset]
    ref = torch.where(valid[..., None, None], ref, 0.0)  # [B*N, K, Z, 2]
    sample_offset = torch.arange(B, device=device).repeat_interleave(N)[:, None] * HW
    count = hits.float().sum(1).clamp(min=1)  # [B, HW] float32, as in most_visible
    return VisibleQueries(
        index=order + sample_offset,
        valid=valid,
        reference_points=ref,
        count=count,
        max_visible=max_visible,
    )


class SpatialCrossAttention(nn.Module):
    """
    BEV queries attend to the features of the cameras that see them.

    Per camera, the BEV queries with at least one visible pillar point attend to that camera's
    features; the results are summed over cameras and divided by the number of cameras that see the
    query (min 1).

    Like the official code, only the visible queries of each camera are computed: they are gathered
    into a padded batch of rows (sample, camera) (see ``visible_queries``), which saves most of the
    work since a camera sees a fraction of the BEV.
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
        self.deformable_attention = MSDeformableAttention3D(
            embed_dims, num_heads, num_levels, num_points
        )
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        query: torch.Tensor,
        value: torch.Tensor,
        visible: VisibleQueries,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        """
        Attend to the cameras and add the residual.

        Parameters
        ----------
        query
            [B, HW, C], the layer input (also the residual).
        value
            [B, N, S, C], camera features (+ camera and level embeddings), levels flattened.
        visible
            gather layout from ``visible_queries``.
        spatial_shapes
            (H_l, W_l) per level.

        Returns
        -------
            [B, HW, C].

        """
        B, HW, C = query.shape
        N = value.shape[1]
        queries = query.reshape(B * HW, C)[visible.index]  # [B*N, K, C]
        out = self.deformable_attention(
            queries, value.reshape(B * N, -1, C), visible.reference_points, spatial_shapes
        )  # [B*N, K, C]
        out = torch.where(visible.valid[..., None], out, 0.0).view(B, N, -1, C)  # [B, N, K, C]
        index = visible.index.view(B, N, -1)  # [B, N, K]
        # zeros that export as one Mul, not as a [B*HW, C] constant per camera and layer (a finite
        # query gives exact zeros; a non-finite one makes the output non-finite anyway)
        slots = query.reshape(B * HW, C) * 0.0
        # Cameras are summed in order, as officially. Within one camera the K indices are
        # distinct (a prefix of a permutation of the queries, see visible_first), so reading the
        # rows, adding and writing them back is scatter_add, number for number, and exports as
        # Gather + Add + ScatterND without a reduction: TensorRT runs only reduction-free scatters
        # in its core. In place: only K rows per camera are touched, not a copy of all HW.
        for cam in range(N):
            rows = index[:, cam].reshape(-1)  # [B*K]
            slots.index_put_((rows,), slots[rows] + out[:, cam].reshape(-1, C))
        slots = slots.view(B, HW, C)
        slots = slots / visible.count[..., None].to(query.dtype)
        return self.dropout(self.output_proj(slots)) + query

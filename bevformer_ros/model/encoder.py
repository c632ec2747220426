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
BEVFormer encoder: BEV queries refined by temporal self-attention and spatial cross-attention.

BEV grid convention (official): query index q = row * bev_w + col; column -> LiDAR x, row -> LiDAR
y, ``x = (col + 0.5) / bev_w * (x_max - x_min) + x_min`` (likewise y with rows).
"""

from __future__ import annotations

from collections.abc import Sequence

from bevformer_ros.model.ffn import FFN
from bevformer_ros.model.spatial_cross_attention import (
    SpatialCrossAttention,
    visible_queries,
    VisibleQueries,
)
from bevformer_ros.model.temporal_self_attention import TemporalSelfAttention
import torch
from torch import nn

# Points closer than this to the camera plane (or behind it) are not visible (official value).
DEPTH_EPS = 1e-5


def reference_points_3d(
    bev_h: int,
    bev_w: int,
    z_height: float,
    num_points_in_pillar: int,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """
    Pillar points of every BEV cell, normalised to [0, 1]^3 of pc_range -> [Z, H*W, 3] (x, y, z).

    z: ``linspace(0.5, z_height - 0.5, Z) / z_height``, i.e. the official metre-spaced heights.
    """
    zs = torch.linspace(0.5, z_height - 0.5, num_points_in_pillar, dtype=dtype, device=device)
    zs = zs.view(-1, 1, 1).expand(num_points_in_pillar, bev_h, bev_w) / z_height
    xs = torch.linspace(0.5, bev_w - 0.5, bev_w, dtype=dtype, device=device)
    xs = xs.view(1, 1, bev_w).expand(num_points_in_pillar, bev_h, bev_w) / bev_w
    ys = torch.linspace(0.5, bev_h - 0.5, bev_h, dtype=dtype, device=device)
    ys = ys.view(1, bev_h, 1).expand(num_points_in_pillar, bev_h, bev_w) / bev_h
    return torch.stack((xs, ys, zs), -1).flatten(1, 2)  # [Z, H*W, 3]


def reference_points_2d(
    bev_h: int, bev_w: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """BEV cell centres normalised to [0, 1]^2 -> [H*W, 2] (x, y)."""
    ref_y, ref_x = torch.meshgrid(
        torch.linspace(0.5, bev_h - 0.5, bev_h, dtype=dtype, device=device),
        torch.linspace(0.5, bev_w - 0.5, bev_w, dtype=dtype, device=device),
        indexing='ij',
    )
    return torch.stack((ref_x.reshape(-1) / bev_w, ref_y.reshape(-1) / bev_h), -1)  # [H*W, 2]


def point_sampling(
    ref_3d: torch.Tensor,
    pc_range: Sequence[float],
    lidar2img: torch.Tensor,
    img_shape: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Project the pillar points into every camera (official ``point_sampling``, float32).

    Parameters
    ----------
    ref_3d
        [Z, HW, 3] normalised pillar points.
    pc_range
        [x_min, y_min, z_min, x_max, y_max, z_max].
    lidar2img
        [B, N, 4, 4], LiDAR -> (u*d, v*d, d, 1) in pixels of the padded network input.
    img_shape
        (H, W) of the padded network input.

    Returns
    -------
        reference_points_cam [N, B, HW, Z, 2] as (u / W, v / H) and bev_mask [N, B, HW, Z] (bool).

    """
    ref = ref_3d.float().clone()
    ref[..., 0:1] = ref[..., 0:1] * (pc_range[3] - pc_range[0]) + pc_range[0]
    ref[..., 1:2] = ref[..., 1:2] * (pc_range[4] - pc_range[1]) + pc_range[1]
    ref[..., 2:3] = ref[..., 2:3] * (pc_range[5] - pc_range[2]) + pc_range[2]
    ref = torch.cat((ref, torch.ones_like(ref[..., :1])), -1)  # [Z, HW, 4] metres, homogeneous
    # the official matmul is float32
    lidar2img = lidar2img.to(device=ref.device, dtype=torch.float32)
    # Official operand order, lidar2img @ point as batched 4x4 @ 4x1: the summation order (and
    # so the bits) of ref @ lidar2img^T depends on the CPU's BLAS (it differs on AMX Xeons).
    # [B, N, 1, 1, 4, 4] @ [Z, HW, 4, 1] -> [B, N, Z, HW, 4]
    cam = torch.matmul(lidar2img[:, :, None, None], ref[..., None]).squeeze(-1)
    depth = cam[..., 2:3]
    bev_mask = depth > DEPTH_EPS
    # [B, N, Z, HW, 2] pixels
    uv = cam[..., 0:2] / torch.maximum(depth, torch.ones_like(depth) * DEPTH_EPS)
    uv[..., 0] /= img_shape[1]
    uv[..., 1] /= img_shape[0]
    bev_mask = (
        bev_mask
        & (uv[..., 1:2] > 0.0)
        & (uv[..., 1:2] < 1.0)
        & (uv[..., 0:1] < 1.0)
        & (uv[..., 0:1] > 0.0)
    )  # strict: points on the border are outside
    return uv.permute(1, 0, 3, 2, 4), bev_mask.squeeze(-1).permute(1, 0, 3, 2)


class BEVFormerLayer(nn.Module):
    """Post-norm layer: TSA, norm, SCA, norm, FFN, norm (official operation order)."""

    def __init__(
        self,
        embed_dims: int,
        num_heads: int,
        ffn_dims: int,
        tsa_num_points: int,
        sca_num_levels: int,
        sca_num_points: int,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.attentions = nn.ModuleList(
            [
                TemporalSelfAttention(embed_dims, num_heads, tsa_num_points, dropout),
                SpatialCrossAttention(
                    embed_dims, num_heads, sca_num_levels, sca_num_points, dropout
                ),
            ]
        )
        self.ffns = nn.ModuleList([FFN(embed_dims, ffn_dims, dropout)])
        self.norms = nn.ModuleList([nn.LayerNorm(embed_dims) for _ in range(3)])

    def forward(
        self,
        x: torch.Tensor,
        bev_pos: torch.Tensor,
        tsa_value: torch.Tensor,
        ref_2d: torch.Tensor,
        bev_hw: tuple[int, int],
        feats: torch.Tensor,
        visible: VisibleQueries,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> torch.Tensor:
        """Refine x [B, HW, C] -> [B, HW, C]; other arguments as in BEVFormerEncoder.forward."""
        x = self.norms[0](self.attentions[0](x, bev_pos, tsa_value, ref_2d, bev_hw))
        x = self.norms[1](self.attentions[1](x, feats, visible, spatial_shapes))
        return self.norms[2](self.ffns[0](x))


class BEVFormerEncoder(nn.Module):
    """Stack of BEVFormerLayers over a bev_h x bev_w grid covering pc_range."""

    def __init__(
        self,
        num_layers: int,
        embed_dims: int,
        num_heads: int,
        ffn_dims: int,
        pc_range: Sequence[float],
        num_points_in_pillar: int = 4,
        tsa_num_points: int = 4,
        sca_num_levels: int = 1,
        sca_num_points: int = 8,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.pc_range = tuple(float(v) for v in pc_range)
        self.num_points_in_pillar = num_points_in_pillar
        # SCA row length: None sizes it per frame (eager); an int gives static shapes (export)
        self.sca_capacity: int | None = None
        self.layers = nn.ModuleList(
            [
                BEVFormerLayer(
                    embed_dims,
                    num_heads,
                    ffn_dims,
                    tsa_num_points,
                    sca_num_levels,
                    sca_num_points,
                    dropout,
                )
                for _ in range(num_layers)
            ]
        )

    def camera_geometry(
        self,
        bev_hw: tuple[int, int],
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        device: torch.device,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return reference_points_cam [N, B, HW, Z, 2] and bev_mask [N, B, HW, Z] for this rig."""
        z_height = self.pc_range[5] - self.pc_range[2]
        ref_3d = reference_points_3d(*bev_hw, z_height, self.num_points_in_pillar, device=device)
        return point_sampling(ref_3d, self.pc_range, lidar2img, img_shape)

    def forward(
        self,
        bev_query: torch.Tensor,
        feats: torch.Tensor,
        bev_pos: torch.Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
        bev_hw: tuple[int, int],
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        prev_bev: torch.Tensor | None,
        shift: torch.Tensor,
        camera_mask: torch.Tensor | None = None,
        use_history: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Build the BEV features of one frame.

        Parameters
        ----------
        bev_query
            [B, HW, C], BEV embedding + can_bus MLP.
        feats
            [B, N, S, C], camera features (+ embeddings), levels flattened and concatenated.
        bev_pos
            [B or 1, HW, C].
        spatial_shapes
            (H_l, W_l) per level.
        bev_hw
            (bev_h, bev_w).
        lidar2img
            [B, N, 4, 4].
        img_shape
            (H, W) of the padded input.
        prev_bev
            [B, HW, C], the previous BEV already rotated into this frame, or None.
        shift
            [B, 2], (x, y) ego translation in BEV-grid units, added to the history reference
            points.
        camera_mask
            optional [B, N] bool; False removes a camera from SCA (see ``visible_queries``).
        use_history
            optional [B] bool for a static graph: prev_bev is then always given and each layer
            selects the with-history or the first-frame TSA inputs (exactly as if prev_bev were
            None where False).

        Returns
        -------
            bev_embed [B, HW, C].

        """
        B = bev_query.shape[0]
        reference_points_cam, bev_mask = self.camera_geometry(
            bev_hw, lidar2img, img_shape, bev_query.device
        )
        # the same for every layer
        visible = visible_queries(reference_points_cam, bev_mask, camera_mask, self.sca_capacity)
        # float32 even in a half-precision model: the shift is a fraction of a BEV cell
        # [B, HW, 2]
        ref_2d = reference_points_2d(*bev_hw, device=bev_query.device)[None].expand(B, -1, -1)
        if prev_bev is not None:
            # Both queue entries are the *initial* queries, reused by every layer (official
            # behaviour).
            tsa_value = torch.stack([prev_bev, bev_query], 1)  # [B, 2, HW, C]
            tsa_ref = torch.stack([ref_2d + shift[:, None, :].float(), ref_2d], 1)  # [B, 2, HW, 2]
        else:
            tsa_value = None
            tsa_ref = torch.stack([ref_2d, ref_2d], 1)
        first_ref = torch.stack([ref_2d, ref_2d], 1)  # [B, 2, HW, 2], TSA without history
        select = None if use_history is None else use_history.view(-1, 1, 1, 1)  # [B, 1, 1, 1]
        x = bev_query
        for layer in self.layers:
            # Without history TSA attends to the current layer input twice.
            value = tsa_value if tsa_value is not None else torch.stack([x, x], 1)
            ref = tsa_ref
            if select is not None:  # static graph: both forms, selected per sample
                value = torch.where(select, value, torch.stack([x, x], 1))
                ref = torch.where(select, tsa_ref, first_ref)
            x = layer(x, bev_pos, value, ref, bev_hw, feats, visible, spatial_shapes)
        return x

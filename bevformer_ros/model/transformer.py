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
BEVFormer PerceptionTransformer: ego-motion alignment of the history, BEV encoder, then decoder.

The ego-motion inputs come from the *used* ``can_bus`` (see ``bevformer_ros.core.temporal``): [0:2]
the global-frame translation since the previous frame, [-2] the absolute ego yaw in radians, [-1]
the yaw change in degrees.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
import math

from bevformer_ros.core.temporal import CAN_BUS_DIMS  # core owns the can_bus layout
from bevformer_ros.model.decoder import DetectionTransformerDecoder
from bevformer_ros.model.encoder import BEVFormerEncoder
from bevformer_ros.model.ms_deform_attn import offset_normalizer
import torch
from torch import nn
import torch.nn.functional as F


def bev_shift(
    can_bus: torch.Tensor,
    bev_hw: tuple[int, int],
    pc_range: Sequence[float],
    use_shift: bool = True,
) -> torch.Tensor:
    """
    Return the translation since the previous frame in BEV-grid units -> [B, 2] (shift_x, shift_y).

    can_bus [B, 18]. Official formula, kept as is (the checkpoints were trained with it): the
    global-frame translation (dx, dy) is projected onto the axes of the *current* ego heading
    (absolute yaw can_bus[-2]), forward -> shift_y (BEV rows), right -> shift_x (BEV columns).
    Computed in float64 (official: numpy), then cast to float32.
    """
    bev_h, bev_w = bev_hw
    grid_length_y = (pc_range[4] - pc_range[1]) / bev_h
    grid_length_x = (pc_range[3] - pc_range[0]) / bev_w
    can_bus = can_bus.to(torch.float64)
    delta_x, delta_y = can_bus[:, 0], can_bus[:, 1]
    ego_angle = can_bus[:, -2] / math.pi * 180
    translation_length = torch.sqrt(delta_x**2 + delta_y**2)
    translation_angle = torch.atan2(delta_y, delta_x) / math.pi * 180
    bev_angle = ego_angle - translation_angle
    shift_y = translation_length * torch.cos(bev_angle / 180 * math.pi) / grid_length_y / bev_h
    shift_x = translation_length * torch.sin(bev_angle / 180 * math.pi) / grid_length_x / bev_w
    return (torch.stack([shift_x, shift_y], -1) * float(use_shift)).float()  # [B, 2]


def rotate_bev(
    bev: torch.Tensor,
    angle_deg: torch.Tensor,
    bev_hw: tuple[int, int],
    center: Sequence[float] = (100.0, 100.0),
) -> torch.Tensor:
    """
    Rotate each sample's BEV map by ``angle_deg`` about pixel ``center`` (x=col, y=row).

    Reproduces ``torchvision.transforms.functional.rotate(bev_chw, angle, center=center)`` (v0.10,
    tensor path): inverse affine matrix in float64, float32 sampling grid,
    ``grid_sample(mode='nearest', align_corners=False)``. Quirk kept from the official code: the
    centre is pixel (100, 100) whatever the BEV size (official default ``rotate_center``), so for
    grids other than 200x200 the history is not rotated about the ego position.

    Parameters
    ----------
    bev
        [B, HW, C] with index row * bev_w + col.
    angle_deg
        [B], counter-clockwise in image coordinates as torchvision defines it.
    bev_hw
        (bev_h, bev_w).
    center
        rotation centre (x=col, y=row) in pixels; the official (100, 100) by default.

    Returns
    -------
        [B, HW, C].

    """
    return rotate_bev_theta(bev, rotation_theta(angle_deg, bev_hw, center), bev_hw)


def rotation_theta(
    angle_deg: torch.Tensor, bev_hw: tuple[int, int], center: Sequence[float] = (100.0, 100.0)
) -> torch.Tensor:
    """
    Return the inverse affine map of ``rotate_bev``: angle_deg [B] -> theta [B, 2, 3] float32.

    Computed in float64 as torchvision does; an exported graph takes it as an input, so that no
    backend needs float64.
    """
    bev_h, bev_w = bev_hw
    B = angle_deg.shape[0]
    # torchvision: relative to the image centre
    cx, cy = (center[0] - bev_w * 0.5, center[1] - bev_h * 0.5)
    # torchvision calls its matrix helper with -angle
    rot = angle_deg.to(torch.float64) * -(math.pi / 180)
    cos, sin = torch.cos(rot), torch.sin(rot)
    tx = (cos * -cx + sin * -cy) + cx
    ty = (-sin * -cx + cos * -cy) + cy
    # inverse affine map
    theta = torch.stack([cos, sin, tx, -sin, cos, ty], -1).view(B, 2, 3).float()
    return theta


def rotate_bev_theta(
    bev: torch.Tensor, theta: torch.Tensor, bev_hw: tuple[int, int]
) -> torch.Tensor:
    """Sample bev [B, HW, C] through the inverse affine map theta [B, 2, 3] -> [B, HW, C]."""
    bev_h, bev_w = bev_hw
    B, HW, C = bev.shape
    grid = _affine_grid(theta, bev_h, bev_w)  # [B, H, W, 2]
    bev_chw = bev.permute(0, 2, 1).reshape(B, C, bev_h, bev_w).float()
    out = F.grid_sample(bev_chw, grid, mode='nearest', padding_mode='zeros', align_corners=False)
    return out.flatten(2).transpose(1, 2).to(bev.dtype)  # [B, HW, C]


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """
    Build the sampling grid as torchvision's ``_gen_affine_grid``.

    Pixel-centred base grid, theta applied, then normalised: theta [B, 2, 3] float32 -> grid [B, h,
    w, 2].
    """
    B = theta.shape[0]
    base = theta.new_empty(1, h, w, 3)
    base[..., 0] = torch.linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, steps=w, device=theta.device)
    base[..., 1] = torch.linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, steps=h, device=theta.device)[
        :, None
    ]
    base[..., 2].fill_(1)  # a fill, not a copy from the host (CUDA graph capture)
    half_size = offset_normalizer(theta, [(0.5 * w, 0.5 * h)])[0]  # [2]
    rescaled = theta.transpose(1, 2) / half_size  # [B, 3, 2]
    return base.view(1, h * w, 3).expand(B, -1, -1).bmm(rescaled).view(B, h, w, 2)


@dataclass(frozen=True)
class StaticHistory:
    """
    History inputs of a static-shape graph (export), all computed in Python like the eager model.

    shift: [B, 2] float32, ``bev_shift`` of the used can_bus.
    rotation: [B, 2, 3] float32, ``rotation_theta`` of the yaw change can_bus[:, -1].
    use: [B] bool; False runs the frame without history (prev_bev is then ignored: any values).
    """

    shift: torch.Tensor
    rotation: torch.Tensor
    use: torch.Tensor


class PerceptionTransformer(nn.Module):
    """Builds the BEV from camera features (encoder) and decodes object queries on it (decoder)."""

    def __init__(
        self,
        encoder: BEVFormerEncoder,
        decoder: DetectionTransformerDecoder,
        embed_dims: int = 256,
        num_feature_levels: int = 4,
        num_cams: int = 6,
        rotate_prev_bev: bool = True,
        use_shift: bool = True,
        use_can_bus: bool = True,
        can_bus_norm: bool = True,
        use_cams_embeds: bool = True,
        rotate_center: Sequence[float] = (100.0, 100.0),
    ) -> None:
        super().__init__()
        self.level_embeds = nn.Parameter(torch.zeros(num_feature_levels, embed_dims))
        self.cams_embeds = nn.Parameter(torch.zeros(num_cams, embed_dims))
        self.encoder = encoder
        self.decoder = decoder
        self.reference_points = nn.Linear(embed_dims, 3)
        layers = [
            ('0', nn.Linear(CAN_BUS_DIMS, embed_dims // 2)),
            ('1', nn.ReLU(inplace=True)),
            ('2', nn.Linear(embed_dims // 2, embed_dims)),
            ('3', nn.ReLU(inplace=True)),
        ]
        if can_bus_norm:
            layers.append(('norm', nn.LayerNorm(embed_dims)))
        self.can_bus_mlp = nn.Sequential(OrderedDict(layers))
        self.embed_dims = embed_dims
        self.rotate_prev_bev, self.use_shift = rotate_prev_bev, use_shift
        self.use_can_bus, self.use_cams_embeds = use_can_bus, use_cams_embeds
        self.rotate_center = tuple(float(c) for c in rotate_center)

    def flatten_features(
        self, mlvl_feats: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """
        Flatten and concatenate the levels, adding camera and level embeddings.

        [B, N, C, h_l, w_l] per level -> feats [B, N, S, C] and the (h_l, w_l) list.
        """
        flat, shapes = [], []
        for lvl, feat in enumerate(mlvl_feats):
            shapes.append((int(feat.shape[3]), int(feat.shape[4])))
            feat = feat.flatten(3).transpose(2, 3)  # [B, N, h*w, C]
            if self.use_cams_embeds:
                feat = feat + self.cams_embeds[None, :, None, :].to(feat.dtype)
            feat = feat + self.level_embeds[lvl].to(feat.dtype)
            flat.append(feat)
        return torch.cat(flat, 2), shapes

    def bev_queries(self, bev_embedding: torch.Tensor, can_bus: torch.Tensor) -> torch.Tensor:
        """Add ego-motion: bev_embedding [HW, C] + can_bus_mlp(can_bus [B, 18]) -> [B, HW, C]."""
        query = bev_embedding[None]  # [1, HW, C]
        can_bus_feat = self.can_bus_mlp(can_bus.to(bev_embedding.dtype))  # [B, C]
        return query + can_bus_feat[:, None, :] * float(self.use_can_bus)

    def align_prev_bev(
        self, prev_bev: torch.Tensor, can_bus: torch.Tensor, bev_hw: tuple[int, int]
    ) -> torch.Tensor:
        """Rotate the previous bev_embed [HW, B, C] by yaw can_bus[:, -1] (deg) -> [B, HW, C]."""
        prev = prev_bev.transpose(0, 1)  # [B, HW, C]
        if self.rotate_prev_bev:
            prev = rotate_bev(prev, can_bus[:, -1].to(prev.device), bev_hw, self.rotate_center)
        return prev

    def get_bev_features(
        self,
        mlvl_feats: Sequence[torch.Tensor],
        bev_embedding: torch.Tensor,
        bev_pos: torch.Tensor,
        bev_hw: tuple[int, int],
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None,
        camera_mask: torch.Tensor | None = None,
        static: StaticHistory | None = None,
    ) -> torch.Tensor:
        """Run the encoder -> bev_embed [B, HW, C]. Arguments as in ``forward``."""
        if static is not None:
            history = prev_bev.transpose(0, 1)  # [B, HW, C]
            if self.rotate_prev_bev:
                history = rotate_bev_theta(history, static.rotation, bev_hw)
            shift = static.shift * float(self.use_shift)  # [B, 2]
        else:
            pc_range = self.encoder.pc_range
            # [B, 2]
            shift = bev_shift(can_bus, bev_hw, pc_range, self.use_shift).to(bev_embedding.device)
            history = None if prev_bev is None else self.align_prev_bev(prev_bev, can_bus, bev_hw)
        query = self.bev_queries(bev_embedding, can_bus.to(bev_embedding.device))  # [B, HW, C]
        feats, spatial_shapes = self.flatten_features(mlvl_feats)
        return self.encoder(
            query,
            feats,
            bev_pos[None],
            spatial_shapes,
            bev_hw,
            lidar2img,
            img_shape,
            history,
            shift,
            camera_mask=camera_mask,
            use_history=None if static is None else static.use,
        )

    def forward(
        self,
        mlvl_feats: Sequence[torch.Tensor],
        bev_embedding: torch.Tensor,
        object_query_embed: torch.Tensor,
        bev_pos: torch.Tensor,
        bev_hw: tuple[int, int],
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        reg_branches: nn.ModuleList | None = None,
        camera_mask: torch.Tensor | None = None,
        static: StaticHistory | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Build the BEV and decode the object queries on it.

        Parameters
        ----------
        mlvl_feats
            per level [B, N, C, h, w] (FPN outputs).
        bev_embedding
            [HW, C] learned BEV queries.
        object_query_embed
            [Q, 2C] (query_pos | query).
        bev_pos
            [HW, C] positional encoding.
        bev_hw
            (bev_h, bev_w).
        lidar2img
            [B, N, 4, 4].
        img_shape
            (H, W) of the padded network input.
        can_bus
            [B, 18], the used can_bus (float64 preferred: the shift is computed in float64).
        prev_bev
            previous frame's bev_embed [HW, B, C], or None.
        reg_branches
            per-layer regression MLPs for box refinement, or None.
        camera_mask
            optional [B, N] bool, False for cameras left out of SCA (dropout).
        static
            history inputs of an exported graph (replace prev_bev None / can_bus motion).

        Returns
        -------
            dict(bev_embed [B, HW, C], states [L, B, Q, C], init_reference [B, Q, 3],
            references [L, B, Q, 3]); references in sigmoid space.

        """
        bev_embed = self.get_bev_features(
            mlvl_feats,
            bev_embedding,
            bev_pos,
            bev_hw,
            lidar2img,
            img_shape,
            can_bus,
            prev_bev,
            camera_mask,
            static,
        )
        B = bev_embed.shape[0]
        query_pos, query = torch.split(object_query_embed, self.embed_dims, dim=1)  # [Q, C] each
        query_pos, query = query_pos[None].expand(B, -1, -1), query[None].expand(B, -1, -1)
        init_reference = self.reference_points(query_pos).sigmoid()  # [B, Q, 3]
        states, references = self.decoder(
            query, query_pos, bev_embed, init_reference, bev_hw, reg_branches
        )
        return {
            'bev_embed': bev_embed,
            'states': states,
            'init_reference': init_reference,
            'references': references,
        }

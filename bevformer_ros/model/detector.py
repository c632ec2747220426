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
BEVFormer detector: ResNet + FPN image features, then the BEVFormer head.

The model holds no temporal state: the caller passes the previous ``bev_embed`` and the used
``can_bus`` (``bevformer_ros.core.temporal.TemporalState`` reproduces the official test-time
bookkeeping). Submodule names (``pts_bbox_head``, ``img_backbone``, ``img_neck``) give exactly the
official state-dict keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.head import BEVFormerHead, build_head
import torch
from torch import nn


class BEVFormer(nn.Module):
    """Camera-only 3D detector (inference path of the official ``BEVFormer.simple_test``)."""

    def __init__(
        self,
        pts_bbox_head: BEVFormerHead,
        img_backbone: nn.Module | None = None,
        img_neck: nn.Module | None = None,
    ) -> None:
        super().__init__()
        # Registration order = official state-dict order: head first, then backbone and neck.
        self.pts_bbox_head = pts_bbox_head
        self.img_backbone = img_backbone
        self.img_neck = img_neck

    def extract_img_feat(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Compute FPN features: img [B, N, 3, H, W] (normalised, padded) -> [B, N, C, h, w]."""
        if self.img_backbone is None or self.img_neck is None:
            raise RuntimeError(
                'this BEVFormer was built head-only (no img_backbone/img_neck); '
                'call forward_head with FPN features instead'
            )
        B, N = img.shape[:2]
        feats = self.img_neck(self.img_backbone(img.flatten(0, 1)))  # per level [B*N, C, h, w]
        return [f.view(B, N, *f.shape[1:]) for f in feats]

    def forward(
        self,
        img: torch.Tensor,
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """
        Detect 3D boxes in one frame of camera images.

        Parameters
        ----------
        img
            [B, N, 3, H, W] normalised and padded camera images (see model.preprocess).
        lidar2img
            [B, N, 4, 4], LiDAR -> pixels of the padded images (already scaled with the images).
        img_shape
            (H, W) of the padded images.
        can_bus
            [B, 18], the *used* can_bus from TemporalState.step (float64 keeps the official shift).
        prev_bev
            the previous frame's ``bev_embed`` [HW, B, C], or None (first frame / new scene).
        camera_mask
            optional [B, N] bool; a False camera (no usable image: dropout) contributes to no BEV
            query, as if it saw none (feed any image for it, e.g. zeros).

        Returns
        -------
            dict(bev_embed [HW, B, C], all_cls_scores [L, B, Q, num_classes] logits,
            all_bbox_preds [L, B, Q, 10] ``[cx, cy, log w, log l, cz, log h, sin, cos, vx, vy]``
            with metric centres, init_reference [B, Q, 3], inter_references [L, B, Q, 3]).

        """
        feats = self.extract_img_feat(img)
        return self.forward_head(feats, lidar2img, img_shape, can_bus, prev_bev, camera_mask)

    def forward_head(
        self,
        mlvl_feats: Sequence[torch.Tensor],
        lidar2img: torch.Tensor,
        img_shape: tuple[int, int],
        can_bus: torch.Tensor,
        prev_bev: torch.Tensor | None = None,
        camera_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run ``forward`` from FPN features (per level [B, N, C, h, w]) instead of images."""
        return self.pts_bbox_head(mlvl_feats, lidar2img, img_shape, can_bus, prev_bev, camera_mask)


def build_bevformer(cfg: BEVFormerConfig, head_only: bool = False) -> BEVFormer:
    """Build the detector for ``cfg``; ``head_only`` (or no cfg.backbone) omits backbone, neck."""
    head = build_head(cfg.head)
    if head_only or cfg.backbone is None or cfg.neck is None:
        return BEVFormer(head)
    # Imported here so the head path works on its own.
    from bevformer_ros.model.fpn import FPN
    from bevformer_ros.model.resnet import ResNet

    b, n = cfg.backbone, cfg.neck
    backbone = ResNet(
        depth=b.depth,
        base_channels=b.base_channels,
        num_stages=b.num_stages,
        out_indices=b.out_indices,
        style=b.style,
        frozen_stages=b.frozen_stages,
        norm_eval=b.norm_eval,
        norm_requires_grad=b.norm_requires_grad,
        stage_with_dcn=b.stage_with_dcn,
        dcn_deform_groups=b.dcn_deform_groups,
    )
    neck = FPN(
        in_channels=n.in_channels,
        out_channels=n.out_channels,
        num_outs=n.num_outs,
        start_level=n.start_level,
        add_extra_convs=n.add_extra_convs,
        relu_before_extra_convs=n.relu_before_extra_convs,
    )
    return BEVFormer(head, backbone, neck)

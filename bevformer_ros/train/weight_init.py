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
Initial weights for training from scratch, as the official ``init_weights`` chain sets them.

The model modules keep PyTorch's default initialisation (inference only ever loads checkpoints).
Training needs the official starting point, in particular the deformable-attention offsets (points
spread on a ring around the reference point, one direction per head) and the classification prior
(sigmoid = 0.01), without which the focal loss starts from a flood of false positives.

- ``PerceptionTransformer.init_weights``: xavier-uniform for every >1-D parameter of the
  transformer, then each deformable attention's own init, normal ``level_embeds`` /
  ``cams_embeds``, xavier ``reference_points``.
- Deformable attention (TSA, MSDeformableAttention3D, CustomMSDeformableAttention): zero offset
  weights, bias = head direction (cos, sin) / max(|cos|, |sin|) times (point index + 1); zero
  attention weights; xavier value/output projections with zero bias. SCA: xavier ``output_proj``.
- ``BEVFormerHead.init_weights``: last classification bias = ``bias_init_with_prob(0.01)``.
- ``LearnedPositionalEncoding``: uniform [0, 1) tables (mmcv ``init_cfg`` Uniform on Embedding).
- mmdet ResNet without pretrained weights: kaiming-normal (fan_out) convs, BN weight 1 / bias 0;
  FPN convs xavier-uniform.
"""

from __future__ import annotations

import math

from bevformer_ros.model.decoder import CustomMSDeformableAttention
from bevformer_ros.model.spatial_cross_attention import (
    MSDeformableAttention3D,
    SpatialCrossAttention,
)
from bevformer_ros.model.temporal_self_attention import TemporalSelfAttention
import torch
from torch import nn


def bias_init_with_prob(prior_prob: float) -> float:
    """Logit whose sigmoid is ``prior_prob`` (mmcv)."""
    return float(-math.log((1 - prior_prob) / prior_prob))


def _xavier(linear: nn.Linear) -> None:
    nn.init.xavier_uniform_(linear.weight)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


def init_deformable_attention(
    attn: nn.Module, num_heads: int, num_levels: int, num_points: int
) -> None:
    """
    Apply the official ``init_weights`` of a deformable attention.

    ``sampling_offsets`` are laid out [M, L, P, 2].
    """
    nn.init.zeros_(attn.sampling_offsets.weight)
    thetas = torch.arange(num_heads, dtype=torch.float32) * (2.0 * math.pi / num_heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)  # [M, 2]
    grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(num_heads, 1, 1, 2)
    grid = grid.repeat(1, num_levels, num_points, 1)  # [M, L, P, 2]
    grid = grid * torch.arange(1, num_points + 1, dtype=torch.float32).view(1, 1, num_points, 1)
    with torch.no_grad():
        attn.sampling_offsets.bias.copy_(grid.reshape(-1))
    nn.init.zeros_(attn.attention_weights.weight)
    nn.init.zeros_(attn.attention_weights.bias)
    _xavier(attn.value_proj)
    if hasattr(attn, 'output_proj'):
        _xavier(attn.output_proj)


def init_transformer(transformer: nn.Module) -> None:
    """``PerceptionTransformer.init_weights``."""
    for p in transformer.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    for m in transformer.modules():
        if isinstance(m, TemporalSelfAttention):
            # TSA offsets: [M, num_bev_queue * 1 level, P, 2]
            init_deformable_attention(m, m.num_heads, m.num_bev_queue, m.num_points)
        elif isinstance(m, MSDeformableAttention3D):
            init_deformable_attention(m, m.num_heads, m.num_levels, m.num_points)
        elif isinstance(m, CustomMSDeformableAttention):
            init_deformable_attention(m, m.num_heads, 1, m.num_points)
        elif isinstance(m, SpatialCrossAttention):
            _xavier(m.output_proj)
    nn.init.normal_(transformer.level_embeds)
    nn.init.normal_(transformer.cams_embeds)
    _xavier(transformer.reference_points)


def init_head(head: nn.Module) -> None:
    """``BEVFormerHead.init_weights`` plus the positional-encoding tables."""
    init_transformer(head.transformer)
    bias = bias_init_with_prob(0.01)
    for branch in head.cls_branches:
        nn.init.constant_(branch[-1].bias, bias)
    nn.init.uniform_(head.positional_encoding.row_embed.weight)
    nn.init.uniform_(head.positional_encoding.col_embed.weight)


def init_backbone(backbone: nn.Module) -> None:
    """
    Initialise like mmdet ResNet's ``init_cfg`` without pretrained weights.

    Kaiming convs, unit BN.
    """
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_neck(neck: nn.Module) -> None:
    """Initialise like mmdet FPN's ``init_cfg``: xavier-uniform convs."""
    for m in neck.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_bevformer(model: nn.Module) -> nn.Module:
    """Initialise a freshly built BEVFormer in place for training from scratch; returns it."""
    init_head(model.pts_bbox_head)
    if model.img_backbone is not None:
        init_backbone(model.img_backbone)
    if model.img_neck is not None:
        init_neck(model.img_neck)
    return model

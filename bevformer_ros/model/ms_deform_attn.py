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
Multi-scale deformable attention in pure PyTorch (mmcv ``multi_scale_deformable_attn_pytorch``).

Each level is sampled with one bilinear ``grid_sample`` (zero padding, ``align_corners=False``) at
``2 * loc - 1``, weighted and summed over levels and points. This is what the official BEVFormer
runs on CPU; mmcv's CUDA kernel computes the same function.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def offset_normalizer(like: torch.Tensor, sizes_wh: Sequence[tuple[int, int]]) -> torch.Tensor:
    """
    Return the (w, h) of every level as a [L, 2] tensor of ``like``'s dtype and device.

    Built from on-device fills, not from a Python list: a host-to-device copy cannot be
    captured in a CUDA graph, and the values (small integers) are exact in any float type.
    """
    return torch.stack(
        [torch.stack([like.new_full((), w), like.new_full((), h)]) for w, h in sizes_wh]
    )  # [L, 2]


def multi_scale_deformable_attn(
    value: torch.Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """
    Weighted bilinear sampling of multi-level value maps.

    Parameters
    ----------
    value
        [B, S, M, D], the levels' maps flattened row-major and concatenated, S = sum(H_l * W_l); M
        heads of D channels.
    spatial_shapes
        (H_l, W_l) per level, as Python ints.
    sampling_locations
        [B, Q, M, L, P, 2], (x, y) normalised to [0, 1] over each level's width/height; (0, 0) is
        the top-left corner of the top-left pixel.
    attention_weights
        [B, Q, M, L, P].

    Returns
    -------
        [B, Q, M * D].

    """
    B, S, M, D = value.shape
    _, Q, _, L, P, _ = sampling_locations.shape
    if sum(h * w for h, w in spatial_shapes) != S or len(spatial_shapes) != L:
        raise ValueError(
            f'spatial_shapes {list(spatial_shapes)} do not match value length {S} / {L} levels'
        )
    out_dtype = value.dtype
    if value.dtype in (torch.float16, torch.bfloat16):
        # Sample and sum in float32 like the official fp16 path
        # (MultiScaleDeformableAttnFunction_fp32): half precision locations are off by up to 0.1 px
        # on 200-cell maps, and the weighted sums are long.
        value, sampling_locations = value.float(), sampling_locations.float()
        attention_weights = attention_weights.float()
    grids = 2 * sampling_locations - 1  # [B, Q, M, L, P, 2] in grid_sample's [-1, 1]
    weights = attention_weights.transpose(1, 2).reshape(B * M, 1, Q, L, P)  # [B*M, 1, Q, L, P]
    values = value.split([h * w for h, w in spatial_shapes], dim=1) if L > 1 else (value,)
    output = None
    # Levels differ in size, so each is one grid_sample; accumulating keeps the peak memory at one
    # level's samples instead of all levels' (mmcv stacks them).
    for lvl, (value_l, hw) in enumerate(zip(values, spatial_shapes)):
        sampled = _sample_level(value_l, hw, grids[:, :, :, lvl])  # [B*M, D, Q, P]
        contrib = (sampled * weights[..., lvl, :]).sum(-1)  # [B*M, D, Q]
        output = contrib if output is None else output + contrib
    return output.view(B, M * D, Q).transpose(1, 2).to(out_dtype)  # [B, Q, M*D]


def _sample_level(
    value_l: torch.Tensor, hw: tuple[int, int], grid_l: torch.Tensor
) -> torch.Tensor:
    """value_l [B, H*W, M, D], grid_l [B, Q, M, P, 2] -> sampled [B*M, D, Q, P]."""
    B, _, M, D = value_l.shape
    h, w = hw
    value_l = value_l.flatten(2).transpose(1, 2).reshape(B * M, D, h, w)  # [B*M, D, H, W]
    grid_l = grid_l.transpose(1, 2).flatten(0, 1)  # [B*M, Q, P, 2]
    return F.grid_sample(
        value_l, grid_l, mode='bilinear', padding_mode='zeros', align_corners=False
    )

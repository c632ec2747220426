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
Ground-truth boxes -> the regression targets of the official BEVFormer head.

Ground truth comes as mmdet3d v0.17 ``LiDARInstance3DBoxes`` rows ``[x, y, z_bottom, w, l, h, yaw,
vx, vy]`` (what the node publishes and the synthetic scenes record). The official loss first moves
z to the gravity centre (``gravity_center``), then ``normalize_bbox`` encodes ``[cx, cy, log w, log
l, cz, log h, sin, cos, vx, vy]``. Despite its name nothing is scaled by ``pc_range``: centres stay
in metres, the same units as the head's ``all_bbox_preds``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

BOX_DIMS = 9  # [x, y, z_bottom, w, l, h, yaw, vx, vy]
CODE_SIZE = 10  # [cx, cy, log w, log l, cz, log h, sin, cos, vx, vy]


def gravity_center_boxes(boxes: torch.Tensor) -> torch.Tensor:
    """
    Convert [K, 9] bottom-centre boxes to gravity-centre boxes.

    Returns [K, 9] ``[cx, cy, cz, w, l, h, yaw, vx, vy]`` (cz = z_bottom + h / 2).
    """
    if boxes.shape[-1] != BOX_DIMS:
        raise ValueError(
            f'ground-truth boxes must be [K, 9] [x, y, z_bottom, w, l, h, yaw, vx, vy], '
            f'got {tuple(boxes.shape)}'
        )
    cz = boxes[..., 2:3] + boxes[..., 5:6] * 0.5
    return torch.cat([boxes[..., :2], cz, boxes[..., 3:]], -1)


def normalize_bbox(boxes: torch.Tensor) -> torch.Tensor:
    """
    Encode gravity-centre boxes [..., 9] as the official regression code [..., 10].

    Metric centres, log sizes.
    """
    size = boxes[..., 3:6].log()  # w, l, h
    yaw = boxes[..., 6:7]
    return torch.cat(
        [
            boxes[..., 0:2],
            size[..., 0:2],
            boxes[..., 2:3],
            size[..., 2:3],
            yaw.sin(),
            yaw.cos(),
            boxes[..., 7:9],
        ],
        -1,
    )


def in_bev_range(boxes: torch.Tensor, pc_range: Sequence[float]) -> torch.Tensor:
    """
    Filter like mmdet3d ``ObjectRangeFilter``.

    Returns [K] bool: box centre strictly inside the BEV (x, y) of pc_range.
    """
    x, y = boxes[:, 0], boxes[:, 1]
    return (x > pc_range[0]) & (y > pc_range[1]) & (x < pc_range[3]) & (y < pc_range[4])

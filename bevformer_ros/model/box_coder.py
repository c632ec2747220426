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

"""NMS-free box decoding (official ``NMSFreeCoder.decode_single``, ``.get_bboxes`` of the head)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Detections:
    """
    Decoded boxes of one sample, in descending score order.

    boxes: [K, 9] ``[x, y, z_bottom, w, l, h, yaw, vx, vy]`` in the LiDAR/reference frame (mmdet3d
        v0.17 ``LiDARInstance3DBoxes``; centre z = z_bottom + h / 2).
    scores: [K] sigmoid class scores; labels: [K] int64 class indices.
    flat_index: [K] int64 index into the flattened [Q * num_classes] scores
        (query = flat_index // num_classes).
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    flat_index: torch.Tensor


def denormalize_bbox(bbox_preds: torch.Tensor) -> torch.Tensor:
    """
    Decode raw boxes to sizes and yaw.

    [..., 10] ``[cx, cy, log w, log l, cz, log h, sin, cos, vx, vy]``
    -> [..., 9] ``[cx, cy, cz, w, l, h, yaw, vx, vy]`` (gravity centre).
    """
    yaw = torch.atan2(bbox_preds[..., 6:7], bbox_preds[..., 7:8])
    size = bbox_preds[..., [2, 3, 5]].exp()  # w, l, h
    return torch.cat(
        [bbox_preds[..., 0:2], bbox_preds[..., 4:5], size, yaw, bbox_preds[..., 8:10]], -1
    )


def nms_free_decode(
    cls_scores: torch.Tensor,
    bbox_preds: torch.Tensor,
    max_num: int = 300,
    post_center_range: Sequence[float] | None = None,
) -> Detections:
    """
    Keep the top ``max_num`` (query, class) pairs by sigmoid score and decode their boxes.

    Boxes whose centre lies outside ``post_center_range`` are dropped.

    Parameters
    ----------
    cls_scores
        [Q, num_classes] logits of the last decoder layer.
    bbox_preds
        [Q, 10] boxes of the last decoder layer (metric centres).
    max_num
        how many (query, class) pairs to keep.
    post_center_range
        [x_min, y_min, z_min, x_max, y_max, z_max] box centres must lie in, or None: keep all.

    """
    num_classes = cls_scores.shape[-1]
    # [K]
    scores, flat_index = cls_scores.sigmoid().reshape(-1).topk(min(max_num, cls_scores.numel()))
    labels = flat_index % num_classes
    boxes = denormalize_bbox(bbox_preds[flat_index // num_classes])  # [K, 9], gravity centre
    if post_center_range is not None:
        limits = boxes.new_tensor(post_center_range)
        keep = (boxes[:, :3] >= limits[:3]).all(1) & (boxes[:, :3] <= limits[3:]).all(1)
        boxes, scores, labels, flat_index = (
            boxes[keep],
            scores[keep],
            labels[keep],
            flat_index[keep],
        )
    bottom_z = boxes[:, 2:3] - boxes[:, 5:6] * 0.5  # get_bboxes: gravity centre -> bottom centre
    boxes = torch.cat([boxes[:, :2], bottom_z, boxes[:, 3:]], -1)
    return Detections(boxes=boxes, scores=scores, labels=labels, flat_index=flat_index)


def decode_boxes(cls_scores: torch.Tensor, bbox_preds: torch.Tensor, cfg: Any) -> Detections:
    """Run ``nms_free_decode`` with ``max_num``, ``post_center_range`` of a (Head)Config."""
    head = getattr(cfg, 'head', cfg)
    return nms_free_decode(cls_scores, bbox_preds, head.max_num, head.post_center_range)

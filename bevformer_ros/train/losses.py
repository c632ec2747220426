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
Official BEVFormer training loss (``BEVFormerHead.loss``).

Per decoder layer, focal + L1 after matching.

Per layer and batch (``loss_single``): queries are matched to ground truth by
``HungarianAssigner3D``; unmatched queries are background. Classification: sigmoid focal loss
(alpha 0.25, gamma 2) over all queries and classes, summed and divided by
``cls_avg_factor = num_pos * 1.0 + num_neg * bg_cls_weight`` (bg_cls_weight 0, so the number of
matched queries; at least 1), times ``loss_weight`` 2.0. Regression: L1 between the matched
predictions and ``normalize_bbox`` targets, each dim weighted by ``code_weights`` (velocity 0.2),
summed and divided by max(num_pos, 1), times 0.25; rows whose target is not finite (unknown
velocity) are left out. The last layer gives ``loss_cls`` / ``loss_bbox``, earlier layers
``d{i}.loss_*`` (auxiliary losses); the training objective is their sum.
"""

from __future__ import annotations

from collections.abc import Sequence

from bevformer_ros.train.matcher import HungarianAssigner3D
from bevformer_ros.train.targets import gravity_center_boxes, normalize_bbox
import torch
import torch.nn.functional as F


def sigmoid_focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """
    Compute the element-wise sigmoid focal loss -> [N, C].

    logits [N, C], labels [N] in [0, C] (C = background).

    mmdet ``FocalLoss(use_sigmoid=True)``: the targets are one-hot, with an all-zero row for
    background.
    """
    num_classes = logits.shape[-1]
    target = F.one_hot(labels, num_classes + 1)[:, :num_classes].to(logits.dtype)  # [N, C]
    prob = logits.sigmoid()
    pt = (1 - prob) * target + prob * (1 - target)
    focal_weight = (alpha * target + (1 - alpha) * (1 - target)) * pt.pow(gamma)
    return F.binary_cross_entropy_with_logits(logits, target, reduction='none') * focal_weight


class BEVFormerLoss:
    """Focal + L1 losses of every decoder layer after Hungarian matching (official defaults)."""

    def __init__(
        self,
        num_classes: int,
        code_weights: Sequence[float] = (1.0,) * 8 + (0.2, 0.2),
        cls_loss_weight: float = 2.0,
        bbox_loss_weight: float = 0.25,
        alpha: float = 0.25,
        gamma: float = 2.0,
        bg_cls_weight: float = 0.0,
        assigner: HungarianAssigner3D | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.code_weights = torch.tensor(code_weights, dtype=torch.float32)
        self.cls_loss_weight, self.bbox_loss_weight = cls_loss_weight, bbox_loss_weight
        self.alpha, self.gamma, self.bg_cls_weight = alpha, gamma, bg_cls_weight
        self.assigner = assigner or HungarianAssigner3D()

    def __call__(
        self,
        outputs: dict[str, torch.Tensor],
        gt_boxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """
        Loss terms of one batch.

        Parameters
        ----------
        outputs
            the model's dict with all_cls_scores [L, B, Q, C] and all_bbox_preds [L, B, Q, 10].
        gt_boxes
            per sample [K, 9] ``[x, y, z_bottom, w, l, h, yaw, vx, vy]`` (LiDAR frame).
        gt_labels
            per sample [K] int64 class indices.

        Returns
        -------
        dict[str, torch.Tensor]
            {'loss_cls', 'loss_bbox', 'd0.loss_cls', 'd0.loss_bbox', ..., 'loss' (the sum)}, scalar
            tensors.

        """
        all_cls, all_boxes = outputs['all_cls_scores'].float(), outputs['all_bbox_preds'].float()
        device = all_cls.device
        centred = [gravity_center_boxes(b.to(device, torch.float32)) for b in gt_boxes]
        labels = [lab.to(device, torch.long) for lab in gt_labels]
        num_layers = all_cls.shape[0]
        losses: dict[str, torch.Tensor] = {}
        for lvl in range(num_layers):
            loss_cls, loss_bbox = self.layer_loss(all_cls[lvl], all_boxes[lvl], centred, labels)
            prefix = '' if lvl == num_layers - 1 else f'd{lvl}.'
            losses[f'{prefix}loss_cls'] = loss_cls
            losses[f'{prefix}loss_bbox'] = loss_bbox
        losses['loss'] = sum(losses.values())
        return losses

    def layer_loss(
        self,
        cls_logits: torch.Tensor,
        bbox_preds: torch.Tensor,
        gt_boxes: Sequence[torch.Tensor],
        gt_labels: Sequence[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Compute the official ``loss_single``.

        cls_logits [B, Q, C], bbox_preds [B, Q, 10], gt_boxes (gravity centre) [K, 9].
        """
        B, Q, C = cls_logits.shape
        # background
        labels = torch.full((B, Q), self.num_classes, dtype=torch.long, device=cls_logits.device)
        targets = bbox_preds.new_zeros(B, Q, bbox_preds.shape[-1])  # [B, Q, 10]
        weights = bbox_preds.new_zeros(B, Q, bbox_preds.shape[-1])  # [B, Q, 10]
        num_pos = 0
        for b in range(B):
            match = self.assigner.assign(bbox_preds[b], cls_logits[b], gt_boxes[b], gt_labels[b])
            labels[b, match.query_inds] = gt_labels[b][match.gt_inds]
            targets[b, match.query_inds] = normalize_bbox(gt_boxes[b][match.gt_inds])
            weights[b, match.query_inds] = 1.0
            num_pos += int(match.query_inds.numel())
        num_neg = B * Q - num_pos
        cls_avg_factor = max(num_pos * 1.0 + num_neg * self.bg_cls_weight, 1.0)
        focal = sigmoid_focal_loss(
            cls_logits.reshape(-1, C), labels.reshape(-1), self.alpha, self.gamma
        )
        loss_cls = focal.sum() / cls_avg_factor * self.cls_loss_weight

        targets, weights = (
            targets.reshape(-1, targets.shape[-1]),
            weights.reshape(-1, weights.shape[-1]),
        )
        finite = torch.isfinite(targets).all(-1)  # [B*Q]
        weights = weights * self.code_weights.to(weights.device)
        diff = (bbox_preds.reshape(-1, bbox_preds.shape[-1])[finite] - targets[finite]).abs()
        loss_bbox = (diff * weights[finite]).sum() / max(num_pos, 1) * self.bbox_loss_weight
        return torch.nan_to_num(loss_cls), torch.nan_to_num(loss_bbox)

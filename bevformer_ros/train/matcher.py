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
One-to-one matching of object queries to ground-truth boxes (official ``HungarianAssigner3D``).

Cost of query q for box k = FocalLossCost (weight 2.0, alpha 0.25, gamma 2) + BBox3DL1Cost (weight
0.25) on the first 8 regression dims ``[cx, cy, log w, log l, cz, log h, sin, cos]`` (velocity is
not matched on); the IoU cost of the configs has weight 0 and is not computed. Non-finite costs
become +-100 as in the official assigner, then the Hungarian algorithm picks the cheapest
one-to-one assignment.
"""

from __future__ import annotations

from dataclasses import dataclass

from bevformer_ros.train.hungarian import linear_sum_assignment
from bevformer_ros.train.targets import normalize_bbox
import numpy as np
import torch

MATCH_DIMS = 8


def focal_loss_cost(
    cls_logits: torch.Tensor,
    gt_labels: torch.Tensor,
    alpha: float = 0.25,
    gamma: float = 2.0,
    eps: float = 1e-12,
) -> torch.Tensor:
    """
    Focal classification cost (mmdet ``FocalLossCost``): logits [Q, C], labels [K] -> [Q, K].

    The focal loss of predicting the box's class as positive minus that of predicting it as
    negative: lower is a better match.
    """
    prob = cls_logits.sigmoid()
    neg_cost = -(1 - prob + eps).log() * (1 - alpha) * prob.pow(gamma)
    pos_cost = -(prob + eps).log() * alpha * (1 - prob).pow(gamma)
    return pos_cost[:, gt_labels] - neg_cost[:, gt_labels]


def bbox_l1_cost(bbox_preds: torch.Tensor, gt_codes: torch.Tensor) -> torch.Tensor:
    """``BBox3DL1Cost``: L1 distance, bbox_preds [Q, D] and gt_codes [K, D] -> [Q, K]."""
    return torch.cdist(bbox_preds, gt_codes, p=1)


@dataclass(frozen=True)
class MatchResult:
    """Matched pairs of one sample: query_inds [P] and gt_inds [P] (int64, P = min(Q, K))."""

    query_inds: torch.Tensor
    gt_inds: torch.Tensor


class HungarianAssigner3D:
    """Match object queries to ground-truth boxes by the official BEVFormer cost."""

    def __init__(
        self,
        cls_weight: float = 2.0,
        reg_weight: float = 0.25,
        alpha: float = 0.25,
        gamma: float = 2.0,
    ) -> None:
        self.cls_weight, self.reg_weight = cls_weight, reg_weight
        self.alpha, self.gamma = alpha, gamma

    def cost(
        self,
        bbox_preds: torch.Tensor,
        cls_logits: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> torch.Tensor:
        """
        Return the cost [Q, K] of queries for centred gt_boxes [K, 9].

        bbox_preds [Q, 10], cls_logits [Q, C].
        """
        cls_cost = focal_loss_cost(cls_logits, gt_labels, self.alpha, self.gamma) * self.cls_weight
        gt_codes = normalize_bbox(gt_boxes)[:, :MATCH_DIMS]
        reg_cost = bbox_l1_cost(bbox_preds[:, :MATCH_DIMS], gt_codes) * self.reg_weight
        return torch.nan_to_num(cls_cost + reg_cost, nan=100.0, posinf=100.0, neginf=-100.0)

    @torch.no_grad()
    def assign(
        self,
        bbox_preds: torch.Tensor,
        cls_logits: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> MatchResult:
        """
        Match the Q queries of one sample to its K boxes.

        Parameters
        ----------
        bbox_preds
            [Q, 10] head output (metric centres).
        cls_logits
            [Q, C].
        gt_boxes
            [K, 9].
        gt_labels
            [K] int64 class indices.

        """
        device = bbox_preds.device
        if gt_boxes.shape[0] == 0 or bbox_preds.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return MatchResult(empty, empty)
        cost = self.cost(bbox_preds.float(), cls_logits.float(), gt_boxes.float(), gt_labels)
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        return MatchResult(
            torch.from_numpy(rows.astype(np.int64)).to(device),
            torch.from_numpy(cols.astype(np.int64)).to(device),
        )

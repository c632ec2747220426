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
Quick validation figure: recall of ground-truth objects by detections within a BEV centre distance.

Matching follows the nuScenes detection metric's rule (per class, detections in descending score
order, each taking the nearest unmatched ground-truth centre within the threshold), at a single
score threshold instead of the full precision-recall sweep; the full metric is a separate
evaluation tool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RecallCounter:
    """Accumulates matched / total ground-truth objects over frames."""

    distance_m: float = 2.0
    matched: int = 0
    total: int = 0

    def add(
        self,
        det_boxes: np.ndarray,
        det_scores: np.ndarray,
        det_labels: np.ndarray,
        gt_boxes: np.ndarray,
        gt_labels: np.ndarray,
    ) -> int:
        """
        Count one frame (boxes [K, >=2] with BEV centre x, y first).

        Returns the frame's matched count.
        """
        matched = match_count(
            det_boxes, det_scores, det_labels, gt_boxes, gt_labels, self.distance_m
        )
        self.matched += matched
        self.total += len(gt_labels)
        return matched

    @property
    def recall(self) -> float:
        return self.matched / self.total if self.total else float('nan')


def match_count(
    det_boxes: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    gt_boxes: np.ndarray,
    gt_labels: np.ndarray,
    distance_m: float,
) -> int:
    """Count ground-truth objects matched 1:1 by same-class detections within ``distance_m``."""
    count = 0
    for label in np.unique(gt_labels):
        gt_xy = gt_boxes[gt_labels == label, :2]  # [G, 2]
        dets = np.flatnonzero(det_labels == label)
        dets = dets[np.argsort(-det_scores[dets], kind='stable')]
        taken = np.zeros(len(gt_xy), dtype=bool)
        for d in dets:
            dist = np.linalg.norm(gt_xy - det_boxes[d, :2], axis=1)
            dist[taken] = np.inf
            best = int(np.argmin(dist)) if len(dist) else -1
            if best >= 0 and dist[best] <= distance_m:
                taken[best] = True
        count += int(taken.sum())
    return count

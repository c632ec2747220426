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
What one picture shows: six camera images with projections, detections, ground truth, the BEV.

Plain data for `bevformer_ros.viz.overlay`, filled by the node (`result_view`) and by the offline
tools (`viz.bag_frames`, from bags).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Boxes:
    boxes: np.ndarray  # [K, 9] [x, y, z_bottom, w, l, h, yaw, vx, vy] in the reference frame
    labels: np.ndarray  # [K] int64 index into NUSCENES_CLASSES, -1 when unknown
    scores: np.ndarray | None = None  # [K], None for ground truth

    def __len__(self) -> int:
        return len(self.boxes)


@dataclass
class FrameView:
    stamp_ns: int
    images: dict[str, np.ndarray]  # camera name -> uint8 [H, W, 3] RGB
    # camera name -> [4, 4] reference frame -> pixels of that image
    lidar2img: dict[str, np.ndarray]
    detections: Boxes | None = None
    ground_truth: Boxes | None = None
    bev: np.ndarray | None = (
        None  # BEV features [bev_h, bev_w, C] (rows +y) or a uint8 [h, w, 3] picture
    )
    title: str = ''
    notes: list[str] = field(default_factory=list)  # extra lines under the title

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
Convert model boxes in the reference frame to nuScenes boxes in the global frame.

As the official BEVFormer / mmdet3d v0.17 `output_to_nusc_box` + `lidar_nusc_box_to_global`.

A decoded box `[x, y, z_bottom, w, l, h, yaw, vx, vy]` (LIDAR_TOP, see model/box_coder.py) is a
nuScenes box with centre `(x, y, z_bottom + h / 2)`, size `(w, l, h)` (nuScenes `wlh`), orientation
`heading = -yaw - pi/2` about +z and velocity `(vx, vy, 0)`. It goes to the ego frame with
`lidar2ego` and to the global frame with `ego2global`; orientation and velocity are rotated along
(nuScenes `Box.rotate`), the velocity is not translated: it is the absolute velocity, only
expressed in other axes.
"""

from __future__ import annotations

from dataclasses import dataclass

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.rotation import matrix_to_quat_wxyz
import numpy as np


@dataclass(frozen=True)
class GlobalBoxes:
    translation: np.ndarray  # [K, 3] box centre in the global frame (m)
    size_wlh: np.ndarray  # [K, 3] width, length, height (m)
    rotation_wxyz: np.ndarray  # [K, 4] orientation in the global frame, w >= 0
    velocity: np.ndarray  # [K, 2] (vx, vy) in the global frame (m/s)
    # [K] distance of the centre from the ego origin in the ego xy plane (m)
    ego_distance: np.ndarray

    def __len__(self) -> int:
        return len(self.translation)


def _yaw_matrices(heading: np.ndarray) -> np.ndarray:
    c, s = np.cos(heading), np.sin(heading)
    R = np.zeros((len(heading), 3, 3))  # [K, 3, 3]
    R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1.0
    return R


def lidar_boxes_to_global(
    boxes: np.ndarray, lidar2ego: Extrinsics, ego2global: Extrinsics
) -> GlobalBoxes:
    """
    Return nuScenes boxes in the global frame.

    `boxes` [K, 9] (or [K, 7], velocity 0) are in the reference frame.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(len(boxes), -1)
    if boxes.shape[1] not in (7, 9):
        raise ValueError(f'expected boxes [K, 9] (or [K, 7]), got {boxes.shape}')
    velocity = np.zeros((len(boxes), 3))  # [K, 3]
    if boxes.shape[1] == 9:
        velocity[:, :2] = boxes[:, 7:9]
    center = boxes[:, :3].copy()  # [K, 3]
    center[:, 2] += boxes[:, 5] / 2
    center_ego = center @ lidar2ego.rotation.T + lidar2ego.translation  # [K, 3]
    rotation = ego2global.rotation @ lidar2ego.rotation  # [3, 3] reference -> global
    orientation = rotation @ _yaw_matrices(-boxes[:, 6] - np.pi / 2)  # [K, 3, 3]
    return GlobalBoxes(
        translation=center_ego @ ego2global.rotation.T + ego2global.translation,
        size_wlh=boxes[:, 3:6].copy(),
        rotation_wxyz=np.array([matrix_to_quat_wxyz(R) for R in orientation]).reshape(-1, 4),
        velocity=(velocity @ rotation.T)[:, :2],
        ego_distance=np.linalg.norm(center_ego[:, :2], axis=1),
    )

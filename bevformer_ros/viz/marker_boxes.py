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
Boxes back from MarkerArrays: the node's detections and bevformer_synth's ground truth.

`boxes_from_marker_array` turns a visualization_msgs/MarkerArray written by the node
(`bevformer/boxes` CUBEs, `bevformer/labels` texts "class score", `bevformer/velocity` arrows) or
by `bevformer_synth` (`ground_truth/...`) back into boxes `[x, y, z_bottom, w, l, h, yaw, vx, vy]`;
it reads rclpy and rosbags messages alike (same field names) into `viz.frame_view.Boxes`.
"""

from __future__ import annotations

import math
from typing import Any

from bevformer_ros.core.markers import (
    ADD,
    ARROW,
    ARROW_TIME_S,
    CUBE,
    NUSCENES_CLASSES,
    TEXT_VIEW_FACING,
)
from bevformer_ros.core.stamps import time_ns
from bevformer_ros.viz.frame_view import Boxes
import numpy as np


def _heading(q: Any) -> float:
    """Rotation about +z of a quaternion message (x, y, z, w)."""
    return math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))


def _class_and_score(text: str) -> tuple[int, float | None]:
    words = text.split()
    label = NUSCENES_CLASSES.index(words[0]) if words and words[0] in NUSCENES_CLASSES else -1
    try:
        score = float(words[1]) if len(words) > 1 else None
    except ValueError:
        score = None
    return label, score


def boxes_from_marker_array(msg: Any) -> Boxes:
    """Boxes of the CUBE markers of a MarkerArray, class and score from the same id's label."""
    cubes: dict[tuple[str, int], Any] = {}
    texts: dict[tuple[str, int], str] = {}
    arrows: dict[tuple[str, int], Any] = {}
    for m in msg.markers:
        group, _, role = m.ns.rpartition('/')
        key = (group, m.id)
        if m.action != ADD:
            continue
        if m.type == CUBE and role == 'boxes':
            cubes[key] = m
        elif m.type == TEXT_VIEW_FACING and role == 'labels':
            texts[key] = m.text
        elif m.type == ARROW and role == 'velocity' and len(m.points) == 2:
            arrows[key] = m.points
    rows, labels, scores = [], [], []
    for key, cube in cubes.items():
        p, s = cube.pose.position, cube.scale
        yaw = -_heading(cube.pose.orientation) - math.pi / 2
        velocity = (0.0, 0.0)
        if key in arrows:
            a, b = arrows[key]
            velocity = ((b.x - a.x) / ARROW_TIME_S, (b.y - a.y) / ARROW_TIME_S)
        rows.append(
            [
                p.x,
                p.y,
                p.z - s.z / 2,
                s.y,
                s.x,
                s.z,
                math.atan2(math.sin(yaw), math.cos(yaw)),
                *velocity,
            ]
        )
        label, score = _class_and_score(texts.get(key, ''))
        labels.append(label)
        scores.append(score)
    has_scores = bool(scores) and all(s is not None for s in scores)
    return Boxes(
        np.asarray(rows, dtype=np.float64).reshape(-1, 9),
        np.asarray(labels, dtype=np.int64),
        np.asarray(scores, dtype=np.float64) if has_scores else None,
    )


def marker_array_stamp_ns(msg: Any) -> int | None:
    """Return the stamp of the first marker (the node uses the image stamp), None if empty."""
    if not msg.markers:
        return None
    return time_ns(msg.markers[0].header.stamp)

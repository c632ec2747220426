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
Decoded BEVFormer boxes → plain marker content (no ROS types; `ros_convert` makes messages).

Box convention (what the official head decodes, mmdet3d v0.17 `LiDARInstance3DBoxes`):
`[x, y, z_bottom, w, l, h, yaw, vx, vy]` in the reference (LiDAR) frame. As ROS / nuScenes boxes:
centre `(x, y, z_bottom + h/2)`, size `(l, w, h)` along the box's own (forward, left, up) axes,
heading `-yaw - pi/2` about +z (mmdet3d `output_to_nusc_box`), velocity `(vx, vy, 0)` m/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math
from typing import Any

import numpy as np

NUSCENES_CLASSES = (
    'car',
    'truck',
    'construction_vehicle',
    'bus',
    'trailer',
    'barrier',
    'motorcycle',
    'bicycle',
    'pedestrian',
    'traffic_cone',
)

# RGB in [0, 1]: vehicles warm, vulnerable road users red/blue, static objects grey, readable at a
# glance.
CLASS_COLORS = {
    'car': (1.0, 0.62, 0.0),
    'truck': (1.0, 0.39, 0.28),
    'construction_vehicle': (0.91, 0.59, 0.48),
    'bus': (1.0, 0.27, 0.0),
    'trailer': (1.0, 0.55, 0.0),
    'barrier': (0.44, 0.5, 0.56),
    'motorcycle': (1.0, 0.24, 0.39),
    'bicycle': (0.86, 0.08, 0.24),
    'pedestrian': (0.0, 0.0, 0.9),
    'traffic_cone': (0.18, 0.31, 0.31),
}
UNKNOWN_COLOR = (0.7, 0.7, 0.7)
ARROW_TIME_S = 1.0  # a velocity arrow shows where the box is this long from now

# Corner order in the box frame (x forward along l, y left along w, z up): bottom face then top
# face, each front-left, rear-left, rear-right, front-right. BOX_EDGES index pairs of this order
# (for LINE_LIST).
_CORNER_SIGNS = np.array(
    [
        [1, 1, -1],
        [-1, 1, -1],
        [-1, -1, -1],
        [1, -1, -1],
        [1, 1, 1],
        [-1, 1, 1],
        [-1, -1, 1],
        [1, -1, 1],
    ],
    dtype=np.float64,
)  # [8, 3]
BOX_EDGES = (
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 0),
    (4, 5),
    (5, 6),
    (6, 7),
    (7, 4),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
)

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class BoxMarker:
    label: int
    class_name: str
    score: float
    center: Vec3  # box centre in the reference frame (m)
    heading: float  # rad about +z, the direction of `l`
    orientation_xyzw: tuple[float, float, float, float]  # quaternion of `heading`, ROS order
    scale: Vec3  # (l, w, h): extent along the box x, y, z axes
    # RGBA in [0, 1], alpha 1 (the CUBE alpha is the publisher's)
    color: tuple[float, float, float, float]
    text: str  # "class score"
    text_position: Vec3  # just above the box
    velocity: tuple[float, float]  # (vx, vy) m/s
    arrow_start: Vec3  # the box centre
    arrow_end: Vec3  # centre + velocity * arrow_time_s
    corners: np.ndarray  # [8, 3] float64, order of BOX_EDGES


def heading_from_yaw(yaw: float) -> float:
    """ROS / nuScenes heading about +z of an mmdet3d v0.17 LiDAR box yaw."""
    return -yaw - math.pi / 2


def box_corners(center: Sequence[float], size_lwh: Sequence[float], heading: float) -> np.ndarray:
    """[8, 3] corners of a box with extents (l, w, h) along its heading-rotated (x, y, z) axes."""
    c, s = math.cos(heading), math.sin(heading)
    R = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    local = _CORNER_SIGNS * (np.asarray(size_lwh, dtype=np.float64) / 2)  # [8, 3]
    return local @ R.T + np.asarray(center, dtype=np.float64)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, 'detach'):  # torch tensor, possibly on the GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _class(label: int, class_names: Sequence[str]) -> tuple[str, tuple[float, float, float]]:
    if 0 <= label < len(class_names):
        name = class_names[label]
        return name, CLASS_COLORS.get(name, UNKNOWN_COLOR)
    return f'class_{label}', UNKNOWN_COLOR


def box_marker(
    box: np.ndarray,
    score: float,
    label: int,
    class_names: Sequence[str] = NUSCENES_CLASSES,
    arrow_time_s: float = ARROW_TIME_S,
) -> BoxMarker:
    """Marker content of one decoded box [x, y, z_bottom, w, l, h, yaw, (vx, vy)]."""
    x, y, z_bottom, width, length, height, yaw = (float(v) for v in box[:7])
    vx, vy = (float(box[7]), float(box[8])) if len(box) >= 9 else (0.0, 0.0)
    center = (x, y, z_bottom + height / 2)
    heading = heading_from_yaw(yaw)
    name, rgb = _class(label, class_names)
    return BoxMarker(
        label=label,
        class_name=name,
        score=score,
        center=center,
        heading=heading,
        orientation_xyzw=(0.0, 0.0, math.sin(heading / 2), math.cos(heading / 2)),
        scale=(length, width, height),
        color=(*rgb, 1.0),
        text=f'{name} {score:.2f}',
        text_position=(x, y, z_bottom + height + 0.5),
        velocity=(vx, vy),
        arrow_start=center,
        arrow_end=(x + vx * arrow_time_s, y + vy * arrow_time_s, center[2]),
        corners=box_corners(center, (length, width, height), heading),
    )


def build_box_markers(
    boxes: Any,
    scores: Any,
    labels: Any,
    score_threshold: float = 0.3,
    max_count: int = 100,
    class_names: Sequence[str] = NUSCENES_CLASSES,
    arrow_time_s: float = ARROW_TIME_S,
) -> list[BoxMarker]:
    """
    Markers of the `max_count` best boxes scoring >= `score_threshold`, best first.

    boxes [K, 9] (or [K, 7] without velocity), scores [K], labels [K]: numpy arrays or tensors on
    any device. Rows with a non-finite value are skipped: a broken box must not reach RViz.
    """
    boxes, scores, labels = _numpy(boxes), _numpy(scores).reshape(-1), _numpy(labels).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] < 7 or not len(boxes) == len(scores) == len(labels):
        raise ValueError(
            f'expected boxes [K, 9], scores [K], labels [K]; got {boxes.shape}, '
            f'{scores.shape}, {labels.shape}'
        )
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    keep = np.flatnonzero(finite & (scores >= score_threshold))
    keep = keep[np.argsort(-scores[keep], kind='stable')][: max(max_count, 0)]
    return [
        box_marker(boxes[i], float(scores[i]), int(labels[i]), class_names, arrow_time_s)
        for i in keep
    ]


# visualization_msgs/Marker type and action values (the same in every ROS 2 distribution)
ARROW, CUBE, LINE_LIST, TEXT_VIEW_FACING = 0, 1, 5, 9
ADD, DELETEALL = 0, 3
IDENTITY_XYZW = (0.0, 0.0, 0.0, 1.0)
WHITE = (1.0, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class MarkerStyle:
    """How a box array is drawn; the node's detections use the defaults."""

    ns: str = 'bevformer'  # the sub-namespaces are <ns>/boxes, /edges, /labels, /velocity
    cube_alpha: float = 0.3
    line_width: float = 0.05  # m; the arrow's shaft, head diameter and head length scale with it
    text_height: float = 0.6  # m
    min_arrow_speed: float = 0.2  # m/s: slower boxes get no velocity arrow
    edges: bool = True  # a LINE_LIST of the 12 box edges
    arrows: bool = True  # a velocity ARROW per moving box
    label_score: bool = True  # label "class score" (else just the class)


DETECTION_STYLE = MarkerStyle()  # the node's ~/markers
GROUND_TRUTH_STYLE = MarkerStyle(
    ns='ground_truth', cube_alpha=0.35, edges=False, arrows=False, label_score=False
)


@dataclass(frozen=True)
class MarkerContent:
    """One visualization_msgs/Marker as plain values; the header is the edge's to add."""

    ns: str
    id: int  # noqa: A003
    type: int  # noqa: A003
    action: int = ADD
    position: Vec3 = (0.0, 0.0, 0.0)
    orientation_xyzw: tuple[float, float, float, float] = IDENTITY_XYZW
    scale: Vec3 = (0.0, 0.0, 0.0)
    color: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    points: tuple[Vec3, ...] = ()  # in the header frame (the pose stays the identity)
    text: str = ''


def _vec3(values: Sequence[float]) -> Vec3:
    return (float(values[0]), float(values[1]), float(values[2]))


def _box_layout(i: int, box: BoxMarker, style: MarkerStyle) -> list[MarkerContent]:
    rgb = box.color[:3]
    out = [
        MarkerContent(
            f'{style.ns}/boxes',
            i,
            CUBE,
            position=_vec3(box.center),
            orientation_xyzw=tuple(float(v) for v in box.orientation_xyzw),
            scale=_vec3(box.scale),
            color=(*rgb, style.cube_alpha),
        )
    ]
    if style.edges:
        points = tuple(_vec3(box.corners[k]) for edge in BOX_EDGES for k in edge)
        out.append(
            MarkerContent(
                f'{style.ns}/edges',
                i,
                LINE_LIST,
                scale=(style.line_width, 0.0, 0.0),
                color=box.color,
                points=points,
            )
        )
    out.append(
        MarkerContent(
            f'{style.ns}/labels',
            i,
            TEXT_VIEW_FACING,
            position=_vec3(box.text_position),
            scale=(0.0, 0.0, style.text_height),
            color=WHITE,
            text=box.text if style.label_score else box.class_name,
        )
    )
    if style.arrows and math.hypot(*box.velocity) >= style.min_arrow_speed:
        width = style.line_width  # ARROW from points: scale = (shaft, head diameter, head length)
        out.append(
            MarkerContent(
                f'{style.ns}/velocity',
                i,
                ARROW,
                scale=(2 * width, 4 * width, 6 * width),
                color=box.color,
                points=(_vec3(box.arrow_start), _vec3(box.arrow_end)),
            )
        )
    return out


def marker_layout(
    boxes: Sequence[BoxMarker], style: MarkerStyle = DETECTION_STYLE
) -> list[MarkerContent]:
    """
    Lay out a MarkerArray of boxes: a DELETEALL, then per box its CUBE, edges, label and arrow.

    DELETEALL first because RViz2 does not reliably honour `lifetime`: boxes of the previous frame
    vanish even when this frame has fewer detections. Ids are the box index within each
    sub-namespace. This is the one place the layout is decided: the rclpy (`ros.convert`) and
    rosbags (`data.output_messages`, `data.scene_messages`) builders only convert it.
    """
    layout = [MarkerContent(style.ns, 0, ARROW, action=DELETEALL)]
    for i, box in enumerate(boxes):
        layout += _box_layout(i, box, style)
    return layout

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
The node's output messages as rosbags messages, for tools that write bags without rclpy.

Field for field what the node publishes (`ros_convert.marker_array`, `node.bev_features_msg`, the
rgb8
`~/bev_image`), so a bag written offline reads like a recording of the node: the same CDR bytes (a
test checks
this against the rclpy messages). rosbags zero-initialises every field, so the ROS IDL defaults
that are not
zero (a quaternion's w = 1) are set explicitly.

vision_msgs/Detection3DArray (`~/detections`) is not written: the rosbags type store of ROS 2
Kilted has no
vision_msgs definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bevformer_ros.core.markers import BOX_EDGES, BoxMarker
from bevformer_ros.data.bag_io import build_message, stamp_fields
import numpy as np

MARKERS_TYPE = 'visualization_msgs/msg/MarkerArray'
IMAGE_TYPE = 'sensor_msgs/msg/Image'
ARROW, CUBE, LINE_LIST, TEXT_VIEW_FACING = 0, 1, 5, 9  # visualization_msgs/Marker types
ADD, DELETEALL = 0, 3  # visualization_msgs/Marker actions
# ros_convert.marker_array defaults, which the node uses
NS, CUBE_ALPHA, LINE_WIDTH, TEXT_HEIGHT, MIN_ARROW_SPEED = 'bevformer', 0.3, 0.05, 0.6, 0.2
IDENTITY_ORIENTATION = {'x': 0.0, 'y': 0.0, 'z': 0.0, 'w': 1.0}
WHITE = (1.0, 1.0, 1.0, 1.0)


def header(frame_id: str, stamp_ns: int) -> dict[str, Any]:
    return {'stamp': stamp_fields(stamp_ns), 'frame_id': frame_id}


def _xyz(v: Sequence[float]) -> dict[str, float]:
    return {'x': float(v[0]), 'y': float(v[1]), 'z': float(v[2])}


def _pose(
    position: Sequence[float], orientation_xyzw: Sequence[float] | None = None
) -> dict[str, Any]:
    if orientation_xyzw is None:
        return {'position': _xyz(position), 'orientation': IDENTITY_ORIENTATION}
    x, y, z, w = (float(v) for v in orientation_xyzw)
    return {'position': _xyz(position), 'orientation': {'x': x, 'y': y, 'z': z, 'w': w}}


def _color(rgba: Sequence[float], alpha: float | None = None) -> dict[str, float]:
    r, g, b, a = (float(v) for v in rgba)
    return {'r': r, 'g': g, 'b': b, 'a': a if alpha is None else float(alpha)}


def _box_markers(head: dict[str, Any], i: int, box: BoxMarker) -> list[dict[str, Any]]:
    origin = _pose((0.0, 0.0, 0.0))  # LINE_LIST / ARROW points are already in the header frame
    out = [
        {
            'header': head,
            'ns': f'{NS}/boxes',
            'id': i,
            'type': CUBE,
            'action': ADD,
            'pose': _pose(box.center, box.orientation_xyzw),
            'scale': _xyz(box.scale),
            'color': _color(box.color, CUBE_ALPHA),
        },
        {
            'header': head,
            'ns': f'{NS}/edges',
            'id': i,
            'type': LINE_LIST,
            'action': ADD,
            'pose': origin,
            'scale': _xyz((LINE_WIDTH, 0.0, 0.0)),
            'color': _color(box.color),
            'points': [_xyz(box.corners[k]) for edge in BOX_EDGES for k in edge],
        },
        {
            'header': head,
            'ns': f'{NS}/labels',
            'id': i,
            'type': TEXT_VIEW_FACING,
            'action': ADD,
            'pose': _pose(box.text_position),
            'scale': _xyz((0.0, 0.0, TEXT_HEIGHT)),
            'color': _color(WHITE),
            'text': box.text,
        },
    ]
    if (box.velocity[0] ** 2 + box.velocity[1] ** 2) ** 0.5 >= MIN_ARROW_SPEED:
        out.append(
            {
                'header': head,
                'ns': f'{NS}/velocity',
                'id': i,
                'type': ARROW,
                'action': ADD,
                'pose': origin,
                'scale': _xyz((2 * LINE_WIDTH, 4 * LINE_WIDTH, 6 * LINE_WIDTH)),
                'color': _color(box.color),
                'points': [_xyz(box.arrow_start), _xyz(box.arrow_end)],
            }
        )
    return out


def marker_array_message(boxes: Sequence[BoxMarker], frame_id: str, stamp_ns: int) -> Any:
    """
    visualization_msgs/MarkerArray: a DELETEALL, then per box a CUBE, its edges, a label and (moving) an
    arrow, as `ros_convert.marker_array`.
    """
    head = header(frame_id, stamp_ns)
    markers = [
        {'header': head, 'ns': NS, 'id': 0, 'action': DELETEALL, 'pose': _pose((0.0, 0.0, 0.0))}
    ]
    for i, box in enumerate(boxes):
        markers += _box_markers(head, i, box)
    return build_message(MARKERS_TYPE, {'markers': markers})


def bev_features_message(bev_hwc: np.ndarray, frame_id: str, stamp_ns: int) -> Any:
    """
    sensor_msgs/Image `32FC<C>` (native float32) of the BEV [H, W, C] (rows +y, columns +x), as the node's
    ~/bev_features.
    """
    height, width, channels = bev_hwc.shape
    return build_message(
        IMAGE_TYPE,
        {
            'header': header(frame_id, stamp_ns),
            'height': height,
            'width': width,
            'encoding': f'32FC{channels}',
            'is_bigendian': int(not np.little_endian),
            'step': width * channels * 4,
            'data': np.ascontiguousarray(bev_hwc, dtype=np.float32).tobytes(),
        },
    )


def rgb_image_message(rgb: np.ndarray, frame_id: str, stamp_ns: int) -> Any:
    """sensor_msgs/Image rgb8 of a uint8 [H, W, 3] picture (the node's ~/bev_image)."""
    height, width, _ = rgb.shape
    return build_message(
        IMAGE_TYPE,
        {
            'header': header(frame_id, stamp_ns),
            'height': height,
            'width': width,
            'encoding': 'rgb8',
            'is_bigendian': 0,
            'step': width * 3,
            'data': np.ascontiguousarray(rgb, dtype=np.uint8).tobytes(),
        },
    )

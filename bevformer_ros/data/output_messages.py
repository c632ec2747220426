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
rgb8 `~/bev_image`), so a bag written offline reads like a recording of the node: the same CDR
bytes (a test checks this against the rclpy messages). rosbags zero-initialises every field, so the
ROS IDL defaults that are not zero (a quaternion's w = 1) are set explicitly.

vision_msgs/Detection3DArray (`~/detections`) is not written: the rosbags type store of ROS 2
Kilted has no vision_msgs definitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bevformer_ros.core.markers import (
    BoxMarker,
    DETECTION_STYLE,
    marker_layout,
    MarkerContent,
    MarkerStyle,
)
from bevformer_ros.data.bag_io import build_message, stamp_fields
import numpy as np

MARKERS_TYPE = 'visualization_msgs/msg/MarkerArray'
IMAGE_TYPE = 'sensor_msgs/msg/Image'


def header(frame_id: str, stamp_ns: int) -> dict[str, Any]:
    """Return the fields of a std_msgs/Header."""
    return {'stamp': stamp_fields(stamp_ns), 'frame_id': frame_id}


def _xyz(v: Sequence[float]) -> dict[str, float]:
    return {'x': float(v[0]), 'y': float(v[1]), 'z': float(v[2])}


def marker_fields(head: dict[str, Any], content: MarkerContent) -> dict[str, Any]:
    """Convert the plain content of one marker to visualization_msgs/Marker fields."""
    x, y, z, w = content.orientation_xyzw
    r, g, b, a = content.color
    orientation = {'x': x, 'y': y, 'z': z, 'w': w}
    return {
        'header': head,
        'ns': content.ns,
        'id': content.id,
        'type': content.type,
        'action': content.action,
        'pose': {'position': _xyz(content.position), 'orientation': orientation},
        'scale': _xyz(content.scale),
        'color': {'r': r, 'g': g, 'b': b, 'a': a},
        'points': [_xyz(p) for p in content.points],
        'text': content.text,
    }


def marker_array_message(
    boxes: Sequence[BoxMarker],
    frame_id: str,
    stamp_ns: int,
    style: MarkerStyle = DETECTION_STYLE,
) -> Any:
    """Build the visualization_msgs/MarkerArray of the boxes as `core.markers.marker_layout`."""
    head = header(frame_id, stamp_ns)
    markers = [marker_fields(head, m) for m in marker_layout(boxes, style)]
    return build_message(MARKERS_TYPE, {'markers': markers})


def _image_message(pixels: np.ndarray, encoding: str, frame_id: str, stamp_ns: int) -> Any:
    """sensor_msgs/Image of a C-contiguous [H, W, C] array in native byte order."""
    height, width = pixels.shape[:2]
    return build_message(
        IMAGE_TYPE,
        {
            'header': header(frame_id, stamp_ns),
            'height': height,
            'width': width,
            'encoding': encoding,
            'is_bigendian': int(pixels.dtype.itemsize > 1 and not np.little_endian),
            'step': pixels.strides[0],
            'data': pixels.tobytes(),
        },
    )


def bev_features_message(bev_hwc: np.ndarray, frame_id: str, stamp_ns: int) -> Any:
    """
    Build the node's ~/bev_features: sensor_msgs/Image `32FC<C>` of the BEV [H, W, C].

    Native float32, rows +y, columns +x.
    """
    pixels = np.ascontiguousarray(bev_hwc, dtype=np.float32)  # [H, W, C]
    return _image_message(pixels, f'32FC{pixels.shape[2]}', frame_id, stamp_ns)


def rgb_image_message(rgb: np.ndarray, frame_id: str, stamp_ns: int) -> Any:
    """sensor_msgs/Image rgb8 of a uint8 [H, W, 3] picture (the node's ~/bev_image)."""
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8)  # [H, W, 3]
    return _image_message(pixels, 'rgb8', frame_id, stamp_ns)

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
The synthetic scene as ROS messages (rosbags types, serialised to CDR), in the node's topic layout.

Topics: `/<CAM>/image_raw` (sensor_msgs/Image rgb8) and `/<CAM>/camera_info` for the six cameras,
`/odom` (nav_msgs/Odometry, odom -> base_link, twist in base_link), `/tf` (odom -> base_link),
`/tf_static` (base_link -> LIDAR_TOP and base_link -> each camera optical frame) and
`/ground_truth/markers` (visualization_msgs/MarkerArray in LIDAR_TOP: a DELETEALL, then per box a
CUBE in `ground_truth/boxes` and its class name as TEXT_VIEW_FACING in `ground_truth/labels`, same
id).
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

from bevformer_ros.core.markers import build_box_markers, GROUND_TRUTH_STYLE
from bevformer_ros.core.rig import Rig
from bevformer_ros.core.rotation import matrix_to_quat_wxyz
from bevformer_ros.data.bag_io import build_message, stamp_fields
from bevformer_ros.data.output_messages import IMAGE_TYPE, marker_array_message
from bevformer_ros.synth.renderer import PinholeCamera
from bevformer_ros.synth.scene import EgoState, extrinsics_matrix, GroundTruth
import numpy as np

INFO_TYPE = 'sensor_msgs/msg/CameraInfo'
ODOM_TYPE = 'nav_msgs/msg/Odometry'
TF_TYPE = 'tf2_msgs/msg/TFMessage'
ODOM_TOPIC, TF_TOPIC, TF_STATIC_TOPIC = '/odom', '/tf', '/tf_static'
GT_TOPIC = '/ground_truth/markers'
ODOM_FRAME, BASE_FRAME = 'odom', 'base_link'


def image_topic(camera: str) -> str:
    return f'/{camera}/image_raw'


def info_topic(camera: str) -> str:
    return f'/{camera}/camera_info'


def _header(frame_id: str, stamp_ns: int) -> dict[str, Any]:
    return {'stamp': stamp_fields(stamp_ns), 'frame_id': frame_id}


def _quaternion(R: np.ndarray) -> dict[str, float]:
    w, x, y, z = matrix_to_quat_wxyz(R)
    return {'x': x, 'y': y, 'z': z, 'w': w}


def _xyz(v: Sequence[float]) -> dict[str, float]:
    return {'x': float(v[0]), 'y': float(v[1]), 'z': float(v[2])}


def image_message(cam: PinholeCamera, stamp_ns: int, rgb: np.ndarray) -> Any:
    """sensor_msgs/Image rgb8 of an [H, W, 3] uint8 picture."""
    height, width, _ = rgb.shape
    return build_message(
        IMAGE_TYPE,
        {
            'header': _header(cam.frame_id, stamp_ns),
            'height': height,
            'width': width,
            'encoding': 'rgb8',
            'step': width * 3,
            'data': np.ascontiguousarray(rgb).reshape(-1),
        },
    )


def camera_info_message(cam: PinholeCamera, stamp_ns: int) -> Any:
    P = np.zeros((3, 4))
    P[:, :3] = cam.K
    return build_message(
        INFO_TYPE,
        {
            'header': _header(cam.frame_id, stamp_ns),
            'height': cam.height,
            'width': cam.width,
            'distortion_model': 'plumb_bob',
            'd': np.zeros(5),
            'k': cam.K.reshape(-1),
            'r': np.eye(3).reshape(-1),
            'p': P.reshape(-1),
        },
    )


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def odometry_message(ego: EgoState, stamp_ns: int) -> Any:
    """
    Build odom -> base_link with the twist in base_link.

    Forward speed and yaw rate, as wheel odometry has it.
    """
    R = _yaw_matrix(ego.yaw)
    linear = R.T @ np.array([*ego.velocity_world, 0.0])
    return build_message(
        ODOM_TYPE,
        {
            'header': _header(ODOM_FRAME, stamp_ns),
            'child_frame_id': BASE_FRAME,
            'pose': {
                'pose': {'position': _xyz((ego.x, ego.y, 0.0)), 'orientation': _quaternion(R)}
            },
            'twist': {
                'twist': {'linear': _xyz(linear), 'angular': _xyz((0.0, 0.0, ego.yaw_rate))}
            },
        },
    )


def _transform(parent: str, child: str, stamp_ns: int, T: np.ndarray) -> dict[str, Any]:
    return {
        'header': _header(parent, stamp_ns),
        'child_frame_id': child,
        'transform': {'translation': _xyz(T[:3, 3]), 'rotation': _quaternion(T[:3, :3])},
    }


def tf_message(ego: EgoState, stamp_ns: int) -> Any:
    transform = _transform(ODOM_FRAME, BASE_FRAME, stamp_ns, ego.matrix())
    return build_message(TF_TYPE, {'transforms': [transform]})


def tf_static_message(rig: Rig, stamp_ns: int) -> Any:
    """base_link -> LIDAR_TOP and base_link -> every camera optical frame."""
    base_from_lidar = extrinsics_matrix(rig.lidar2ego)
    transforms = [_transform(BASE_FRAME, rig.reference_frame, stamp_ns, base_from_lidar)]
    transforms += [
        _transform(
            BASE_FRAME, c.frame_id, stamp_ns, base_from_lidar @ extrinsics_matrix(c.sensor2lidar)
        )
        for c in rig.cameras
    ]
    return build_message(TF_TYPE, {'transforms': transforms})


def ground_truth_markers(gt: GroundTruth, frame_id: str, stamp_ns: int) -> Any:
    """Build the MarkerArray of the ground-truth boxes (layout in the module docstring)."""
    boxes = build_box_markers(
        gt.boxes, np.ones(len(gt.boxes)), gt.labels, score_threshold=0.0, max_count=len(gt.boxes)
    )
    return marker_array_message(boxes, frame_id, stamp_ns, GROUND_TRUTH_STYLE)

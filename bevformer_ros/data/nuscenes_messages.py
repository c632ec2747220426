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
nuScenes records as ROS messages (rosbags types), in the node's topic layout (`scene_messages`).

Images: sensor_msgs/CompressedImage with the dataset's JPEG bytes untouched on
`/<CAM>/image_raw/compressed` (the image_transport name the node subscribes to with
`cameras.compressed`), or rgb8 sensor_msgs/Image on `/<CAM>/image_raw`. CameraInfo: K of the
calibrated sensor, P = [K | 0], no distortion (nuScenes images are rectified). Ego:
nav_msgs/Odometry and /tf `<odom frame> -> base_link`. /tf_static: base_link -> LIDAR_TOP and
base_link -> each camera optical frame, the calibrated_sensor records verbatim.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bevformer_ros.data import scene_messages as sm
from bevformer_ros.data.bag_io import build_message, stamp_fields
from bevformer_ros.data.nuscenes_convert import EgoSample
import numpy as np

COMPRESSED_TYPE = 'sensor_msgs/msg/CompressedImage'
JPEG_FORMAT = 'jpeg'


def compressed_topic(camera: str) -> str:
    return f'{sm.image_topic(camera)}/compressed'


def _header(frame_id: str, stamp_ns: int) -> dict[str, Any]:
    return {'stamp': stamp_fields(stamp_ns), 'frame_id': frame_id}


def _xyz(v: Sequence[float]) -> dict[str, float]:
    return {'x': float(v[0]), 'y': float(v[1]), 'z': float(v[2])}


def _quaternion(q_wxyz: Sequence[float]) -> dict[str, float]:
    w, x, y, z = (float(v) for v in q_wxyz)
    return {'x': x, 'y': y, 'z': z, 'w': w}


def compressed_image_message(frame_id: str, stamp_ns: int, jpeg: bytes) -> Any:
    return build_message(
        COMPRESSED_TYPE,
        {'header': _header(frame_id, stamp_ns), 'format': JPEG_FORMAT, 'data': jpeg},
    )


def image_message(frame_id: str, stamp_ns: int, rgb: np.ndarray) -> Any:
    """sensor_msgs/Image rgb8 of an [H, W, 3] uint8 picture."""
    height, width, _ = rgb.shape
    return build_message(
        sm.IMAGE_TYPE,
        {
            'header': _header(frame_id, stamp_ns),
            'height': height,
            'width': width,
            'encoding': 'rgb8',
            'step': width * 3,
            'data': np.ascontiguousarray(rgb).reshape(-1),
        },
    )


def camera_info_message(
    frame_id: str, stamp_ns: int, K: np.ndarray, width: int, height: int
) -> Any:
    """
    Build the CameraInfo of a rectified pinhole camera.

    Intrinsics K [3, 3] for width x height images.
    """
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.zeros((3, 4))
    P[:, :3] = K
    return build_message(
        sm.INFO_TYPE,
        {
            'header': _header(frame_id, stamp_ns),
            'height': height,
            'width': width,
            'distortion_model': 'plumb_bob',
            'd': np.zeros(5),
            'k': K.reshape(-1),
            'r': np.eye(3).reshape(-1),
            'p': P.reshape(-1),
        },
    )


def odometry_message(pose: EgoSample, odom_frame: str) -> Any:
    """`odom_frame` -> base_link at the pose's stamp; the twist in base_link."""
    position, orientation = _xyz(pose.translation), _quaternion(pose.rotation_wxyz)
    return build_message(
        sm.ODOM_TYPE,
        {
            'header': _header(odom_frame, pose.stamp_ns),
            'child_frame_id': sm.BASE_FRAME,
            'pose': {'pose': {'position': position, 'orientation': orientation}},
            'twist': {
                'twist': {'linear': _xyz(pose.velocity), 'angular': _xyz(pose.rotation_rate)}
            },
        },
    )


def _transform(
    parent: str,
    child: str,
    stamp_ns: int,
    translation: Sequence[float],
    rotation_wxyz: Sequence[float],
) -> dict[str, Any]:
    return {
        'header': _header(parent, stamp_ns),
        'child_frame_id': child,
        'transform': {'translation': _xyz(translation), 'rotation': _quaternion(rotation_wxyz)},
    }


def tf_message(pose: EgoSample, odom_frame: str) -> Any:
    transform = _transform(
        odom_frame, sm.BASE_FRAME, pose.stamp_ns, pose.translation, pose.rotation_wxyz
    )
    return build_message(sm.TF_TYPE, {'transforms': [transform]})


def tf_static_message(rig: dict[str, Any], stamp_ns: int) -> Any:
    """
    Build the /tf_static message of a rig document (`nuscenes_rig.scene_rig`).

    base_link -> LIDAR_TOP and base_link -> every camera.
    """
    base = rig['base_frame']
    lidar = rig['lidar2ego']
    transforms = [
        _transform(
            base, rig['reference_frame'], stamp_ns, lidar['translation'], lidar['rotation_wxyz']
        )
    ]
    for camera in rig['cameras'].values():
        mount = camera['sensor2ego']
        transforms.append(
            _transform(
                base, camera['frame_id'], stamp_ns, mount['translation'], mount['rotation_wxyz']
            )
        )
    return build_message(sm.TF_TYPE, {'transforms': transforms})

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
A nuScenes scene's calibration as a rig YAML document.

The format of config/nuscenes_rig.yaml, see rig.py.

Per camera: K = `camera_intrinsic` at the image size of its sample_data, `sensor2ego` = the
camera's `calibrated_sensor` verbatim, and `sensor2lidar` = inv(lidar2ego) @ sensor2ego, the
camera -> LIDAR_TOP extrinsics of the official converter for a static ego. The rig-level
`lidar2ego` is LIDAR_TOP's `calibrated_sensor`. nuScenes calibrates once per log, so the first
keyframe's records hold for the scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.rotation import matrix_to_quat_wxyz, quat_wxyz_to_matrix
from bevformer_ros.data.nuscenes_convert import NuScenesError, REFERENCE_SENSOR, scene_samples
import numpy as np
import yaml

BASE_FRAME = 'base_link'


def rig_path(bag: str | Path) -> Path:
    """Inside a bag directory (`<bag>/rig.yaml`), beside a bag file (`<name>.rig.yaml`)."""
    bag = Path(bag)
    if bag.is_dir() or not bag.suffix:
        return bag / 'rig.yaml'
    return bag.with_suffix('.rig.yaml')


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _pose(record: dict[str, Any]) -> dict[str, list[float]]:
    return {
        'translation': _floats(record['translation']),
        'rotation_wxyz': _floats(record['rotation']),
    }


def sensor2lidar(camera: dict[str, Any], lidar: dict[str, Any]) -> dict[str, Any]:
    """Camera -> LIDAR_TOP of two calibrated_sensor records (both sensor -> ego)."""
    R_lidar = quat_wxyz_to_matrix(lidar['rotation'])  # [3, 3]
    R_cam = quat_wxyz_to_matrix(camera['rotation'])  # [3, 3]
    rotation = R_lidar.T @ R_cam  # [3, 3]
    # [3] ego
    offset = np.asarray(camera['translation'], float) - np.asarray(lidar['translation'], float)
    translation = R_lidar.T @ offset  # [3]
    return {
        'translation': _floats(translation),
        'rotation_wxyz': _floats(matrix_to_quat_wxyz(rotation)),
        'rotation_matrix': [_floats(row) for row in rotation],
    }


def _keyframe_record(nusc: Any, scene: dict[str, Any], channel: str) -> dict[str, Any]:
    token = scene_samples(nusc, scene)[0]['data'].get(channel)
    if token is None:
        raise NuScenesError(
            f'scene {scene["name"]} has no {channel} keyframe; the rig needs the six cameras '
            f'and {REFERENCE_SENSOR} (the reference frame of nuScenes-trained BEVFormer)'
        )
    return nusc.get('sample_data', token)


def scene_rig(
    nusc: Any, scene: dict[str, Any], cameras: Sequence[str] = OFFICIAL_CAMERAS
) -> dict[str, Any]:
    """Return the rig document of the scene's calibration (load it with `rig.parse_rig`)."""
    lidar_record = _keyframe_record(nusc, scene, REFERENCE_SENSOR)
    lidar = nusc.get('calibrated_sensor', lidar_record['calibrated_sensor_token'])
    entries = {}
    for channel in cameras:
        record = _keyframe_record(nusc, scene, channel)
        calibrated = nusc.get('calibrated_sensor', record['calibrated_sensor_token'])
        entries[channel] = {
            'frame_id': channel,
            'image_size': [int(record['width']), int(record['height'])],
            'K': [_floats(row) for row in calibrated['camera_intrinsic']],
            'sensor2ego': _pose(calibrated),
            'sensor2lidar': sensor2lidar(calibrated, lidar),
        }
    return {
        'reference_frame': REFERENCE_SENSOR,
        'base_frame': BASE_FRAME,
        'nominal_image_size': list(entries[cameras[0]]['image_size']),
        'lidar2ego': _pose(lidar),
        'cameras': entries,
    }


def write_rig(path: str | Path, rig: dict[str, Any], source: str) -> None:
    """Write `rig` as YAML with a header comment naming its `source`."""
    header = (
        f'# Camera rig of {source}, from its calibrated_sensor records (format: see\n'
        '# config/nuscenes_rig.yaml): lidar2ego and sensor2ego verbatim,\n'
        '# sensor2lidar = inv(lidar2ego) @ sensor2ego.\n'
        '# Quaternions are (w, x, y, z); cameras in the official order.\n'
    )
    body = yaml.safe_dump(rig, sort_keys=False, default_flow_style=None, width=110)
    Path(path).write_text(header + body)

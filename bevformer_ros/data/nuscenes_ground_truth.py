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
nuScenes keyframe annotations as `GroundTruthFrame`s in LIDAR_TOP.

The sidecar `bevformer_synth` writes.

As the official converter (mmdet3d `create_nuscenes_infos`, used by BEVFormer) builds `gt_boxes`:
the devkit's boxes of the keyframe's LIDAR_TOP sample_data (global -> ego at the lidar time ->
LIDAR_TOP), `[x, y, z_bottom, w, l, h, yaw, vx, vy]` with yaw = -heading - pi/2 and the
bottom-centre z of the training pipeline, the velocity of `box_velocity` (global, z dropped)
rotated into LIDAR_TOP, 0 where the devkit has none. Kept are the boxes the official training set
keeps before its range filter: `valid_flag` (num_lidar_pts + num_radar_pts > 0) and a category that
maps onto the ten detection classes.

Each frame is stamped with its CAM_FRONT keyframe image, the stamp the bag readers match frames by;
its ego pose is the one of the LIDAR_TOP sample_data, the pose the boxes are relative to.
"""

from __future__ import annotations

from typing import Any

from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.core.rotation import quat_wxyz_to_matrix
from bevformer_ros.core.stamps import NS_PER_US
from bevformer_ros.data.nuscenes_convert import NuScenesError, REFERENCE_SENSOR, scene_samples
from bevformer_ros.synth.ground_truth_file import GroundTruthFrame
import numpy as np

STAMP_CAMERA = (
    'CAM_FRONT'  # the first camera of the official order: the frame stamp of the bag readers
)

# nuScenes category -> detection class (mmdet3d NuScenesDataset.NameMapping); the others are not
# trained on.
DETECTION_CLASS = {
    'movable_object.barrier': 'barrier',
    'vehicle.bicycle': 'bicycle',
    'vehicle.bus.bendy': 'bus',
    'vehicle.bus.rigid': 'bus',
    'vehicle.car': 'car',
    'vehicle.construction': 'construction_vehicle',
    'vehicle.motorcycle': 'motorcycle',
    'human.pedestrian.adult': 'pedestrian',
    'human.pedestrian.child': 'pedestrian',
    'human.pedestrian.construction_worker': 'pedestrian',
    'human.pedestrian.police_officer': 'pedestrian',
    'movable_object.trafficcone': 'traffic_cone',
    'vehicle.trailer': 'trailer',
    'vehicle.truck': 'truck',
}


def has_annotations(nusc: Any, scene: dict[str, Any]) -> bool:
    """Return False for test-split scenes, which come without sample_annotation records."""
    return any(sample['anns'] for sample in scene_samples(nusc, scene))


def _wrap(angle: np.ndarray) -> np.ndarray:
    return np.arctan2(np.sin(angle), np.cos(angle))


def _kept(nusc: Any, token: str) -> bool:
    ann = nusc.get('sample_annotation', token)
    valid = int(ann['num_lidar_pts']) + int(ann['num_radar_pts']) > 0
    return valid and ann['category_name'] in DETECTION_CLASS


def keyframe_boxes(nusc: Any, sample: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return the annotated boxes of one keyframe in its LIDAR_TOP.

    (boxes [K, 9] float64, labels [K] int64, instance ids [K] int64).
    """
    lidar_token = sample['data'].get(REFERENCE_SENSOR)
    if lidar_token is None:
        raise NuScenesError(
            f'sample {sample["token"]} has no {REFERENCE_SENSOR} sample_data; the ground '
            'truth is expressed in that frame'
        )
    lidar = nusc.get('sample_data', lidar_token)
    # [3, 3]
    ego_rotation = quat_wxyz_to_matrix(nusc.get('ego_pose', lidar['ego_pose_token'])['rotation'])
    lidar_rotation = quat_wxyz_to_matrix(
        nusc.get('calibrated_sensor', lidar['calibrated_sensor_token'])['rotation']
    )  # [3, 3]
    tokens = [t for t in sample['anns'] if _kept(nusc, t)]
    _, boxes, _ = nusc.get_sample_data(lidar_token, selected_anntokens=tokens)
    rows, labels, instances = [], [], []
    for token, box in zip(tokens, boxes):
        velocity = np.nan_to_num(nusc.box_velocity(token), nan=0.0)  # [3] global
        velocity[2] = 0.0
        velocity = lidar_rotation.T @ ego_rotation.T @ velocity  # [3] LIDAR_TOP
        w, length, h = box.wlh
        yaw = box.orientation.yaw_pitch_roll[0]
        rows.append(
            [
                *box.center[:2],
                box.center[2] - h / 2,
                w,
                length,
                h,
                _wrap(-yaw - np.pi / 2),
                *velocity[:2],
            ]
        )
        labels.append(NUSCENES_CLASSES.index(DETECTION_CLASS[box.name]))
        instances.append(
            nusc.getind('instance', nusc.get('sample_annotation', token)['instance_token'])
        )
    return (
        np.array(rows, dtype=np.float64).reshape(-1, 9),
        np.array(labels, dtype=np.int64),
        np.array(instances, dtype=np.int64),
    )


def keyframe_ground_truth(nusc: Any, scene: dict[str, Any]) -> list[GroundTruthFrame]:
    """
    Return one GroundTruthFrame per keyframe of the scene.

    See the module docstring for stamps and poses.
    """
    frames = []
    for sample in scene_samples(nusc, scene):
        camera = sample['data'].get(STAMP_CAMERA)
        if camera is None:
            raise NuScenesError(
                f'sample {sample["token"]} has no {STAMP_CAMERA} image to stamp its ground '
                'truth with'
            )
        stamp_ns = int(nusc.get('sample_data', camera)['timestamp']) * NS_PER_US
        boxes, labels, instances = keyframe_boxes(nusc, sample)  # checks that LIDAR_TOP is there
        lidar = nusc.get('sample_data', sample['data'][REFERENCE_SENSOR])
        pose = nusc.get('ego_pose', lidar['ego_pose_token'])
        frames.append(
            GroundTruthFrame(
                stamp_ns,
                tuple(float(v) for v in pose['translation']),
                tuple(float(v) for v in pose['rotation']),
                boxes,
                labels,
                instances,
            )
        )
    return frames

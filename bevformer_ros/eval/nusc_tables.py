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
Write ground truth as a minimal nuScenes v1.0 dataroot.

So that the official devkit can evaluate against it.

`write_tables(dataroot, scenes)` writes `<dataroot>/<VERSION>/*.json` (the 13 tables `NuScenes`
loads), a custom split `splits.json` holding every scene under the name `SPLIT` (the devkit >= 1.2
evaluates custom splits by scene name without the version checks of the official ones), and the one
map mask file the tables name. Per frame: a sample, the ego pose (base_link in the world), one
LIDAR_TOP key-frame sample_data with the scene's lidar2ego calibration (the devkit measures ego
distances through it) and one sample_annotation per box, linked to the same actor's annotations of
the neighbouring frames (the devkit derives ground-truth velocities from those links, as on
nuScenes).

Stand-ins where a synthetic scene has no data: every box counts as seen by the lidar
(`num_lidar_pts` 1; the devkit drops boxes without points), visibility is the top level, and the
attribute is the one the official rule gives the box's exact velocity (`attributes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.core.png import encode_png
from bevformer_ros.core.rotation import matrix_to_quat_wxyz, quat_wxyz_to_matrix
from bevformer_ros.eval.attributes import ATTRIBUTES, official_attribute
from bevformer_ros.eval.nusc_boxes import lidar_boxes_to_global
from bevformer_ros.eval.tokens import sample_token, token
from bevformer_ros.synth.ground_truth_file import GroundTruthFrame
import numpy as np

VERSION = 'v1.0-bevformer'
SPLIT = 'bevformer_eval'
REFERENCE_CHANNEL = 'LIDAR_TOP'
MAP_FILE = 'maps/bevformer_eval.png'
# A nuScenes category of each detection class (the devkit maps it back with
# category_to_detection_name).
CATEGORY = {
    'car': 'vehicle.car',
    'truck': 'vehicle.truck',
    'construction_vehicle': 'vehicle.construction',
    'bus': 'vehicle.bus.rigid',
    'trailer': 'vehicle.trailer',
    'barrier': 'movable_object.barrier',
    'motorcycle': 'vehicle.motorcycle',
    'bicycle': 'vehicle.bicycle',
    'pedestrian': 'human.pedestrian.adult',
    'traffic_cone': 'movable_object.trafficcone',
}
TABLES = (
    'category',
    'attribute',
    'visibility',
    'instance',
    'sensor',
    'calibrated_sensor',
    'ego_pose',
    'log',
    'scene',
    'sample',
    'sample_data',
    'sample_annotation',
    'map',
)  # what `NuScenes` loads
VISIBILITY = (('1', 'v0-40'), ('2', 'v40-60'), ('3', 'v60-80'), ('4', 'v80-100'))
SEEN_VISIBILITY = '4'
LIDAR_POINTS = 1


@dataclass(frozen=True)
class SceneTruth:
    """
    One scene's ground truth.

    Frames with boxes in the reference frame, and that frame's lidar2ego.
    """

    name: str
    frames: Sequence[GroundTruthFrame]
    lidar2ego: Extrinsics  # reference frame (LIDAR_TOP) -> base_link
    class_names: Sequence[str] = NUSCENES_CLASSES


def ego2global(frame: GroundTruthFrame) -> Extrinsics:
    """base_link -> world of a ground-truth frame."""
    return Extrinsics(
        quat_wxyz_to_matrix(frame.ego_rotation_wxyz),
        np.asarray(frame.ego_translation, dtype=np.float64),
    )


def _linked(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set `prev` / `next` of records in order."""
    for i, record in enumerate(records):
        record['prev'] = records[i - 1]['token'] if i else ''
        record['next'] = records[i + 1]['token'] if i + 1 < len(records) else ''
    return records


class _Tables:
    def __init__(self) -> None:
        self.t: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        self.t['category'] = [
            {'token': token('category', c), 'name': c, 'description': ''}
            for c in CATEGORY.values()
        ]
        self.t['attribute'] = [
            {'token': token('attribute', a), 'name': a, 'description': ''} for a in ATTRIBUTES
        ]
        self.t['visibility'] = [
            {'token': t, 'level': level, 'description': ''} for t, level in VISIBILITY
        ]
        self.t['sensor'] = [
            {
                'token': token('sensor', REFERENCE_CHANNEL),
                'channel': REFERENCE_CHANNEL,
                'modality': 'lidar',
            }
        ]

    def add_scene(self, scene: SceneTruth) -> None:
        frames = sorted(scene.frames, key=lambda f: f.stamp_ns)
        if len({f.stamp_ns for f in frames}) != len(frames):
            raise ValueError(f'scene {scene.name}: two ground-truth frames share a stamp')
        name = scene.name
        calibration = {
            'token': token('calibrated_sensor', name),
            'sensor_token': self.t['sensor'][0]['token'],
            'translation': scene.lidar2ego.translation.tolist(),
            'rotation': matrix_to_quat_wxyz(scene.lidar2ego.rotation).tolist(),
            'camera_intrinsic': [],
        }
        log = {
            'token': token('log', name),
            'logfile': name,
            'vehicle': 'bevformer_ros',
            'date_captured': '',
            'location': 'bevformer_eval',
        }
        samples = _linked(
            [
                {
                    'token': sample_token(name, f.stamp_ns),
                    'timestamp': f.stamp_ns // 1000,
                    'scene_token': token('scene', name),
                }
                for f in frames
            ]
        )
        data = _linked(
            [
                {
                    'token': token('sample_data', name, f.stamp_ns),
                    'sample_token': s['token'],
                    'ego_pose_token': token('ego_pose', name, f.stamp_ns),
                    'calibrated_sensor_token': calibration['token'],
                    'timestamp': s['timestamp'],
                    'fileformat': 'pcd',
                    'is_key_frame': True,
                    'height': 0,
                    'width': 0,
                    'filename': f'samples/{REFERENCE_CHANNEL}/{name}_{f.stamp_ns}.pcd.bin',
                }
                for f, s in zip(frames, samples)
            ]
        )
        poses = [
            {
                'token': d['ego_pose_token'],
                'timestamp': d['timestamp'],
                'translation': [float(v) for v in f.ego_translation],
                'rotation': [float(v) for v in f.ego_rotation_wxyz],
            }
            for f, d in zip(frames, data)
        ]
        self.t['calibrated_sensor'].append(calibration)
        self.t['log'].append(log)
        self.t['sample'] += samples
        self.t['sample_data'] += data
        self.t['ego_pose'] += poses
        self.t['scene'].append(
            {
                'token': token('scene', name),
                'log_token': log['token'],
                'nbr_samples': len(samples),
                'first_sample_token': samples[0]['token'],
                'last_sample_token': samples[-1]['token'],
                'name': name,
                'description': '',
            }
        )
        self._add_annotations(scene, frames)

    def _add_annotations(self, scene: SceneTruth, frames: Sequence[GroundTruthFrame]) -> None:
        per_instance: dict[int, list[dict[str, Any]]] = {}
        categories: dict[int, str] = {}
        for frame in frames:
            world = lidar_boxes_to_global(frame.boxes, scene.lidar2ego, ego2global(frame))
            for i, (label, instance) in enumerate(zip(frame.labels, frame.instance_ids)):
                name = scene.class_names[int(label)]
                attribute = official_attribute(name, float(np.hypot(*frame.boxes[i, 7:9])))
                categories.setdefault(int(instance), name)
                per_instance.setdefault(int(instance), []).append(
                    {
                        'token': token(
                            'sample_annotation', scene.name, frame.stamp_ns, int(instance)
                        ),
                        'sample_token': sample_token(scene.name, frame.stamp_ns),
                        'instance_token': token('instance', scene.name, int(instance)),
                        'visibility_token': SEEN_VISIBILITY,
                        'attribute_tokens': [token('attribute', attribute)] if attribute else [],
                        'translation': world.translation[i].tolist(),
                        'size': world.size_wlh[i].tolist(),
                        'rotation': world.rotation_wxyz[i].tolist(),
                        'num_lidar_pts': LIDAR_POINTS,
                        'num_radar_pts': 0,
                    }
                )
        for instance, records in per_instance.items():
            self.t['sample_annotation'] += _linked(records)
            self.t['instance'].append(
                {
                    'token': records[0]['instance_token'],
                    'category_token': token('category', CATEGORY[categories[instance]]),
                    'nbr_annotations': len(records),
                    'first_annotation_token': records[0]['token'],
                    'last_annotation_token': records[-1]['token'],
                }
            )


def write_tables(dataroot: str | Path, scenes: Sequence[SceneTruth]) -> Path:
    """
    Write the tables of `scenes` under `dataroot`.

    Returns the table folder `<dataroot>/<VERSION>`.
    """
    names = [s.name for s in scenes]
    if not scenes or len(set(names)) != len(names):
        raise ValueError(f'need at least one scene and distinct scene names, got {names}')
    empty = [s.name for s in scenes if not s.frames]
    if empty:
        raise ValueError(f'scenes without ground-truth frames: {empty}')
    tables = _Tables()
    for scene in scenes:
        tables.add_scene(scene)
    tables.t['map'] = [
        {
            'token': token('map'),
            'log_tokens': [log['token'] for log in tables.t['log']],
            'category': 'semantic_prior',
            'filename': MAP_FILE,
        }
    ]
    root = Path(dataroot)
    table_dir = root / VERSION
    table_dir.mkdir(parents=True, exist_ok=True)
    for name, records in tables.t.items():
        (table_dir / f'{name}.json').write_text(json.dumps(records))
    (table_dir / 'splits.json').write_text(json.dumps({SPLIT: names}))
    (root / MAP_FILE).parent.mkdir(parents=True, exist_ok=True)
    # `NuScenes` only checks that the map's mask file exists: a 1x1 picture will do.
    (root / MAP_FILE).write_bytes(encode_png(np.zeros((1, 1, 3), dtype=np.uint8)))
    return table_dir

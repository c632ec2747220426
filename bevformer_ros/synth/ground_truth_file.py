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
The synthetic scene's ground truth as plain JSON, kept beside (or inside) its bag.

Layout (`FORMAT` v1): scene parameters, then one entry per camera frame with the ego pose
(base_link in odom) and the boxes `[x, y, z_bottom, w, l, h, yaw, vx, vy]` in LIDAR_TOP (model
convention, see scene.py), their nuScenes class labels and the actors' instance ids, which stay the
same across frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import json
from pathlib import Path
from typing import Any

from bevformer_ros.core.markers import NUSCENES_CLASSES
import numpy as np

FORMAT = 'bevformer_ros synthetic ground truth v1'
BOX_LAYOUT = ['x', 'y', 'z_bottom', 'w', 'l', 'h', 'yaw', 'vx', 'vy']


@dataclass(frozen=True)
class GroundTruthFrame:
    stamp_ns: int
    ego_translation: tuple[float, float, float]  # base_link in odom (m)
    ego_rotation_wxyz: tuple[float, float, float, float]
    boxes: np.ndarray  # [K, 9]
    labels: np.ndarray  # [K] int64
    instance_ids: np.ndarray  # [K] int64


def ground_truth_path(bag: str | Path) -> Path:
    """
    Return the ground-truth path of a bag.

    Inside a bag directory (`<bag>/ground_truth.json`), beside a bag file
    (`<name>.ground_truth.json`).
    """
    bag = Path(bag)
    if bag.is_dir() or not bag.suffix:
        return bag / 'ground_truth.json'
    return bag.with_suffix('.ground_truth.json')


def write_ground_truth(
    path: str | Path, frames: Sequence[GroundTruthFrame], scene: dict[str, Any]
) -> None:
    doc = {
        'format': FORMAT,
        'scene': scene,
        'frame_id': 'LIDAR_TOP',
        'box_layout': BOX_LAYOUT,
        'class_names': list(NUSCENES_CLASSES),
        'frames': [
            {
                'stamp_ns': f.stamp_ns,
                'ego_translation': list(f.ego_translation),
                'ego_rotation_wxyz': list(f.ego_rotation_wxyz),
                'boxes': np.round(f.boxes, 6).tolist(),
                'labels': f.labels.tolist(),
                'instance_ids': f.instance_ids.tolist(),
            }
            for f in frames
        ],
    }
    Path(path).write_text(json.dumps(doc, indent=1))


def read_ground_truth(path: str | Path) -> tuple[list[GroundTruthFrame], dict[str, Any]]:
    """(frames, scene parameters); ValueError naming the file if it is not this format."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f'cannot read ground truth {path}: {exc}') from exc
    if not isinstance(doc, dict) or doc.get('format') != FORMAT:
        raise ValueError(f'{path} is not a {FORMAT!r} file')
    frames = [
        GroundTruthFrame(
            stamp_ns=int(f['stamp_ns']),
            ego_translation=tuple(f['ego_translation']),
            ego_rotation_wxyz=tuple(f['ego_rotation_wxyz']),
            boxes=np.asarray(f['boxes'], dtype=np.float64).reshape(-1, len(BOX_LAYOUT)),
            labels=np.asarray(f['labels'], dtype=np.int64),
            instance_ids=np.asarray(f['instance_ids'], dtype=np.int64),
        )
        for f in doc['frames']
    ]
    return frames, doc.get('scene', {})

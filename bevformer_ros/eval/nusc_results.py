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
Detections as a nuScenes detection results JSON (the submission format the devkit evaluates).

    {"meta": {"use_camera": true, "use_lidar": false, ...},
     "results": {sample_token: [{"sample_token", "translation", "size", "rotation", "velocity",
                                 "detection_name", "detection_score", "attribute_name"}, ...]}}

Boxes go to the global frame as the official BEVFormer does it (`nusc_boxes`); as there, a box
further from the ego than its class range of the `detection_cvpr_2019` configuration is left out
(the devkit would drop it anyway) and the attribute comes from class and speed (`attributes`).
Every decoded box is kept, whatever its score: the metric sweeps the score threshold itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import json
from pathlib import Path
from typing import Any

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.eval.attributes import official_attribute
from bevformer_ros.eval.nusc_boxes import lidar_boxes_to_global
import numpy as np

# devkit detection_cvpr_2019 `class_range` (m): boxes beyond it are not evaluated.
CLASS_RANGE = {
    'car': 50.0,
    'truck': 50.0,
    'bus': 50.0,
    'trailer': 50.0,
    'construction_vehicle': 50.0,
    'pedestrian': 40.0,
    'motorcycle': 40.0,
    'bicycle': 40.0,
    'traffic_cone': 30.0,
    'barrier': 30.0,
}
RESULTS_META = {
    'use_camera': True,
    'use_lidar': False,
    'use_radar': False,
    'use_map': False,
    'use_external': False,
}
MAX_BOXES_PER_SAMPLE = 500  # devkit detection_cvpr_2019 `max_boxes_per_sample`

Results = dict[str, list[dict[str, Any]]]  # sample token -> boxes


class ResultsError(ValueError):
    """
    A results JSON that cannot be read or evaluated.

    The message names the file and the problem.
    """


def check_class_names(class_names: Sequence[str]) -> None:
    """Raise ResultsError unless every model class is a nuScenes detection class."""
    unknown = [name for name in class_names if name not in NUSCENES_CLASSES]
    if unknown:
        raise ResultsError(
            f'the model classes {unknown} are not nuScenes detection classes '
            f'({", ".join(NUSCENES_CLASSES)}); a nuScenes results JSON cannot hold them'
        )


def sample_results(
    sample_token: str,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    lidar2ego: Extrinsics,
    ego2global: Extrinsics,
) -> list[dict[str, Any]]:
    """
    Return the results entries of one sample.

    boxes [K, 9] are in the reference frame, scores [K], labels [K].
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    finite = np.isfinite(np.asarray(boxes, dtype=np.float64)).all(axis=1) & np.isfinite(scores)
    boxes, scores, labels = np.asarray(boxes)[finite], scores[finite], labels[finite]
    order = np.argsort(-scores, kind='stable')[:MAX_BOXES_PER_SAMPLE]
    boxes, scores, labels = boxes[order], scores[order], labels[order]
    world = lidar_boxes_to_global(boxes, lidar2ego, ego2global)
    entries = []
    for i, label in enumerate(labels):
        name = class_names[int(label)]
        if world.ego_distance[i] > CLASS_RANGE[name]:
            continue
        velocity = world.velocity[i]
        entries.append(
            {
                'sample_token': sample_token,
                'translation': world.translation[i].tolist(),
                'size': world.size_wlh[i].tolist(),
                'rotation': world.rotation_wxyz[i].tolist(),
                'velocity': velocity.tolist(),
                'detection_name': name,
                'detection_score': float(scores[i]),
                'attribute_name': official_attribute(name, float(np.hypot(*velocity))),
            }
        )
    return entries


def write_results(path: str | Path, results: Mapping[str, list[dict[str, Any]]]) -> None:
    doc = {'meta': dict(RESULTS_META), 'results': dict(results)}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(doc))


def read_results(paths: Sequence[str | Path]) -> Results:
    """
    Read and merge the `results` of one or more results JSON files.

    Raises ResultsError for a bad file or a sample that two files both hold.
    """
    merged: Results = {}
    for path in paths:
        path = Path(path)
        try:
            doc = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(f'cannot read results {path}: {exc}') from exc
        if not isinstance(doc, dict) or not isinstance(doc.get('results'), dict):
            raise ResultsError(
                f'{path} is not a nuScenes results JSON (no "results" object); write one with '
                'bevformer_infer_bag --results-json'
            )
        repeated = sorted(set(doc['results']) & set(merged))
        if repeated:
            raise ResultsError(
                f'{path}: samples already in an earlier results file, e.g. {repeated[0]}'
            )
        merged.update(doc['results'])
    return merged

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
Model boxes -> nuScenes results JSON -> the official nuscenes-devkit evaluation.

The evaluation runs against written tables.

Expected values come from outside the code under test: the devkit's own Box class and
configuration, the synthetic scene's world-frame boxes (the global frame the conversion must
reach), and the devkit metrics of ground-truth boxes handed back as detections (perfect, or shifted
by a known distance).
"""

from __future__ import annotations

import json

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.rotation import matrix_to_quat_wxyz, quat_wxyz_to_matrix
from bevformer_ros.eval.attributes import official_attribute
from bevformer_ros.eval.detection_eval import evaluate, format_report
from bevformer_ros.eval.nusc_boxes import lidar_boxes_to_global
from bevformer_ros.eval.nusc_results import (
    CLASS_RANGE,
    MAX_BOXES_PER_SAMPLE,
    read_results,
    ResultsError,
    sample_results,
    write_results,
)
from bevformer_ros.eval.nusc_tables import CATEGORY, ego2global, SceneTruth
from bevformer_ros.eval.tokens import sample_token
from bevformer_ros.resources import config_file
from bevformer_ros.synth.ground_truth_file import GroundTruthFrame
from bevformer_ros.synth.scene import Scene
import numpy as np
from optional_deps import lazy, requires
import pytest

config_factory = lazy('nuscenes.eval.common.config', 'config_factory')
quaternion_yaw = lazy('nuscenes.eval.common.utils', 'quaternion_yaw')
category_to_detection_name = lazy('nuscenes.eval.detection.utils', 'category_to_detection_name')
Box = lazy('nuscenes.utils.data_classes', 'Box')
Quaternion = lazy('pyquaternion', 'Quaternion')
_packages = requires('nuscenes', 'pyquaternion')

# its lidar2ego has roll and pitch: a non-trivial rotation
RIG = load_rig(config_file('nuscenes_rig.yaml'))
START_NS = 1_700_000_000 * 10**9


def _random_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    return np.concatenate(
        [
            rng.uniform(-40, 40, (count, 2)),
            rng.uniform(-2, 1, (count, 1)),
            rng.uniform(0.5, 5, (count, 3)),
            rng.uniform(-np.pi, np.pi, (count, 1)),
            rng.normal(0, 5, (count, 2)),
        ],
        axis=1,
    )  # [K, 9]


def _devkit_global_box(box: np.ndarray, lidar2ego: Extrinsics, ego2global: Extrinsics) -> Box:
    """Run the official output_to_nusc_box + lidar_nusc_box_to_global with the devkit's Box."""
    x, y, z_bottom, w, length, h, yaw, vx, vy = box
    heading = Quaternion(axis=[0, 0, 1], radians=-yaw - np.pi / 2)
    nusc_box = Box([x, y, z_bottom + h / 2], [w, length, h], heading, velocity=(vx, vy, 0.0))
    nusc_box.rotate(Quaternion(matrix_to_quat_wxyz(lidar2ego.rotation)))
    nusc_box.translate(lidar2ego.translation)
    nusc_box.rotate(Quaternion(matrix_to_quat_wxyz(ego2global.rotation)))
    nusc_box.translate(ego2global.translation)
    return nusc_box


def test_global_boxes_match_the_devkit_box_transforms():
    rng = np.random.default_rng(0)
    boxes = _random_boxes(rng, 12)
    q = np.array([0.9, 0.05, -0.03, 0.4])
    ego = Extrinsics(quat_wxyz_to_matrix(q / np.linalg.norm(q)), np.array([600.0, 1700.0, 0.3]))
    out = lidar_boxes_to_global(boxes, RIG.lidar2ego, ego)
    for i, box in enumerate(boxes):
        expected = _devkit_global_box(box, RIG.lidar2ego, ego)
        np.testing.assert_allclose(out.translation[i], expected.center, atol=1e-9)
        np.testing.assert_allclose(out.size_wlh[i], expected.wlh, atol=1e-12)
        np.testing.assert_allclose(
            quat_wxyz_to_matrix(out.rotation_wxyz[i]), expected.rotation_matrix, atol=1e-9
        )
        np.testing.assert_allclose(out.velocity[i], expected.velocity[:2], atol=1e-9)
        centre_ego = (
            RIG.lidar2ego.rotation @ (box[:3] + [0, 0, box[5] / 2]) + RIG.lidar2ego.translation
        )
        assert out.ego_distance[i] == pytest.approx(np.hypot(*centre_ego[:2]))


def _scene_frames(
    seed: int, count: int, rate_hz: float
) -> tuple[Scene, list[GroundTruthFrame], list[float]]:
    """Ground-truth frames as bevformer_synth writes them, without rendering images."""
    times = [k / rate_hz for k in range(count)]
    scene = Scene.create(seed, duration=count / rate_hz)
    frames = []
    for t in times:
        gt, ego = scene.ground_truth(t, RIG.lidar2ego), scene.ego_pose(t)
        frames.append(
            GroundTruthFrame(
                START_NS + round(t * 1e9),
                (ego.x, ego.y, 0.0),
                tuple(matrix_to_quat_wxyz(ego.matrix()[:3, :3])),
                gt.boxes,
                gt.labels,
                gt.instance_ids,
            )
        )
    return scene, frames, times


def test_synthetic_ground_truth_goes_back_to_the_world_boxes():
    scene, frames, times = _scene_frames(seed=5, count=2, rate_hz=2.0)
    for frame, t in zip(frames, times):
        world = scene.world_boxes(t)
        out = lidar_boxes_to_global(frame.boxes, RIG.lidar2ego, ego2global(frame))
        for i, instance in enumerate(frame.instance_ids):
            np.testing.assert_allclose(out.translation[i], world.centers[instance], atol=1e-4)
            np.testing.assert_allclose(out.size_wlh[i], world.sizes_wlh[instance], atol=1e-6)
            # the LIDAR_TOP ground truth keeps (vx, vy) only: the ~1 degree lidar tilt loses a
            # little of it
            np.testing.assert_allclose(
                out.velocity[i], world.velocities[instance], rtol=5e-3, atol=1e-3
            )
            difference = (
                quaternion_yaw(Quaternion(out.rotation_wxyz[i])) - world.headings[instance]
            )
            # tilt: second order
            assert abs(np.arctan2(np.sin(difference), np.cos(difference))) < 1e-3


def test_configuration_matches_the_devkit():
    cfg = config_factory('detection_cvpr_2019')
    assert CLASS_RANGE == cfg.class_range
    assert MAX_BOXES_PER_SAMPLE == cfg.max_boxes_per_sample
    assert sorted(cfg.class_names) == sorted(NUSCENES_CLASSES)
    assert {name: category_to_detection_name(c) for name, c in CATEGORY.items()} == {
        n: n for n in CATEGORY
    }


@pytest.mark.parametrize(
    'name, speed, expected',
    [
        ('car', 1.0, 'vehicle.moving'),
        ('car', 0.1, 'vehicle.parked'),
        ('bus', 0.1, 'vehicle.stopped'),
        ('bus', 3.0, 'vehicle.moving'),
        ('bicycle', 2.0, 'cycle.with_rider'),
        ('motorcycle', 0.0, 'cycle.without_rider'),
        ('pedestrian', 1.2, 'pedestrian.moving'),
        ('pedestrian', 0.0, 'pedestrian.standing'),
        ('barrier', 5.0, ''),
        ('traffic_cone', 0.0, ''),
        ('trailer', 0.2, 'vehicle.parked'),
    ],
)
def test_official_attributes(name, speed, expected):
    assert official_attribute(name, speed) == expected


def test_sample_results_drops_far_and_broken_boxes_and_keeps_the_format():
    boxes = np.array(
        [
            [10.0, 0, -1, 2, 4, 1.5, 0.3, 1, 0],  # car at ~10 m
            [0.0, 45, -1, 0.6, 0.7, 1.7, 0, 0, 0],  # pedestrian beyond 40 m
            [5.0, 5, -1, 2, 4, 1.5, np.nan, 0, 0],
        ]
    )  # broken
    identity = Extrinsics(np.eye(3), np.zeros(3))
    entries = sample_results(
        'tok',
        boxes,
        np.array([0.9, 0.8, 0.7]),
        np.array([0, 8, 0]),
        NUSCENES_CLASSES,
        RIG.lidar2ego,
        identity,
    )
    assert [e['detection_name'] for e in entries] == ['car']
    assert set(entries[0]) == {
        'sample_token',
        'translation',
        'size',
        'rotation',
        'velocity',
        'detection_name',
        'detection_score',
        'attribute_name',
    }
    assert entries[0]['attribute_name'] == 'vehicle.moving' and entries[0]['size'] == [2, 4, 1.5]


def test_read_results_merges_files_and_names_bad_ones(tmp_path):
    write_results(tmp_path / 'a.json', {'s1': []})
    write_results(tmp_path / 'b.json', {'s2': []})
    assert json.loads((tmp_path / 'a.json').read_text())['meta']['use_camera'] is True
    assert read_results([tmp_path / 'a.json', tmp_path / 'b.json']) == {'s1': [], 's2': []}
    with pytest.raises(ResultsError, match='already'):
        read_results([tmp_path / 'a.json', tmp_path / 'a.json'])
    (tmp_path / 'bad.json').write_text('{"x": 1}')
    with pytest.raises(ResultsError, match='bad.json'):
        read_results([tmp_path / 'bad.json'])


def _as_detections(scene: SceneTruth, shift_m: float = 0.0) -> dict[str, list[dict]]:
    results = {}
    for frame in scene.frames:
        token = sample_token(scene.name, frame.stamp_ns)
        boxes = frame.boxes.copy()
        boxes[:, 0] += (
            shift_m  # along LIDAR_TOP x (the rig's lidar x is horizontal to within a degree)
        )
        results[token] = sample_results(
            token,
            boxes,
            np.ones(len(boxes)),
            frame.labels,
            NUSCENES_CLASSES,
            scene.lidar2ego,
            ego2global(frame),
        )
    return results


def test_ground_truth_as_detections_through_the_devkit(tmp_path):
    _, frames, _ = _scene_frames(seed=3, count=6, rate_hz=12.0)
    scene = SceneTruth('synthetic_3', frames, RIG.lidar2ego)
    exact = evaluate(_as_detections(scene), [scene], tmp_path / 'exact')
    print(format_report(exact))
    present = [name for name, count in exact.gt_per_class.items() if count > 0]
    assert len(present) >= 5
    for name in present:
        assert exact.summary['mean_dist_aps'][name] == pytest.approx(1.0)
        errors = exact.summary['label_tp_errors'][name]
        assert errors['trans_err'] < 1e-6 and errors['scale_err'] < 1e-6
        assert errors['orient_err'] < 1e-6 or np.isnan(errors['orient_err'])  # nan: traffic cones
        assert errors['attr_err'] == 0.0 or np.isnan(errors['attr_err'])
        # devkit: finite differences of the GT
        assert errors['vel_err'] < 0.1 or np.isnan(errors['vel_err'])
    assert exact.recall.recall == 1.0 and exact.missing_samples == 0
    assert (tmp_path / 'exact' / 'metrics_summary.json').exists()

    shifted = evaluate(_as_detections(scene, shift_m=1.5), [scene], tmp_path / 'shifted')
    for name in present:  # matched at the 2 and 4 m thresholds only
        assert shifted.summary['mean_dist_aps'][name] == pytest.approx(0.5, abs=0.02)
        assert shifted.summary['label_tp_errors'][name]['trans_err'] == pytest.approx(
            1.5, abs=0.01
        )
    assert shifted.recall.recall == 1.0


def test_missing_samples_count_as_frames_without_detections(tmp_path):
    _, frames, _ = _scene_frames(seed=4, count=2, rate_hz=2.0)
    scene = SceneTruth('synthetic_4', frames, RIG.lidar2ego)
    results = _as_detections(scene)
    del results[sample_token(scene.name, frames[1].stamp_ns)]
    report = evaluate(results | {'elsewhere': []}, [scene], tmp_path)
    assert report.missing_samples == 1 and report.ignored_samples == 1
    assert 0 < report.recall.recall < 1
    assert 'no results' in format_report(report)

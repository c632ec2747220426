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
bevformer_infer_bag and bevformer_eval end to end.

A short synthetic bag, the seconds-fast test model.
"""

from __future__ import annotations

import json

from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.rotation import matrix_to_quat_wxyz
from bevformer_ros.data.bag_io import BagError, deserialize, header_stamp_ns, open_bag
from bevformer_ros.eval.tokens import sample_token, scene_name
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.resources import config_file
from bevformer_ros.synth.ground_truth_file import read_ground_truth
from bevformer_ros.tools import evaluate as eval_tool
from bevformer_ros.tools import infer_bag
from bevformer_ros.tools.synth import write_scene_bag
from bevformer_ros.viz.bag_frames import BagFrames, bev_features_array
from bevformer_ros.viz.frame_view import Boxes
from bevformer_ros.viz.marker_boxes import boxes_from_marker_array, marker_array_stamp_ns
import numpy as np
from optional_deps import lazy, requires
import pytest

Box = lazy('nuscenes.utils.data_classes', 'Box')
Quaternion = lazy('pyquaternion', 'Quaternion')
_packages = requires('rosbags', 'nuscenes', 'pyquaternion')

FRAMES = 3
MODEL_ARGS = [
    arg for name, value in small_model_parameters().items() for arg in ('-p', f'{name}:={value}')
]


def _topics(path) -> dict[str, list]:
    reader = open_bag(path)
    try:
        out: dict[str, list] = {}
        for conn, record_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((record_ns, raw, conn.msgtype))
        return out
    finally:
        reader.close()


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """
    Run the detector over one synthetic bag.

    With history (+ results and evaluation) and without.
    """
    folder = tmp_path_factory.mktemp('infer')
    bag = write_scene_bag(
        folder / 'val_2.mcap',
        seed=2,
        frames=FRAMES,
        rate=2.0,
        width=160,
        height=90,
        progress=False,
    ).path
    results = folder / 'val_2.results.json'
    code = infer_bag.main(
        [
            str(bag),
            str(folder / 'out.mcap'),
            *MODEL_ARGS,
            '--results-json',
            str(results),
            '--eval',
            '--eval-out',
            str(folder / 'eval'),
            '--quiet',
        ]
    )
    code_nohist = infer_bag.main(
        [
            str(bag),
            str(folder / 'nohist.mcap'),
            *MODEL_ARGS,
            '--no-history',
            '--copy-inputs',
            '--quiet',
        ]
    )
    return {
        'bag': bag,
        'out': folder / 'out.mcap',
        'nohist': folder / 'nohist.mcap',
        'results': results,
        'eval': folder / 'eval',
        'codes': (code, code_nohist),
        'folder': folder,
    }


def _image_stamps(bag) -> list[int]:
    return sorted(header_stamp_ns(raw) for _, raw, _ in _topics(bag)['/CAM_FRONT/image_raw'])


def test_one_marker_array_per_frame_with_the_image_stamp(runs):
    assert runs['codes'] == (0, 0)
    topics = _topics(runs['out'])
    assert set(topics) == {'/bevformer/markers', '/bevformer/bev_features', '/bevformer/bev_image'}
    stamps = _image_stamps(runs['bag'])
    assert len(stamps) == FRAMES
    markers = [deserialize(raw, kind) for _, raw, kind in topics['/bevformer/markers']]
    assert [marker_array_stamp_ns(m) for m in markers] == stamps
    assert [record for record, _, _ in topics['/bevformer/markers']] == stamps
    assert all(
        m.markers[0].action == 3 and m.markers[0].header.frame_id == 'LIDAR_TOP' for m in markers
    )
    for _, raw, kind in topics['/bevformer/bev_features']:
        # the test model's BEV
        assert bev_features_array(deserialize(raw, kind)).shape == (10, 10, 32)
    encodings = [
        deserialize(raw, kind).encoding for _, raw, kind in topics['/bevformer/bev_image']
    ]
    assert encodings == ['rgb8'] * FRAMES


def _global_centres(boxes: Boxes, lidar2ego, ego_translation, ego_rotation_wxyz) -> np.ndarray:
    """Box centres in the global frame the way the official converter moves them (devkit Box)."""
    centres = []
    for x, y, z_bottom, w, length, h, yaw, *_ in boxes.boxes:
        heading = Quaternion(axis=[0, 0, 1], radians=-yaw - np.pi / 2)
        box = Box([x, y, z_bottom + h / 2], [w, length, h], heading)
        box.rotate(Quaternion(matrix_to_quat_wxyz(lidar2ego.rotation)))
        box.translate(lidar2ego.translation)
        box.rotate(Quaternion(ego_rotation_wxyz))
        box.translate(np.asarray(ego_translation))
        centres.append(box.center)
    return np.array(centres).reshape(-1, 3)


def test_results_json_places_the_markers_at_the_ground_truth_ego_poses(runs):
    doc = json.loads(runs['results'].read_text())
    assert doc['meta']['use_camera'] is True
    frames, _ = read_ground_truth(runs['bag'].with_suffix('.ground_truth.json'))
    scene = scene_name(runs['bag'])
    assert set(doc['results']) == {sample_token(scene, f.stamp_ns) for f in frames}
    # what bevformer_synth rendered with
    lidar2ego = load_rig(config_file('nuscenes_rig.yaml')).lidar2ego
    markers = {
        marker_array_stamp_ns(m): boxes_from_marker_array(m)
        for m in (
            deserialize(raw, kind) for _, raw, kind in _topics(runs['out'])['/bevformer/markers']
        )
    }
    checked = 0
    for frame in frames:
        entries = doc['results'][sample_token(scene, frame.stamp_ns)]
        assert entries and all(
            e['sample_token'] == sample_token(scene, frame.stamp_ns) for e in entries
        )
        centres = _global_centres(
            markers[frame.stamp_ns], lidar2ego, frame.ego_translation, frame.ego_rotation_wxyz
        )
        for entry in entries[:5]:  # the best ones, all drawn as markers (score >= 0.3)
            if entry['detection_score'] >= 0.3:
                assert np.min(np.linalg.norm(centres - entry['translation'], axis=1)) < 1e-6
                checked += 1
    assert checked > 0


def test_devkit_metrics_come_back(runs):
    summary = json.loads((runs['eval'] / 'metrics_summary.json').read_text())
    assert 0.0 <= summary['mean_ap'] <= 1.0 and 0.0 <= summary['nd_score'] <= 1.0
    assert set(summary['tp_errors']) == {
        'trans_err',
        'scale_err',
        'orient_err',
        'vel_err',
        'attr_err',
    }
    print({k: summary[k] for k in ('mean_ap', 'nd_score', 'tp_errors')})


def test_eval_cli_gives_the_same_metrics(runs, capsys):
    out = runs['folder'] / 'eval_cli'
    assert (
        eval_tool.main([str(runs['results']), '--bags', str(runs['bag']), '--out', str(out)]) == 0
    )
    text = capsys.readouterr().out
    assert 'mAP' in text and 'NDS' in text and 'recall within 2 m' in text
    summary = json.loads((out / 'metrics_summary.json').read_text())
    reference = json.loads((runs['eval'] / 'metrics_summary.json').read_text())
    assert (
        summary['mean_ap'] == reference['mean_ap'] and summary['nd_score'] == reference['nd_score']
    )


def test_no_history_differs_from_history_after_the_first_frame(runs):
    def bev(path):
        return [
            bev_features_array(deserialize(raw, kind))
            for _, raw, kind in _topics(path)['/bevformer/bev_features']
        ]

    with_history, without = bev(runs['out']), bev(runs['nohist'])
    assert len(with_history) == len(without) == FRAMES
    np.testing.assert_array_equal(with_history[0], without[0])  # both start without history
    for k in range(1, FRAMES):
        assert np.abs(with_history[k] - without[k]).max() > 1e-3


def test_copied_inputs_make_the_output_bag_renderable_alone(runs):
    frames = BagFrames([runs['nohist']])
    assert frames.frame_stamps == _image_stamps(runs['bag'])
    assert frames.detections_topic == '/bevformer/markers'
    assert sorted(frames.detections) == frames.frame_stamps


def test_bad_paths_and_parameters_are_named(runs, tmp_path, capsys):
    garbage = tmp_path / 'garbage.mcap'
    garbage.write_text('not a bag')
    cases = [
        ([str(tmp_path / 'missing.mcap'), str(tmp_path / 'o.mcap')], 'bag not found'),
        ([str(tmp_path / 'missing.mcap'), str(tmp_path / 'o.mcap'), '--eval'], 'bag not found'),
        ([str(garbage), str(tmp_path / 'o.mcap')], 'cannot read bag'),
        ([str(runs['bag']), str(runs['out'])], 'exists already'),
        ([str(runs['bag']), str(runs['bag']), '--force'], 'differ'),
        (
            [str(runs['bag']), str(tmp_path / 'o.mcap'), '--params', str(tmp_path / 'none.yaml')],
            'none.yaml',
        ),
        ([str(runs['bag']), str(tmp_path / 'o.mcap'), '-p', 'model.device:=gpu'], 'model.device'),
        ([str(runs['bag']), str(tmp_path / 'o.mcap'), '-p', 'model.seed'], 'NAME:=VALUE'),
        ([str(runs['out']), str(tmp_path / 'o.mcap'), '--eval'], 'needs the ground truth'),
    ]
    for argv, message in cases:
        assert infer_bag.main(argv) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / 'o.mcap').exists()
    with pytest.raises(BagError, match='no ground truth'):
        eval_tool.scene_truth(tmp_path / 'recorded.mcap')
    assert eval_tool.main([str(tmp_path / 'none.json'), '--bags', str(runs['bag'])]) == 2
    assert 'cannot read results' in capsys.readouterr().err


def test_help_says_what_is_written(capsys):
    with pytest.raises(SystemExit) as exit_info:
        infer_bag.main(['--help'])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for phrase in (
        '/bevformer/markers',
        'vision_msgs',
        '--no-history',
        '--results-json',
        'bevformer_render',
    ):
        assert phrase in text

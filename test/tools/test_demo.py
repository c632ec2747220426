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
`make demo` end to end, at test size.

Synthetic bag -> node process over DDS -> outputs bag and pictures.

The toy preset (bevformer_ros.model.small_model: tiny's architecture at toy sizes) and 320x180
images keep it to seconds of model time; the rest (scene, node process, replay, recording,
pictures) is the real demo. The trained-weights path runs a checkpoint the real trainer wrote
(smoke preset) in place of demo_small's.
"""

from __future__ import annotations

import os
import subprocess
import sys

from bevformer_ros.ros.process import child_env
from bevformer_ros.synth.ground_truth_file import ground_truth_path, read_ground_truth
from optional_deps import lazy, requires
import pytest
from smoke_checkpoint import train_smoke_checkpoint

Reader = lazy('rosbags.rosbag2', 'Reader')
_rosbags = requires('rosbags')

pytestmark = pytest.mark.dds  # the demo runs the node over DDS
FRAMES = 3
HANG_S = 300  # a hang guard, not a speed goal: the demo's speed is bench_node's business


def test_demo_runs_the_node_on_a_synthetic_scene_and_writes_pictures(tmp_path):
    Image = pytest.importorskip('PIL.Image')
    out = tmp_path / 'demo'
    env = child_env(dict(os.environ, ROS_LOG_DIR=str(tmp_path / 'ros_log')))
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'bevformer_ros.tools.demo',
            '--preset',
            'toy',
            '--frames',
            str(FRAMES),
            '--width',
            '320',
            '--height',
            '180',
            '--out',
            str(out),
            '--frame-timeout',
            '30',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log + (out / 'bevformer_node.log').read_text(errors='replace')
    assert f'frames in: {FRAMES} (6 x 320x180 rgb8 each), frames out: {FRAMES}' in log
    assert 'RANDOM WEIGHTS' in log  # honest about the weights

    bag = out / f'scene_seed0_320x180_{FRAMES}f.mcap'
    stamps = [f.stamp_ns for f in read_ground_truth(ground_truth_path(bag))[0]]
    with Reader(out / 'outputs.mcap') as reader:
        topics = {c.topic for c in reader.connections}
        markers = [t for c, t, _ in reader.messages() if c.topic == '/bevformer/markers']
    assert {'/bevformer/markers', '/bevformer/bev_features'} <= topics
    assert markers == stamps  # one MarkerArray per frame, recorded at its image stamp

    pictures = sorted(out.glob('frame_*.png'))
    assert [p.name for p in pictures] == [f'frame_{i:04d}.png' for i in range(FRAMES)]
    assert Image.open(pictures[0]).size == (3 * 480 + 2 * 270, 2 * 270)


def test_demo_with_trained_weights_says_so_and_renders_a_held_out_scene(tmp_path):
    checkpoint = train_smoke_checkpoint(tmp_path / 'run')
    out = tmp_path / 'demo'
    env = child_env(dict(os.environ, ROS_LOG_DIR=str(tmp_path / 'ros_log')))
    result = subprocess.run(
        [
            sys.executable,
            '-m',
            'bevformer_ros.tools.demo',
            '--preset',
            'demo_small',
            '--checkpoint',
            str(checkpoint),
            '--frames',
            '2',
            '--width',
            '160',
            '--height',
            '90',
            '--out',
            str(out),
            '--frame-timeout',
            '30',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log + (out / 'bevformer_node.log').read_text(errors='replace')
    assert 'frames in: 2 (6 x 160x90 rgb8 each), frames out: 2' in log
    assert (
        'trained demo_small weights (synthetic scenes, see README)' in log and 'RANDOM' not in log
    )
    assert (out / 'scene_seed1000_160x90_2f.mcap').exists()  # a seed training never used
    node_log = (out / 'bevformer_node.log').read_text(errors='replace')
    assert 'model architecture: the one stored in' in node_log and 'RANDOM' not in node_log

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
Every tool that runs the model takes --checkpoint and builds through model.build (no DDS here).

The shipped demo_small checkpoint is named by its bare file name, as a user would; its stored
architecture (400x225 training size, 30x30 BEV) replaces the tool's preset.
"""

from __future__ import annotations

import json

from bevformer_ros.config import NodeConfig
from bevformer_ros.model.build import build_model
from bevformer_ros.model.checkpoint import save_checkpoint
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.model.small_model import SMALL_IMAGE_HEIGHT, SMALL_IMAGE_WIDTH
from bevformer_ros.tools import bench_model, bench_node, bench_pipeline, soak, train
from bevformer_ros.tools.demo import TRAINED_MODEL
from bevformer_ros.tools.synth import write_scene_bag
from bevformer_ros.train.presets import smoke
import pytest

SIZE = {'width': SMALL_IMAGE_WIDTH, 'height': SMALL_IMAGE_HEIGHT}


@pytest.fixture(scope='module')
def shipped_cfg():
    return build_model(NodeConfig.from_parameters({'model.checkpoint': TRAINED_MODEL}).model).cfg


def test_bench_model_runs_the_checkpoint_architecture(capsys, shipped_cfg):
    argv = ['--device', 'cpu', '--iters', '1', '--warmup', '0', '--image-hw', '90', '160']
    assert bench_model.main([*argv, '--checkpoint', TRAINED_MODEL, '--json']) == 0
    result = json.loads(capsys.readouterr().out)
    head = shipped_cfg.head
    assert result['bev_hw'] == [head.bev_h, head.bev_w] and result['custom_config']
    assert bench_model.main([*argv, '--checkpoint', 'no_such_weights.pth']) == 2
    assert "checkpoint 'no_such_weights.pth'" in capsys.readouterr().err


def test_bench_node_names_a_missing_checkpoint_before_starting_anything(capsys):
    assert bench_node.main(['--checkpoint', 'no_such_weights.pth', '--seconds', '1']) == 2
    err = capsys.readouterr().err
    assert err.startswith("bevformer_bench_node: checkpoint 'no_such_weights.pth'"), err
    assert 'Traceback' not in err and "generator didn't stop" not in err


def test_bench_pipeline_and_bench_node_forward_load_the_checkpoint():
    report = bench_pipeline.benchmark(
        'small-test', 'cpu', checkpoint=TRAINED_MODEL, frames=1, warmup=1, **SIZE
    )
    assert report['stages']['model']['median_ms'] > 0
    (forward,) = bench_node.bare_forward_ms(
        'small-test', 'cpu', 'fp32', SMALL_IMAGE_WIDTH, SMALL_IMAGE_HEIGHT, 1, TRAINED_MODEL
    )
    assert forward > 0
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        bench_node.bare_forward_ms(
            'small-test', 'cpu', 'fp32', 160, 90, 1, checkpoint='no_such_weights.pth'
        )


def test_train_starts_from_the_weights_of_checkpoint(tmp_path, capsys):
    bag = write_scene_bag(
        tmp_path / 'scene.mcap', seed=3, frames=3, rate=2.0, progress=False, **SIZE
    ).path
    start = tmp_path / 'start.pth'
    save_checkpoint(build_bevformer(smoke().model), start)
    argv = [str(bag), '--preset', 'smoke', '--iters', '1', '--out', str(tmp_path / 'run')]
    assert train.main([*argv, '--checkpoint', str(start)]) == 0
    assert train.main([*argv, '--load-from', str(start)]) == 0  # the older spelling
    capsys.readouterr()
    assert train.main([*argv, '--checkpoint', TRAINED_MODEL]) == 2  # demo_small: another size
    assert 'does not fit the model' in capsys.readouterr().err


def test_soak_without_ros_runs_the_checkpoint(capsys, shipped_cfg):
    argv = ['--no-ros', '--frames', '2', '--report-every', '2', '--device', 'cpu']
    assert soak.main([*argv, '--checkpoint', TRAINED_MODEL]) == 0
    assert 'soak --no-ros: 2 frames' in capsys.readouterr().out
    pipeline, _ = soak._build_pipeline('small-test', 'cpu', TRAINED_MODEL)
    assert pipeline.cfg == shipped_cfg and pipeline.built.checkpoint.name == TRAINED_MODEL
    with pytest.raises(FileNotFoundError, match='checkpoint'):
        soak.main([*argv, '--checkpoint', 'no_such_weights.pth'])

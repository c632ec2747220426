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

"""NodeConfig: flat ROS parameters -> typed config, one clear error per bad value."""

from __future__ import annotations

from bevformer_ros.config import (
    default_parameters,
    is_runtime_parameter,
    NodeConfig,
    NodeConfigError,
    OFFICIAL_CAMERAS,
    PARAMETERS,
)
from bevformer_ros.data.params_file import flatten
import pytest
import yaml


def test_defaults_build_the_documented_values():
    cfg = NodeConfig.from_parameters({})
    assert cfg.model.preset == 'tiny' and cfg.model.checkpoint == '' and cfg.model.device == 'auto'
    assert cfg.cameras.names == OFFICIAL_CAMERAS
    assert cfg.cameras.image_topics[1] == 'CAM_FRONT_RIGHT/image_raw'
    assert cfg.qos.reliability == 'best_effort'
    assert cfg.temporal.max_gap_s == 1.5 and cfg.temporal.enabled
    assert cfg.outputs.frame_id == 'LIDAR_TOP'
    assert cfg.calibration.rig_yaml == 'nuscenes_rig.yaml'
    assert not cfg.model.overrides.any()
    assert NodeConfig.from_parameters(default_parameters()) == cfg


def test_values_reach_the_right_fields_and_ints_become_floats():
    cfg = NodeConfig.from_parameters(
        {
            'sync.slop': 1,
            'sync.queue_size': 7,
            'model.embed_dims': 32,
            'model.bev_size': 10,
            'cameras.compressed': True,
            'ego_motion.source': 'tf',
            'outputs.bev_image_mode': 'pca',
        }
    )
    assert cfg.sync.slop == 1.0 and isinstance(cfg.sync.slop, float)
    assert cfg.sync.queue_size == 7
    assert cfg.model.overrides.embed_dims == 32 and cfg.model.overrides.bev_size == 10
    assert cfg.model.overrides.any()
    assert cfg.ego_motion.source == 'tf' and cfg.outputs.bev_image_mode == 'pca'
    assert cfg.cameras.subscribed_image_topics()[0] == 'CAM_FRONT/image_raw/compressed'


@pytest.mark.parametrize(
    ('name', 'value', 'hint'),
    [
        ('model.preset', 'huge', 'tiny, small, base'),
        ('model.device', 'gpu', 'cuda:N'),
        ('model.fp16', 'yes', 'true or false'),
        ('model.embed_dims', 30, 'multiple of 8'),
        ('sync.slop', -0.1, 'finite number'),
        ('sync.slop', float('nan'), 'finite number'),
        ('sync.queue_size', 0, 'integer in [1, 50]'),
        ('sync.queue_size', 2.5, 'integer'),
        ('qos.reliability', 'RELIABLE', 'best_effort, reliable'),
        ('ego_motion.source', 'gps', 'odom, tf, none'),
        ('outputs.score_threshold', 1.5, '[0.0, 1.0]'),
        ('outputs.frame_id', '', 'non-empty string'),
        ('cameras.names', ['CAM_FRONT'] * 6, 'distinct camera names'),
        ('cameras.image_topics', ['a', 'b'], 'list of 6 non-empty strings'),
        ('temporal.max_gap_s', 0.0, 'finite number'),
        ('diagnostics.period_s', 0.0, 'finite number'),
    ],
)
def test_each_bad_value_names_its_parameter_and_the_allowed_values(name, value, hint):
    with pytest.raises(NodeConfigError) as err:
        NodeConfig.from_parameters({name: value})
    assert err.value.name == name
    assert name in str(err.value) and hint in str(err.value)


def test_unknown_parameter_is_rejected_with_close_names():
    with pytest.raises(NodeConfigError, match=r"'sync.slope'.*sync.slop"):
        NodeConfig.from_parameters({'sync.slope': 0.1})


def test_parameter_table_is_complete_and_documented():
    names = [p.name for p in PARAMETERS]
    assert len(names) == len(set(names))
    assert all(len(p.description) > 20 for p in PARAMETERS)
    assert is_runtime_parameter('outputs.score_threshold')
    assert not is_runtime_parameter('model.preset') and not is_runtime_parameter('nope')


@pytest.mark.parametrize('preset', ['tiny', 'small', 'base'])
def test_shipped_yaml_sets_only_known_parameters_and_validates(preset):
    from bevformer_ros.resources import config_file

    with open(config_file(f'bevformer_{preset}.yaml')) as f:
        doc = yaml.safe_load(f)
    params = flatten(doc['/**']['ros__parameters'])
    assert set(params) == {p.name for p in PARAMETERS}  # every parameter is listed and described
    assert NodeConfig.from_parameters(params).model.preset == preset

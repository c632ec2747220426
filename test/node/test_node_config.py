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

from dataclasses import fields, is_dataclass
from pathlib import Path

from bevformer_ros.config import (
    default_parameters,
    is_runtime_parameter,
    NodeConfig,
    NodeConfigError,
    OFFICIAL_CAMERAS,
    PARAMETERS,
    PRESETS,
)
from bevformer_ros.data.params_file import read_params_file
import pytest

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'config'
# Every parameter file in config/: all YAML there but the camera rig.
PARAMS_FILES = sorted(
    p for p in CONFIG_DIR.glob('*.yaml') if p.name != NodeConfig().calibration.rig_yaml
)


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
        ('cameras.compressed', 'yes', 'true or false'),
        ('model.precision', 'fp64', 'fp32, bf16, fp16'),
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


def _leaf_values(settings, prefix=''):
    """`{dotted field path: value}` of a settings tree (groups nested by their field names)."""
    out = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if is_dataclass(value):
            out.update(_leaf_values(value, f'{prefix}{f.name}.'))
        else:
            out[f'{prefix}{f.name}'] = value
    return out


def test_every_config_field_is_a_parameter_with_that_default():
    fields_ = _leaf_values(NodeConfig())
    # the size overrides live in ModelSettings.overrides but are named model.<name> in ROS
    flat = {k.replace('model.overrides.', 'model.'): v for k, v in fields_.items()}
    defaults = {k: tuple(v) if isinstance(v, list) else v for k, v in default_parameters().items()}
    assert flat == defaults
    assert list(default_parameters()) == [p.name for p in PARAMETERS]


def test_every_parameter_refuses_a_value_of_the_wrong_kind_naming_what_it_accepts():
    for p in PARAMETERS:
        wrong = 'x' if not isinstance(p.default, str) else 17
        with pytest.raises(NodeConfigError) as err:
            NodeConfig.from_parameters({p.name: wrong})
        assert err.value.name == p.name and str(err.value).endswith(err.value.allowed)
        assert err.value.allowed  # says what the parameter accepts


def test_constraints_say_which_parameters_wait_for_configure():
    by_name = {p.name: p for p in PARAMETERS}
    assert by_name['sync.slop'].constraints == (
        'a finite number in [0.001, 5.0]; applies at configure'
    )
    assert by_name['outputs.score_threshold'].constraints == 'a finite number in [0.0, 1.0]'
    assert by_name['model.preset'].check.ros_type == 'string'
    assert by_name['cameras.names'].check.ros_type == 'string[]'


def test_config_directory_holds_the_shipped_parameter_files():
    names = {p.name for p in PARAMS_FILES}
    assert {f'bevformer_{preset}.yaml' for preset in PRESETS} | {
        'bevformer_demo_small.yaml'
    } <= names


@pytest.mark.parametrize('path', PARAMS_FILES, ids=lambda p: p.name)
def test_params_file_sets_only_known_parameters_that_differ_from_their_defaults(path):
    params = read_params_file(path)
    defaults = default_parameters()
    assert params and set(params) <= set(defaults), set(params) - set(defaults)
    # A preset file names its preset even where it is the default, so that it keeps its meaning.
    named_preset = path.stem.removeprefix('bevformer_')
    same = {
        name
        for name, value in params.items()
        if value == defaults[name] and not (name == 'model.preset' and value == named_preset)
    }
    assert not same, f'{path.name} repeats defaults: {sorted(same)}'
    cfg = NodeConfig.from_parameters(params)
    if named_preset in PRESETS:
        assert cfg.model.preset == named_preset

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

"""ROS 2 parameter files and -p overrides for the offline tools."""

from __future__ import annotations

from bevformer_ros.config import default_parameters, NodeConfig
from bevformer_ros.data.params_file import (
    flatten,
    ParamsError,
    parse_overrides,
    read_params_file,
    write_params_file,
)
from bevformer_ros.resources import config_file
import pytest
import yaml


@pytest.mark.parametrize('preset', ['tiny', 'small'])
def test_shipped_files_read_as_flat_node_parameters(preset):
    params = read_params_file(config_file(f'bevformer_{preset}.yaml'))
    assert params == {'model.preset': preset}  # the rest keep their defaults
    cfg = NodeConfig.from_parameters(params)
    assert cfg.model.preset == preset and cfg.sync.slop == default_parameters()['sync.slop']


def test_shipped_demo_file_reads_its_checkpoint():
    params = read_params_file(config_file('bevformer_demo_small.yaml'))
    assert params == {'model.checkpoint': 'bevformer_demo_small.pth'}


def test_sections_of_this_node_only(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text(
        '/**:\n  ros__parameters:\n    model: {preset: small, seed: 1}\n'
        'other_node:\n  ros__parameters:\n    model: {seed: 9}\n'
        '/bevformer:\n  ros__parameters:\n    model: {seed: 2}\n    cameras: {names: [a, b]}\n'
    )
    assert read_params_file(path) == {
        'model.preset': 'small',
        'model.seed': 2,
        'cameras.names': ['a', 'b'],
    }


def test_overrides_are_yaml_values():
    items = [
        'model.seed:=3',
        'cameras.compressed:=true',
        'model.device:=cpu',
        'outputs.frame_id:=',
    ]
    assert parse_overrides(items) == {
        'model.seed': 3,
        'cameras.compressed': True,
        'model.device': 'cpu',
        'outputs.frame_id': '',
    }
    assert flatten({'a': {'b': {'c': 1}, 'd': [1, 2]}}) == {'a.b.c': 1, 'a.d': [1, 2]}


@pytest.mark.parametrize(
    'text', ['', 'model: {preset: tiny}\n', '/**: {ros__parameters: 3}\n', ': : :\n']
)
def test_files_without_parameters_are_named(tmp_path, text):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(ParamsError, match='bad.yaml'):
        read_params_file(path)


def test_bad_inputs_name_the_fix(tmp_path):
    with pytest.raises(ParamsError, match='cannot read'):
        read_params_file(tmp_path / 'missing.yaml')
    with pytest.raises(ParamsError, match='NAME:=VALUE'):
        parse_overrides(['model.seed=3'])


def test_a_written_parameter_file_reads_back_as_the_same_flat_parameters(tmp_path):
    flat = {
        'model.preset': 'tiny',
        'model.seed': 3,
        'sync.slop': 0.05,
        'outputs.frame_id': 'LIDAR_TOP',
        'autostart': True,
        'cameras.topics': ['/a', '/b'],
    }
    path = write_params_file(tmp_path / 'p.yaml', flat)
    assert read_params_file(path) == flat
    tree = yaml.safe_load(path.read_text())['/**']['ros__parameters']
    assert tree['model'] == {'preset': 'tiny', 'seed': 3}

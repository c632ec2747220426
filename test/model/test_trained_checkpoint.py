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
Bare checkpoint names resolve to the package's models/ folder; the demo finds its weights.

The demo picks the shipped demo_small weights when they exist (the architecture a checkpoint
stores: test_build.py).
"""

from __future__ import annotations

from pathlib import Path

from bevformer_ros import resources
from bevformer_ros.config import NodeConfig, PARAMETERS
from bevformer_ros.data.params_file import flatten
from bevformer_ros.tools import demo
import pytest
from smoke_checkpoint import train_smoke_checkpoint
import yaml


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return train_smoke_checkpoint(tmp_path_factory.mktemp('run'))


def _fake_install(prefix, files):
    marker = prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / 'bevformer_ros'
    marker.parent.mkdir(parents=True)
    marker.write_text('')
    for relative, data in files.items():
        path = prefix / 'share' / 'bevformer_ros' / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_a_bare_checkpoint_name_is_a_shipped_model_then_a_local_file(monkeypatch, tmp_path):
    install, work = tmp_path / 'install', tmp_path / 'work'
    _fake_install(install, {'models/shipped_weights.pth': b'PK'})
    work.mkdir()
    (work / 'local_weights.pth').write_bytes(b'PK')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(install))
    monkeypatch.chdir(work)
    share_models = install / 'share' / 'bevformer_ros' / 'models'
    assert resources.checkpoint_path('shipped_weights.pth') == share_models / 'shipped_weights.pth'
    assert resources.checkpoint_path('local_weights.pth') == Path('local_weights.pth')
    # as given
    assert resources.checkpoint_path('./shipped_weights.pth') == Path('./shipped_weights.pth')
    assert resources.checkpoint_path('/data/x.pth') == Path('/data/x.pth')
    with pytest.raises(resources.ResourceNotFoundError) as error:
        resources.checkpoint_path('no_such_weights.pth')
    message = str(error.value)
    assert str(share_models / 'no_such_weights.pth') in message and str(work) in message
    assert 'full path' in message
    assert 'shipped_weights.pth' in message  # names what ships, for a mistyped name


def test_demo_small_params_file_loads_the_shipped_model_by_its_bare_name():
    with open(resources.config_file('bevformer_demo_small.yaml')) as f:
        doc = yaml.safe_load(f)
    params = flatten(doc['/**']['ros__parameters'])
    assert set(params) <= {p.name for p in PARAMETERS}
    cfg = NodeConfig.from_parameters(params)
    assert cfg.model.checkpoint == demo.TRAINED_MODEL and '/' not in cfg.model.checkpoint


def _demo_args(argv, shipped):
    args = demo.build_parser().parse_args(argv)
    demo.apply_defaults(args, shipped)
    return args


def test_demo_runs_the_shipped_weights_on_a_held_out_scene_at_their_training_size(tmp_path):
    shipped = tmp_path / 'bevformer_demo_small.pth'
    shipped.write_bytes(b'PK')
    args = _demo_args([], shipped)
    assert args.preset == 'demo_small' and not args.checkpoint
    assert (args.width, args.height) == (400, 225)  # presets.demo_small: 400 px wide, 16:9
    assert args.seed >= 1000  # training used scene seeds 0-5, validation 100-101
    assert demo.trained(args) and demo.weights_label(args) == str(shipped)
    assert _demo_args(['--width', '800', '--seed', '7'], shipped).width == 800


def test_demo_falls_back_to_random_tiny_weights_when_nothing_ships():
    args = _demo_args([], None)
    assert (args.preset, args.width, args.height, args.seed, args.frames) == (
        'tiny',
        1600,
        900,
        0,
        6,
    )
    assert not demo.trained(args) and demo.weights_label(args) == 'random'
    with pytest.raises(ValueError, match='--checkpoint'):
        _demo_args(['--preset', 'demo_small'], None)


def test_demo_small_with_an_explicit_checkpoint_needs_no_shipped_file(trained):
    args = _demo_args(['--preset', 'demo_small', '--checkpoint', str(trained)], None)
    assert demo.trained(args) and demo.weights_label(args) == str(trained)
    assert (args.width, args.height) == (400, 225)


def test_demo_takes_a_bare_checkpoint_name_as_the_node_does():
    args = _demo_args(['--preset', 'demo_small', '--checkpoint', demo.TRAINED_MODEL], None)
    assert demo.trained(args) and args.checkpoint == demo.TRAINED_MODEL
    with pytest.raises(ValueError, match='no such file'):
        _demo_args(['--checkpoint', 'no_such_weights.pth'], None)

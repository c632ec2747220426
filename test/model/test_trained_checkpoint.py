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
Project-trained checkpoints name their architecture; official ones leave it to the preset; bare checkpoint
names resolve to the package's models/ folder; the demo picks the shipped demo_small weights when
they exist.
"""

from __future__ import annotations

from pathlib import Path

from bevformer_ros import resources
from bevformer_ros.config import NodeConfig, PARAMETERS
from bevformer_ros.data.params_file import flatten
from bevformer_ros.model.checkpoint import CheckpointError, save_checkpoint
from bevformer_ros.model.checkpoint_config import config_from_checkpoint
from bevformer_ros.model.config import preset
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.pipeline import build_model, choose_model, model_config
from bevformer_ros.tools import demo
from bevformer_ros.train.presets import smoke
import pytest
from smoke_checkpoint import train_smoke_checkpoint
import torch
import yaml

# What mmcv's save_checkpoint puts in meta: the config file as text, the class names, the epoch.
OFFICIAL_META = {
    'mmcv_version': '1.4.0',
    'config': "model = dict(type='BEVFormer', use_grid_mask=True)\n",
    'CLASSES': ('car', 'truck'),
    'epoch': 24,
    'iter': 84408,
}


class NotATensor:
    """Any pickled class: a file holding one needs code to unpickle."""


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return train_smoke_checkpoint(tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='module')
def smoke_model():
    return build_bevformer(smoke().model)


def _settings(**params):
    return NodeConfig.from_parameters({f'model.{k}': v for k, v in params.items()}).model


def test_a_checkpoint_from_the_trainer_names_its_architecture(trained):
    assert config_from_checkpoint(trained) == smoke().model
    assert smoke().model not in (preset('tiny'), preset('small'), preset('base'))


def test_the_node_settings_build_the_checkpoint_architecture_and_load_its_weights(trained):
    choice = choose_model(_settings(preset='base', checkpoint=str(trained), embed_dims=64))
    assert choice.from_checkpoint and choice.cfg == smoke().model and choice.checkpoint == trained
    assert choice.ignored == ('model.preset=base', 'model.embed_dims')
    model = build_model(choice.cfg, torch.device('cpu'), choice.checkpoint)
    saved = torch.load(trained, weights_only=True)['state_dict']
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)


def test_a_legacy_format_file_is_read_in_full(trained, tmp_path):
    legacy = tmp_path / 'legacy.pth'
    torch.save(
        torch.load(trained, weights_only=True), legacy, _use_new_zipfile_serialization=False
    )
    assert config_from_checkpoint(legacy) == smoke().model  # mmap needs the zip format: plain read


@pytest.mark.parametrize('wrap', ['official_meta', 'no_meta', 'bare_state_dict'])
def test_official_checkpoints_leave_the_architecture_to_the_preset(tmp_path, smoke_model, wrap):
    path = tmp_path / 'official.pth'
    if wrap == 'bare_state_dict':
        torch.save(smoke_model.state_dict(), path)
    else:
        save_checkpoint(smoke_model, path, OFFICIAL_META if wrap == 'official_meta' else None)
    assert config_from_checkpoint(path) is None
    choice = choose_model(_settings(preset='tiny', checkpoint=str(path)))
    assert not choice.from_checkpoint and choice.cfg == preset('tiny') and choice.ignored == ()


def test_a_stored_architecture_this_version_cannot_build_is_named(tmp_path, smoke_model):
    path = tmp_path / 'future.pth'
    meta = {'config': {'model': {'head': {'embed_dims': 32, 'moe_experts': 4}}}, 'iter': 1}
    save_checkpoint(smoke_model, path, meta)
    with pytest.raises(
        CheckpointError, match=r'moe_experts.*cannot build it|cannot build it.*moe_experts'
    ):
        config_from_checkpoint(path)


def test_unreadable_checkpoints_keep_their_messages(tmp_path, smoke_model):
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        config_from_checkpoint(tmp_path / 'missing.pth')
    page = tmp_path / 'page.pth'
    page.write_bytes(b'<!DOCTYPE html><html>404</html>')
    with pytest.raises(CheckpointError, match='HTML page'):
        config_from_checkpoint(page)
    truncated = tmp_path / 'truncated.pth'
    save_checkpoint(smoke_model, truncated, {'config': {'model': {}}})
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        config_from_checkpoint(truncated)
    unsafe = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': smoke_model.state_dict(), 'meta': {'config': NotATensor()}}, unsafe)
    with pytest.raises(CheckpointError, match='refusing to load'):
        config_from_checkpoint(unsafe)


def test_random_weights_keep_the_preset_and_its_overrides():
    assert model_config(_settings(preset='small')) == preset('small')
    assert choose_model(_settings(preset='tiny', bev_size=20)).cfg.head.bev_h == 20


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
    assert resources.checkpoint_path('./shipped_weights.pth') == Path(
        './shipped_weights.pth'
    )  # as given
    assert resources.checkpoint_path('/data/x.pth') == Path('/data/x.pth')
    with pytest.raises(resources.ResourceNotFoundError) as error:
        resources.checkpoint_path('no_such_weights.pth')
    message = str(error.value)
    assert str(share_models / 'no_such_weights.pth') in message and str(work) in message
    assert 'full path' in message


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


def test_the_default_preset_is_not_reported_as_ignored(trained):
    # config/bevformer_demo_small.yaml sets no preset: the default should not show up as "ignored".
    choice = choose_model(_settings(checkpoint=str(trained)))
    assert choice.from_checkpoint and choice.ignored == ()

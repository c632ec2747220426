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
The one model builder: architecture choice, one read of the checkpoint, strict loading, engine.

Checkpoints are real files written here: by the real trainer (smoke preset), by `save_checkpoint`
in the official layout, or broken on purpose.
"""

from __future__ import annotations

import builtins
import io
import json
import os
from pathlib import Path

from bevformer_ros.config import NodeConfig
from bevformer_ros.model.build import (
    build_detector,
    build_engine,
    build_model,
    configured_architecture,
    load_weights,
    node_checkpoint_arguments,
    resolve_device,
)
from bevformer_ros.model.checkpoint import CheckpointError, save_checkpoint
from bevformer_ros.model.config import from_official_config, preset
from bevformer_ros.model.detector import build_bevformer
from bevformer_ros.model.engines.torch_engine import TorchEngine
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.pipeline import Pipeline
from bevformer_ros.resources import model_file
from bevformer_ros.train.presets import smoke
import pytest
from reference_fixtures import REFERENCE, require
from smoke_checkpoint import train_smoke_checkpoint
import torch

CPU = torch.device('cpu')
# What mmcv's save_checkpoint puts in meta: the config file as text, the class names, the epoch.
OFFICIAL_META = {
    'mmcv_version': '1.4.0',
    'config': "model = dict(type='BEVFormer', use_grid_mask=True)\n",
    'CLASSES': ('car', 'truck'),
    'epoch': 24,
    'iter': 84408,
}


class RunsCodeWhenUnpickled:
    """What a malicious checkpoint holds: unpickling it would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return train_smoke_checkpoint(tmp_path_factory.mktemp('run'))


@pytest.fixture(scope='module')
def small():
    """Return the node settings of the seconds-fast test model (random weights)."""
    return NodeConfig.from_parameters(small_model_parameters()).model


def _settings(**params):
    return NodeConfig.from_parameters({f'model.{k}': v for k, v in params.items()}).model


def _small_with(**params):
    extra = {f'model.{k}': v for k, v in params.items()}
    return NodeConfig.from_parameters({**small_model_parameters(), **extra}).model


def _assert_same_weights(model, state_dict):
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state_dict[key], rtol=0, atol=0)


def _count_opens(monkeypatch, path):
    """Record every open() of `path` (pathlib and torch go through io.open / builtins.open)."""
    opened = []
    real_open, target = io.open, Path(path).resolve()

    def counting_open(file, *args, **kwargs):
        if isinstance(file, str | os.PathLike) and Path(file).resolve() == target:
            opened.append(file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(io, 'open', counting_open)
    monkeypatch.setattr(builtins, 'open', counting_open)
    return opened


# ----------------------------------------------------------------------------- stored architecture
def test_a_trained_checkpoint_builds_its_stored_architecture_with_its_weights(trained):
    built = build_model(_settings(preset='base', checkpoint=str(trained), embed_dims=64), CPU)
    assert built.from_checkpoint and built.cfg == smoke().model and built.checkpoint == trained
    assert smoke().model not in (preset('tiny'), preset('small'), preset('base'))
    assert built.ignored == ('model.preset=base', 'model.embed_dims')
    assert not built.model.training and built.device == CPU and built.meta['iter'] == 2
    _assert_same_weights(built.model, torch.load(trained, weights_only=True)['state_dict'])


def test_the_checkpoint_file_is_opened_once_for_architecture_and_weights(trained, monkeypatch):
    opened = _count_opens(monkeypatch, trained)
    built = build_model(_settings(checkpoint=str(trained)), CPU)
    assert len(opened) == 1 and built.from_checkpoint  # the stored architecture came from it too
    monkeypatch.undo()
    _assert_same_weights(built.model, torch.load(trained, weights_only=True)['state_dict'])


def test_the_default_preset_is_not_reported_as_ignored(trained):
    # config/bevformer_demo_small.yaml sets no preset: the default should not show up as "ignored".
    built = build_model(_settings(checkpoint=str(trained)), CPU)
    assert built.from_checkpoint and built.ignored == ()


def test_a_legacy_format_file_builds_too(trained, tmp_path):
    legacy = tmp_path / 'legacy.pth'
    raw = torch.load(trained, weights_only=True)
    torch.save(raw, legacy, _use_new_zipfile_serialization=False)
    built = build_model(_settings(checkpoint=str(legacy)), CPU)
    assert built.cfg == smoke().model
    _assert_same_weights(built.model, raw['state_dict'])


def test_a_stored_architecture_this_version_cannot_build_is_named(tmp_path):
    path = tmp_path / 'future.pth'
    meta = {'config': {'model': {'head': {'embed_dims': 32, 'moe_experts': 4}}}, 'iter': 1}
    save_checkpoint(build_bevformer(smoke().model), path, meta)
    with pytest.raises(CheckpointError, match=r'(?s)moe_experts.*cannot build|cannot build.*moe_'):
        build_model(_settings(checkpoint=str(path)), CPU)


@pytest.mark.parametrize('wrap', ['official_meta', 'no_meta', 'bare_state_dict'])
def test_official_checkpoints_leave_the_architecture_to_the_settings(tmp_path, small, wrap):
    source = build_bevformer(configured_architecture(small))
    path = tmp_path / 'official.pth'
    if wrap == 'bare_state_dict':
        torch.save(source.state_dict(), path)
    else:
        save_checkpoint(source, path, OFFICIAL_META if wrap == 'official_meta' else None)
    built = build_model(_small_with(checkpoint=str(path)), CPU)
    assert not built.from_checkpoint and built.ignored == ()
    assert built.cfg == configured_architecture(small) and built.checkpoint == path
    _assert_same_weights(built.model, source.state_dict())


# ------------------------------------------------------------------------------ unusable files
def test_a_checkpoint_of_another_preset_names_the_preset(tmp_path):
    with torch.device('meta'):  # the keys and shapes of an official tiny file, zero-stride tensors
        tiny = build_bevformer(preset('tiny')).state_dict()
    path = tmp_path / 'tiny.pth'
    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in tiny.items()}
    torch.save({'meta': {}, 'state_dict': state}, path)
    settings = _small_with(preset='small', checkpoint=str(path))
    with pytest.raises(CheckpointError) as error:
        build_model(settings, CPU)
    message = str(error.value)
    assert 'does not fit the model' in message and str(path) in message
    assert 'looks like a bevformer_tiny checkpoint' in message and 'set preset: tiny' in message


def test_unreadable_checkpoints_keep_their_messages(tmp_path, small):
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        build_model(_small_with(checkpoint=str(tmp_path / 'missing.pth')), CPU)
    page = tmp_path / 'page.pth'
    page.write_bytes(b'<!DOCTYPE html><html>404</html>')
    with pytest.raises(CheckpointError, match='HTML page'):
        build_model(_small_with(checkpoint=str(page)), CPU)
    truncated = tmp_path / 'truncated.pth'
    save_checkpoint(build_bevformer(configured_architecture(small)), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match='corrupt or truncated.*Download it again'):
        build_model(_small_with(checkpoint=str(truncated)), CPU)


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / 'pickle_ran_code'
    evil = tmp_path / 'evil.pth'
    torch.save({'meta': RunsCodeWhenUnpickled(marker), 'state_dict': {'w': torch.zeros(1)}}, evil)
    with pytest.raises(CheckpointError, match='(?s)refusing to load.*weights_only=True.*run code'):
        build_model(_small_with(checkpoint=str(evil)), CPU)
    assert not marker.exists()


# ------------------------------------------------------------------------------ settings
def test_small_overrides_shrink_the_preset_consistently(small):
    cfg = configured_architecture(small)
    head = cfg.head
    assert (head.embed_dims, head.ffn_dims, head.bev_h, head.bev_w) == (32, 64, 10, 10)
    assert (head.num_encoder_layers, head.num_decoder_layers, head.num_query) == (1, 1, 20)
    assert cfg.backbone.base_channels == 16 and cfg.neck.in_channels == (16 * 4 * 8,)
    assert cfg.neck.out_channels == 32 and cfg.image.scale == 0.1
    assert configured_architecture(_settings()) == preset('tiny')
    assert configured_architecture(_settings(preset='small')) == preset('small')
    assert configured_architecture(_settings(preset='tiny', bev_size=20)).head.bev_h == 20


def test_base_preset_overrides_scale_all_fpn_inputs():
    cfg = configured_architecture(_settings(preset='base', base_channels=8))
    assert cfg.neck.in_channels == (8 * 4 * 2, 8 * 4 * 4, 8 * 4 * 8)


def test_official_config_json_is_read(tmp_path):
    fixture = torch.load(require(REFERENCE / 'case_small.pt'), weights_only=True)
    path = tmp_path / 'model.json'
    path.write_text(fixture['config_json'])
    cfg = configured_architecture(_settings(official_config_json=str(path)))
    assert cfg == from_official_config(json.loads(fixture['config_json']))
    assert (cfg.head.bev_h, cfg.head.embed_dims, cfg.head.num_query) == (20, 64, 40)


def test_random_weights_are_seeded(small):
    first, again = build_model(small, CPU), build_model(small, CPU)
    assert first.checkpoint is None and not first.from_checkpoint and first.meta == {}
    _assert_same_weights(first.model, again.model.state_dict())
    other = build_model(_small_with(seed=1), CPU).model.state_dict()
    assert any(not torch.equal(v, other[k]) for k, v in first.model.state_dict().items())


def test_cuda_request_without_cuda_is_an_error():
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    assert resolve_device('auto') == CPU
    with pytest.raises(ValueError, match='model.device:=auto'):
        resolve_device('cuda')
    with pytest.raises(ValueError, match='use --device auto or cpu'):
        resolve_device('cuda', option='--device')


# ------------------------------------------------------------------------------ tools and engine
def test_the_pipeline_is_built_from_the_node_settings_in_one_call(trained):
    config = NodeConfig.from_parameters({'model.checkpoint': str(trained), 'model.device': 'cpu'})
    pipeline = Pipeline.from_settings(config)
    assert pipeline.cfg == smoke().model and pipeline.built.checkpoint == trained
    # the torch backend runs the built detector through the fast-path engine
    assert isinstance(pipeline.model, TorchEngine) and pipeline.device == CPU
    stored = torch.load(trained, weights_only=True)['state_dict']
    _assert_same_weights(pipeline.built.model, stored)


def test_a_tool_architecture_yields_to_the_stored_one(trained, small):
    given = configured_architecture(small)
    built = build_detector(given, CPU, str(trained))
    assert built.cfg == smoke().model and built.ignored == ('the given architecture',)
    plain = build_detector(given, CPU)
    assert plain.cfg == given and plain.checkpoint is None and not plain.from_checkpoint


def test_load_weights_fills_a_training_model_strictly(trained, small):
    model = build_bevformer(smoke().model)
    info = load_weights(model, str(trained))
    assert info['meta']['iter'] == 2
    _assert_same_weights(model, torch.load(trained, weights_only=True)['state_dict'])
    with pytest.raises(CheckpointError, match='does not fit the model'):
        load_weights(build_bevformer(configured_architecture(small)), str(trained))


def test_the_torch_engine_wraps_the_model_and_other_choices_are_refused(small):
    built = build_model(small, CPU)
    engine = build_engine(built)
    assert isinstance(engine, TorchEngine) and engine.precision == 'fp32'
    with pytest.raises(ValueError, match="backend 'tflite'.*torch"):
        build_engine(built, 'tflite')
    with pytest.raises(ValueError, match='fp16 runs on CUDA only.*bf16'):
        build_engine(built, 'torch', 'fp16')


def test_tools_hand_the_node_an_absolute_checkpoint_path(tmp_path, monkeypatch):
    assert node_checkpoint_arguments('') == []
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'local.pth').write_bytes(b'PK')
    assert node_checkpoint_arguments('./local.pth') == [
        '-p',
        f'model.checkpoint:={tmp_path.resolve() / "local.pth"}',
    ]
    shipped = model_file('bevformer_demo_small.pth')  # a bare name: the package's models/ folder
    assert node_checkpoint_arguments('bevformer_demo_small.pth') == [
        '-p',
        f'model.checkpoint:={shipped.resolve()}',
    ]

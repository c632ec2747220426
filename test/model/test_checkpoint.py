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

"""Strict official-checkpoint loading: layouts, casts, legacy DCN names and every error message."""

from __future__ import annotations

from collections import OrderedDict
import json
from pathlib import Path
import pickle

from bevformer_ros.model.checkpoint import (
    CheckpointError,
    guess_preset,
    load_checkpoint,
    save_checkpoint,
    summarize_keys,
)
import pytest
from reference_fixtures import REFERENCE, require
import torch
from torch import nn

MANIFESTS = REFERENCE


class DeformConvLike(nn.Module):
    """Parameter layout of mmcv ModulatedDeformConv2dPack (weight + conv_offset, no bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(channels, channels, 3, 3))
        self.conv_offset = nn.Conv2d(channels, 27, 3, padding=1)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = DeformConvLike(4)
        self.head = nn.Linear(4, 2)


def make_net(seed: int, dtype: torch.dtype = torch.float32) -> TinyNet:
    torch.manual_seed(seed)
    net = TinyNet().to(dtype)
    net.bn1.running_mean.normal_()
    net.bn1.num_batches_tracked.fill_(7)
    return net


def assert_same_state(a: nn.Module, b: nn.Module, dtype: torch.dtype | None = None) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        expected = sa[k].to(dtype) if dtype is not None and sa[k].is_floating_point() else sa[k]
        assert torch.equal(expected, sb[k]), k


def write_marker(path: str) -> None:
    Path(path).write_text('code ran')


class RunsCodeOnLoad:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # noqa: ANN204
        return (write_marker, (self.marker,))


def test_round_trip(tmp_path: Path) -> None:
    src, dst = make_net(0), make_net(1)
    save_checkpoint(src, tmp_path / 'net.pth', meta={'CLASSES': ('car', 'truck'), 'epoch': 24})
    raw = torch.load(tmp_path / 'net.pth', weights_only=True)
    assert set(raw) == {'meta', 'state_dict'}
    info = load_checkpoint(dst, tmp_path / 'net.pth')
    assert info['meta'] == {'CLASSES': ('car', 'truck'), 'epoch': 24}
    assert info['num_tensors'] == len(src.state_dict())
    assert_same_state(src, dst)
    assert not (tmp_path / 'net.pth.tmp').exists()


def test_save_rejects_meta_that_weights_only_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"meta\['cfg'\] is a \w*Path; meta may only hold"):
        save_checkpoint(make_net(0), tmp_path / 'x.pth', meta={'cfg': Path('a')})


@pytest.mark.parametrize('layout', ['official', 'bare', 'module_prefix', 'official_module_prefix'])
def test_official_layouts_with_float16_values(tmp_path: Path, layout: str) -> None:
    src = make_net(0)
    half = OrderedDict(
        (k, v.half() if v.is_floating_point() else v) for k, v in src.state_dict().items()
    )
    if 'module_prefix' in layout:
        half = OrderedDict((f'module.{k}', v) for k, v in half.items())
    if layout.startswith('official'):
        optimizer = {
            'state': {0: {'momentum_buffer': torch.zeros(3)}},
            'param_groups': [{'lr': 2e-4}],
        }
        obj = {
            'meta': {'mmcv_version': '1.4.0', 'CLASSES': ['car']},
            'state_dict': half,
            'optimizer': optimizer,
        }
    else:
        obj = half
    torch.save(obj, tmp_path / 'ckpt.pth')
    dst = make_net(1)
    info = load_checkpoint(dst, tmp_path / 'ckpt.pth')
    assert info['source_dtypes'] == ['float16', 'int64']
    assert dst.conv1.weight.dtype == torch.float32
    for k, v in dst.state_dict().items():
        assert torch.equal(
            v, half[f'module.{k}' if 'module_prefix' in layout else k].to(v.dtype)
        ), k
    assert info['meta'] == (
        {'mmcv_version': '1.4.0', 'CLASSES': ['car']} if layout.startswith('official') else {}
    )


def test_cast_follows_the_model_dtype(tmp_path: Path) -> None:
    src = make_net(0)
    save_checkpoint(src, tmp_path / 'f32.pth')
    dst = make_net(1, dtype=torch.float64)
    load_checkpoint(dst, tmp_path / 'f32.pth')
    assert dst.head.weight.dtype == torch.float64
    assert_same_state(src, dst, dtype=torch.float64)


def test_loads_into_a_meta_device_model(tmp_path: Path) -> None:
    src = make_net(0)
    save_checkpoint(src, tmp_path / 'net.pth')
    with torch.device('meta'):
        dst = TinyNet()
    load_checkpoint(dst, tmp_path / 'net.pth')
    assert not any(t.is_meta for t in dst.state_dict().values())
    assert_same_state(src, dst)


def test_legacy_dcn_offset_names_are_renamed(tmp_path: Path) -> None:
    src = make_net(0)
    legacy = OrderedDict(
        (k.replace('conv2.conv_offset.', 'conv2_offset.'), v) for k, v in src.state_dict().items()
    )
    assert 'conv2_offset.weight' in legacy
    # plain OrderedDict: no version metadata
    torch.save({'state_dict': legacy}, tmp_path / 'legacy.pth')
    dst = make_net(1)
    info = load_checkpoint(dst, tmp_path / 'legacy.pth')
    assert info['renamed'] == [
        ('conv2_offset.bias', 'conv2.conv_offset.bias'),
        ('conv2_offset.weight', 'conv2.conv_offset.weight'),
    ]
    assert_same_state(src, dst)


def test_legacy_dcn_names_with_version_2_are_refused_like_mmcv(tmp_path: Path) -> None:
    legacy = OrderedDict(
        (k.replace('conv2.conv_offset.', 'conv2_offset.'), v)
        for k, v in make_net(0).state_dict().items()
    )
    legacy._metadata = {'conv2': {'version': 2}}
    torch.save({'state_dict': legacy}, tmp_path / 'legacy_v2.pth')
    with pytest.raises(CheckpointError, match='legacy DCN names such as conv2_offset') as err:
        load_checkpoint(make_net(1), tmp_path / 'legacy_v2.pth')
    assert 'missing (all): conv2.conv_offset.weight, conv2.conv_offset.bias' in str(err.value)


def test_missing_batchnorm_counter_is_tolerated(tmp_path: Path) -> None:
    state = make_net(0).state_dict()
    del state['bn1.num_batches_tracked']
    torch.save(state, tmp_path / 'no_counter.pth')
    dst = make_net(1)
    load_checkpoint(dst, tmp_path / 'no_counter.pth')
    assert int(dst.bn1.num_batches_tracked) == 0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match='checkpoint not found: .*nope.pth. Download the official'
    ):
        load_checkpoint(make_net(0), tmp_path / 'nope.pth')
    with pytest.raises(CheckpointError, match='is a directory'):
        load_checkpoint(make_net(0), tmp_path)


def test_truncated_and_corrupt_files(tmp_path: Path) -> None:
    save_checkpoint(make_net(0), tmp_path / 'good.pth')
    data = (tmp_path / 'good.pth').read_bytes()
    (tmp_path / 'zip_trunc.pth').write_bytes(data[: len(data) // 2])
    torch.save(
        make_net(0).state_dict(), tmp_path / 'legacy.pth', _use_new_zipfile_serialization=False
    )
    legacy = (tmp_path / 'legacy.pth').read_bytes()
    (tmp_path / 'legacy_trunc.pth').write_bytes(legacy[: len(legacy) // 2])
    for name in ('zip_trunc.pth', 'legacy_trunc.pth'):
        with pytest.raises(CheckpointError, match='corrupt or truncated.*Download it again'):
            load_checkpoint(make_net(1), tmp_path / name)
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(CheckpointError, match=r'is empty \(0 bytes\)'):
        load_checkpoint(make_net(1), tmp_path / 'empty.pth')
    (tmp_path / 'page.pth').write_bytes(b'<!DOCTYPE html><html><body>Sign in</body></html>')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint: it is an HTML page'):
        load_checkpoint(make_net(1), tmp_path / 'page.pth')
    (tmp_path / 'junk.pth').write_bytes(b'\x00\x01garbage' * 10)
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint: it is unknown data'):
        load_checkpoint(make_net(1), tmp_path / 'junk.pth')


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / 'marker.txt'
    torch.save(
        {'state_dict': make_net(0).state_dict(), 'hook': RunsCodeOnLoad(marker)},
        tmp_path / 'evil.pth',
    )
    with pytest.raises(CheckpointError, match='weights_only=True') as err:
        load_checkpoint(make_net(1), tmp_path / 'evil.pth')
    assert 'write_marker' in str(err.value) and 'arbitrary code' in str(err.value)
    assert not marker.exists()
    # The file really does run code when loaded without weights_only, so the check above can fail.
    with open(tmp_path / 'evil.pth', 'rb') as f:
        torch.load(f, weights_only=False)
    assert marker.read_text() == 'code ran'


def test_files_without_tensors(tmp_path: Path) -> None:
    torch.save({'meta': {'epoch': 3}, 'epoch': 3}, tmp_path / 'meta_only.pth')
    with pytest.raises(
        CheckpointError, match=r"contains no tensors \(top-level keys: \['epoch', 'meta'\]\)"
    ):
        load_checkpoint(make_net(0), tmp_path / 'meta_only.pth')
    torch.save({'model': make_net(0).state_dict(), 'epoch': 3}, tmp_path / 'nested.pth')
    with pytest.raises(CheckpointError, match=r"tensors were found under \['model'\]"):
        load_checkpoint(make_net(0), tmp_path / 'nested.pth')
    torch.save([torch.zeros(2)], tmp_path / 'list.pth')
    with pytest.raises(CheckpointError, match='holds a list; expected an mmcv checkpoint'):
        load_checkpoint(make_net(0), tmp_path / 'list.pth')
    with open(tmp_path / 'plain.pkl', 'wb') as f:
        pickle.dump({'state_dict': {}}, f, protocol=2)
    with pytest.raises(CheckpointError):
        load_checkpoint(make_net(0), tmp_path / 'plain.pkl')


def test_wrong_keys_and_shapes_are_listed(tmp_path: Path) -> None:
    state = make_net(0).state_dict()
    state['head.weight'] = torch.zeros(3, 4)
    state['extra.weight'] = torch.zeros(1)
    del state['conv1.weight']
    torch.save({'state_dict': state}, tmp_path / 'wrong.pth')
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(make_net(1), tmp_path / 'wrong.pth')
    message = str(err.value)
    assert '1 missing, 1 unexpected, 1 with a different shape/type' in message
    assert 'missing (all): conv1.weight' in message
    assert 'unexpected (all): extra.weight' in message
    assert 'head.weight: checkpoint [3, 4] float32 vs model [2, 4] float32' in message
    assert 'Likely cause: the checkpoint and the model differ in the keys listed above' in message


# ---- preset inference on the official key manifests (independent data, README §8) ----


def manifest(preset: str) -> list:
    path = MANIFESTS / f'official_keys_{preset}.json'
    return json.loads(require(path).read_text())


def module_from_manifest(entries: list) -> nn.Module:
    """Build a real nn.Module whose state dict has the manifest's keys, shapes (meta device)."""
    root = nn.Module()
    for key, shape, dtype in entries:
        *path, leaf = key.split('.')
        module = root
        for name in path:
            if not hasattr(module, name):
                module.add_module(name, nn.Module())
            module = getattr(module, name)
        tensor = torch.empty(shape, dtype=getattr(torch, dtype), device='meta')
        module.register_buffer(leaf, tensor)
    return root


def save_manifest_checkpoint(entries: list, path: Path) -> None:
    """Official-layout file with the manifest's keys; stride-0 float16 tensors keep it small."""
    dtypes = {
        'float32': torch.float16,
        'int64': torch.int64,
    }  # official fixtures store floats as float16
    state = OrderedDict((k, torch.zeros((), dtype=dtypes[d]).expand(s)) for k, s, d in entries)
    torch.save({'meta': {}, 'state_dict': state}, path)


@pytest.mark.parametrize('preset', ['tiny', 'small', 'base'])
def test_guess_preset_from_official_manifests(preset: str) -> None:
    entries = manifest(preset)
    summary = summarize_keys({k: s for k, s, _ in entries})
    assert guess_preset(summary) == preset
    assert (
        summary['num_query'] == 900
        and summary['embed_dims'] == 256
        and summary['decoder_layers'] == 6
    )


def test_small_checkpoint_into_tiny_model_names_the_preset(tmp_path: Path) -> None:
    save_manifest_checkpoint(manifest('small'), tmp_path / 'bevformer_small.pth')
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(module_from_manifest(manifest('tiny')), tmp_path / 'bevformer_small.pth')
    message = str(err.value)
    assert (
        'this looks like a bevformer_small checkpoint but the model was built as bevformer_tiny'
        in message
    )
    assert 'set preset: small' in message
    assert 'backbone ResNet-101-DCN vs ResNet-50' in message and 'bev 150x150 vs 50x50' in message


def test_base_checkpoint_into_small_model_names_the_preset(tmp_path: Path) -> None:
    save_manifest_checkpoint(manifest('base'), tmp_path / 'bevformer_base.pth')
    with pytest.raises(
        CheckpointError, match='looks like a bevformer_base checkpoint.*set preset: base'
    ):
        load_checkpoint(module_from_manifest(manifest('small')), tmp_path / 'bevformer_base.pth')


def test_manifest_checkpoint_loads_into_matching_manifest_model(tmp_path: Path) -> None:
    entries = manifest('tiny')
    save_manifest_checkpoint(entries, tmp_path / 'bevformer_tiny.pth')
    model = module_from_manifest(entries)
    info = load_checkpoint(model, tmp_path / 'bevformer_tiny.pth')
    assert info['num_tensors'] == len(entries) == 643
    assert all(
        v.dtype == getattr(torch, d) for v, (_, _, d) in zip(model.state_dict().values(), entries)
    )


def test_backbone_only_and_head_only_files_are_named(tmp_path: Path) -> None:
    entries = manifest('tiny')
    backbone = [
        (k.removeprefix('img_backbone.'), sh, d)
        for k, sh, d in entries
        if k.startswith('img_backbone.')
    ]
    save_manifest_checkpoint(backbone, tmp_path / 'resnet50.pth')
    with pytest.raises(
        CheckpointError, match='no BEVFormer head weights.*not a BEVFormer detector checkpoint'
    ):
        load_checkpoint(module_from_manifest(entries), tmp_path / 'resnet50.pth')
    head = [e for e in entries if e[0].startswith('pts_bbox_head.')]
    save_manifest_checkpoint(head, tmp_path / 'head.pth')
    with pytest.raises(
        CheckpointError, match=r'no img_backbone\.\* / img_neck\.\* weights'
    ) as err:
        load_checkpoint(module_from_manifest(entries), tmp_path / 'head.pth')
    assert '269 missing, 0 unexpected' in str(err.value)  # 322 minus 53 optional BN counters


# ---- the project's detector (official key layout) ----


def build_preset(name: str, device: str = 'cpu') -> nn.Module:
    from bevformer_ros.model.config import preset
    from bevformer_ros.model.detector import build_bevformer

    with torch.device(device):
        return build_bevformer(preset(name)).eval()


@pytest.mark.parametrize('name', ['tiny', 'small', 'base'])
def test_detector_presets_are_recognised(name: str) -> None:
    state = build_preset(name, device='meta').state_dict()
    assert guess_preset(summarize_keys(state)) == name


def test_tiny_detector_round_trips_through_an_official_float16_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = build_preset('tiny')
    half = OrderedDict(
        (k, v.half() if v.is_floating_point() else v) for k, v in src.state_dict().items()
    )
    torch.save(
        {'meta': {'CLASSES': ['car']}, 'state_dict': half, 'optimizer': {}}, tmp_path / 'tiny.pth'
    )
    dst = build_preset('tiny', device='meta')
    info = load_checkpoint(dst, tmp_path / 'tiny.pth')
    assert info['num_tensors'] == 643
    for k, v in dst.state_dict().items():
        assert v.device.type == 'cpu' and torch.equal(v, half[k].to(v.dtype)), k


def test_small_checkpoint_into_tiny_detector_names_the_small_preset(tmp_path: Path) -> None:
    small = build_preset('small', device='meta').state_dict()
    entries = [(k, list(v.shape), str(v.dtype).removeprefix('torch.')) for k, v in small.items()]
    save_manifest_checkpoint(entries, tmp_path / 'bevformer_small_epoch_24.pth')
    with pytest.raises(
        CheckpointError, match='looks like a bevformer_small checkpoint.*set preset: small'
    ):
        load_checkpoint(build_preset('tiny'), tmp_path / 'bevformer_small_epoch_24.pth')

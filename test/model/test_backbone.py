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
mmdet ResNet against the official keys and outputs, and its frozen-stage / norm_eval behaviour.

Covers the official key manifests, the official R101-DCN outputs (case_dcn.pt) and the official R50
+ FPN outputs (case_small.pt).
"""

from __future__ import annotations

import json

from bevformer_ros.model.dcn import ModulatedDeformConv2dPack
from bevformer_ros.model.fpn import FPN
from bevformer_ros.model.resnet import ResNet
import pytest
from reference_fixtures import REFERENCE, require
import torch
from torch import nn

PREFIX = 'img_backbone.'


def _load(name: str) -> dict:
    path = REFERENCE / name
    return torch.load(require(path), weights_only=True)


def _manifest(preset: str, prefix: str) -> list[tuple[str, tuple[int, ...], str]]:
    path = REFERENCE / f'official_keys_{preset}.json'
    entries = json.loads(require(path).read_text())
    return [
        (k[len(prefix):], tuple(shape), dtype)
        for k, shape, dtype in entries
        if k.startswith(prefix)
    ]


def _entries(module: nn.Module) -> list[tuple[str, tuple[int, ...], str]]:
    return [
        (k, tuple(v.shape), str(v.dtype).removeprefix('torch.'))
        for k, v in module.state_dict().items()
    ]


def _strip(state_dict: dict, prefix: str, dtype: torch.dtype) -> dict:
    return {
        k[len(prefix):]: v.to(dtype) if v.is_floating_point() else v
        for k, v in state_dict.items()
        if k.startswith(prefix)
    }


def _official_tiny_backbone(base_channels: int = 64) -> ResNet:
    # bevformer_tiny.py: ResNet-50, pytorch style, out_indices (3,), frozen_stages 1, BN
    # requires_grad False.
    return ResNet(
        depth=50,
        base_channels=base_channels,
        out_indices=(3,),
        style='pytorch',
        frozen_stages=1,
        norm_eval=True,
        norm_requires_grad=False,
    )


def _official_dcn_backbone(out_indices: tuple[int, ...], base_channels: int = 64) -> ResNet:
    # bevformer_small.py / bevformer_base.py: ResNet-101, caffe style, DCNv2 in stages 3 and 4.
    return ResNet(
        depth=101,
        base_channels=base_channels,
        out_indices=out_indices,
        style='caffe',
        frozen_stages=1,
        norm_eval=True,
        norm_requires_grad=False,
        stage_with_dcn=(False, False, True, True),
    )


# ---------------------------------------------------------------- official key manifests


def test_tiny_backbone_keys_match_official_manifest():
    with torch.device('meta'):
        backbone = _official_tiny_backbone()
    assert _entries(backbone) == _manifest('tiny', PREFIX)


@pytest.mark.parametrize('preset,out_indices', [('small', (3,)), ('base', (1, 2, 3))])
def test_dcn_backbone_keys_match_official_manifest(preset, out_indices):
    with torch.device('meta'):
        backbone = _official_dcn_backbone(out_indices)
    assert _entries(backbone) == _manifest(preset, PREFIX)
    dcn_names = [
        n for n, m in backbone.named_modules() if isinstance(m, ModulatedDeformConv2dPack)
    ]
    assert dcn_names == [f'layer3.{i}.conv2' for i in range(23)] + [
        f'layer4.{i}.conv2' for i in range(3)
    ]
    assert all(backbone.get_submodule(n).stride == (1, 1) for n in dcn_names)


def test_base_output_shapes_at_official_resolution():
    with torch.device('meta'):
        backbone = _official_dcn_backbone((1, 2, 3)).eval()
        outs = backbone(torch.empty(6, 3, 928, 1600))
    assert [tuple(o.shape) for o in outs] == [
        (6, 512, 116, 200),
        (6, 1024, 58, 100),
        (6, 2048, 29, 50),
    ]
    assert backbone.out_channels == [512, 1024, 2048]


@pytest.mark.parametrize('style,conv1_stride,conv2_stride', [('pytorch', 1, 2), ('caffe', 2, 1)])
def test_stride_placement_by_style(style, conv1_stride, conv2_stride):
    with torch.device('meta'):
        backbone = ResNet(depth=50, base_channels=8, style=style)
    block = backbone.layer2[0]
    assert block.conv1.stride == (conv1_stride, conv1_stride)
    assert block.conv2.stride == (conv2_stride, conv2_stride)
    assert block.downsample[0].stride == (2, 2)


# -------------------------------------------------------- official R101-DCN numerics (case_dcn.pt)


@pytest.fixture(scope='module')
def dcn_backbone_case() -> dict:
    return _load('case_dcn.pt')['backbone']


def _fixture_backbone(case: dict, dtype: torch.dtype) -> ResNet:
    config = case['config']
    assert config['style'] == 'caffe' and config['depth'] == 101
    backbone = ResNet(
        depth=config['depth'],
        base_channels=config['base_channels'],
        num_stages=config['num_stages'],
        out_indices=tuple(config['out_indices']),
        style=config['style'],
        frozen_stages=config['frozen_stages'],
        norm_eval=config['norm_eval'],
        norm_requires_grad=config['norm_cfg']['requires_grad'],
        stage_with_dcn=tuple(config['stage_with_dcn']),
        dcn_deform_groups=config['dcn']['deform_groups'],
    )
    backbone.load_state_dict(_strip(case['state_dict'], case['key_prefix'], dtype), strict=True)
    return backbone.to(dtype).eval()


def test_fixture_backbone_float64(dcn_backbone_case):
    backbone = _fixture_backbone(dcn_backbone_case, torch.float64)
    with torch.no_grad():
        outs = backbone(dcn_backbone_case['img'].double())
    assert len(outs) == 3
    for out, expected in zip(outs, dcn_backbone_case['outs_float64'], strict=True):
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-9)


def test_fixture_backbone_float32_with_intermediates(dcn_backbone_case):
    backbone = _fixture_backbone(dcn_backbone_case, torch.float32)
    captured = {}

    def keep(name):
        def hook(module, args, output):
            captured[name] = (args[0].clone(), output.clone())

        return hook

    backbone.layer1.register_forward_hook(keep('layer1'))
    for name in ('layer3.0.conv2', 'layer4.0.conv2'):
        backbone.get_submodule(name).register_forward_hook(keep(name))
    with torch.no_grad():
        outs = backbone(dcn_backbone_case['img'].float())
    for out, expected, atol in zip(
        outs, dcn_backbone_case['outs'], (1e-4, 5e-3, 1e-2), strict=True
    ):
        torch.testing.assert_close(out, expected, rtol=0, atol=atol)

    intermediates = dcn_backbone_case['intermediates']
    torch.testing.assert_close(
        captured['layer1'][1], intermediates['layer1'], rtol=1e-4, atol=1e-4
    )
    for name in ('layer3.0.conv2', 'layer4.0.conv2'):
        reference = intermediates[name]
        torch.testing.assert_close(captured[name][0], reference['input'], rtol=1e-4, atol=1e-4)
        layer = backbone.get_submodule(name)
        with torch.no_grad():  # the layer alone, on the official input
            conv_offset_out = layer.conv_offset(reference['input'])
            output = layer(reference['input'])
        torch.testing.assert_close(
            conv_offset_out, reference['conv_offset_out'], rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(output, reference['output'], rtol=1e-4, atol=1e-4)


# ----------------------------------------------------- official R50 + FPN numerics (case_small.pt)


def test_tiny_structure_backbone_and_neck_match_official_mlvl_feats():
    """case_small: official tiny backbone/neck, base_channels 16, FPN [512] -> 64 ('on_output')."""
    case = _load('case_small.pt')
    model_cfg = case['config']['model']
    assert (
        model_cfg['img_backbone']['style'] == 'pytorch'
        and model_cfg['img_backbone']['depth'] == 50
    )
    neck_cfg = model_cfg['img_neck']
    backbone = _official_tiny_backbone(base_channels=model_cfg['img_backbone']['base_channels'])
    neck = FPN(
        in_channels=neck_cfg['in_channels'],
        out_channels=neck_cfg['out_channels'],
        num_outs=neck_cfg['num_outs'],
        start_level=neck_cfg['start_level'],
        add_extra_convs=neck_cfg['add_extra_convs'],
        relu_before_extra_convs=neck_cfg['relu_before_extra_convs'],
    )
    backbone.load_state_dict(_strip(case['state_dict'], PREFIX, torch.float32), strict=True)
    neck.load_state_dict(_strip(case['state_dict'], 'img_neck.', torch.float32), strict=True)
    backbone.eval()
    for frame in case['frames']:
        img = frame['img'][0].float()  # [num_cams, 3, 96, 160]
        with torch.no_grad():
            feats = neck(backbone(img))
        assert len(feats) == 1
        expected = frame['intermediates']['mlvl_feats'][0][0]  # [num_cams, 64, 3, 5]
        torch.testing.assert_close(feats[0], expected, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- frozen stages and norm_eval


def _bn_modules(module: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_frozen_stages_and_norm_eval_keep_bn_statistics():
    torch.manual_seed(0)
    backbone = ResNet(
        depth=50, base_channels=8, out_indices=(0, 3), frozen_stages=1, norm_eval=True
    )
    backbone.train()
    assert backbone.training and backbone.layer2.training
    assert all(not bn.training for bn in _bn_modules(backbone))
    frozen = [backbone.conv1, backbone.bn1, backbone.layer1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(
        p.requires_grad
        for name in ('layer2', 'layer3', 'layer4')
        for p in getattr(backbone, name).parameters()
    )
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone(torch.randn(2, 3, 64, 64))
    after = backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_norm_eval_false_trains_only_unfrozen_bn():
    backbone = ResNet(depth=50, base_channels=8, frozen_stages=1, norm_eval=False).train()
    assert not backbone.bn1.training and not backbone.layer1.training
    assert all(not bn.training for bn in _bn_modules(backbone.layer1))
    assert all(bn.training for bn in _bn_modules(backbone.layer2))
    mean_before = backbone.layer2[0].bn1.running_mean.clone()
    backbone(torch.randn(2, 3, 64, 64))
    assert not torch.equal(backbone.layer2[0].bn1.running_mean, mean_before)
    assert backbone.eval().layer2[0].bn1.training is False


def test_norm_requires_grad_false_freezes_bn_affine_only():
    backbone = ResNet(depth=50, base_channels=8, norm_requires_grad=False)
    assert all(not p.requires_grad for bn in _bn_modules(backbone) for p in bn.parameters())
    assert backbone.layer1[0].conv1.weight.requires_grad
    assert all(bn.eps == 1e-5 for bn in _bn_modules(backbone))


def test_basic_block_depths_build_and_run():
    backbone = ResNet(depth=18, base_channels=8).eval()
    with torch.no_grad():
        outs = backbone(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, 8, 16, 24),
        (1, 16, 8, 12),
        (1, 32, 4, 6),
        (1, 64, 2, 3),
    ]
    assert backbone.out_channels == [8, 16, 32, 64]


def test_fewer_stages():
    backbone = ResNet(depth=50, base_channels=8, num_stages=3, out_indices=(2,)).eval()
    assert not hasattr(backbone, 'layer4')
    with torch.no_grad():
        (out,) = backbone(torch.randn(1, 3, 64, 96))
    assert tuple(out.shape) == (1, 128, 4, 6)


def test_invalid_arguments_name_the_fix():
    with pytest.raises(ValueError, match='use one of'):
        ResNet(depth=42)
    with pytest.raises(ValueError, match='style must be'):
        ResNet(depth=50, style='tf')
    with pytest.raises(ValueError, match='Bottleneck'):
        ResNet(depth=18, stage_with_dcn=(False, False, True, True))

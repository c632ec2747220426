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
mmdet 2.x ResNet backbone (BasicBlock/Bottleneck, pytorch/caffe style, optional DCNv2 in conv2).

Submodule names reproduce mmdet's so that official ``img_backbone.*`` state-dict keys load
unchanged: ``conv1``, ``bn1``, ``layer{1..4}.{b}.conv{1,2,3}`` / ``bn{1,2,3}`` /
``downsample.{0,1}``; a DCN ``conv2`` holds ``weight`` and ``conv_offset.{weight,bias}`` and no
bias.
"""

from __future__ import annotations

from collections.abc import Sequence

from bevformer_ros.model.dcn import ModulatedDeformConv2dPack
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

BN_EPS = 1e-5  # mmcv build_norm_layer keeps torch's default BatchNorm2d eps


def _batch_norm(num_features: int, requires_grad: bool) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(num_features, eps=BN_EPS)
    for param in bn.parameters():
        param.requires_grad = requires_grad
    return bn


def _conv2(
    planes: int, stride: int, dilation: int, with_dcn: bool, dcn_deform_groups: int
) -> nn.Module:
    """Build the 3x3 conv of a Bottleneck: DCNv2 (mmdet passes bias=False) or a plain conv."""
    if with_dcn:
        return ModulatedDeformConv2dPack(
            planes,
            planes,
            3,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            deform_groups=dcn_deform_groups,
            bias=False,
        )
    return nn.Conv2d(
        planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
    )


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34); the stride sits on conv1 in both styles."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = 'pytorch',
        with_dcn: bool = False,
        dcn_deform_groups: int = 1,
        norm_requires_grad: bool = True,
    ) -> None:
        super().__init__()
        if with_dcn:
            raise ValueError(
                'DCN is only supported in Bottleneck blocks (ResNet-50/101/152), as in mmdet'
            )
        self.conv1 = nn.Conv2d(
            inplanes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn1 = _batch_norm(planes, norm_requires_grad)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = _batch_norm(planes, norm_requires_grad)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [N, inplanes, H, W] -> [N, planes, H/stride, W/stride]."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 block; 'pytorch' style strides the 3x3 conv, 'caffe' the first 1x1."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: nn.Module | None = None,
        style: str = 'pytorch',
        with_dcn: bool = False,
        dcn_deform_groups: int = 1,
        norm_requires_grad: bool = True,
    ) -> None:
        super().__init__()
        conv1_stride, conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=conv1_stride, bias=False)
        self.bn1 = _batch_norm(planes, norm_requires_grad)
        self.conv2 = _conv2(planes, conv2_stride, dilation, with_dcn, dcn_deform_groups)
        self.bn2 = _batch_norm(planes, norm_requires_grad)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = _batch_norm(planes * self.expansion, norm_requires_grad)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [N, inplanes, H, W] -> [N, 4*planes, H/stride, W/stride]."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


ARCH_SETTINGS: dict[int, tuple[type[nn.Module], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """
    mmdet ``ResNet`` (deep_stem=False, avg_down=False, no plugins) giving ``out_indices`` stages.

    ``frozen_stages=k`` freezes the stem and layer1..k (no grad, kept in eval mode); ``norm_eval``
    keeps every BatchNorm in eval mode even under ``train()``. ``norm_requires_grad=False`` is the
    official configs' ``norm_cfg=dict(type='BN', requires_grad=False)``.
    """

    def __init__(
        self,
        depth: int,
        in_channels: int = 3,
        base_channels: int = 64,
        num_stages: int = 4,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = 'pytorch',
        frozen_stages: int = -1,
        norm_eval: bool = True,
        stage_with_dcn: Sequence[bool] = (False, False, False, False),
        dcn_deform_groups: int = 1,
        norm_requires_grad: bool = True,
        stem_channels: int | None = None,
        strides: Sequence[int] = (1, 2, 2, 2),
        dilations: Sequence[int] = (1, 1, 1, 1),
    ) -> None:
        super().__init__()
        _check_arguments(depth, num_stages, strides, dilations, out_indices, style, stage_with_dcn)
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        block, stage_blocks = ARCH_SETTINGS[depth]
        stem_channels = base_channels if stem_channels is None else stem_channels

        self.conv1 = nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = _batch_norm(stem_channels, norm_requires_grad)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        inplanes = stem_channels
        self.res_layers: list[str] = []
        for i in range(num_stages):
            planes = base_channels * 2**i
            layer = _make_res_layer(
                block,
                inplanes,
                planes,
                stage_blocks[i],
                stride=strides[i],
                dilation=dilations[i],
                style=style,
                with_dcn=bool(stage_with_dcn[i]),
                dcn_deform_groups=dcn_deform_groups,
                norm_requires_grad=norm_requires_grad,
            )
            inplanes = planes * block.expansion
            self.add_module(f'layer{i + 1}', layer)
            self.res_layers.append(f'layer{i + 1}')
        self.out_channels = [base_channels * 2**i * block.expansion for i in self.out_indices]
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.conv1, self.bn1] + [
            getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)
        ]
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> ResNet:
        """Set train mode; frozen stages and (with ``norm_eval``) every BN stay in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """X [N, 3, H, W] -> one [N, C_i, H/2^(i+2), W/2^(i+2)] per index i in ``out_indices``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # [N, stem, H/4, W/4]
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return outs


def _make_res_layer(
    block: type[nn.Module],
    inplanes: int,
    planes: int,
    num_blocks: int,
    stride: int,
    dilation: int,
    style: str,
    with_dcn: bool,
    dcn_deform_groups: int,
    norm_requires_grad: bool,
) -> nn.Sequential:
    """Mmdet ``ResLayer``: the first block carries the stride and the projection shortcut."""
    downsample = None
    out_planes = planes * block.expansion
    if stride != 1 or inplanes != out_planes:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, out_planes, 1, stride=stride, bias=False),
            _batch_norm(out_planes, norm_requires_grad),
        )
    common = {
        'dilation': dilation,
        'style': style,
        'with_dcn': with_dcn,
        'dcn_deform_groups': dcn_deform_groups,
        'norm_requires_grad': norm_requires_grad,
    }
    blocks = [block(inplanes, planes, stride=stride, downsample=downsample, **common)]
    blocks += [block(out_planes, planes, stride=1, **common) for _ in range(1, num_blocks)]
    return nn.Sequential(*blocks)


def _check_arguments(
    depth: int,
    num_stages: int,
    strides: Sequence[int],
    dilations: Sequence[int],
    out_indices: Sequence[int],
    style: str,
    stage_with_dcn: Sequence[bool],
) -> None:
    if depth not in ARCH_SETTINGS:
        raise ValueError(
            f'ResNet depth {depth} is not supported; use one of {sorted(ARCH_SETTINGS)}'
        )
    if not 1 <= num_stages <= 4:
        raise ValueError(f'num_stages must be 1..4, got {num_stages}')
    if min(len(strides), len(dilations), len(stage_with_dcn)) < num_stages:
        raise ValueError(
            f'strides {tuple(strides)}, dilations {tuple(dilations)} and stage_with_dcn '
            f'{tuple(stage_with_dcn)} need an entry for each of the num_stages={num_stages} stages'
        )
    if not out_indices or max(out_indices) >= num_stages or min(out_indices) < 0:
        raise ValueError(
            f'out_indices {tuple(out_indices)} must be non-empty stage indices below {num_stages}'
        )
    if style not in ('pytorch', 'caffe'):
        raise ValueError(f"ResNet style must be 'pytorch' or 'caffe', got {style!r}")

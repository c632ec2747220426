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
mmdet 2.x Feature Pyramid Network (conv + bias, no norm/activation, nearest top-down upsampling).

Module names follow mmcv ``ConvModule`` (``lateral_convs.i.conv``, ``fpn_convs.i.conv``) so the
official ``img_neck.*`` keys load unchanged. Official tiny/small: in [2048], num_outs 1 (no extra
level is built); base: in [512, 1024, 2048], num_outs 4, ``add_extra_convs='on_output'`` (one
stride-2 conv on the last output).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
import torch.nn.functional as F

EXTRA_CONV_SOURCES = ('on_input', 'on_lateral', 'on_output')


class ConvModule(nn.Module):
    """mmcv ``ConvModule`` with norm_cfg=None, act_cfg=None: only a biased conv, named ``conv``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=True
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [N, C_in, H, W] -> [N, C_out, H', W']."""
        return self.conv(x)


def _extra_conv_source(add_extra_convs: bool | str) -> str | None:
    """Read ``add_extra_convs`` like mmdet: True means 'on_input', False max-pool extra levels."""
    if add_extra_convs is True:
        return 'on_input'
    if add_extra_convs is False:
        return None
    if add_extra_convs not in EXTRA_CONV_SOURCES:
        raise ValueError(
            f'add_extra_convs must be a bool or one of {EXTRA_CONV_SOURCES}, got '
            f'{add_extra_convs!r}'
        )
    return add_extra_convs


class FPN(nn.Module):
    """
    mmdet ``FPN``: 1x1 laterals, top-down nearest upsample + sum, 3x3 outputs, optional extras.

    ``upsample_scale_factor=None`` is mmdet's default ``upsample_cfg=dict(mode='nearest')``: each
    coarser lateral is resized to the finer one's exact size, which also handles odd sizes.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        out_channels: int,
        num_outs: int,
        start_level: int = 0,
        add_extra_convs: bool | str = False,
        relu_before_extra_convs: bool = False,
        end_level: int = -1,
        upsample_scale_factor: float | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.relu_before_extra_convs = relu_before_extra_convs
        self.upsample_scale_factor = upsample_scale_factor
        self.extra_conv_source = _extra_conv_source(add_extra_convs)
        self.backbone_end_level = _backbone_end_level(
            len(self.in_channels), num_outs, start_level, end_level
        )

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(self.in_channels[i], out_channels, 1))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1))

        extra_levels = num_outs - (self.backbone_end_level - start_level)
        if self.extra_conv_source is not None:
            for i in range(extra_levels):
                if i == 0 and self.extra_conv_source == 'on_input':
                    extra_in = self.in_channels[self.backbone_end_level - 1]
                else:
                    extra_in = out_channels
                self.fpn_convs.append(ConvModule(extra_in, out_channels, 3, stride=2, padding=1))

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Map [N, in_channels[i], H_i, W_i] per level -> num_outs maps [N, out_channels, h, w]."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(
                f'FPN got {len(inputs)} feature maps but was built for {len(self.in_channels)}'
            )
        laterals = [
            conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)
        ]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + self._upsample(laterals[i], laterals[i - 1])
        used_levels = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used_levels)]
        if self.num_outs > used_levels:
            outs += self._extra_levels(inputs, laterals, outs)
        return outs

    def _upsample(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        """Resize coarse [N, C, h, w] (nearest) to fine's [H, W] (or by the fixed scale factor)."""
        if self.upsample_scale_factor is not None:
            return F.interpolate(coarse, scale_factor=self.upsample_scale_factor, mode='nearest')
        return F.interpolate(coarse, size=fine.shape[2:], mode='nearest')

    def _extra_levels(
        self,
        inputs: Sequence[torch.Tensor],
        laterals: list[torch.Tensor],
        outs: list[torch.Tensor],
    ) -> list[torch.Tensor]:
        used_levels = len(laterals)
        if self.extra_conv_source is None:
            # mmdet's "max pool" with kernel 1 is plain stride-2 subsampling.
            extra = []
            last = outs[-1]
            for _ in range(self.num_outs - used_levels):
                last = F.max_pool2d(last, 1, stride=2)
                extra.append(last)
            return extra
        if self.extra_conv_source == 'on_input':
            source = inputs[self.backbone_end_level - 1]
        elif self.extra_conv_source == 'on_lateral':
            source = laterals[-1]
        else:
            source = outs[-1]
        # As in mmdet, the first extra conv never sees a ReLU; only the later ones do.
        extra = [self.fpn_convs[used_levels](source)]
        for i in range(used_levels + 1, self.num_outs):
            last = F.relu(extra[-1]) if self.relu_before_extra_convs else extra[-1]
            extra.append(self.fpn_convs[i](last))
        return extra


def _backbone_end_level(num_ins: int, num_outs: int, start_level: int, end_level: int) -> int:
    if end_level == -1:
        if num_outs < num_ins - start_level:
            raise ValueError(
                f'num_outs={num_outs} is smaller than the {num_ins - start_level} input levels '
                'used from '
                f'start_level={start_level}'
            )
        return num_ins
    if end_level > num_ins or num_outs != end_level - start_level:
        raise ValueError(
            f'with end_level={end_level}, end_level must be <= {num_ins} inputs and num_outs must '
            'equal '
            f'end_level - start_level = {end_level - start_level}'
        )
    return end_level

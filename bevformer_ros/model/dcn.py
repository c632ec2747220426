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
Modulated deformable convolution (DCNv2) in plain PyTorch.

Reproduces mmcv 1.x ``ModulatedDeformConv2dPack`` (registered as ``DCNv2``), the layer in ``conv2``
of the official small/base ResNet-101 stages 3-4, without compiled ops or torchvision. Semantics
follow mmcv's
``modulated_deformable_im2col`` kernel (identical to ``torchvision.ops.deform_conv2d``):

* offset channel layout is group-major, then tap-major, then (row, column):
  ``offset[:, g*2K + 2k]`` moves tap ``k = i*kw + j`` of offset group ``g`` along rows (y),
  ``offset[:, g*2K + 2k + 1]`` along columns (x); ``mask[:, g*K + k]`` scales that tap;
* a sampling point with ``h <= -1``, ``h >= H``, ``w <= -1`` or ``w >= W`` gives 0; otherwise it is
  the 4-corner bilinear blend in which every corner outside the map contributes 0.

The sampling is gather based (explicit corner indices and validity) rather than ``grid_sample``: it
needs no coordinate normalisation round trip and works for maps with H == 1 or W == 1.

On CUDA, when torchvision is installed, ``torchvision.ops.deform_conv2d`` runs the layer instead
(one fused kernel instead of a few hundred gathers): same offset layout ((dy, dx) per tap,
group-major), same sigmoid-ed mask, same border rule (its kernel comes from the same DCN code);
``test_dcn_torchvision.py`` compares the two. A CPU keeps the code here (no torchvision needed),
and so does any other stream than the default one (CUDA graph capture: see ``_fused_kernel``).
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import math

import torch
from torch import nn


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


@functools.cache
def torchvision_deform_conv2d() -> Callable[..., torch.Tensor] | None:
    """Return ``torchvision.ops.deform_conv2d``, or None when torchvision is absent or broken."""
    try:
        from torchvision.ops import deform_conv2d
    except (ImportError, RuntimeError):  # RuntimeError: a torchvision built for another torch
        return None
    return deform_conv2d


def _fused_kernel(x: torch.Tensor) -> Callable[..., torch.Tensor] | None:
    """Return torchvision's kernel where it applies: CUDA, its dtypes, the default stream."""
    if x.device.type != 'cuda' or x.dtype not in (torch.float32, torch.float16, torch.float64):
        return None
    # torchvision launches its im2col kernel on the legacy default stream, not on torch's current
    # one: on a side stream (CUDA graph warm-up and capture) it would race or break the capture
    if torch.cuda.current_stream(x.device) != torch.cuda.default_stream(x.device):
        return None
    return torchvision_deform_conv2d()


def _coordinate_dtype(dtype: torch.dtype) -> torch.dtype:
    # Pixel positions reach a few hundred: half precision would round them to 1/8 px or worse.
    return torch.float64 if dtype == torch.float64 else torch.float32


def _sampling_positions(
    offset: torch.Tensor,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    deform_groups: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return absolute (row, column) of every tap, laid out [N, dg, Ho, Wo, K]: taps innermost."""
    N, _, Ho, Wo = offset.shape
    kh, kw = kernel_size
    K = kh * kw
    dtype = _coordinate_dtype(offset.dtype)
    device = offset.device
    offset = offset.to(dtype).reshape(N, deform_groups, K, 2, Ho, Wo).permute(0, 1, 4, 5, 2, 3)
    tap_row = torch.arange(kh, device=device).repeat_interleave(kw) * dilation[0]  # [K]
    tap_col = torch.arange(kw, device=device).repeat(kh) * dilation[1]  # [K]
    out_row = torch.arange(Ho, device=device) * stride[0] - padding[0]  # [Ho]
    out_col = torch.arange(Wo, device=device) * stride[1] - padding[1]  # [Wo]
    # Integer base first, then the fractional offset: the kernel's order of additions.
    base_row = (out_row[:, None, None] + tap_row).to(dtype)  # [Ho, 1, K]
    base_col = (out_col[None, :, None] + tap_col).to(dtype)  # [1, Wo, K]
    h = base_row + offset[..., 0]  # [N, dg, Ho, Wo, K]
    w = base_col + offset[..., 1]  # [N, dg, Ho, Wo, K]
    return h, w


def _bilinear_corners(
    h: torch.Tensor, w: torch.Tensor, mask: torch.Tensor, height: int, width: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """
    (flat index into a [N*dg*H*W] plane stack, weight incl. mask) for the 4 corners of each point.

    h, w, mask: [N, dg, Ho, Wo, K]. Invalid corners get weight 0 and a clamped (harmless) index.
    """
    N, dg = h.shape[:2]
    inside = (h > -1) & (h < height) & (w > -1) & (w < width)
    mask = mask * inside
    h0 = torch.floor(h)
    w0 = torch.floor(w)
    lh = h - h0
    lw = w - w0
    hh = 1 - lh
    hw = 1 - lw
    h0 = h0.long()
    w0 = w0.long()
    h1 = h0 + 1
    w1 = w0 + 1
    plane = torch.arange(N * dg, device=h.device).view(N, dg, 1, 1, 1) * (height * width)
    corners = []
    for row, col, weight, row_ok, col_ok in (
        (h0, w0, hh * hw, h0 >= 0, w0 >= 0),
        (h0, w1, hh * lw, h0 >= 0, w1 <= width - 1),
        (h1, w0, lh * hw, h1 <= height - 1, w0 >= 0),
        (h1, w1, lh * lw, h1 <= height - 1, w1 <= width - 1),
    ):
        index = plane + row.clamp(0, height - 1) * width + col.clamp(0, width - 1)
        corners.append((index.reshape(-1), weight * mask * (row_ok & col_ok)))
    return corners


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    deform_groups: int = 1,
) -> torch.Tensor:
    """
    DCNv2 forward with mmcv's channel layout and border rule.

    x [N, C_in, H, W]; offset [N, dg*2*K, Ho, Wo]; mask [N, dg*K, Ho, Wo] (already sigmoid-ed);
    weight [C_out, C_in/groups, kh, kw]; bias [C_out] or None. Returns [N, C_out, Ho, Wo].
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    N, C_in, H, W = x.shape
    C_out, C_in_per_group, kh, kw = weight.shape
    K = kh * kw
    Ho, Wo = offset.shape[-2:]
    _check_shapes(x, offset, mask, weight, groups, deform_groups)
    h, w = _sampling_positions(offset, (kh, kw), stride, padding, dilation, deform_groups)
    coord_mask = mask.to(h.dtype).reshape(N, deform_groups, K, Ho, Wo).permute(0, 1, 3, 4, 2)
    corners = _bilinear_corners(h, w, coord_mask, H, W)

    C_dg = C_in // deform_groups
    # Channel-last planes so that each gathered row is one contiguous channel vector.
    x_rows = (
        x.reshape(N, deform_groups, C_dg, H * W).transpose(2, 3).reshape(-1, C_dg)
    )  # [N*dg*H*W, C_dg]
    col = None
    for index, corner_weight in corners:
        corner_weight = corner_weight.reshape(-1, 1).to(x.dtype)  # [N*dg*Ho*Wo*K, 1]
        values = x_rows.index_select(0, index)  # [N*dg*Ho*Wo*K, C_dg]
        col = values * corner_weight if col is None else col.addcmul_(values, corner_weight)
    L = Ho * Wo
    col = col.view(N, deform_groups, L, K, C_dg)
    if deform_groups > 1:
        col = col.permute(0, 2, 3, 1, 4)  # [N, L, K, dg, C_dg]: channel index c = g*C_dg + c_dg
    col = col.reshape(N, L, K, groups, C_in_per_group).permute(
        0, 3, 1, 2, 4
    )  # [N, G, L, K, C_in/G]
    col = col.reshape(N, groups, L, K * C_in_per_group)
    # weight [C_out, C_in/G, kh, kw] -> [G, C_out/G, K*C_in/G] with the column's (tap, channel)
    # order.
    w_mat = weight.permute(0, 2, 3, 1).reshape(groups, C_out // groups, K * C_in_per_group)
    out = torch.matmul(w_mat, col.transpose(-1, -2))  # [N, G, C_out/G, L]
    out = out.reshape(N, C_out, Ho, Wo)
    if bias is not None:
        out = out + bias.view(1, C_out, 1, 1)
    return out


def _check_shapes(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor,
    groups: int,
    deform_groups: int,
) -> None:
    C_in = x.shape[1]
    C_out, C_in_per_group, kh, kw = weight.shape
    K = kh * kw
    if C_in % groups or C_out % groups or C_in // groups != C_in_per_group:
        raise ValueError(
            f'weight {tuple(weight.shape)} does not fit input channels {C_in} with '
            f'groups={groups}; '
            f'expected weight [C_out, {C_in // max(groups, 1)}, kh, kw]'
        )
    if C_in % deform_groups:
        raise ValueError(
            f'input channels {C_in} are not divisible by deform_groups={deform_groups}'
        )
    if offset.shape[1] != 2 * deform_groups * K or mask.shape[1] != deform_groups * K:
        raise ValueError(
            f'offset has {offset.shape[1]} and mask {mask.shape[1]} channels; with deform_groups='
            f'{deform_groups} and a {kh}x{kw} kernel they must have {2 * deform_groups * K} and '
            f'{deform_groups * K}'
        )
    if offset.shape[0] != x.shape[0] or mask.shape[-2:] != offset.shape[-2:]:
        raise ValueError(
            f'offset {tuple(offset.shape)} and mask {tuple(mask.shape)} must share batch size and '
            'output '
            f'size with each other and with x {tuple(x.shape)}'
        )


class ModulatedDeformConv2dPack(nn.Module):
    """
    mmcv ``ModulatedDeformConv2dPack``: DCNv2 whose offsets and mask come from ``conv_offset``.

    State-dict entries: ``weight`` [C_out, C_in/groups, kh, kw], ``bias`` [C_out] (only if
    ``bias``), ``conv_offset.weight`` [dg*3*K, C_in, kh, kw], ``conv_offset.bias`` [dg*3*K].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        num_taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset = nn.Conv2d(
            in_channels,
            deform_groups * 3 * num_taps,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Init like mmcv: uniform weight scaled by full fan-in, zero bias/offsets (mask 0.5)."""
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.zero_()
            self.conv_offset.weight.zero_()
            self.conv_offset.bias.zero_()

    def offset_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """X [N, C_in, H, W] -> offset [N, dg*2*K, Ho, Wo], mask [N, dg*K, Ho, Wo]."""
        out = self.conv_offset(x)  # [N, dg*3*K, Ho, Wo]
        # mmcv does chunk(3) then cat of the first two chunks: that is the leading 2/3 of the
        # channels.
        num_offset = 2 * out.shape[1] // 3
        return out[:, :num_offset], torch.sigmoid(out[:, num_offset:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """X [N, C_in, H, W] -> [N, C_out, Ho, Wo]."""
        offset, mask = self.offset_and_mask(x)
        fused = _fused_kernel(x)
        if fused is not None:
            return fused(
                x,
                offset,
                self.weight,
                self.bias,
                stride=self.stride,
                padding=self.padding,
                dilation=self.dilation,
                mask=mask,
            )  # groups and deform groups follow from the weight and offset shapes
        return modulated_deform_conv2d(
            x,
            offset,
            mask,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.deform_groups,
        )

    def extra_repr(self) -> str:
        return (
            f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
            f'stride={self.stride}, '
            f'padding={self.padding}, dilation={self.dilation}, groups={self.groups}, '
            f'deform_groups={self.deform_groups}, bias={self.bias is not None}'
        )

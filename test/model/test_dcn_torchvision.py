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

"""DCNv2: torchvision's fused kernel (used on CUDA) against the plain-PyTorch mmcv port."""

from __future__ import annotations

from bevformer_ros.model.dcn import (
    modulated_deform_conv2d,
    ModulatedDeformConv2dPack,
    torchvision_deform_conv2d,
)
import pytest
import torch

needs_torchvision = pytest.mark.skipif(
    torchvision_deform_conv2d() is None,
    reason='torchvision is not installed here (it is on the GPU image)',
)


def _random_layer(deform_groups: int, groups: int, seed: int = 0) -> ModulatedDeformConv2dPack:
    torch.manual_seed(seed)
    layer = ModulatedDeformConv2dPack(
        8, 12, 3, stride=2, padding=1, groups=groups, deform_groups=deform_groups
    )
    with torch.no_grad():  # large offsets: many taps land outside the map (the border rule)
        layer.conv_offset.weight.normal_(0.0, 0.5)
        layer.conv_offset.bias.normal_(0.0, 2.0)
        layer.bias.normal_()
    return layer.eval()


@needs_torchvision
@pytest.mark.parametrize(('deform_groups', 'groups'), [(1, 1), (2, 1), (2, 2)])
def test_torchvision_kernel_matches_the_mmcv_port(deform_groups, groups):
    """Same offset layout ((dy, dx) per tap, group-major), mask and border rule, on the CPU."""
    layer = _random_layer(deform_groups, groups)
    x = torch.randn(2, 8, 9, 11)
    with torch.no_grad():
        offset, mask = layer.offset_and_mask(x)
        args = (layer.stride, layer.padding, layer.dilation)
        want = modulated_deform_conv2d(
            x, offset, mask, layer.weight, layer.bias, *args, groups, deform_groups
        )
        got = torchvision_deform_conv2d()(
            x, offset, layer.weight, layer.bias, *args, mask=mask
        )
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-4


@needs_torchvision
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_layer_uses_torchvision_and_matches_the_cpu_port():
    layer = _random_layer(deform_groups=2, groups=1)
    x = torch.randn(2, 8, 9, 11)
    with torch.no_grad():
        want = layer(x)  # CPU: the plain-PyTorch port
        got = layer.cuda()(x.cuda()).cpu()  # CUDA: torchvision's kernel
    assert (got - want).abs().max().item() < 1e-4

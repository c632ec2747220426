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

"""DCNv2 (mmcv ModulatedDeformConv2dPack) vs the official fixture and a naive per-tap reference."""

from __future__ import annotations

import math

from bevformer_ros.model.dcn import modulated_deform_conv2d, ModulatedDeformConv2dPack
import pytest
from reference_fixtures import REFERENCE, require
import torch
import torch.nn.functional as F

FIXTURE = REFERENCE / 'case_dcn.pt'
LAYER_CASES = ('official_s1', 'stride2_bias', 'dg2_dil2_bias')


@pytest.fixture(scope='module')
def case_dcn() -> dict:
    return torch.load(require(FIXTURE), weights_only=True)


def _layer(case: dict, dtype: torch.dtype) -> ModulatedDeformConv2dPack:
    layer = ModulatedDeformConv2dPack(**case['config'])
    layer.load_state_dict({k: v.to(dtype) for k, v in case['state_dict'].items()}, strict=True)
    return layer.to(dtype).eval()


@pytest.mark.parametrize('name', LAYER_CASES)
def test_fixture_layer_float32(case_dcn, name):
    case = case_dcn['layers'][name]
    layer = _layer(case, torch.float32)
    x = case['input'].float()
    with torch.no_grad():
        conv_offset_out = layer.conv_offset(x)
        offset, mask = layer.offset_and_mask(x)
        y = layer(x)
    # README §9.4 float32 tolerance: the conv kernel (and its summation order) depends on the CPU
    torch.testing.assert_close(conv_offset_out, case['conv_offset_out'], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(offset, case['offset'], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(mask, case['mask'], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(y, case['output'], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name', LAYER_CASES)
def test_fixture_layer_float64(case_dcn, name):
    case = case_dcn['layers'][name]
    layer = _layer(case, torch.float64)
    with torch.no_grad():
        y = layer(case['input'].double())
    torch.testing.assert_close(y, case['output_float64'], rtol=0, atol=1e-9)


def test_state_dict_names_follow_mmcv():
    layer = ModulatedDeformConv2dPack(16, 24, 3, padding=1, deform_groups=2, bias=False)
    shapes = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
    assert shapes == {
        'weight': (24, 16, 3, 3),
        'conv_offset.weight': (2 * 3 * 9, 16, 3, 3),
        'conv_offset.bias': (2 * 3 * 9,),
    }


# -------------------------------------------------------- naive reference (README §9.1, literally)


def _naive_bilinear(plane: torch.Tensor, h: float, w: float) -> torch.Tensor:
    """Plane [C, H, W]; mmcv's dmcn_im2col_bilinear with the outer range test."""
    C, H, W = plane.shape
    if h <= -1 or h >= H or w <= -1 or w >= W:
        return torch.zeros(C, dtype=plane.dtype)
    h0, w0 = math.floor(h), math.floor(w)
    lh, lw = h - h0, w - w0
    value = torch.zeros(C, dtype=plane.dtype)
    for row, col, weight in (
        (h0, w0, (1 - lh) * (1 - lw)),
        (h0, w0 + 1, (1 - lh) * lw),
        (h0 + 1, w0, lh * (1 - lw)),
        (h0 + 1, w0 + 1, lh * lw),
    ):
        if 0 <= row <= H - 1 and 0 <= col <= W - 1:
            value += weight * plane[:, row, col]
    return value


def _naive_dcn(x, offset, mask, weight, bias, stride, padding, dilation, groups, deform_groups):
    N, C_in, H, W = x.shape
    C_out, _, kh, kw = weight.shape
    K = kh * kw
    Ho, Wo = offset.shape[-2:]
    C_dg = C_in // deform_groups
    col = torch.zeros(N, C_in, K, Ho, Wo, dtype=x.dtype)
    for n in range(N):
        for g in range(deform_groups):
            channels = slice(g * C_dg, (g + 1) * C_dg)
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for ho in range(Ho):
                        for wo in range(Wo):
                            dy = offset[n, g * 2 * K + 2 * k, ho, wo].item()  # even channel: row
                            # odd channel: column
                            dx = offset[n, g * 2 * K + 2 * k + 1, ho, wo].item()
                            h = ho * stride - padding + i * dilation + dy
                            w = wo * stride - padding + j * dilation + dx
                            m = mask[n, g * K + k, ho, wo]
                            col[n, channels, k, ho, wo] = m * _naive_bilinear(x[n, channels], h, w)
    C_in_g, C_out_g = C_in // groups, C_out // groups
    y = torch.zeros(N, C_out, Ho, Wo, dtype=x.dtype)
    for o in range(C_out):
        group = o // C_out_g
        cols = col[:, group * C_in_g:(group + 1) * C_in_g]  # [N, C_in/G, K, Ho, Wo]
        y[:, o] = torch.einsum('nckhw,ck->nhw', cols, weight[o].reshape(C_in_g, K))
        if bias is not None:
            y[:, o] += bias[o]
    return y


def _border_heavy_offsets(
    gen: torch.Generator, shape: tuple[int, ...], spread: float
) -> torch.Tensor:
    """Half-pixel multiples hit h == -1, H-1, H and integer corners exactly; the rest is smooth."""
    smooth = torch.randn(shape, generator=gen, dtype=torch.float64) * spread
    snapped = torch.round(smooth * 2) / 2
    use_snapped = torch.rand(shape, generator=gen) < 0.5
    return torch.where(use_snapped, snapped, smooth)


NAIVE_CASES = [
    # (N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups, deform_groups)
    (2, 4, 6, 5, 6, 3, 1, 1, 1, 1, 1),
    (1, 4, 6, 7, 5, 3, 2, 1, 1, 1, 1),
    (1, 4, 4, 6, 6, 3, 1, 2, 2, 2, 2),
    (1, 3, 5, 1, 7, 3, 1, 1, 1, 1, 1),  # H == 1
    (1, 3, 5, 6, 1, 3, 1, 1, 1, 1, 1),  # W == 1
    (1, 2, 3, 1, 1, 3, 1, 1, 1, 1, 1),  # 1x1 map
    (1, 4, 2, 4, 5, (2, 3), 1, 0, 1, 1, 2),  # non-square kernel, no padding
]


@pytest.mark.parametrize('seed', range(len(NAIVE_CASES)))
def test_matches_naive_reference(seed):
    N, C_in, C_out, H, W, kernel, stride, padding, dilation, groups, dg = NAIVE_CASES[seed]
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    gen = torch.Generator().manual_seed(seed)
    Ho = (H + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    Wo = (W + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    x = torch.randn(N, C_in, H, W, generator=gen, dtype=torch.float64)
    weight = torch.randn(C_out, C_in // groups, kh, kw, generator=gen, dtype=torch.float64)
    bias = torch.randn(C_out, generator=gen, dtype=torch.float64)
    offset = _border_heavy_offsets(gen, (N, dg * 2 * kh * kw, Ho, Wo), spread=max(H, W) / 2)
    mask = torch.rand(N, dg * kh * kw, Ho, Wo, generator=gen, dtype=torch.float64)
    args = (stride, padding, dilation, groups, dg)
    expected = _naive_dcn(x, offset, mask, weight, bias, *args)
    actual = modulated_deform_conv2d(x, offset, mask, weight, bias, *args)
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


def test_exact_border_positions():
    """H == -1 and h == H give 0, h == H-1 reads the last row, h == -0.5 reads half of row 0."""
    x = torch.arange(1.0, 13.0, dtype=torch.float64).view(1, 1, 3, 4)
    weight = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    weight[0, 0, 1, 1] = 1.0  # centre tap only
    mask = torch.ones(1, 9, 3, 4, dtype=torch.float64)
    rows = torch.arange(3, dtype=torch.float64).view(3, 1)
    centre = 2 * 4  # offset channels 8 (row) and 9 (column) of tap k = 4
    cases = {
        -1.0: torch.zeros(3, 4),
        3.0: torch.zeros(3, 4),
        2.0: x[0, 0, 2].expand(3, 4),
        -0.5: (x[0, 0, 0] / 2).expand(3, 4),
    }
    for target_row, expected in cases.items():
        offset = torch.zeros(1, 18, 3, 4, dtype=torch.float64)
        offset[0, centre] = target_row - rows
        y = modulated_deform_conv2d(x, offset, mask, weight, padding=1)
        torch.testing.assert_close(y[0, 0], expected.to(torch.float64), rtol=0, atol=1e-15)
    offset = torch.zeros(1, 18, 3, 4, dtype=torch.float64)
    offset[0, centre + 1] = 1.0  # column channel: y[r, c] = x[r, c + 1], 0 past the right edge
    y = modulated_deform_conv2d(x, offset, mask, weight, padding=1)
    # a few ulp of |x| <= 12 from grid_sample's pixel -> [-1, 1] -> pixel round trip (measured
    # 4.4e-16); the wrong column would be off by 1 or more
    torch.testing.assert_close(y[0, 0, :, :3], x[0, 0, :, 1:], rtol=0, atol=1e-14)
    assert torch.all(y[0, 0, :, 3] == 0)


@pytest.mark.parametrize('stride,padding,dilation', [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_fresh_layer_is_half_a_plain_conv(stride, padding, dilation):
    """Mmcv zero-initialises conv_offset: no offset, mask sigmoid(0) = 0.5, i.e. 0.5 * conv2d."""
    gen = torch.Generator().manual_seed(3)
    layer = ModulatedDeformConv2dPack(
        5, 7, 3, stride=stride, padding=padding, dilation=dilation
    ).double()
    with torch.no_grad():
        layer.bias.normal_(generator=gen)
    x = torch.randn(2, 5, 9, 11, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        y = layer(x)
        plain = F.conv2d(x, layer.weight, None, stride, padding, dilation)
    torch.testing.assert_close(y, 0.5 * plain + layer.bias.view(1, -1, 1, 1), rtol=0, atol=1e-12)


def test_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    offset = (torch.randn(1, 18, 4, 5, generator=gen, dtype=torch.float64) * 1.3).requires_grad_()
    mask = torch.rand(1, 9, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *t: modulated_deform_conv2d(*t, padding=1), (x, offset, mask, weight), eps=1e-6
    )


@pytest.mark.parametrize('dtype,atol', [(torch.float16, 1e-2), (torch.bfloat16, 0.1)])
def test_half_precision_runs_close_to_float64(case_dcn, dtype, atol):
    case = case_dcn['layers']['official_s1']
    layer = _layer(case, dtype)
    with torch.no_grad():
        y = layer(case['input'].to(dtype))
    assert y.dtype == dtype
    # Measured: 3.6e-3 (float16) and 5e-2 (bfloat16) against outputs |y| <= 2; a wrong layout gives
    # > 1.
    torch.testing.assert_close(y.double(), case['output_float64'], rtol=0, atol=atol)


def test_shape_errors_name_the_fix():
    x = torch.zeros(1, 4, 5, 5)
    with pytest.raises(ValueError, match='deform_groups=1'):
        modulated_deform_conv2d(
            x, torch.zeros(1, 9, 5, 5), torch.zeros(1, 9, 5, 5), torch.zeros(2, 4, 3, 3)
        )


def test_channels_last_layer_gives_the_same_output():
    # the torch engine runs the backbone channels_last: the offset and mask slices of the pack's
    # conv_offset output are then strided views, which the layer must take as they are
    gen = torch.Generator().manual_seed(5)
    layer = ModulatedDeformConv2dPack(8, 6, 3, padding=1, deform_groups=2).double()
    with torch.no_grad():
        layer.conv_offset.weight.normal_(0.0, 0.3, generator=gen)
        layer.conv_offset.bias.normal_(0.0, 1.0, generator=gen)
        x = torch.randn(2, 8, 7, 9, generator=gen, dtype=torch.float64)
        expected = layer(x)
        layer = layer.to(memory_format=torch.channels_last)
        y = layer(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-12)

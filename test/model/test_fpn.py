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

"""mmdet FPN: official key manifests and numerics against hand-written conv2d pipelines."""

from __future__ import annotations

import json

from bevformer_ros.model.fpn import FPN
import pytest
from reference_fixtures import REFERENCE, require
import torch
import torch.nn.functional as F


def _manifest_neck(preset: str) -> list[tuple[str, tuple[int, ...]]]:
    path = REFERENCE / f'official_keys_{preset}.json'
    entries = json.loads(require(path).read_text())
    return [
        (k.removeprefix('img_neck.'), tuple(s)) for k, s, _ in entries if k.startswith('img_neck.')
    ]


@pytest.mark.parametrize(
    'preset,in_channels,num_outs',
    [('tiny', [2048], 1), ('small', [2048], 1), ('base', [512, 1024, 2048], 4)],
)
def test_keys_match_official_manifest(preset, in_channels, num_outs):
    # The official configs: out 256, start_level 0, add_extra_convs='on_output',
    # relu_before_extra_convs.
    with torch.device('meta'):
        neck = FPN(
            in_channels, 256, num_outs, add_extra_convs='on_output', relu_before_extra_convs=True
        )
    assert [(k, tuple(v.shape)) for k, v in neck.state_dict().items()] == _manifest_neck(preset)


def _nearest_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Legacy 'nearest' resize: source index floor(dst * in / out), in integer arithmetic."""
    rows = torch.arange(size[0]) * x.shape[-2] // size[0]
    cols = torch.arange(size[1]) * x.shape[-1] // size[1]
    return x[..., rows[:, None], cols[None, :]]


def _random_neck(in_channels, out_channels, num_outs, seed, **kwargs) -> FPN:
    neck = FPN(in_channels, out_channels, num_outs, **kwargs).double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in neck.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.3)
    return neck


def _inputs(in_channels, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randn(2, c, h, w, generator=gen, dtype=torch.float64)
        for c, (h, w) in zip(in_channels, sizes)
    ]


# Sizes that are not exact 2x ratios exercise mmdet's size-based nearest upsampling.
SIZES = [(11, 19), (6, 10), (3, 5)]


def _conv(
    neck: FPN, group: str, i: int, x: torch.Tensor, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    conv = getattr(neck, group)[i].conv
    return F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=padding)


def _expected_top_down(neck: FPN, inputs, start_level: int = 0) -> tuple[list, list]:
    levels = range(len(neck.lateral_convs))
    laterals = [_conv(neck, 'lateral_convs', i, inputs[i + start_level]) for i in levels]
    for i in reversed(levels[1:]):
        laterals[i - 1] = laterals[i - 1] + _nearest_to(laterals[i], laterals[i - 1].shape[-2:])
    outs = [_conv(neck, 'fpn_convs', i, laterals[i], padding=1) for i in levels]
    return laterals, outs


def test_on_output_with_relu_before_later_extra_convs():
    """Base structure, two extra levels: 1st extra conv sees outs[-1] as is, the 2nd its ReLU."""
    in_channels = [3, 5, 7]
    neck = _random_neck(
        in_channels, 4, 5, seed=1, add_extra_convs='on_output', relu_before_extra_convs=True
    )
    inputs = _inputs(in_channels, SIZES, seed=2)
    _, outs = _expected_top_down(neck, inputs)
    p6 = _conv(neck, 'fpn_convs', 3, outs[-1], stride=2, padding=1)
    p7 = _conv(neck, 'fpn_convs', 4, F.relu(p6), stride=2, padding=1)
    expected = outs + [p6, p7]
    with torch.no_grad():
        actual = neck(inputs)
    assert [tuple(a.shape) for a in actual] == [
        (2, 4, 11, 19),
        (2, 4, 6, 10),
        (2, 4, 3, 5),
        (2, 4, 2, 3),
        (2, 4, 1, 2),
    ]
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)


def test_on_output_without_relu():
    in_channels = [3, 5, 7]
    neck = _random_neck(in_channels, 4, 5, seed=3, add_extra_convs='on_output')
    inputs = _inputs(in_channels, SIZES, seed=4)
    _, outs = _expected_top_down(neck, inputs)
    p6 = _conv(neck, 'fpn_convs', 3, outs[-1], stride=2, padding=1)
    p7 = _conv(neck, 'fpn_convs', 4, p6, stride=2, padding=1)
    with torch.no_grad():
        actual = neck(inputs)
    torch.testing.assert_close(actual[4], p7, rtol=0, atol=1e-12)


@pytest.mark.parametrize('add_extra_convs', [True, 'on_input', 'on_lateral'])
def test_extra_conv_sources(add_extra_convs):
    in_channels = [3, 5, 7]
    neck = _random_neck(in_channels, 4, 4, seed=5, add_extra_convs=add_extra_convs)
    inputs = _inputs(in_channels, SIZES, seed=6)
    laterals, outs = _expected_top_down(neck, inputs)
    source = laterals[-1] if add_extra_convs == 'on_lateral' else inputs[-1]
    expected_in = 4 if add_extra_convs == 'on_lateral' else 7
    assert neck.fpn_convs[3].conv.in_channels == expected_in
    p6 = _conv(neck, 'fpn_convs', 3, source, stride=2, padding=1)
    with torch.no_grad():
        actual = neck(inputs)
    for a, e in zip(actual, outs + [p6], strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)


def test_max_pool_extra_levels_and_start_level():
    """No extra convs: extra levels are stride-2 subsamples of the last out; start_level skips."""
    in_channels = [2, 3, 5, 7]
    neck = _random_neck(in_channels, 4, 5, seed=7, start_level=1)
    assert len(neck.fpn_convs) == 3
    inputs = _inputs(in_channels, [(22, 38)] + SIZES, seed=8)
    _, outs = _expected_top_down(neck, inputs, start_level=1)
    expected = outs + [outs[-1][..., ::2, ::2], outs[-1][..., ::4, ::4]]
    with torch.no_grad():
        actual = neck(inputs)
    for a, e in zip(actual, expected, strict=True):
        torch.testing.assert_close(a, e, rtol=0, atol=1e-12)


def test_single_level_official_tiny_structure_is_lateral_then_output_conv():
    neck = _random_neck(
        [6], 4, 1, seed=9, add_extra_convs='on_output', relu_before_extra_convs=True
    )
    (x,) = _inputs([6], [(3, 5)], seed=10)
    expected = _conv(neck, 'fpn_convs', 0, _conv(neck, 'lateral_convs', 0, x), padding=1)
    with torch.no_grad():
        (actual,) = neck([x])
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-12)


def test_fixed_scale_factor_upsampling_matches_size_based_on_even_sizes():
    in_channels = [3, 5]
    sized = _random_neck(in_channels, 4, 2, seed=11)
    scaled = _random_neck(in_channels, 4, 2, seed=11, upsample_scale_factor=2.0)
    inputs = _inputs(in_channels, [(8, 12), (4, 6)], seed=12)
    with torch.no_grad():
        for a, b in zip(sized(inputs), scaled(inputs), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_invalid_configuration_names_the_fix():
    with pytest.raises(ValueError, match='add_extra_convs must be'):
        FPN([4, 8], 4, 3, add_extra_convs='on_top')
    with pytest.raises(ValueError, match='num_outs=1 is smaller'):
        FPN([4, 8], 4, 1)
    neck = FPN([4, 8], 4, 2)
    with pytest.raises(ValueError, match='built for 2'):
        neck([torch.zeros(1, 4, 4, 4)])

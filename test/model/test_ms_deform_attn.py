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

"""Multi-scale deformable attention vs a naive per-level/head/point bilinear loop (float64)."""

from __future__ import annotations

import math

from bevformer_ros.model.ms_deform_attn import multi_scale_deformable_attn
import pytest
import torch


def naive_bilinear(img: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Sample img [D, H, W] at (x, y) in pixels, pixel centres at integers; outside is 0."""
    D, H, W = img.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = torch.zeros(D, dtype=img.dtype)
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < H and 0 <= xx < W:
                out += wy * wx * img[:, yy, xx]
    return out


def naive_msda(value, shapes, locations, weights):
    """Loop: value [B, S, M, D], locations [B, Q, M, L, P, 2] in [0, 1] -> [B, Q, M*D]."""
    B, _, M, D = value.shape
    _, Q, _, L, P, _ = locations.shape
    out = torch.zeros(B, Q, M, D, dtype=value.dtype)
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        level = value[:, start:start + h * w].reshape(B, h, w, M, D)
        start += h * w
        for b in range(B):
            for m in range(M):
                img = level[b, :, :, m].permute(2, 0, 1)  # [D, H, W]
                for q in range(Q):
                    for p in range(P):
                        u, v = locations[b, q, m, lvl, p].tolist()
                        # align_corners=False: normalised 0 is the left edge of pixel 0, whose
                        # centre is 0.5
                        sample = naive_bilinear(img, u * w - 0.5, v * h - 0.5)
                        out[b, q, m] += weights[b, q, m, lvl, p] * sample
    return out.reshape(B, Q, M * D)


@pytest.mark.parametrize('shapes', [[(5, 7)], [(6, 9), (3, 5), (2, 2)]])
def test_matches_naive_loop_float64(shapes):
    gen = torch.Generator().manual_seed(0)
    B, Q, M, D, P = 2, 5, 3, 4, 4
    L = len(shapes)
    S = sum(h * w for h, w in shapes)
    value = torch.randn(B, S, M, D, generator=gen, dtype=torch.float64)
    # spread beyond [0, 1] so that zero padding at every border is exercised
    locations = torch.rand(B, Q, M, L, P, 2, generator=gen, dtype=torch.float64) * 1.4 - 0.2
    weights = torch.rand(B, Q, M, L, P, generator=gen, dtype=torch.float64)
    out = multi_scale_deformable_attn(value, shapes, locations, weights)
    expected = naive_msda(value, shapes, locations, weights)
    assert out.shape == (B, Q, M * D)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_exact_pixel_centre_returns_the_pixel():
    # one 3x4 level, value = index
    value = torch.arange(12, dtype=torch.float64).reshape(1, 12, 1, 1)
    # pixel (row 1, col 2) has its centre at ((2 + 0.5) / 4, (1 + 0.5) / 3)
    loc = torch.tensor([2.5 / 4, 1.5 / 3], dtype=torch.float64).view(1, 1, 1, 1, 1, 2)
    out = multi_scale_deformable_attn(
        value, [(3, 4)], loc, torch.ones(1, 1, 1, 1, 1, dtype=torch.float64)
    )
    assert out.item() == pytest.approx(1 * 4 + 2)


def test_rejects_shapes_that_do_not_match_value():
    value = torch.zeros(1, 10, 1, 1)
    with pytest.raises(ValueError, match='spatial_shapes'):
        multi_scale_deformable_attn(
            value, [(3, 4)], torch.zeros(1, 1, 1, 1, 1, 2), torch.ones(1, 1, 1, 1, 1)
        )

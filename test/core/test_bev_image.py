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

"""BEV features -> 32FC<C> layout and rgb8 picture (forward up, +x right)."""

from __future__ import annotations

from bevformer_ros.core.bev_image import bev_features_hwc, bev_to_rgb
import numpy as np
import pytest

VIRIDIS_LOW = (0x44, 0x01, 0x54)
VIRIDIS_HIGH = (0xFD, 0xE7, 0x25)


def _model_layout(values_hwc):
    """[H, W, C] -> the model's [H*W, 1, C] with q = row * W + col, written out cell by cell."""
    h, w, c = values_hwc.shape
    bev = np.zeros((h * w, 1, c), np.float32)
    for row in range(h):
        for col in range(w):
            bev[row * w + col, 0] = values_hwc[row, col]
    return bev


def test_hwc_layout_keeps_model_rows_and_columns():
    h, w, c = 3, 5, 2
    cells = np.random.default_rng(0).normal(size=(h, w, c)).astype(np.float32)
    out = bev_features_hwc(_model_layout(cells), h, w)
    assert out.shape == (h, w, c) and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, cells)
    np.testing.assert_array_equal(bev_features_hwc(_model_layout(cells)[:, 0], h, w), cells)


def test_hwc_rejects_wrong_cell_count_and_batch():
    with pytest.raises(ValueError, match='3x5'):
        bev_features_hwc(np.zeros((14, 4), np.float32), 3, 5)
    with pytest.raises(ValueError, match='batch size 1'):
        bev_features_hwc(np.zeros((15, 2, 4), np.float32), 3, 5)


def test_norm_picture_puts_forward_right_cell_top_right():
    h, w = 4, 6
    cells = np.zeros((h, w, 8), np.float32)
    cells[h - 1, w - 1] = 3.0  # largest +y (forward) and largest +x (right)
    rgb = bev_to_rgb(bev_features_hwc(_model_layout(cells), h, w), 'norm')
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, w - 1]) == VIRIDIS_HIGH
    assert tuple(rgb[h - 1, 0]) == VIRIDIS_LOW
    assert (rgb == np.array(VIRIDIS_LOW, np.uint8)).all(axis=-1).sum() == h * w - 1


def test_norm_picture_is_monotone_in_the_channel_norm():
    h, w = 1, 50
    cells = np.zeros((h, w, 4), np.float32)
    cells[0, :, 2] = np.linspace(0.0, 5.0, w)
    rgb = bev_to_rgb(cells, 'norm').astype(int)
    brightness = rgb.sum(axis=-1)[0]
    assert brightness[0] < brightness[w // 2] < brightness[-1]


def test_pca_first_component_follows_the_dominant_pattern():
    h, w, c = 8, 8, 16
    rng = np.random.default_rng(1)
    direction = rng.normal(size=c)
    ramp = np.arange(h, dtype=np.float64)[:, None].repeat(w, axis=1)  # grows with the row (+y)
    cells = (ramp[..., None] * direction + 1e-3 * rng.normal(size=(h, w, c))).astype(np.float32)
    rgb = bev_to_rgb(cells, 'pca')
    red_by_row = rgb[..., 0].astype(float).mean(axis=1)  # image rows: forward (+y) first
    corr = np.corrcoef(red_by_row, np.arange(h)[::-1])[0, 1]
    assert abs(corr) > 0.99
    np.testing.assert_array_equal(bev_to_rgb(cells.copy(), 'pca'), rgb)


def test_constant_features_give_a_flat_picture():
    rgb = bev_to_rgb(np.ones((5, 5, 3), np.float32), 'pca')
    assert (rgb == 128).all()
    flat = bev_to_rgb(np.ones((5, 5, 3), np.float32), 'norm')
    assert (flat == flat[0, 0]).all()


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="'norm' or 'pca'"):
        bev_to_rgb(np.zeros((2, 2, 2), np.float32), 'rainbow')

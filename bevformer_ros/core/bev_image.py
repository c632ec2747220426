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
BEV features -> arrays for `~/bev_features` (32FC<C>) and `~/bev_image` (rgb8).

Layout of the model's BEV (official `bev_embed`, batch 1): `q = row * bev_w + col`, where the
column walks along +x and the row along +y of the reference frame (LIDAR_TOP: x right, y forward, z
up), and cell (row, col) is centred at `x = (col + 0.5) / bev_w * (x_max - x_min) + x_min`,
likewise y with row.

- `bev_features_hwc` keeps that layout: image row = BEV row (increasing y), image column = BEV
  column (increasing x). So row 0 of `~/bev_features` is the cell row *behind* the ego vehicle.
- `bev_to_rgb` flips the rows so that forward (+y) is up and +x is right, the way one looks down on
  the vehicle from above; row 0 of `~/bev_image` is the row furthest ahead.
"""

from __future__ import annotations

import numpy as np

# viridis at 0, 1/4, 1/2, 3/4, 1 (matplotlib's published anchors); linear in between is close
# enough for a display and keeps matplotlib out of the dependencies.
_VIRIDIS_ANCHORS = np.array(
    [
        [0x44, 0x01, 0x54],
        [0x3B, 0x52, 0x8B],
        [0x21, 0x91, 0x8C],
        [0x5E, 0xC9, 0x62],
        [0xFD, 0xE7, 0x25],
    ],
    dtype=np.float32,
)
_LOW_PERCENTILE, _HIGH_PERCENTILE = 1.0, 99.0


def bev_features_hwc(bev: np.ndarray, bev_h: int, bev_w: int) -> np.ndarray:
    """[H*W, C] or [H*W, 1, C] (model layout) -> float32 [H, W, C], rows = +y, cols = +x."""
    if bev.ndim == 3:
        if bev.shape[1] != 1:
            raise ValueError(f'bev_features_hwc expects batch size 1, got shape {bev.shape}')
        bev = bev[:, 0]
    if bev.ndim != 2 or bev.shape[0] != bev_h * bev_w:
        raise ValueError(f'bev of shape {bev.shape} does not hold {bev_h}x{bev_w} cells')
    # [H, W, C]
    return np.ascontiguousarray(bev.reshape(bev_h, bev_w, bev.shape[1]), dtype=np.float32)


def bev_to_rgb(bev_hwc: np.ndarray, mode: str = 'norm') -> np.ndarray:
    """
    [H, W, C] float BEV -> uint8 [H, W, 3] picture with forward (+y) up and +x right.

    mode 'norm': L2 norm of each cell's channels through a viridis colormap.
    mode 'pca': the first three principal components of the channels as R, G, B.
    Each picture is scaled by its own 1st-99th percentile, so colours compare within a frame, not
    across.
    """
    if bev_hwc.ndim != 3:
        raise ValueError(f'bev_to_rgb expects [H, W, C], got shape {bev_hwc.shape}')
    if mode == 'norm':
        rgb = _colormap(_unit_range(np.linalg.norm(bev_hwc.astype(np.float32), axis=-1)))
    elif mode == 'pca':
        rgb = np.round(_unit_range(_principal_components(bev_hwc, 3)) * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"bev_to_rgb mode {mode!r}: expected 'norm' or 'pca'")
    return np.ascontiguousarray(rgb[::-1])  # rows flipped: +y (forward) up


def _unit_range(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the 1st-99th percentile (per last channel when x is [H, W, K])."""
    flat = x.reshape(-1, x.shape[-1]) if x.ndim == 3 else x.reshape(-1, 1)
    low = np.percentile(flat, _LOW_PERCENTILE, axis=0)
    high = np.percentile(flat, _HIGH_PERCENTILE, axis=0)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    out = np.clip((flat - low) / span, 0.0, 1.0)
    out[:, (high - low) <= 1e-12] = 0.5  # a constant picture shows as mid-grey, not as noise
    return out.reshape(x.shape).astype(np.float32)


def _colormap(unit: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 [H, W, 3] viridis."""
    pos = unit * (len(_VIRIDIS_ANCHORS) - 1)
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, len(_VIRIDIS_ANCHORS) - 2)
    t = (pos - i0)[..., None]
    rgb = _VIRIDIS_ANCHORS[i0] * (1.0 - t) + _VIRIDIS_ANCHORS[i0 + 1] * t
    return np.round(rgb).astype(np.uint8)


def _principal_components(bev_hwc: np.ndarray, k: int) -> np.ndarray:
    """[H, W, C] -> [H, W, k] projections on the top-k principal directions, stable signs."""
    h, w, c = bev_hwc.shape
    x = bev_hwc.reshape(h * w, c).astype(np.float64)
    x -= x.mean(axis=0)
    cov = x.T @ x  # [C, C]; cheaper than an SVD of [H*W, C] for the 200x200 BEV
    _, vecs = np.linalg.eigh(cov)
    top = vecs[:, ::-1][:, :k]  # [C, k], largest eigenvalue first
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])))
    # An eigenvector's sign is arbitrary; pin it so that consecutive frames keep their colours.
    signs = np.sign(top[np.abs(top).argmax(axis=0), np.arange(k)])
    top = top * np.where(signs == 0, 1.0, signs)
    return (x @ top).reshape(h, w, k)

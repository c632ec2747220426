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
Raster primitives for the pictures: segments, filled rectangles, resizing and (with Pillow) text.

All work in place on uint8 [H, W, 3] RGB arrays and clip to the picture. Pillow is optional:
without it pictures get no captions and resizing falls back to nearest-neighbour sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np


def draw_segments(
    image: np.ndarray, start: np.ndarray, end: np.ndarray, color: Sequence[int], thickness: int = 1
) -> None:
    """Draw the segments start[i] -> end[i] ([N, 2] pixel (x, y), float), `thickness` px wide."""
    start = np.asarray(start, dtype=np.float64).reshape(-1, 2)
    end = np.asarray(end, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(start).all(axis=1) & np.isfinite(end).all(axis=1)
    start, end = _clip_segments(
        start[finite], end[finite], image.shape[1], image.shape[0], thickness
    )
    if len(start) == 0:
        return
    # [N] samples per segment
    steps = np.ceil(np.abs(end - start).max(axis=1)).astype(np.int64) + 1
    owner = np.repeat(np.arange(len(steps)), steps)
    first = np.cumsum(steps) - steps
    f = (np.arange(owner.size) - first[owner]) / np.maximum(steps[owner] - 1, 1)
    points = start[owner] + f[:, None] * (end[owner] - start[owner])  # [P, 2]
    _stamp(image, np.round(points).astype(np.int64), color, thickness)


def _clip_segments(
    start: np.ndarray, end: np.ndarray, width: int, height: int, margin: int
) -> tuple[np.ndarray, np.ndarray]:
    """
    Clip the segments to the picture grown by `margin` pixels (Liang-Barsky), [M, 2] each.

    Projected box edges often reach thousands of pixels outside a camera picture; sampling only
    what can be seen keeps the cost to the picture's size.
    """
    delta = end - start  # [N, 2]
    low = np.array([-margin, -margin], dtype=np.float64)
    high = np.array([width - 1 + margin, height - 1 + margin], dtype=np.float64)
    p = np.concatenate([-delta, delta], axis=1)  # [N, 4]: x >= low, y >= low, x <= high, y <= high
    q = np.concatenate([start - low, high - start], axis=1)  # [N, 4]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = q / p
    t0 = np.max(np.where(p < 0, t, 0.0), axis=1)  # [N] entering
    t1 = np.min(np.where(p > 0, t, 1.0), axis=1)  # [N] leaving
    # parallel to an edge and outside it: gone
    keep = (t0 <= t1) & ~np.any((p == 0) & (q < 0), axis=1)
    return start[keep] + t0[keep, None] * delta[keep], start[keep] + t1[keep, None] * delta[keep]


def _stamp(image: np.ndarray, xy: np.ndarray, color: Sequence[int], thickness: int) -> None:
    h, w, _ = image.shape
    low = -(thickness // 2)
    offsets = np.array(
        [(dx, dy) for dx in range(low, low + thickness) for dy in range(low, low + thickness)]
    )
    xy = (xy[:, None, :] + offsets[None]).reshape(-1, 2)
    keep = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    image[xy[keep, 1], xy[keep, 0]] = color


def fill_rect(
    image: np.ndarray, x0: int, y0: int, x1: int, y1: int, color: Sequence[int], alpha: float = 1.0
) -> None:
    """Fill pixels [y0, y1) x [x0, x1), blended with `alpha`."""
    h, w, _ = image.shape
    x0, x1, y0, y1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
    if x0 >= x1 or y0 >= y1:
        return
    block = image[y0:y1, x0:x1].astype(np.float32)
    blended = block * (1 - alpha) + np.asarray(color, np.float32) * alpha
    image[y0:y1, x0:x1] = np.round(blended).astype(np.uint8)


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 [height, width, C]: Pillow's box filter when available (smooth), else nearest."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    pil = _pillow()
    if pil is not None:
        return np.asarray(
            pil.Image.fromarray(image).resize((width, height), pil.Image.Resampling.BOX)
        )
    rows = np.minimum(
        (np.arange(height) + 0.5) * image.shape[0] / height, image.shape[0] - 1
    ).astype(int)
    cols = np.minimum(
        (np.arange(width) + 0.5) * image.shape[1] / width, image.shape[1] - 1
    ).astype(int)
    return image[rows][:, cols]


def draw_text(
    image: np.ndarray,
    x: int,
    y: int,
    text: str,
    color: Sequence[int] = (255, 255, 255),
    size: int = 14,
    background: Sequence[int] | None = (0, 0, 0),
) -> None:
    """Write `text` with its top-left corner at (x, y); does nothing without Pillow."""
    pil = _pillow()
    if pil is None or not text:
        return
    font = _font(size)
    canvas = pil.Image.fromarray(image)
    draw = pil.ImageDraw.Draw(canvas)
    if background is not None:
        left, top, right, bottom = draw.textbbox((x, y), text, font=font)
        draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=tuple(background))
    draw.text((x, y), text, fill=tuple(color), font=font)
    image[...] = np.asarray(canvas)


def text_available() -> bool:
    return _pillow() is not None


@lru_cache(maxsize=1)
def _pillow() -> Any:
    try:
        import PIL.Image
        import PIL.ImageDraw
        import PIL.ImageFont
    except ImportError:
        return None
    return PIL


@lru_cache(maxsize=8)
def _font(size: int) -> Any:
    return _pillow().ImageFont.load_default(size=size)

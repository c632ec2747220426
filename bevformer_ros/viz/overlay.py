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
The picture of one frame: six camera images with the 3D boxes projected, beside a bird's-eye view.

The cameras sit in the nuScenes layout (front row FRONT_LEFT, FRONT, FRONT_RIGHT; back row
BACK_LEFT, BACK, BACK_RIGHT) with every box's 12 edges drawn where `lidar2img` projects them
(clipped at the near plane). The bird's-eye view (forward up, +-51.2 m, the BEV grid of the model)
shows the ego vehicle, the detections (class colours, thick), the ground truth (white, thin) and,
underneath, the BEV feature heat map (L2 norm of the features). A picture is `3 * tile_w + 2 *
tile_h` wide and `2 * tile_h` high, `tile_h = round(tile_w * H / W)` for W x H camera images.

Plain numpy (Pillow optional, for captions and smooth resizing): the node draws `~/overlay` with it
and `bevformer_render` writes it to PNG files.
"""

from __future__ import annotations

from pathlib import Path

from bevformer_ros.core.bev_image import bev_to_rgb
from bevformer_ros.core.markers import (
    box_corners,
    BOX_EDGES,
    CLASS_COLORS,
    NUSCENES_CLASSES,
    UNKNOWN_COLOR,
)
from bevformer_ros.core.png import write_png
from bevformer_ros.viz.drawing import draw_segments, draw_text, fill_rect, resize
from bevformer_ros.viz.frame_view import Boxes, FrameView
import numpy as np

CAMERA_LAYOUT = (
    ('CAM_FRONT_LEFT', 'CAM_FRONT', 'CAM_FRONT_RIGHT'),
    ('CAM_BACK_LEFT', 'CAM_BACK', 'CAM_BACK_RIGHT'),
)
BEV_RANGE_M = 51.2
NEAR_M = 0.1
GT_COLOR = (240, 240, 240)
BACKGROUND = (28, 28, 34)
GRID_COLOR = (62, 62, 70)
EGO_COLOR = (250, 250, 250)
# base_link footprint of the nuScenes car (Renault Zoe, ~4.1 x 1.7 m) in LIDAR_TOP: the lidar sits
# ~0.94 m ahead of the rear axle, the car's centre ~1.3 m ahead of it.
EGO_CENTER_XY, EGO_HALF_WL = (0.0, 0.4), (0.9, 2.1)


def class_name(label: int) -> str:
    return NUSCENES_CLASSES[label] if 0 <= label < len(NUSCENES_CLASSES) else 'unknown class'


def class_color(label: int) -> tuple[int, int, int]:
    return tuple(int(round(255 * c)) for c in CLASS_COLORS.get(class_name(label), UNKNOWN_COLOR))


def box_corner_array(boxes: Boxes) -> np.ndarray:
    """[K, 8, 3] corners (markers.BOX_EDGES order) of `[x, y, z_bottom, w, l, h, yaw, ...]`."""
    out = np.zeros((len(boxes), 8, 3))
    for i, (x, y, z, w, l_, h, yaw) in enumerate(boxes.boxes[:, :7]):
        out[i] = box_corners((x, y, z + h / 2), (l_, w, h), -yaw - np.pi / 2)
    return out


def project_edges(corners: np.ndarray, lidar2img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel segments (start [E, 2], end [E, 2]) of the boxes' 12 edges, clipped at NEAR_M."""
    edges = np.array(BOX_EDGES)
    a = corners[:, edges[:, 0]].reshape(-1, 3)  # [K * 12, 3]
    b = corners[:, edges[:, 1]].reshape(-1, 3)
    da = a @ lidar2img[2, :3] + lidar2img[2, 3]  # camera depth of each end
    db = b @ lidar2img[2, :3] + lidar2img[2, 3]
    keep = (da > NEAR_M) | (db > NEAR_M)
    a, b, da, db = a[keep], b[keep], da[keep], db[keep]
    with np.errstate(divide='ignore', invalid='ignore'):
        # where the edge meets the near plane
        cross = a + ((NEAR_M - da) / (db - da))[:, None] * (b - a)
    a = np.where((da < NEAR_M)[:, None], cross, a)
    b = np.where((db < NEAR_M)[:, None], cross, b)
    return _project(a, lidar2img), _project(b, lidar2img)


def _project(points: np.ndarray, lidar2img: np.ndarray) -> np.ndarray:
    p = points @ lidar2img[:3, :3].T + lidar2img[:3, 3]  # [N, 3] (u d, v d, d)
    return p[:, :2] / np.maximum(p[:, 2:3], NEAR_M)


def _draw_boxes_on_camera(
    tile: np.ndarray,
    boxes: Boxes | None,
    lidar2img: np.ndarray,
    thickness: int,
    color: tuple[int, int, int] | None = None,
) -> None:
    if boxes is None or len(boxes) == 0:
        return
    corners = box_corner_array(boxes)
    for label in np.unique(boxes.labels):
        start, end = project_edges(corners[boxes.labels == label], lidar2img)
        draw_segments(tile, start, end, color or class_color(int(label)), thickness)


def tile_size(frame: FrameView, tile_width: int) -> tuple[int, int]:
    """(width, height) of one camera tile: the aspect of the frame's images."""
    image = next(iter(frame.images.values()), None)
    aspect = image.shape[0] / image.shape[1] if image is not None else 9 / 16
    return tile_width, max(1, round(tile_width * aspect))


def render_cameras(frame: FrameView, tile_width: int = 480) -> np.ndarray:
    """uint8 [2 * tile_h, 3 * tile_w, 3]: the six cameras with boxes projected (CAMERA_LAYOUT)."""
    tw, th = tile_size(frame, tile_width)
    mosaic = np.zeros((2 * th, 3 * tw, 3), dtype=np.uint8)
    thick = max(1, round(tile_width / 320))
    for r, row in enumerate(CAMERA_LAYOUT):
        for c, name in enumerate(row):
            tile = mosaic[r * th:(r + 1) * th, c * tw:(c + 1) * tw]
            image = frame.images.get(name)
            if image is None:
                draw_text(tile, 8, th // 2, f'{name}: no image', (200, 200, 200), 14)
                continue
            tile[...] = resize(image, tw, th)
            if name in frame.lidar2img:
                scale = np.diag([tw / image.shape[1], th / image.shape[0], 1.0, 1.0])
                lidar2img = scale @ frame.lidar2img[name]
                _draw_boxes_on_camera(tile, frame.ground_truth, lidar2img, 1, GT_COLOR)
                _draw_boxes_on_camera(tile, frame.detections, lidar2img, thick)
            draw_text(tile, 6, th - 20, name, (255, 255, 255), 13)
    return mosaic


def _bev_pixels(xy: np.ndarray, size: int) -> np.ndarray:
    """[..., 2] metres (x right, y forward) -> [..., 2] pixel (col, row) of a size x size BEV."""
    scale = size / (2 * BEV_RANGE_M)
    return np.stack(
        [(xy[..., 0] + BEV_RANGE_M) * scale, (BEV_RANGE_M - xy[..., 1]) * scale], axis=-1
    )


def _bev_background(frame: FrameView, size: int) -> np.ndarray:
    if frame.bev is None:
        return np.full((size, size, 3), BACKGROUND, dtype=np.uint8)
    if frame.bev.dtype == np.uint8 and frame.bev.ndim == 3 and frame.bev.shape[2] == 3:
        picture = frame.bev  # already forward up
    else:
        picture = bev_to_rgb(frame.bev.astype(np.float32), 'norm')  # [H, W, 3], forward up
    # nearest: each BEV cell stays a visible square
    rows = np.arange(size) * picture.shape[0] // size
    cols = np.arange(size) * picture.shape[1] // size
    return (picture[rows][:, cols].astype(np.float32) * 0.6).astype(np.uint8)


def _draw_boxes_bev(
    picture: np.ndarray,
    boxes: Boxes | None,
    thickness: int,
    color: tuple[int, int, int] | None = None,
) -> None:
    if boxes is None or len(boxes) == 0:
        return
    size = picture.shape[0]
    corners = _bev_pixels(box_corner_array(boxes)[:, :4, :2], size)  # [K, 4, 2] bottom face
    front = (corners[:, 0] + corners[:, 3]) / 2  # front-left and front-right corners
    centre = corners.mean(axis=1)
    for label in np.unique(boxes.labels):
        mask = boxes.labels == label
        c = corners[mask]
        start = c.reshape(-1, 2)
        end = np.roll(c, -1, axis=1).reshape(-1, 2)
        ink = color or class_color(int(label))
        draw_segments(picture, start, end, ink, thickness)
        draw_segments(picture, centre[mask], front[mask], ink, thickness)


def render_bev(frame: FrameView, size: int = 540) -> np.ndarray:
    """uint8 [size, size, 3] bird's-eye view, forward up, +-BEV_RANGE_M around the reference."""
    picture = _bev_background(frame, size)
    ticks = np.arange(-50.0, 50.1, 10.0)
    ends = np.full_like(ticks, BEV_RANGE_M)
    grid = [
        np.stack([ticks, -ends], 1),
        np.stack([ticks, ends], 1),
        np.stack([-ends, ticks], 1),
        np.stack([ends, ticks], 1),
    ]
    draw_segments(
        picture,
        _bev_pixels(np.concatenate([grid[0], grid[2]]), size),
        _bev_pixels(np.concatenate([grid[1], grid[3]]), size),
        GRID_COLOR,
        1,
    )
    # top-left, bottom-right
    ego = np.array(EGO_CENTER_XY) + np.array([[-1, 1], [1, -1]]) * EGO_HALF_WL
    (x0, y0), (x1, y1) = _bev_pixels(ego, size).round().astype(int)
    fill_rect(picture, x0, y0, x1 + 1, y1 + 1, EGO_COLOR)
    _draw_boxes_bev(picture, frame.ground_truth, 1, GT_COLOR)
    _draw_boxes_bev(picture, frame.detections, max(1, size // 270))
    _draw_legend(picture, legend_lines(frame), legend_classes(frame))
    return picture


def legend_lines(frame: FrameView) -> list[str]:
    """Return the text at the top of the bird's-eye view: what the picture shows."""
    lines = [f'forward up, +-{BEV_RANGE_M:g} m, grid 10 m, ego: white']
    if frame.bev is not None:  # L2 norm of each cell's features (bev_to_rgb 'norm')
        lines.append('heat map: BEV feature strength, bright = strong')
    if frame.ground_truth is not None:
        lines.append(f'ground truth: {len(frame.ground_truth)}, thin white')
    if frame.detections is not None:
        lines.append(f'detections: {len(frame.detections)}, thick, class colours')
    return lines


def legend_classes(frame: FrameView) -> list[tuple[str, tuple[int, int, int]]]:
    """Return (name and count, colour) of every class among the detections, for the key."""
    if frame.detections is None:
        return []
    labels = frame.detections.labels
    return [
        (f'{class_name(int(label))} {int(np.sum(labels == label))}', class_color(int(label)))
        for label in np.unique(labels)
    ]


def _draw_legend(
    picture: np.ndarray, lines: list[str], classes: list[tuple[str, tuple[int, int, int]]]
) -> None:
    """Write the lines top left and the class key (a swatch per class) bottom left."""
    size = picture.shape[0]
    font = max(10, round(size / 42))  # 13 px text on the 540 px view of the PNGs
    step = font + 4
    for i, line in enumerate(lines):
        draw_text(picture, 6, 6 + step * i, line, (255, 255, 255), font)
    top = size - 6 - step * len(classes)
    for i, (text, color) in enumerate(classes):
        y = top + step * i
        fill_rect(picture, 5, y, 8 + font, y + font + 3, (0, 0, 0))
        fill_rect(picture, 6, y + 1, 7 + font, y + font + 2, color)
        draw_text(picture, 12 + font, y, text, (255, 255, 255), font)


def render_frame(frame: FrameView, tile_width: int = 480) -> np.ndarray:
    """uint8 [2 * tile_h, 3 * tile_w + 2 * tile_h, 3]: cameras (left) and BEV (right), titled."""
    cameras = render_cameras(frame, tile_width)
    picture = np.concatenate([cameras, render_bev(frame, cameras.shape[0])], axis=1)
    lines = [f'{frame.title}  t = {frame.stamp_ns * 1e-9:.3f} s'.strip(), *frame.notes]
    for i, line in enumerate(lines):
        draw_text(picture, 8, 6 + 18 * i, line, (255, 255, 120), 14)
    return picture


def write_frame_png(frame: FrameView, path: str | Path, tile_width: int = 480) -> Path:
    """Write the picture of `frame` (`render_frame`) to a PNG file and return its path."""
    return write_png(path, render_frame(frame, tile_width))

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
Test the pictures.

PNG files of the documented size that Pillow decodes; boxes drawn where the rig projects them;
markers parsed back into the boxes they were built from.
"""

from __future__ import annotations

import io
import math

from bevformer_ros.core.markers import (
    box_corners,
    build_box_markers,
    CLASS_COLORS,
    NUSCENES_CLASSES,
)
from bevformer_ros.core.png import encode_png
from bevformer_ros.core.rig import load_rig
from bevformer_ros.resources import config_file
from bevformer_ros.ros import convert as ros_convert
from bevformer_ros.tools import render
from bevformer_ros.tools.synth import write_scene_bag
from bevformer_ros.viz import drawing, overlay
from bevformer_ros.viz.frame_view import Boxes, FrameView
from bevformer_ros.viz.marker_boxes import boxes_from_marker_array
import numpy as np
import pytest

Image = pytest.importorskip('PIL.Image')
RIG = load_rig(config_file('nuscenes_rig.yaml'))


def test_png_encoder_output_decodes_to_the_same_pixels():
    rgb = np.random.default_rng(0).integers(0, 256, size=(37, 53, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgb))))
    np.testing.assert_array_equal(decoded, rgb)


def test_render_tool_writes_one_picture_of_the_documented_size(tmp_path):
    bag = write_scene_bag(
        tmp_path / 'scene.mcap', seed=2, frames=3, width=320, height=180, progress=False
    ).path
    out = tmp_path / 'pictures'
    assert (
        render.main([str(bag), '--out', str(out), '--frame', '1', '--tile', '160', '--quiet']) == 0
    )
    assert [p.name for p in out.iterdir()] == ['frame_0001.png']
    picture = Image.open(out / 'frame_0001.png')
    tile_h = 160 * 180 // 320  # 90
    # (width, height): cameras, then the BEV
    assert picture.size == (3 * 160 + 2 * tile_h, 2 * tile_h)
    pixels = np.asarray(picture.convert('RGB'))
    assert pixels.std() > 10  # a picture, not a blank


def test_render_tool_reports_a_missing_bag(tmp_path, capsys):
    assert render.main([str(tmp_path / 'nope.mcap'), '--out', str(tmp_path)]) == 2
    assert 'bag not found' in capsys.readouterr().err


def _grey_frame(width=320, height=180):
    images = {name: np.full((height, width, 3), 90, np.uint8) for name in RIG.camera_names}
    l2i = RIG.lidar2img(image_scale=width / 1600)
    return FrameView(0, images, {name: l2i[i] for i, name in enumerate(RIG.camera_names)})


def test_camera_overlay_draws_box_edges_at_the_projected_corners():
    frame = _grey_frame()
    tile_w, tile_h = 160, 90
    plain = overlay.render_cameras(frame, tile_width=tile_w)
    box = np.array([[0.5, 12.0, -1.8, 1.9, 4.5, 1.7, 0.3, 0.0, 0.0]])  # LIDAR_TOP: 12 m ahead
    frame.ground_truth = Boxes(box, np.array([0]))
    mosaic = overlay.render_cameras(frame, tile_width=tile_w)
    drawn = np.any(mosaic != plain, axis=-1)
    assert (mosaic[drawn] == overlay.GT_COLOR).all()
    x, y, z, w, length, h, yaw = box[0, :7]
    corners = box_corners((x, y, z + h / 2), (length, w, h), -yaw - math.pi / 2)
    p = np.c_[corners, np.ones(8)] @ RIG.lidar2img(image_scale=tile_w / 1600)[0].T
    uv = p[:, :2] / p[:, 2:3]
    # CAM_FRONT: the middle of the top row
    rows, cols = np.nonzero(drawn[:tile_h, tile_w:2 * tile_w])
    for u, v in uv:
        assert np.min(np.hypot(cols - u, rows - v)) <= 1.0
    assert not drawn[tile_h:].any()  # the back cameras do not see it


def test_bev_draws_detections_in_class_colour_at_their_position():
    frame = _grey_frame()
    label = NUSCENES_CLASSES.index('bus')
    bus = np.array([[-20.0, 30.0, -1.8, 2.9, 10.5, 3.4, 0.0, 0.0, 0.0]])
    frame.detections = Boxes(bus, np.array([label]), np.array([0.9]))
    size = 512
    bev = overlay.render_bev(frame, size)
    colour = tuple(round(255 * c) for c in CLASS_COLORS['bus'])
    # the top half: the class key (bottom left) holds a bus-coloured swatch too
    rows, cols = np.nonzero(np.all(bev[: size // 2] == colour, axis=-1))
    scale = size / 102.4
    # yaw 0: heading -pi/2, so the bus's 10.5 m length runs along -y / +y, its 2.9 m width along x
    assert cols.min() == pytest.approx((-20.0 - 1.45 + 51.2) * scale, abs=2)
    assert cols.max() == pytest.approx((-20.0 + 1.45 + 51.2) * scale, abs=2)
    assert rows.min() == pytest.approx((51.2 - 30.0 - 5.25) * scale, abs=2)
    assert rows.max() == pytest.approx((51.2 - 30.0 + 5.25) * scale, abs=2)


def test_bev_legend_keys_each_detected_class_and_says_what_is_drawn():
    frame = _grey_frame()
    car, cone = NUSCENES_CLASSES.index('car'), NUSCENES_CLASSES.index('traffic_cone')
    boxes = np.zeros((3, 9))
    boxes[:, 3:6] = 1.0
    boxes[:, 1] = [10.0, 20.0, 30.0]
    frame.detections = Boxes(boxes, np.array([car, cone, car]), np.array([0.9, 0.8, 0.7]))
    frame.ground_truth = Boxes(boxes[:1], np.array([car]))
    frame.bev = np.ones((50, 50, 4), np.float32)
    lines = overlay.legend_lines(frame)
    assert any(line.startswith('heat map: BEV feature strength') for line in lines)
    assert 'ground truth: 1, thin white' in lines
    assert 'detections: 3, thick, class colours' in lines
    key = overlay.legend_classes(frame)
    car_colour = tuple(round(255 * c) for c in CLASS_COLORS['car'])
    assert [text for text, _ in key] == ['car 2', 'traffic_cone 1']
    assert key[0][1] == car_colour
    size = 540
    bev = overlay.render_bev(frame, size)
    # the car swatch: bottom left, one line above the cone's, filled with the car colour
    rows, cols = np.nonzero(np.all(bev[size // 2:, :40] == car_colour, axis=-1))
    assert len(rows) >= 100 and cols.min() >= 5


def test_markers_from_the_node_convert_back_to_its_boxes():
    boxes = np.array(
        [
            [1.0, 2.0, -1.5, 1.9, 4.6, 1.7, 0.4, 3.0, -1.0],
            [-8.0, 15.0, -1.8, 0.7, 0.7, 1.8, -2.9, 0.0, 0.0],
        ]
    )
    scores, labels = np.array([0.8, 0.55]), np.array([0, 8])
    msg = ros_convert.marker_array(build_box_markers(boxes, scores, labels, 0.3), 'LIDAR_TOP', 123)
    parsed = boxes_from_marker_array(msg)
    np.testing.assert_allclose(parsed.boxes[:, :7], boxes[:, :7], atol=1e-9)
    # velocity from the arrow
    np.testing.assert_allclose(parsed.boxes[0, 7:], boxes[0, 7:], atol=1e-9)
    np.testing.assert_array_equal(parsed.labels, labels)
    # the label text has two decimals
    np.testing.assert_allclose(parsed.scores, scores, atol=0.005)


def test_segments_reaching_far_outside_are_drawn_where_they_cross_the_picture():
    image = np.zeros((100, 120, 3), np.uint8)
    start = np.array([[-5000.0, 50.0], [-1000.0, -1000.0], [-300.0, 500.0], [60.0, -1e6]])
    # last two: outside
    end = np.array([[5000.0, 50.0], [1000.0, 1000.0], [500.0, 200.0], [60.0, -10.0]])
    drawing.draw_segments(image, start, end, (255, 0, 0))
    expected = np.zeros((100, 120), bool)
    expected[50, :] = True  # the horizontal line, full width
    expected[np.arange(100), np.arange(100)] = True  # the diagonal y = x
    np.testing.assert_array_equal(image[..., 0] == 255, expected)

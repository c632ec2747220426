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
Test the node's overlay content.

The set's own images (in RGB), lidar2img at image resolution, the boxes that ~/markers would show,
and a picture of the documented size with a missing camera left blank.
"""

from __future__ import annotations

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.rig import load_rig
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
from bevformer_ros.pipeline import CameraInput, FrameSet, PipelineResult
from bevformer_ros.resources import config_file
from bevformer_ros.viz.overlay import CAMERA_LAYOUT, render_frame
from bevformer_ros.viz.result_view import result_view
import numpy as np
import pytest

W, H = 160, 90
RIG = load_rig(config_file('nuscenes_rig.yaml'))
MISSING = 'CAM_BACK_LEFT'
BOXES = np.array(
    [
        [0.5, 12.0, -1.8, 1.9, 4.5, 1.7, 0.3, 0.0, 0.0],  # kept
        [2.0, 20.0, -1.8, 0.7, 0.7, 1.8, 0.0, 0.0, 0.0],  # below the threshold
        [np.nan, 5.0, -1.8, 1.9, 4.5, 1.7, 0.0, 0.0, 0.0],  # not finite
        [-3.0, -9.0, -1.8, 2.0, 4.8, 1.6, 1.2, 1.0, 0.0],
    ]
)  # kept
SCORES = np.array([0.9, 0.1, 0.8, 0.5])
LABELS = np.array([0, 8, 1, 3])


@pytest.fixture(scope='module')
def rgb_images():
    rng = np.random.default_rng(1)
    return {
        name: rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for name in OFFICIAL_CAMERAS
    }


def _frame(rgb_images):
    cameras = []
    for name in OFFICIAL_CAMERAS:
        cam = RIG.camera(name)
        info = camera_info_msg(
            cam.K * np.array([[W / 1600], [H / 900], [1.0]]), W, H, cam.frame_id
        )
        bgr = np.ascontiguousarray(rgb_images[name][..., ::-1])
        image = None if name == MISSING else image_msg(bgr, 'bgr8', cam.frame_id)
        cameras.append(CameraInput(image, info, cam.sensor2lidar))
    return FrameSet(
        7_000_000_000, cameras, EgoPose(7_000_000_000, np.zeros(3), np.array([1.0, 0, 0, 0]))
    )


def _result():
    return PipelineResult(
        stamp_ns=7_000_000_000,
        boxes=BOXES,
        scores=SCORES,
        labels=LABELS,
        bev=None,
        bev_shape=(10, 10, 32),
        timings={},
        reset=None,
        missing_cameras=(OFFICIAL_CAMERAS.index(MISSING),),
    )


def test_view_holds_the_images_in_rgb_their_projections_and_the_shown_boxes(rgb_images):
    view = result_view(
        _frame(rgb_images), _result(), score_threshold=0.3, max_boxes=100, title='t'
    )
    present = [n for n in OFFICIAL_CAMERAS if n != MISSING]
    assert sorted(view.images) == sorted(present) == sorted(view.lidar2img)
    expected_l2i = RIG.lidar2img(image_scale=W / 1600, names=OFFICIAL_CAMERAS)  # [6, 4, 4]
    for i, name in enumerate(OFFICIAL_CAMERAS):
        if name in view.images:
            np.testing.assert_array_equal(view.images[name], rgb_images[name])
            np.testing.assert_allclose(view.lidar2img[name], expected_l2i[i], rtol=1e-9, atol=1e-9)
    # best first, finite, >= 0.3
    np.testing.assert_array_equal(view.detections.boxes, BOXES[[0, 3]])
    np.testing.assert_array_equal(view.detections.labels, [0, 3])
    assert view.stamp_ns == 7_000_000_000 and view.title == 't'
    assert len(result_view(_frame(rgb_images), _result(), 0.3, max_boxes=1).detections) == 1


def test_picture_has_the_documented_size_and_leaves_the_missing_camera_blank(rgb_images):
    view = result_view(_frame(rgb_images), _result(), score_threshold=0.3, max_boxes=100)
    tile_w, tile_h = W, H  # tiles of the image size: drawn unresized
    picture = render_frame(view, tile_w)
    assert picture.shape == (2 * tile_h, 3 * tile_w + 2 * tile_h, 3) and picture.dtype == np.uint8
    row = next(r for r, names in enumerate(CAMERA_LAYOUT) if MISSING in names)
    col = CAMERA_LAYOUT[row].index(MISSING)
    tile = picture[row * tile_h:(row + 1) * tile_h, col * tile_w:(col + 1) * tile_w]
    assert (tile == 0).all(axis=-1).mean() > 0.8  # black but for the "no image" caption
    # CAM_FRONT: its image, boxes and caption drawn over parts
    front = picture[0:tile_h, tile_w:2 * tile_w]
    assert np.all(front == rgb_images['CAM_FRONT'], axis=-1).mean() > 0.5

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
Synthetic scenes: deterministic, rendered where lidar2img projects the boxes, readable as bags.

Projections here use `Rig.lidar2img` (calibration.py, the official construction), independent of
the renderer's ray casting.
"""

from __future__ import annotations

import json

from bevformer_ros.core.markers import box_corners, NUSCENES_CLASSES
from bevformer_ros.core.rig import load_rig
from bevformer_ros.resources import config_file
from bevformer_ros.synth.renderer import Renderer, rig_cameras
from bevformer_ros.synth.road import Road
from bevformer_ros.synth.scene import extrinsics_matrix, Scene, WorldBoxes
from bevformer_ros.tools.synth import write_scene_bag
import numpy as np
from optional_deps import lazy, requires
import pytest

Reader = lazy('rosbags.rosbag2', 'Reader')
_rosbags = requires('rosbags')

W, H = 400, 225  # a quarter of nuScenes' 1600x900: lidar2img rows 0 and 1 scale by 0.25
RIG = load_rig(config_file('nuscenes_rig.yaml'))
FRONT = RIG.camera_names.index('CAM_FRONT')


def _boxes(centers, sizes_wlh, headings, colors, label='barrier'):
    n = len(centers)
    labels = np.full(n, NUSCENES_CLASSES.index(label))
    return WorldBoxes(
        np.asarray(centers, float),
        np.asarray(sizes_wlh, float),
        np.asarray(headings, float),
        np.zeros((n, 2)),
        np.asarray(colors, np.uint8),
        labels,
        np.arange(n),
    )


def _render(boxes, camera=FRONT):
    """CAM_FRONT view with the ego (base_link) at the world origin facing +x."""
    renderer = Renderer(Road(amplitude=0.0), rig_cameras(RIG, W, H))
    world_from_lidar = extrinsics_matrix(RIG.lidar2ego)
    cam = renderer.cameras[camera]
    return renderer.render_camera(
        cam, world_from_lidar @ cam.lidar_from_camera, boxes
    ), world_from_lidar


def _project(points_world, world_from_lidar, camera=FRONT):
    """[N, 2] pixels of world points through the rig's lidar2img at W x H."""
    lidar2img = RIG.lidar2img(image_scale=W / 1600)[camera]
    lidar = (np.linalg.inv(world_from_lidar) @ np.c_[points_world, np.ones(len(points_world))].T).T
    p = lidar @ lidar2img.T
    return p[:, :2] / p[:, 2:3]


def _corners(center, size_wlh, heading):
    w, length, h = size_wlh
    return box_corners(center, (length, w, h), heading)  # [8, 3]


def test_box_silhouette_is_where_the_rig_projects_its_corners():
    center, size, heading = (14.0, 1.5, 1.0), (2.0, 4.5, 1.8), 0.4
    empty, world_from_lidar = _render(
        _boxes(np.zeros((0, 3)), np.zeros((0, 3)), [], np.zeros((0, 3)))
    )
    view, _ = _render(_boxes([center], [size], [heading], [(200, 40, 40)]))
    painted = np.any(view.image != empty.image, axis=-1)  # the box and its contact shadow
    box_mask = view.instance == 0
    assert box_mask.sum() > 500
    assert not (box_mask & ~painted).any()

    uv = _project(_corners(center, size, heading), world_from_lidar)
    rows, cols = np.nonzero(box_mask)
    # the silhouette of a convex box is the convex hull of its projected corners: same bounding
    # rectangle
    np.testing.assert_allclose(
        [cols.min(), cols.max(), rows.min(), rows.max()],
        [uv[:, 0].min(), uv[:, 0].max(), uv[:, 1].min(), uv[:, 1].max()],
        atol=1.5,
    )
    for u, v in uv:  # every corner lies on the silhouette (within a pixel)
        assert np.min(np.hypot(cols - u, rows - v)) <= 1.5

    u, v = np.round(_project(np.array([center]), world_from_lidar)[0]).astype(int)
    r, g, b = view.image[v, u].astype(int)  # a face pixel: the body colour, shaded
    assert r > 2 * g and r > 2 * b and 0.45 * 200 <= r <= 200


def test_nearer_box_occludes_and_boxes_through_the_camera_plane_are_clipped():
    near, far = (9.0, 0.5, 0.9), (20.0, 3.5, 1.75)  # the far one is taller and further left
    view, world_from_lidar = _render(
        _boxes(
            [near, far],
            [(2.0, 2.0, 1.8), (2.0, 2.0, 3.5)],
            [0.0, 0.0],
            [(40, 200, 40), (40, 40, 200)],
        )
    )
    uv_far = np.round(_project(np.array([far]), world_from_lidar)[0]).astype(int)
    assert (
        view.instance[uv_far[1], uv_far[0]] == 0
    )  # the far box's centre is hidden behind the near one
    assert (view.instance == 1).any()  # but part of it shows
    g = view.image[view.instance == 0].astype(int)
    assert (
        g[:, 1] >= g[:, 2]
    ).all()  # no pixel of the near box was overwritten by the far one's blue

    # a long box from behind the ego to 10 m ahead: clipped at the near plane, covers the image
    # bottom
    crossing, _ = _render(_boxes([(4.0, 0.0, 0.5)], [(6.0, 14.0, 1.0)], [0.0], [(200, 200, 40)]))
    assert (crossing.instance[-1] == 0).all()
    assert np.isfinite(crossing.depth[crossing.instance == 0]).all()
    assert (crossing.depth[crossing.instance == 0] >= 0.1).all()


def test_ground_truth_boxes_match_the_rendered_objects():
    scene = Scene.create(seed=5, duration=1.0)
    t = 0.5
    renderer = Renderer(scene.road, rig_cameras(RIG, W, H))
    views = renderer.render(scene.world_from_lidar(t, RIG.lidar2ego), scene.world_boxes(t))
    gt = scene.ground_truth(t, RIG.lidar2ego)
    lidar2img = RIG.lidar2img(image_scale=W / 1600)
    checked = 0
    for cam, view in enumerate(views):
        for box, instance in zip(gt.boxes, gt.instance_ids):
            x, y, z, w, length, h, yaw = box[:7]
            corners = box_corners(
                (x, y, z + h / 2), (length, w, h), -yaw - np.pi / 2
            )  # GT convention
            p = np.c_[corners, np.ones(8)] @ lidar2img[cam].T
            if (p[:, 2] < 1.0).any():
                continue
            uv = p[:, :2] / p[:, 2:3]
            inside = (uv.min(axis=0) >= 0).all() and uv[:, 0].max() < W and uv[:, 1].max() < H
            mask = view.instance == instance
            if not inside or mask.sum() < 30:
                continue
            rows, cols = np.nonzero(mask)
            # occlusion can only shrink the visible part: it stays within the projected corners'
            # rectangle
            assert cols.min() >= uv[:, 0].min() - 1.5 and cols.max() <= uv[:, 0].max() + 1.5
            assert rows.min() >= uv[:, 1].min() - 1.5 and rows.max() <= uv[:, 1].max() + 1.5
            checked += 1
    assert checked >= 5


def test_same_seed_same_scene_other_seed_other_scene(tmp_path):
    a = write_scene_bag(
        tmp_path / 'a.mcap', seed=3, frames=2, rate=12.0, width=96, height=54, progress=False
    )
    b = write_scene_bag(
        tmp_path / 'b.mcap', seed=3, frames=2, rate=12.0, width=96, height=54, progress=False
    )
    c = write_scene_bag(
        tmp_path / 'c.mcap', seed=4, frames=2, rate=12.0, width=96, height=54, progress=False
    )

    def contents(path):
        with Reader(path) as reader:
            return [(conn.topic, stamp, bytes(raw)) for conn, stamp, raw in reader.messages()]

    assert contents(a.path) == contents(b.path)
    assert a.ground_truth.read_text() == b.ground_truth.read_text()
    assert contents(a.path) != contents(c.path)
    frames_a, frames_c = (json.loads(s.ground_truth.read_text())['frames'] for s in (a, c))
    assert frames_a != frames_c


@pytest.mark.parametrize('storage, name', [('mcap', 'scene.mcap'), ('sqlite3', 'scene_db')])
def test_bag_is_readable_with_rosbags_and_rclpy(tmp_path, storage, name):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image
    from visualization_msgs.msg import MarkerArray

    summary = write_scene_bag(
        tmp_path / name,
        seed=1,
        frames=3,
        rate=12.0,
        width=64,
        height=36,
        storage=storage,
        progress=False,
    )
    gt = json.loads(summary.ground_truth.read_text())
    frame_stamps = [f['stamp_ns'] for f in gt['frames']]
    with Reader(summary.path) as reader:
        topics = {conn.topic: conn.msgtype for conn in reader.connections}
        messages = list(reader.messages())
    for camera in RIG.camera_names:
        assert topics[f'/{camera}/image_raw'] == 'sensor_msgs/msg/Image'
        assert topics[f'/{camera}/camera_info'] == 'sensor_msgs/msg/CameraInfo'
    assert topics['/odom'] == 'nav_msgs/msg/Odometry'
    assert topics['/ground_truth/markers'] == 'visualization_msgs/msg/MarkerArray'

    images = [
        deserialize_message(raw, Image)
        for conn, _, raw in messages
        if conn.topic == '/CAM_FRONT/image_raw'
    ]
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in images] == frame_stamps
    assert frame_stamps == [1_700_000_000 * 10**9 + round(k * 1e9 / 12) for k in range(3)]
    first = images[0]
    assert (first.width, first.height, first.encoding, len(first.data)) == (
        64,
        36,
        'rgb8',
        64 * 36 * 3,
    )
    info = next(
        deserialize_message(raw, CameraInfo)
        for conn, _, raw in messages
        if conn.topic == '/CAM_BACK/camera_info'
    )
    K = RIG.camera('CAM_BACK').K
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), np.diag([64 / 1600, 36 / 900, 1]) @ K)
    markers = [
        deserialize_message(raw, MarkerArray)
        for conn, _, raw in messages
        if conn.topic == '/ground_truth/markers'
    ]
    cubes = [m for m in markers[0].markers if m.type == 1]
    assert len(cubes) == len(gt['frames'][0]['boxes']) and cubes[0].header.frame_id == 'LIDAR_TOP'

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

"""lidar2img against the official fixture, the pinhole model, and the shipped nuScenes rig."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.calibration import (
    CalibrationError,
    check_plausible,
    distortion_note,
    extrinsics_from_transform,
    intrinsics_from_camera_info,
    lidar2img,
    lidar2img_stack,
)
from bevformer_ros.core.rig import load_rig, parse_rig, RigError
import numpy as np
import pytest
from reference_fixtures import CASE_SMALL, require
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = CASE_SMALL
RIG_YAML = ROOT / 'config' / 'nuscenes_rig.yaml'


def quat_to_matrix_by_rotating_axes(q_wxyz):
    """Independent reference: rotate the unit axes with q * v * q^-1 (Hamilton products)."""

    def mul(a, b):
        w1, x1, y1, z1 = a
        w2, x2, y2, z2 = b
        return (
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        )

    q = np.asarray(q_wxyz, dtype=np.float64) / np.linalg.norm(q_wxyz)
    q_inv = (q[0], -q[1], -q[2], -q[3])
    cols = [mul(mul(q, (0.0, *axis)), q_inv)[1:] for axis in np.eye(3)]
    return np.array(cols).T


# --- the official fixture
# ----------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def case_small():
    return torch.load(require(FIXTURE), weights_only=True)


def test_lidar2img_reproduces_the_official_fixture(case_small):
    calib = case_small['camera_calibration']
    K = calib['cam_intrinsic_1600x900'].numpy()
    R = calib['sensor2lidar_rotation'].numpy()
    t = calib['sensor2lidar_translation'].numpy()
    scale = case_small['config']['test_image_scale']
    assert scale == 0.1
    ours = np.stack([lidar2img(K[i], R[i], t[i], image_scale=scale) for i in range(6)])
    for frame in case_small['frames']:
        official = frame['img_metas']['lidar2img'].numpy()
        assert ours.dtype == official.dtype == np.float64
        # Equal bits here, but np.linalg.inv's LAPACK sums in a CPU-dependent order: another
        # inverse (R^T) moves entries (|x| <= 152) by 8.5e-14; the fixture README allows 1e-12.
        np.testing.assert_allclose(ours, official, rtol=1e-12, atol=1e-12)


# --- pinhole geometry
# --------------------------------------------------------------------------------------


class Vec:
    def __init__(self, x, y, z, w=None):
        self.x, self.y, self.z, self.w = x, y, z, w


class Transform:
    """geometry_msgs/Transform-shaped: what tf2 lookup_transform(reference, camera) returns."""

    def __init__(self, translation, rotation_xyzw):
        self.translation = Vec(*translation)
        self.rotation = Vec(*rotation_xyzw)


def test_known_point_lands_on_the_pinhole_pixel():
    fx, fy, cx, cy = 1000.0, 990.0, 800.0, 450.0
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]])
    # Camera 1.5 m up, looking along the reference +y axis (a front camera in a LIDAR_TOP-like
    # frame): optical z -> ref +y, optical x -> ref +x, optical y -> ref -z. That is a rotation of
    # -90 deg about x.
    half = math.sqrt(0.5)
    cam2ref = extrinsics_from_transform(Transform((0.2, 0.0, 1.5), (-half, 0.0, 0.0, half)))
    point = np.array([2.0, 20.0, 0.5])  # 20 m ahead, 1.8 m right of the camera, 1 m below it
    x_cam, y_cam, z_cam = point[0] - 0.2, -(point[2] - 1.5), point[1]
    u, v = fx * x_cam / z_cam + cx, fy * y_cam / z_cam + cy
    for s in (1.0, 0.5):
        proj = lidar2img(K, cam2ref.rotation, cam2ref.translation, image_scale=s) @ np.append(
            point, 1.0
        )
        assert proj[2] == pytest.approx(z_cam)
        assert proj[:2] / proj[2] == pytest.approx([s * u, s * v], rel=1e-12)


def test_lidar2img_stack_keeps_the_camera_order():
    K = np.diag([500.0, 500.0, 1.0])
    K[:2, 2] = 320, 240
    half = math.sqrt(0.5)
    front = extrinsics_from_transform(Transform((0, 0, 0), (-half, 0, 0, half)))
    back = extrinsics_from_transform(Transform((0, 0, 0), (0, half, -half, 0)))  # looks along -y
    stack = lidar2img_stack([K, K], [front, back])
    assert stack.shape == (2, 4, 4)
    ahead = stack @ np.array([0.0, 10.0, 0.0, 1.0])
    # behind camera 1
    assert ahead[0, 2] == pytest.approx(10.0) and ahead[1, 2] == pytest.approx(-10.0)


# --- CameraInfo
# --------------------------------------------------------------------------------------------


def camera_info(k, width=1600, height=900):
    from sensor_msgs.msg import CameraInfo

    return CameraInfo(k=[float(v) for v in k], width=width, height=height)


def test_intrinsics_from_a_real_camera_info_message():
    k = [1266.4, 0.0, 816.3, 0.0, 1266.4, 491.5, 0.0, 0.0, 1.0]
    K = intrinsics_from_camera_info(camera_info(k))
    assert K.dtype == np.float64 and K.tolist() == [k[0:3], k[3:6], k[6:9]]


def test_smaller_camera_image_rescales_k_to_the_nominal_size():
    half = camera_info(
        [633.2, 0.0, 408.15, 0.0, 633.2, 245.75, 0.0, 0.0, 1.0], width=800, height=450
    )
    K = intrinsics_from_camera_info(half, target_size=(1600, 900))
    np.testing.assert_allclose(K, [[1266.4, 0, 816.3], [0, 1266.4, 491.5], [0, 0, 1]], rtol=1e-15)
    unchanged = intrinsics_from_camera_info(
        camera_info([1, 0, 2, 0, 1, 3, 0, 0, 1]), target_size=(1600, 900)
    )
    assert unchanged.tolist() == [[1, 0, 2], [0, 1, 3], [0, 0, 1]]


@pytest.mark.parametrize(
    'k, match',
    [
        ([math.nan, 0, 800, 0, 1000, 450, 0, 0, 1], 'NaN or inf'),
        ([1000, 0, math.inf, 0, 1000, 450, 0, 0, 1], 'NaN or inf'),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0], 'fx > 0'),
        ([1000, 0, 800, 0, -5, 450, 0, 0, 1], 'fx > 0'),
        ([1000, 0, 800, 0, 1000, 450, 0, 1, 1], 'last row'),
    ],
)
def test_bad_k_is_a_clear_calibration_error(k, match):
    with pytest.raises(CalibrationError, match=match):
        intrinsics_from_camera_info(camera_info(k))


def test_unset_camera_info_size_cannot_be_rescaled():
    with pytest.raises(CalibrationError, match='width/height'):
        intrinsics_from_camera_info(
            camera_info([1, 0, 0, 0, 1, 0, 0, 0, 1], 0, 0), target_size=(1600, 900)
        )


# --- the shipped nuScenes rig
# ------------------------------------------------------------------------------


def test_shipped_rig_matches_the_official_sensor2lidar_formula():
    raw = yaml.safe_load(RIG_YAML.read_text())
    rig = load_rig(RIG_YAML)
    assert rig.camera_names == OFFICIAL_CAMERAS and rig.reference_frame == 'LIDAR_TOP'
    l2e_r = quat_to_matrix_by_rotating_axes(raw['lidar2ego']['rotation_wxyz'])
    l2e_t = np.array(raw['lidar2ego']['translation'])
    for name in OFFICIAL_CAMERAS:
        cs = raw['cameras'][name]['sensor2ego']
        c2e_r, c2e_t = (
            quat_to_matrix_by_rotating_axes(cs['rotation_wxyz']),
            np.array(cs['translation']),
        )
        # nuscenes_converter.obtain_sensor2top with the same ego pose at camera and LiDAR time (e2g
        # = I)
        R = (c2e_r.T) @ np.linalg.inv(l2e_r).T
        T = c2e_t @ np.linalg.inv(l2e_r).T - l2e_t @ np.linalg.inv(l2e_r).T
        cam = rig.camera(name)
        np.testing.assert_allclose(cam.sensor2lidar.rotation, R.T, atol=1e-9)
        np.testing.assert_allclose(cam.sensor2lidar.translation, T, atol=1e-9)
        assert cam.image_size == (1600, 900) and cam.frame_id == name


def test_shipped_rig_front_camera_sees_straight_ahead_near_its_principal_point():
    rig = load_rig(RIG_YAML)
    front = rig.camera('CAM_FRONT')
    assert front.K[0, 0] == 1266.417203046554  # the published nuScenes CAM_FRONT focal length
    ahead_of_lidar = np.array([0.0, 50.0, 0.3, 1.0])  # LIDAR_TOP y = forward
    ahead = rig.lidar2img(names=['CAM_FRONT', 'CAM_BACK']) @ ahead_of_lidar
    u, v = ahead[0, :2] / ahead[0, 2]
    assert abs(u - front.K[0, 2]) < 30 and abs(v - front.K[1, 2]) < 30
    assert ahead[1, 2] < 0  # behind CAM_BACK


def test_rig_errors_name_the_bad_key():
    def broken(camera, edit):
        data = yaml.safe_load(RIG_YAML.read_text())
        edit(data['cameras'][camera])
        return data

    with pytest.raises(RigError, match=r'cameras\.CAM_BACK: missing key .K.'):
        parse_rig(broken('CAM_BACK', lambda c: c.pop('K')))
    with pytest.raises(
        RigError, match=r'CAM_FRONT\.sensor2lidar rotation must be a unit quaternion'
    ):
        parse_rig(
            broken('CAM_FRONT', lambda c: c['sensor2lidar'].update(rotation_wxyz=[1, 1, 0, 0]))
        )
    with pytest.raises(RigError, match=r'CAM_FRONT_LEFT: sensor2lidar disagrees'):
        parse_rig(
            broken('CAM_FRONT_LEFT', lambda c: c['sensor2lidar'].update(translation=[9, 0, 0]))
        )
    with pytest.raises(RigError, match=r'CAM_BACK_LEFT.image_size'):
        parse_rig(broken('CAM_BACK_LEFT', lambda c: c.update(image_size=[1600])))
    with pytest.raises(RigError, match='NaN or inf'):
        parse_rig(broken('CAM_BACK_RIGHT', lambda c: c['K'][0].__setitem__(0, float('nan'))))
    no_lidar2ego = broken('CAM_FRONT', lambda c: c.pop('sensor2lidar'))
    no_lidar2ego.pop('lidar2ego')
    with pytest.raises(RigError, match='needs the rig-level lidar2ego'):
        parse_rig(no_lidar2ego)
    with pytest.raises(RigError, match="'CAM_TOP' is not in the rig"):
        load_rig(RIG_YAML).camera('CAM_TOP')
    with pytest.raises(RigError, match='cannot read rig file'):
        load_rig(RIG_YAML.with_name('no_such_rig.yaml'))


def test_rig_from_sensor2ego_only_equals_the_shipped_sensor2lidar():
    data = yaml.safe_load(RIG_YAML.read_text())
    for cam in data['cameras'].values():
        cam.pop('sensor2lidar')
    via_ego = parse_rig(data)
    shipped = load_rig(RIG_YAML)
    np.testing.assert_allclose(
        via_ego.lidar2img(0.5), shipped.lidar2img(0.5), rtol=1e-9, atol=1e-9
    )


def _info(k, width=1600, height=900, model='plumb_bob', d=(0.0,) * 5):
    """Make a CameraInfo-like record (the checks read fields by name)."""
    return SimpleNamespace(
        k=list(np.asarray(k, float).reshape(-1)),
        width=width,
        height=height,
        distortion_model=model,
        d=list(d),
    )


NUSC_K = [[1266.4, 0.0, 816.3], [0.0, 1266.4, 491.5], [0.0, 0.0, 1.0]]


def test_a_real_camera_is_plausible_and_undistorted():
    check_plausible(_info(NUSC_K))
    assert distortion_note(_info(NUSC_K)) is None


@pytest.mark.parametrize(
    'info, text',
    [
        (_info([[1266.4, 0, 8163.0], [0, 1266.4, 491.5], [0, 0, 1]]), 'principal point'),
        (_info([[1266.4, 0, 816.3], [0, 1266.4, -50.0], [0, 0, 1]]), 'principal point'),
        (_info([[12.0, 0, 816.3], [0, 12.0, 491.5], [0, 0, 1]]), 'not of the scale'),
        (_info([[1e6, 0, 816.3], [0, 1e6, 491.5], [0, 0, 1]]), 'not of the scale'),
        (_info(NUSC_K, model='kannala_brandt_9'), "distortion_model 'kannala_brandt_9'"),
    ],
)
def test_an_impossible_camera_is_refused(info, text):
    with pytest.raises(CalibrationError, match=text):
        check_plausible(info)


def test_distortion_coefficients_are_named_as_needing_rectification():
    note = distortion_note(_info(NUSC_K, model='rational_polynomial', d=(0.3, -0.1) + (0,) * 6))
    assert 'rational_polynomial' in note and 'image_proc' in note

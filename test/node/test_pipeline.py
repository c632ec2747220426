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
Pipeline: one synchronized set -> boxes and BEV, with the temporal reset rules.

Small random model, CPU.
"""

from __future__ import annotations

import dataclasses

from bevformer_ros.config import NodeConfig, TemporalSettings
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.frontend.image_codec import ImageDecodeError
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
from bevformer_ros.model.build import build_model, configured_architecture
from bevformer_ros.model.config import preset
from bevformer_ros.model.small_model import SMALL_IMAGE_HEIGHT as H
from bevformer_ros.model.small_model import SMALL_IMAGE_WIDTH as W
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.pipeline import (
    _decode_images,
    camera_lidar2img,
    CameraInput,
    decode_camera_image,
    FrameError,
    FrameSet,
    network_input_hw,
    network_scale,
    Pipeline,
)
from bevformer_ros.resources import config_file
import numpy as np
import pytest
from reference_fixtures import REFERENCE, require
import torch

FIXTURES = REFERENCE
NS = 1_000_000_000
CPU = torch.device('cpu')


@pytest.fixture(scope='module')
def config():
    return NodeConfig.from_parameters(small_model_parameters())


@pytest.fixture(scope='module')
def model(config):
    return build_model(config.model, CPU).model


@pytest.fixture(scope='module')
def rig():
    return load_rig(config_file('nuscenes_rig.yaml'))


def make_pipeline(model, config, **temporal):
    settings = dataclasses.replace(config.temporal, **temporal)
    return Pipeline(model, configured_architecture(config.model), CPU, settings)


def camera_images(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for _ in range(6)]


def small_K(width=W, height=H):
    f = 1266.417 * width / 1600
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]])


def frame(rig, config, stamp_s, pixels=None, x=0.0, encoding='rgb8', infos=True, messages=None):
    pixels = camera_images() if pixels is None else pixels
    cams = []
    for i, name in enumerate(config.cameras.names):
        msg = (
            messages[i] if messages is not None else image_msg(pixels[i], encoding, frame_id=name)
        )
        info = camera_info_msg(small_K(), W, H, name) if infos else None
        cams.append(CameraInput(msg, info, rig.camera(name).sensor2lidar))
    pose = EgoPose(round(stamp_s * NS), np.array([x, 0.0, 0.0]), np.array([1.0, 0.0, 0.0, 0.0]))
    return FrameSet(round(stamp_s * NS), cams, pose)


# ---------------------------------------------------------------------------------------- geometry
def _official_cameras(K_scale=1.0):
    d = torch.load(require(FIXTURES / 'case_preprocess_tiny.pt'), weights_only=True)['inputs']
    cams = []
    for i in range(2):
        K = d['cam_intrinsic_1600x900'][i].numpy() * np.array([[K_scale], [K_scale], [1.0]])
        ext = Extrinsics(
            d['sensor2lidar_rotation'][i].numpy(), d['sensor2lidar_translation'][i].numpy()
        )
        cams.append(
            CameraInput(None, camera_info_msg(K, round(1600 * K_scale), round(900 * K_scale)), ext)
        )
    return cams


def _official_lidar2img():
    case = torch.load(require(FIXTURES / 'case_preprocess_tiny.pt'), weights_only=True)
    return case['outputs']['lidar2img'].numpy()


def test_lidar2img_of_a_nuscenes_camera_equals_the_official_pipeline():
    expected = _official_lidar2img()
    scale = network_scale(preset('tiny').image, 1600)
    assert scale == 0.5
    got = camera_lidar2img(_official_cameras(), [(1600, 900)] * 2, scale)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


def test_a_half_size_camera_feeds_the_network_the_same_geometry():
    expected = _official_lidar2img()
    scale = network_scale(preset('tiny').image, 800)
    assert scale == 1.0  # 800x450 is already the tiny network size
    got = camera_lidar2img(_official_cameras(K_scale=0.5), [(800, 450)] * 2, scale)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


# ---------------------------------------------------------------------------------------- frames
def test_frames_give_boxes_bev_and_timings(model, config, rig):
    pipeline = make_pipeline(model, config)
    first = pipeline.run(frame(rig, config, 10.0))
    second = pipeline.run(frame(rig, config, 10.5, x=2.0), want_bev=False)
    assert first.reset.kind == 'first_frame' and second.reset is None
    assert first.stamp_ns == 10 * NS and second.stamp_ns == round(10.5 * NS)
    assert first.boxes.shape[1] == 9
    assert first.boxes.shape[0] == first.scores.shape[0] == first.labels.shape[0]
    assert 0 < first.boxes.shape[0] <= 20 * 10
    assert np.all(np.diff(first.scores) <= 0) and first.labels.max() < 10
    assert first.bev.shape == (10, 10, 32) and first.bev.dtype == np.float32
    assert second.bev is None and second.bev_shape == (10, 10, 32)
    assert set(first.timings) == {'decode', 'preprocess', 'model', 'postprocess'}
    assert all(t > 0 for t in first.timings.values())


def test_history_changes_the_output_and_a_reset_forgets_it(model, config, rig):
    later = frame(rig, config, 10.5, camera_images(1), x=1.0)
    fresh = make_pipeline(model, config).run(later)
    with_history = make_pipeline(model, config)
    with_history.run(frame(rig, config, 10.0))
    continued = with_history.run(later)
    assert continued.reset is None
    assert np.abs(continued.bev - fresh.bev).max() > 1e-3
    looped = with_history.run(
        dataclasses.replace(
            later,
            stamp_ns=later.stamp_ns - 60 * NS,
            ego_pose=dataclasses.replace(later.ego_pose, stamp_ns=0),
        )
    )
    assert looped.reset.kind == 'time_backwards'
    np.testing.assert_allclose(looped.bev, fresh.bev, rtol=0, atol=1e-5)
    np.testing.assert_allclose(looped.scores, fresh.scores, rtol=0, atol=1e-6)


def test_bgr8_and_rgb8_of_the_same_scene_agree(model, config, rig):
    rgb = camera_images(2)
    a = make_pipeline(model, config).run(frame(rig, config, 10.0, rgb))
    bgr = [p[..., ::-1] for p in rgb]
    b = make_pipeline(model, config).run(frame(rig, config, 10.0, bgr, encoding='bgr8'))
    np.testing.assert_array_equal(a.bev, b.bev)


@pytest.mark.parametrize(
    ('break_frame', 'kind', 'text'),
    [
        (
            lambda f: _swap_image(f, 3, lambda m: dataclasses.replace(m, data=m.data[:100])),
            'image',
            'truncated',
        ),
        (
            lambda f: _swap_image(
                f,
                2,
                lambda m: dataclasses.replace(
                    m, encoding='mono16', step=W * 2, data=bytes(W * H * 2)
                ),
            ),
            'image',
            'mono16',
        ),
        (lambda f: _swap_info(f, 1, None), 'camera_info', 'no CameraInfo'),
        (
            lambda f: _swap_info(f, 4, camera_info_msg(small_K(), 2 * W, 2 * H)),
            'image',
            'CameraInfo says',
        ),
        (
            lambda f: _swap_info(f, 0, camera_info_msg(np.zeros((3, 3)), W, H)),
            'camera_info',
            'fx > 0',
        ),
        (
            lambda f: _swap_image(
                f, 5, lambda m: image_msg(np.zeros((H // 2, W // 2, 3), np.uint8))
            ),
            'image',
            'all cameras must publish one size',
        ),
    ],
)
def test_bad_input_is_a_frame_error_and_keeps_the_history(
    model, config, rig, break_frame, kind, text
):
    pipeline = make_pipeline(model, config)
    pipeline.run(frame(rig, config, 10.0))
    with pytest.raises(FrameError, match=text) as err:
        pipeline.run(break_frame(frame(rig, config, 10.5)))
    assert err.value.kind == kind
    assert pipeline.run(frame(rig, config, 11.0)).reset is None


def _swap_image(f, index, change):
    cams = list(f.cameras)
    cams[index] = dataclasses.replace(cams[index], image=change(cams[index].image))
    return dataclasses.replace(f, cameras=cams)


def _swap_info(f, index, info):
    cams = list(f.cameras)
    cams[index] = dataclasses.replace(cams[index], info=info)
    return dataclasses.replace(f, cameras=cams)


def test_non_finite_output_is_rejected_and_drops_the_history(config, rig):
    built = build_model(config.model, CPU)
    broken = built.model
    pipeline = Pipeline(broken, built.cfg, CPU, config.temporal)
    pipeline.run(frame(rig, config, 10.0))
    weight = broken.pts_bbox_head.cls_branches[-1][-1].bias
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.fill_(float('nan'))
    with pytest.raises(FrameError) as err:
        pipeline.run(frame(rig, config, 10.5))
    assert err.value.kind == 'non_finite_output'
    with torch.no_grad():
        weight.copy_(saved)
    assert pipeline.run(frame(rig, config, 11.0)).reset.kind == 'first_frame'


# ---------------------------------------------------------------------------------- reset rules
def _policy(**settings):
    policy = TemporalState(settings=TemporalSettings(**settings))
    assert policy.decide(10 * NS, np.zeros(3)).kind == 'first_frame'
    policy.commit(10 * NS, np.zeros(3))
    return policy


@pytest.mark.parametrize(
    ('stamp_s', 'x', 'kind'),
    [
        (10.5, 1.0, None),
        (10.0, 0.0, 'time_backwards'),  # a repeated stamp is no progress either
        (9.0, 0.0, 'time_backwards'),
        (11.49, 0.0, None),
        (11.51, 0.0, 'gap'),
        (10.5, 20.0, None),
        (10.5, 20.1, 'ego_jump'),
    ],
)
def test_reset_rules(stamp_s, x, kind):
    reset = _policy(max_gap_s=1.5, max_ego_jump_m=20.0).decide(
        round(stamp_s * NS), np.array([x, 0.0, 0.0])
    )
    assert (reset.kind if reset else None) == kind


def test_requested_and_disabled_resets():
    policy = _policy()
    policy.request('~/reset service')
    policy.request('second request')
    reset = policy.decide(round(10.5 * NS), np.zeros(3))
    assert reset.kind == 'requested' and reset.detail == '~/reset service'
    assert policy.decide(round(10.5 * NS), np.zeros(3)) is None  # a request is used once
    policy.settings = TemporalSettings(enabled=False)
    assert policy.decide(round(10.5 * NS), np.zeros(3)).kind == 'disabled'
    policy.forget()
    policy.settings = TemporalSettings()
    assert policy.decide(round(10.5 * NS), np.zeros(3)).kind == 'first_frame'


def test_a_reset_rule_drops_the_history_and_no_reset_keeps_it():
    state = _policy()
    state.step(np.zeros(18))
    state.update(torch.ones(4, 1, 2))  # [HW, B, C]
    assert state.decide(round(10.5 * NS), np.zeros(3)) is None
    assert state.prev_bev is not None
    assert state.decide(round(12.5 * NS), np.zeros(3)).kind == 'gap'
    assert state.prev_bev is None and not state.step(np.zeros(18)).use_prev_bev


@pytest.mark.parametrize(
    'encoding, text',
    [
        ('RGB8', "encodings are case-sensitive, did you mean 'rgb8'"),
        ('16UC3', '3-channel 16-bit unsigned: not supported'),
        ('mono16', 'is not a colour image'),
    ],
)
def test_an_unsupported_encoding_is_named_with_its_real_problem(encoding, text):
    msg = dataclasses.replace(image_msg(np.zeros((H, W, 3), np.uint8)), encoding=encoding)
    with pytest.raises(ImageDecodeError, match=text) as err:
        decode_camera_image(msg)
    assert encoding == 'mono16' or 'not a colour image' not in str(err.value)


@pytest.mark.parametrize('odd', [0, 3])
def test_a_size_mismatch_names_the_odd_camera(odd):
    cams = [
        CameraInput(image_msg(np.zeros((H, W, 3), np.uint8), frame_id=f'cam{i}'), None, None)
        for i in range(6)
    ]
    small = image_msg(np.zeros((H // 2, W // 2, 3), np.uint8), frame_id='odd')
    cams[odd] = CameraInput(small, None, None)
    expected = f'camera {odd} \\(odd\\) is {W // 2}x{H // 2} but the other cameras are {W}x{H}'
    with pytest.raises(FrameError, match=expected):
        _decode_images(cams)


@pytest.mark.parametrize(
    'name, padded', [('tiny', (480, 800)), ('small', (736, 1280)), ('base', (928, 1600))]
)
def test_network_input_of_the_official_presets_at_1600x900(name, padded):
    # official test pipelines: scale 0.5 / 0.8 / none, then pad to a multiple of 32
    assert network_input_hw(preset(name).image, 1600, 900) == padded

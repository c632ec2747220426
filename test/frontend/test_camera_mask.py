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
Test camera dropout in the model.

A camera masked out contributes to no BEV query, exactly as if its bev_mask were all False, so
spatial cross-attention's per-query camera count leaves it out; an all-valid mask changes nothing.
Checked in SCA alone, in the whole small model, and through the pipeline (a set with a missing
camera).
"""

from __future__ import annotations

import dataclasses

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
from bevformer_ros.model.build import build_model, configured_architecture
from bevformer_ros.model.small_model import SMALL_IMAGE_HEIGHT as H
from bevformer_ros.model.small_model import SMALL_IMAGE_WIDTH as W
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.model.spatial_cross_attention import SpatialCrossAttention, visible_queries
from bevformer_ros.pipeline import CameraInput, frame_can_bus, FrameError, FrameSet, Pipeline
from bevformer_ros.resources import config_file
import numpy as np
import pytest
import torch

CPU = torch.device('cpu')
NUM_CAMS = 6


# ------------------------------------------------------------------------------------------------
# SCA
def _sca_inputs(seed=0, B=2, HW=30, Z=4, C=32, level_hw=(4, 5)):
    gen = torch.Generator().manual_seed(seed)
    ref = torch.rand(NUM_CAMS, B, HW, Z, 2, generator=gen)  # [N, B, HW, Z, 2]
    bev_mask = torch.rand(NUM_CAMS, B, HW, Z, generator=gen) < 0.3  # [N, B, HW, Z]
    query = torch.randn(B, HW, C, generator=gen)
    value = torch.randn(B, NUM_CAMS, level_hw[0] * level_hw[1], C, generator=gen)  # [B, N, S, C]
    return ref, bev_mask, query, value, [level_hw]


def test_masking_a_camera_in_sca_equals_zeroing_its_bev_mask():
    ref, bev_mask, query, value, shapes = _sca_inputs()
    camera_mask = torch.ones(2, NUM_CAMS, dtype=torch.bool)  # [B, N]
    camera_mask[0, 3] = camera_mask[1, 0] = camera_mask[1, 5] = False
    zeroed = bev_mask.clone()
    zeroed[3, 0] = zeroed[0, 1] = zeroed[5, 1] = False
    masked, plain = visible_queries(ref, bev_mask, camera_mask), visible_queries(ref, zeroed)
    for name in ('index', 'valid', 'reference_points', 'count'):
        assert torch.equal(getattr(masked, name), getattr(plain, name)), name
    torch.manual_seed(0)
    sca = SpatialCrossAttention(32, num_heads=8, num_levels=1, num_points=8, dropout=0.0).eval()
    assert torch.equal(sca(query, value, masked, shapes), sca(query, value, plain, shapes))


def test_a_masked_camera_features_no_longer_matter_in_sca():
    ref, bev_mask, query, value, shapes = _sca_inputs(seed=1)
    # camera 3 of sample 0 sees queries, so its features matter unmasked
    assert bev_mask[3, 0].any()
    other = value.clone()
    other[0, 3] = torch.randn_like(other[0, 3])
    camera_mask = torch.ones(2, NUM_CAMS, dtype=torch.bool)
    camera_mask[0, 3] = False
    torch.manual_seed(0)
    sca = SpatialCrossAttention(32, num_heads=8, num_levels=1, num_points=8, dropout=0.0).eval()
    masked = visible_queries(ref, bev_mask, camera_mask)
    assert torch.equal(sca(query, value, masked, shapes), sca(query, other, masked, shapes))
    unmasked = visible_queries(ref, bev_mask)
    assert not torch.allclose(
        sca(query, value, unmasked, shapes), sca(query, other, unmasked, shapes)
    )


def test_the_count_normalisation_leaves_a_masked_camera_out():
    ref, bev_mask, *_ = _sca_inputs(seed=2)
    camera_mask = torch.ones(2, NUM_CAMS, dtype=torch.bool)
    camera_mask[:, 2] = False
    seen = bev_mask.any(-1)  # [N, B, HW]
    expected = (seen.sum(0) - seen[2].long()).clamp(min=1)  # independent count: every camera but 2
    assert torch.equal(visible_queries(ref, bev_mask, camera_mask).count, expected)


# ------------------------------------------------------------------------------------------------
# model
@pytest.fixture(scope='module')
def config():
    return NodeConfig.from_parameters(small_model_parameters())


@pytest.fixture(scope='module')
def model(config):
    return build_model(config.model, CPU).model


@pytest.fixture(scope='module')
def rig():
    return load_rig(config_file('nuscenes_rig.yaml'))


def _frame(config, rig, seed=0, missing=()):
    rng = np.random.default_rng(seed)
    f = 1266.417 * W / 1600
    K = np.array([[f, 0, W / 2], [0, f, H / 2], [0, 0, 1]])
    cameras = []
    for i, name in enumerate(config.cameras.names):
        pixels = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        image = None if i in missing else image_msg(pixels, 'rgb8', frame_id=name)
        cameras.append(
            CameraInput(image, camera_info_msg(K, W, H, name), rig.camera(name).sensor2lidar)
        )
    pose = EgoPose(10_000_000_000, np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))
    return FrameSet(pose.stamp_ns, cameras, pose)


def _model_inputs(model, config, rig, seed=0):
    pipeline = Pipeline(model, configured_architecture(config.model), CPU, config.temporal)
    frame = _frame(config, rig, seed)
    # [1, 18]
    can_bus = torch.from_numpy(TemporalState().step(frame_can_bus(frame.ego_pose)).can_bus)[None]
    return pipeline, pipeline.prepare(frame), can_bus


def _run(model, inputs, can_bus, camera_mask=None, lidar2img=None, img=None):
    with torch.inference_mode():
        return model(
            (inputs.img if img is None else img)[None],
            (inputs.lidar2img if lidar2img is None else lidar2img)[None],
            inputs.img_shape,
            can_bus,
            None,
            camera_mask=camera_mask,
        )


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in ('bev_embed', 'all_cls_scores', 'all_bbox_preds'))


def test_an_all_valid_mask_reproduces_the_unmasked_model_exactly(model, config, rig):
    _, inputs, can_bus = _model_inputs(model, config, rig)
    all_valid = torch.ones(1, NUM_CAMS, dtype=torch.bool)
    assert _same(_run(model, inputs, can_bus), _run(model, inputs, can_bus, all_valid))


def test_a_masked_camera_is_a_camera_that_sees_no_bev_cell(model, config, rig):
    _, inputs, can_bus = _model_inputs(model, config, rig)
    mask = torch.ones(1, NUM_CAMS, dtype=torch.bool)
    mask[0, 3] = False
    masked = _run(model, inputs, can_bus, mask)
    # Independent route to "bev_mask all False": a lidar2img that puts every point behind camera 3.
    blind = inputs.lidar2img.clone()
    blind[3] = torch.tensor(
        [[1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, -1], [0, 0, 0, 1]], dtype=blind.dtype
    )
    assert _same(masked, _run(model, inputs, can_bus, lidar2img=blind))
    other = inputs.img.clone()
    other[3] = torch.randn_like(other[3])
    # its image no longer matters
    assert _same(masked, _run(model, inputs, can_bus, mask, img=other))
    assert not _same(masked, _run(model, inputs, can_bus))  # and it did matter before


def test_the_pipeline_runs_a_set_without_a_camera_as_the_masked_model(model, config, rig):
    pipeline, inputs, can_bus = _model_inputs(model, config, rig)
    result = pipeline.run(_frame(config, rig, missing=(3,)))
    assert result.missing_cameras == (3,)
    mask = torch.ones(NUM_CAMS, dtype=torch.bool)
    mask[3] = False
    expected = pipeline.forward(dataclasses.replace(inputs, camera_mask=mask), can_bus, None)
    h, w, c = result.bev_shape
    np.testing.assert_allclose(
        result.bev, expected['bev_embed'][:, 0].reshape(h, w, c).numpy(), rtol=0, atol=1e-6
    )
    assert pipeline.run(_frame(config, rig, seed=1)).missing_cameras == ()


def test_a_set_without_any_camera_is_a_frame_error(model, config, rig):
    pipeline = Pipeline(model, configured_architecture(config.model), CPU, config.temporal)
    with pytest.raises(FrameError, match='no camera image') as err:
        pipeline.run(_frame(config, rig, missing=range(NUM_CAMS)))
    assert err.value.kind == 'image'

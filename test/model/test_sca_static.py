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


"""Static-shape spatial cross-attention (the exported form) computes exactly the eager numbers."""

from __future__ import annotations

from bevformer_ros.model.spatial_cross_attention import camera_hits, visible_queries
from bevformer_ros.tools.check_official import build_from_fixture
import numpy as np
import pytest
from reference_fixtures import CASE_SMALL, require
import torch


@pytest.fixture(scope='module')
def case():
    return torch.load(require(CASE_SMALL), map_location='cpu', weights_only=True)


def _run(model, frame, mask=None):
    meta = frame['img_metas']
    lidar2img = torch.as_tensor(meta['lidar2img'], dtype=torch.float64)[None]
    img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
    can_bus = torch.as_tensor(np.asarray(meta['can_bus_used']), dtype=torch.float64)[None]
    with torch.no_grad():
        return model(frame['img'].float(), lidar2img, img_shape, can_bus, None, camera_mask=mask)


@pytest.mark.parametrize('masked', [False, True])
def test_dense_and_fixed_capacity_equal_the_per_frame_layout(case, masked):
    model, cfg = build_from_fixture(case, False, torch.device('cpu'))
    encoder = model.pts_bbox_head.transformer.encoder
    frame = case['frames'][0]
    mask = torch.tensor([[True, True, False, True, True, True]]) if masked else None
    eager = _run(model, frame, mask)  # sca_capacity None: rows as long as the busiest camera
    hw = cfg.head.bev_h * cfg.head.bev_w
    meta = frame['img_metas']
    lidar2img = torch.as_tensor(meta['lidar2img'])[None]
    img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
    _, bev_mask = encoder.camera_geometry(
        (cfg.head.bev_h, cfg.head.bev_w), lidar2img, img_shape, torch.device('cpu')
    )
    busiest = int(camera_hits(bev_mask, mask).sum(-1).max())
    assert busiest < hw - 1
    # dense, and fixed row lengths from just enough to one short of dense
    for capacity in (hw, hw - 1, busiest):
        encoder.sca_capacity = capacity
        static = _run(model, frame, mask)
        for key in ('bev_embed', 'all_cls_scores', 'all_bbox_preds'):
            assert torch.equal(static[key], eager[key]), (capacity, key)


def test_max_visible_reports_a_camera_beyond_the_capacity():
    torch.manual_seed(0)
    bev_mask = torch.rand(3, 1, 50, 2) < 0.4  # [N, B, HW, Z]
    ref = torch.rand(3, 1, 50, 2, 2)
    busiest = int(camera_hits(bev_mask).sum(-1).max())
    layout = visible_queries(ref, bev_mask, capacity=busiest - 1)
    assert layout.index.shape == (3, busiest - 1)
    assert int(layout.max_visible) == busiest  # what the engine compares with its capacity

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

from bevformer_ros.model.export import OPSET
from bevformer_ros.model.spatial_cross_attention import (
    camera_hits,
    visible_first,
    visible_queries,
)
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


def _topk_order(rows: torch.Tensor) -> torch.Tensor:
    """Order rows as the previous formulation did: distinct scores through TopK."""
    HW = rows.shape[1]
    positions = torch.arange(HW)
    score = torch.where(rows, (HW - positions).float(), -positions.float())
    return torch.topk(score, HW, dim=1).indices


@pytest.mark.parametrize('hw', [1, 5, 2500, 22500])
def test_visible_first_is_the_stable_partition(hw):
    gen = torch.Generator().manual_seed(hw)
    rows = torch.rand(8, hw, generator=gen) < torch.rand(8, 1, generator=gen)
    rows[0] = True  # a camera that sees everything
    rows[1] = False  # one that sees nothing
    torch.testing.assert_close(visible_first(rows), _topk_order(rows), rtol=0, atol=0)


class _Layout(torch.nn.Module):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def forward(self, reference_points_cam: torch.Tensor, bev_mask: torch.Tensor) -> tuple:
        layout = visible_queries(reference_points_cam, bev_mask, capacity=self.capacity)
        return layout.index, layout.valid


def test_small_presets_layout_exports_without_topk(tmp_path):
    # small's 150x150 BEV keeps 5625 queries per camera (a quarter), base's 10000: TensorRT caps
    # TopK at k = 3840, so the exported layout must not sort
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    gen = torch.Generator().manual_seed(0)
    hw, capacity = 150 * 150, 150 * 150 // 4
    bev_mask = torch.rand(6, 1, hw, 4, generator=gen) < 0.05
    ref = torch.rand(6, 1, hw, 4, 2, generator=gen)
    path = tmp_path / 'layout.onnx'
    torch.onnx.export(
        _Layout(capacity),
        (ref, bev_mask),
        str(path),
        dynamo=False,
        opset_version=OPSET,
        input_names=['reference_points_cam', 'bev_mask'],
    )
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert 'TopK' not in ops and 'NonZero' not in ops, sorted(ops)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    # the index and validity do not depend on the points: the exporter drops that input
    feed = {'reference_points_cam': ref.numpy(), 'bev_mask': bev_mask.numpy()}
    index, valid = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
    expected = visible_queries(ref, bev_mask, capacity=capacity)
    np.testing.assert_array_equal(index, expected.index.numpy())
    np.testing.assert_array_equal(valid, expected.valid.numpy())

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

"""NMS-free decoding vs the official decoded outputs of case_small.pt (README §3 outputs)."""

from __future__ import annotations

import math

from bevformer_ros.model.box_coder import decode_boxes, nms_free_decode
from bevformer_ros.model.config import preset
import pytest
from reference_fixtures import CASE_SMALL, require
import torch

FIXTURE = CASE_SMALL


@pytest.fixture(scope='module')
def frames() -> list:
    return torch.load(require(FIXTURE), weights_only=True)['frames']


def test_decode_matches_official(frames):
    for frame in frames:
        out = frame['outputs']
        det = decode_boxes(out['cls_scores'][0], out['bbox_preds'][0], preset('tiny'))
        # same raw inputs: identical ranking, hence identical order
        assert torch.equal(det.flat_index, out['decode_flat_index'])
        assert torch.equal(det.labels, out['labels_3d'])
        assert torch.equal(det.flat_index // 10, out['decode_query_index'])
        # 1e-7 is under 2 ulp of a score in [0.5, 1): vectorised sigmoid differs between CPUs
        torch.testing.assert_close(det.scores, out['scores_3d'], rtol=0, atol=1e-6)
        torch.testing.assert_close(det.boxes, out['boxes_3d'], rtol=1e-6, atol=1e-6)


def test_box_layout_from_raw_prediction():
    cls = torch.full((2, 3), -10.0)
    cls[1, 2] = 2.0  # query 1, class 2 scores highest
    reg = torch.zeros(2, 10)
    reg[1] = torch.tensor(
        [1.0, -2.0, math.log(2.0), math.log(4.0), 0.5, math.log(1.5), 1.0, 0.0, 3.0, -1.0]
    )
    det = nms_free_decode(cls, reg, max_num=1, post_center_range=None)
    assert det.flat_index.tolist() == [1 * 3 + 2] and det.labels.tolist() == [2]
    assert det.scores.item() == pytest.approx(1 / (1 + math.exp(-2.0)))
    x, y, z_bottom, w, length, h, yaw, vx, vy = det.boxes[0].tolist()
    assert (x, y, vx, vy) == (1.0, -2.0, 3.0, -1.0)
    assert (w, length, h) == pytest.approx((2.0, 4.0, 1.5))
    assert z_bottom == pytest.approx(0.5 - 0.75)  # centre z minus half the height
    assert yaw == pytest.approx(math.pi / 2)  # atan2(sin=1, cos=0)


def test_post_center_range_filters_on_the_gravity_centre():
    cls = torch.tensor([[3.0], [2.0], [1.0]])
    reg = torch.zeros(3, 10)
    reg[:, 5] = math.log(4.0)  # h = 4
    reg[0, 0] = 70.0  # x outside +-61.2
    reg[1, 4] = 10.0  # centre z = 10 (inside, inclusive) although its bottom is at 8
    reg[2, 4] = -11.0  # centre z below -10
    det = nms_free_decode(
        cls, reg, max_num=300, post_center_range=(-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)
    )
    assert det.flat_index.tolist() == [1]
    assert det.boxes[0, 2].item() == pytest.approx(8.0)
    assert det.boxes.shape == (1, 9)

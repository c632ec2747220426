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
Training loss against by-hand formulas.

Focal loss, the official loss, no targets, the box encoding.
"""

from __future__ import annotations

import math

from bevformer_ros.train.losses import BEVFormerLoss, sigmoid_focal_loss
from bevformer_ros.train.targets import gravity_center_boxes, in_bev_range, normalize_bbox
import numpy as np
import pytest
import torch

CODE_WEIGHTS = [1.0] * 8 + [0.2, 0.2]


def focal_by_hand(logit: float, positive: bool, alpha: float = 0.25, gamma: float = 2.0) -> float:
    """Lin et al. 2017: FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)."""
    p = 1.0 / (1.0 + math.exp(-logit))
    if positive:
        return -alpha * (1 - p) ** gamma * math.log(p)
    return -(1 - alpha) * p**gamma * math.log(1 - p)


def test_focal_loss_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3
    labels = torch.tensor([0, 3, 4, 1, 4, 2, 0])  # 4 = background
    out = sigmoid_focal_loss(logits, labels)
    for n in range(7):
        for c in range(4):
            expected = focal_by_hand(float(logits[n, c]), int(labels[n]) == c)
            assert float(out[n, c]) == pytest.approx(expected, rel=1e-10)


def test_box_encoding():
    box = torch.tensor(
        [[3.0, -4.0, -1.5, 2.0, 4.0, 1.0, 0.5, 1.5, -0.5]]
    )  # bottom centre z -1.5, h 1
    centred = gravity_center_boxes(box)
    assert centred.tolist() == [[3.0, -4.0, -1.0, 2.0, 4.0, 1.0, 0.5, 1.5, -0.5]]
    code = normalize_bbox(centred)[0].tolist()
    expected = [
        3.0,
        -4.0,
        math.log(2.0),
        math.log(4.0),
        -1.0,
        0.0,
        math.sin(0.5),
        math.cos(0.5),
        1.5,
        -0.5,
    ]
    assert code == pytest.approx(expected, abs=1e-6)


def test_bev_range_filter_keeps_strictly_inside_centres():
    boxes = torch.zeros(4, 9)
    boxes[:, 0] = torch.tensor([0.0, 51.2, -51.19, 60.0])
    assert in_bev_range(boxes, (-51.2, -51.2, -5, 51.2, 51.2, 3)).tolist() == [
        True,
        False,
        True,
        False,
    ]


def single_layer(logits, preds):
    """Model-output dict of one decoder layer and one sample: logits [Q, C], preds [Q, 10]."""
    return {'all_cls_scores': logits[None, None], 'all_bbox_preds': preds[None, None]}


def one_layer_case():
    """3 queries, 4 classes, 1 box; query 1 predicts the box almost exactly, so it is the match."""
    gt = torch.tensor([[5.0, 10.0, -1.0, 1.8, 4.4, 1.5, 0.4, 3.0, float('nan')]])  # unknown vy
    labels = torch.tensor([2])
    code = normalize_bbox(gravity_center_boxes(gt))[0]
    preds = torch.tensor(
        [
            [-30.0, 20.0, 0.1, 0.2, 0.0, 0.1, 0.0, 1.0, 0.0, 0.0],
            [0.0] * 10,
            [25.0, -9.0, 0.5, 0.5, -2.0, 0.3, 1.0, 0.0, 1.0, 1.0],
        ],
        dtype=torch.float64,
    )
    preds[1] = torch.nan_to_num(code, nan=0.0) + 0.1
    logits = torch.tensor(
        [[-2.0, -1.0, -3.0, 0.5], [-1.0, -2.0, 1.5, -0.5], [0.2, -4.0, -1.0, -2.0]],
        dtype=torch.float64,
    )
    return preds, logits, gt, labels


def expected_one_layer(preds, logits, gt, labels, matched_query):
    num_pos = 1
    cls = sum(
        focal_by_hand(float(logits[q, c]), q == matched_query and c == int(labels[0]))
        for q in range(3)
        for c in range(4)
    )
    loss_cls = 2.0 * cls / num_pos
    x, y, zb, w, length, h, yaw, vx, vy = gt[0].tolist()
    target = [
        x,
        y,
        math.log(w),
        math.log(length),
        zb + h / 2,
        math.log(h),
        math.sin(yaw),
        math.cos(yaw),
        vx,
        vy,
    ]
    if any(
        math.isnan(t) for t in target
    ):  # official: a target row with a non-finite value is left out
        loss_bbox = 0.0
    else:
        pred = preds[matched_query].tolist()
        loss_bbox = (
            0.25 * sum(cw * abs(p - t) for cw, p, t in zip(CODE_WEIGHTS, pred, target)) / num_pos
        )
    return loss_cls, loss_bbox


def test_loss_of_one_layer_by_hand():
    preds, logits, gt, labels = one_layer_case()
    gt[0, 8] = -0.7  # known velocity: the box row counts
    criterion = BEVFormerLoss(num_classes=4)
    out = criterion(single_layer(logits, preds), [gt], [labels])
    loss_cls, loss_bbox = expected_one_layer(preds, logits, gt, labels, matched_query=1)
    assert float(out['loss_cls']) == pytest.approx(loss_cls, rel=1e-6)
    assert float(out['loss_bbox']) == pytest.approx(loss_bbox, rel=1e-6)
    assert float(out['loss_bbox']) > 0
    assert set(out) == {'loss_cls', 'loss_bbox', 'loss'}


def test_box_rows_with_unknown_velocity_are_left_out():
    preds, logits, gt, labels = one_layer_case()  # vy is NaN
    out = BEVFormerLoss(num_classes=4)(single_layer(logits, preds), [gt], [labels])
    loss_cls, _ = expected_one_layer(preds, logits, gt, labels, matched_query=1)
    assert float(out['loss_bbox']) == 0.0
    assert float(out['loss_cls']) == pytest.approx(loss_cls, rel=1e-6)


def test_no_ground_truth_gives_background_only_loss():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 5, 3, generator=g, dtype=torch.float64)  # [L, B, Q, C]
    preds = torch.randn(2, 1, 5, 10, generator=g, dtype=torch.float64, requires_grad=True)
    out = BEVFormerLoss(num_classes=3)(
        {'all_cls_scores': logits, 'all_bbox_preds': preds},
        [torch.zeros(0, 9)],
        [torch.zeros(0, dtype=torch.long)],
    )
    for lvl, prefix in ((0, 'd0.'), (1, '')):
        negatives = sum(focal_by_hand(float(v), False) for v in logits[lvl].reshape(-1))
        # no positives: the average factor is clamped to 1
        assert float(out[f'{prefix}loss_cls']) == pytest.approx(2.0 * negatives / 1.0, rel=1e-6)
        assert float(out[f'{prefix}loss_bbox'].detach()) == 0.0
    out['loss'].backward()  # differentiable although no box is matched
    assert preds.grad is not None and torch.all(preds.grad == 0)


def test_auxiliary_layers_and_batch_normalisation():
    """
    Two decoder layers, two samples: every layer has its terms.

    The terms are averaged by the batch's matched count.
    """
    preds, logits, gt, labels = one_layer_case()
    gt[0, 8] = 0.5
    preds2, logits2 = (
        preds.flip(0).clone(),
        logits.flip(0).clone(),
    )  # sample 2: the match is query 1 again
    all_preds = torch.stack([torch.stack([preds, preds2])] * 2)  # [L=2, B=2, Q, 10]
    all_logits = torch.stack([torch.stack([logits, logits2])] * 2)
    out = BEVFormerLoss(num_classes=4)(
        {'all_cls_scores': all_logits, 'all_bbox_preds': all_preds}, [gt, gt], [labels, labels]
    )
    assert set(out) == {'d0.loss_cls', 'd0.loss_bbox', 'loss_cls', 'loss_bbox', 'loss'}
    c1, b1 = expected_one_layer(preds, logits, gt, labels, 1)
    c2, b2 = expected_one_layer(preds2, logits2, gt, labels, 1)
    # sums over both samples divided by num_pos = 2: the mean of the per-sample losses
    assert float(out['loss_cls']) == pytest.approx((c1 + c2) / 2, rel=1e-6)
    assert float(out['loss_bbox']) == pytest.approx((b1 + b2) / 2, rel=1e-6)
    assert float(out['d0.loss_cls']) == pytest.approx(float(out['loss_cls']))
    total = sum(float(out[k]) for k in ('d0.loss_cls', 'd0.loss_bbox', 'loss_cls', 'loss_bbox'))
    assert float(out['loss']) == pytest.approx(total)


def test_gradient_pulls_the_matched_box_towards_its_target():
    preds, logits, gt, labels = one_layer_case()
    gt[0, 8] = 0.0
    preds = preds.clone().requires_grad_(True)
    out = BEVFormerLoss(num_classes=4)(single_layer(logits, preds), [gt], [labels])
    out['loss'].backward()
    assert np.all(
        preds.grad[1].numpy() > 0
    )  # every coordinate of query 1 sits 0.1 above its target
    assert torch.all(preds.grad[[0, 2]] == 0)  # unmatched queries get no box gradient

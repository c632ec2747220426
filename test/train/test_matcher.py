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
Hungarian matching against brute force.

The official matching cost against a by-hand computation.
"""

from __future__ import annotations

import itertools
import math

from bevformer_ros.train.hungarian import linear_sum_assignment
from bevformer_ros.train.matcher import HungarianAssigner3D
from bevformer_ros.train.targets import gravity_center_boxes, normalize_bbox
import numpy as np
import pytest
import torch


def brute_force_min(cost: np.ndarray) -> float:
    n, m = cost.shape
    if n <= m:
        return min(
            sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n)
        )
    return min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))


@pytest.mark.parametrize('seed', range(150))
def test_assignment_is_optimal_and_one_to_one(seed):
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(1, 7, size=2))
    # every third matrix has small integer costs: many ties and many equally cheap assignments
    cost = (
        rng.integers(0, 3, size=(n, m)).astype(float)
        if seed % 3 == 0
        else rng.normal(size=(n, m)) * 10
    )
    rows, cols = linear_sum_assignment(cost)
    assert len(rows) == len(cols) == min(n, m)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert list(rows) == sorted(rows)
    assert cost[rows, cols].sum() == pytest.approx(brute_force_min(cost), abs=1e-9)


def test_assignment_of_a_known_matrix():
    # scipy's documented example
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    rows, cols = linear_sum_assignment(cost)
    assert rows.tolist() == [0, 1, 2] and cols.tolist() == [1, 0, 2]
    assert cost[rows, cols].sum() == 5.0


def test_assignment_edge_cases():
    rows, cols = linear_sum_assignment(np.zeros((0, 5)))
    assert rows.shape == cols.shape == (0,)
    with pytest.raises(ValueError, match='NaN or inf'):
        linear_sum_assignment(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match='2-D'):
        linear_sum_assignment(np.zeros(3))


def test_assignment_of_a_detector_sized_matrix_is_optimal_against_a_greedy_bound():
    rng = np.random.default_rng(7)
    cost = rng.random((40, 300))
    rows, cols = linear_sum_assignment(cost)
    # the optimum is at most the greedy row-by-row total and at least the sum of row minima
    used, greedy = set(), 0.0
    for r in range(40):
        c = min((c for c in range(300) if c not in used), key=lambda c: cost[r, c])
        used.add(c)
        greedy += cost[r, c]
    total = cost[rows, cols].sum()
    assert cost.min(1).sum() - 1e-12 <= total <= greedy + 1e-12


def naive_cost(q_box, q_logits, gt_box, gt_label):
    """Official cost of one (query, box) pair from the formulas, in plain Python floats."""
    p = 1 / (1 + math.exp(-q_logits[gt_label]))
    alpha, gamma, eps = 0.25, 2.0, 1e-12
    pos = -math.log(p + eps) * alpha * (1 - p) ** gamma
    neg = -math.log(1 - p + eps) * (1 - alpha) * p**gamma
    x, y, z_bottom, width, length, height, yaw = gt_box[:7]
    code = [
        x,
        y,
        math.log(width),
        math.log(length),
        z_bottom + height / 2,
        math.log(height),
        math.sin(yaw),
        math.cos(yaw),
    ]
    l1 = sum(abs(a - b) for a, b in zip(q_box[:8], code))
    return 2.0 * (pos - neg) + 0.25 * l1


def random_case(seed, num_query=6, num_gt=3, num_classes=4):
    g = torch.Generator().manual_seed(seed)
    bbox_preds = torch.randn(num_query, 10, generator=g, dtype=torch.float64) * 3
    cls_logits = torch.randn(num_query, num_classes, generator=g, dtype=torch.float64) * 2
    gt = torch.rand(num_gt, 9, generator=g, dtype=torch.float64)
    gt[:, :2] = gt[:, :2] * 40 - 20
    gt[:, 3:6] = gt[:, 3:6] * 4 + 0.5  # positive sizes
    gt[:, 6] = gt[:, 6] * 6 - 3
    labels = torch.randint(0, num_classes, (num_gt,), generator=g)
    return bbox_preds, cls_logits, gt, labels


@pytest.mark.parametrize('seed', range(5))
def test_matching_cost_equals_the_official_formula(seed):
    bbox_preds, cls_logits, gt, labels = random_case(seed)
    cost = HungarianAssigner3D().cost(bbox_preds, cls_logits, gravity_center_boxes(gt), labels)
    for q in range(bbox_preds.shape[0]):
        for k in range(gt.shape[0]):
            expected = naive_cost(
                bbox_preds[q].tolist(), cls_logits[q].tolist(), gt[k].tolist(), int(labels[k])
            )
            assert float(cost[q, k]) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize('seed', range(5))
def test_assignment_minimises_the_total_cost(seed):
    bbox_preds, cls_logits, gt, labels = random_case(seed, num_query=6, num_gt=3)
    centred = gravity_center_boxes(gt)
    match = HungarianAssigner3D().assign(bbox_preds, cls_logits, centred, labels)
    table = np.array(
        [
            [
                naive_cost(
                    bbox_preds[q].tolist(), cls_logits[q].tolist(), gt[k].tolist(), int(labels[k])
                )
                for k in range(3)
            ]
            for q in range(6)
        ]
    )
    total = table[match.query_inds.numpy(), match.gt_inds.numpy()].sum()
    assert total == pytest.approx(brute_force_min(table), abs=1e-9)
    assert sorted(match.gt_inds.tolist()) == [0, 1, 2]


def test_the_query_that_predicts_a_box_gets_it():
    gt = torch.tensor(
        [
            [10.0, -5.0, -1.0, 1.9, 4.5, 1.6, 0.3, 2.0, 0.0],
            [-20.0, 8.0, -1.0, 0.7, 0.7, 1.8, 1.0, 0.0, 0.0],
        ]
    )
    labels = torch.tensor([0, 8])
    codes = normalize_bbox(gravity_center_boxes(gt))  # [2, 10]
    bbox_preds = torch.zeros(5, 10)
    bbox_preds[:, 2:4] = 1.0
    bbox_preds[3] = codes[0]  # query 3 predicts the car exactly
    bbox_preds[1] = codes[1]  # query 1 the pedestrian
    cls_logits = torch.full((5, 10), -4.0)
    cls_logits[3, 0] = cls_logits[1, 8] = 3.0
    match = HungarianAssigner3D().assign(bbox_preds, cls_logits, gravity_center_boxes(gt), labels)
    assert dict(zip(match.gt_inds.tolist(), match.query_inds.tolist())) == {0: 3, 1: 1}


def test_no_ground_truth_matches_nothing():
    match = HungarianAssigner3D().assign(
        torch.zeros(4, 10), torch.zeros(4, 10), torch.zeros(0, 9), torch.zeros(0, dtype=torch.long)
    )
    assert match.query_inds.numel() == match.gt_inds.numel() == 0

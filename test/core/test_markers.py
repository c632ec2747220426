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

"""Marker content from decoded boxes, checked against hand geometry and mmdet3d's corners."""

from __future__ import annotations

import math

from bevformer_ros.core.markers import (
    ARROW,
    BOX_EDGES,
    box_marker,
    build_box_markers,
    CUBE,
    DELETEALL,
    GROUND_TRUTH_STYLE,
    LINE_LIST,
    marker_layout,
    MarkerStyle,
    NUSCENES_CLASSES,
    TEXT_VIEW_FACING,
)
import numpy as np
import pytest
import torch


def mmdet3d_v017_lidar_corners(box):
    """
    Independent reference: LiDARInstance3DBoxes.corners of mmdet3d v0.17 for one box.

    dims (w, l, h) scale a unit cube with relative origin (0.5, 0.5, 0) along x, y, z, which is
    then turned by `rotation_3d_in_axis(axis=2)`: points @ [[cos, -sin, 0], [sin, cos, 0], [0, 0,
    1]].
    """
    x, y, z, w, length, h, yaw = box[:7]
    unit = np.array(list(np.ndindex(2, 2, 2)), dtype=float) - [0.5, 0.5, 0.0]
    corners = unit * [w, length, h]
    c, s = math.cos(yaw), math.sin(yaw)
    corners = corners @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return corners + [x, y, z]


def as_set(points):
    return sorted(tuple(np.round(p, 9)) for p in points)


def test_axis_aligned_box_corners():
    # yaw = -pi/2 gives heading 0: length along +x
    box = np.array([1.0, 2.0, -1.0, 2.0, 4.0, 1.5, -math.pi / 2, 0.0, 0.0])
    m = box_marker(box, 0.9, 0)
    assert m.heading == pytest.approx(0.0)
    assert m.center == pytest.approx((1.0, 2.0, -0.25))
    assert m.scale == (4.0, 2.0, 1.5)
    expected = [(x, y, z) for x in (-1.0, 3.0) for y in (1.0, 3.0) for z in (-1.0, 0.5)]
    assert as_set(m.corners) == as_set(expected)
    # every edge joins corners that differ along exactly one axis, and all 12 edges are distinct
    for a, b in BOX_EDGES:
        assert np.count_nonzero(np.abs(m.corners[a] - m.corners[b]) > 1e-9) == 1
    assert len({frozenset(e) for e in BOX_EDGES}) == 12


@pytest.mark.parametrize('yaw', [0.0, 0.3, -1.2, math.pi / 2, 2.9])
def test_heading_convention_matches_mmdet3d_corners(yaw):
    box = np.array([5.0, -3.0, -1.8, 1.9, 4.6, 1.6, yaw, 0.0, 0.0])
    m = box_marker(box, 0.5, 0)
    assert m.heading == pytest.approx(-yaw - math.pi / 2)
    qx, qy, qz, qw = m.orientation_xyzw
    assert (qx, qy) == (0.0, 0.0) and qz**2 + qw**2 == pytest.approx(1.0)
    assert math.remainder(
        2 * math.atan2(qz, qw) - (-yaw - math.pi / 2), 2 * math.pi
    ) == pytest.approx(0.0)
    assert as_set(m.corners) == as_set(mmdet3d_v017_lidar_corners(box))


def test_known_yaw_points_the_length_axis():
    # yaw = 0 in mmdet3d v0.17 LiDAR boxes: l lies along the LiDAR y axis; as a ROS box heading =
    # -90 deg
    m = box_marker(np.array([0.0, 0.0, 0.0, 2.0, 6.0, 1.0, 0.0, 0.0, 0.0]), 0.5, 0)
    front_face = m.corners[[0, 3, 4, 7]]  # x = +l/2 in the box frame
    assert np.allclose(front_face[:, 1], -3.0) and np.allclose(np.abs(front_face[:, 0]), 1.0)


def test_velocity_arrow_label_and_colour():
    m = box_marker(
        np.array([1.0, 1.0, 0.0, 2.0, 4.0, 2.0, 0.0, 3.0, -4.0]), 0.8765, 8, arrow_time_s=0.5
    )
    assert m.class_name == 'pedestrian' and m.text == 'pedestrian 0.88'
    assert m.arrow_start == m.center and m.arrow_end == pytest.approx((2.5, -1.0, 1.0))
    assert m.velocity == (3.0, -4.0) and m.color[3] == 1.0
    assert m.text_position[2] > m.center[2] + m.scale[2] / 2
    unknown = box_marker(np.zeros(9) + [0, 0, 0, 1, 1, 1, 0, 0, 0], 0.5, 42)
    assert unknown.class_name == 'class_42'


def test_threshold_max_count_ordering_and_bad_rows():
    boxes = torch.tensor([[float(i), 0, 0, 1, 2, 1, 0, 0, 0] for i in range(6)])
    boxes[4, 0] = float('nan')
    scores = torch.tensor([0.2, 0.9, 0.5, 0.31, 0.95, 0.7])
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    markers = build_box_markers(boxes, scores, labels, score_threshold=0.3, max_count=3)
    assert [m.center[0] for m in markers] == [1.0, 5.0, 2.0]  # nan row dropped, then best first
    assert [m.class_name for m in markers] == [NUSCENES_CLASSES[i] for i in (1, 5, 2)]
    assert build_box_markers(boxes, scores, labels, score_threshold=0.99) == []
    seven = build_box_markers(boxes[:, :7].numpy(), scores.numpy(), labels.numpy(), 0.0, 10)
    assert len(seven) == 5 and all(m.velocity == (0.0, 0.0) for m in seven)
    with pytest.raises(ValueError, match='expected boxes'):
        build_box_markers(boxes[:, :5], scores, labels)


def test_marker_layout_of_detections():
    moving = box_marker(np.array([5.0, 1.0, -1.0, 2.0, 4.0, 1.5, 0.3, 3.0, 4.0]), 0.8, 0)
    parked = box_marker(np.array([9.0, 0.0, -1.0, 2.0, 4.0, 1.5, 0.0, 0.1, 0.0]), 0.6, 8)
    layout = marker_layout([moving, parked], MarkerStyle(line_width=0.1))
    assert [(m.ns, m.id, m.type, m.action) for m in layout] == [
        ('bevformer', 0, ARROW, DELETEALL),
        ('bevformer/boxes', 0, CUBE, 0),
        ('bevformer/edges', 0, LINE_LIST, 0),
        ('bevformer/labels', 0, TEXT_VIEW_FACING, 0),
        ('bevformer/velocity', 0, ARROW, 0),  # 5 m/s; the parked box (0.1 m/s) gets none
        ('bevformer/boxes', 1, CUBE, 0),
        ('bevformer/edges', 1, LINE_LIST, 0),
        ('bevformer/labels', 1, TEXT_VIEW_FACING, 0),
    ]
    cube, edges, label, arrow = layout[1:5]
    assert cube.position == moving.center and cube.scale == moving.scale
    assert cube.color == (*moving.color[:3], 0.3)  # the default CUBE alpha
    np.testing.assert_array_equal(
        np.array(edges.points), moving.corners[np.array(BOX_EDGES).reshape(-1)]
    )
    assert edges.scale == (0.1, 0.0, 0.0) and arrow.scale == pytest.approx((0.2, 0.4, 0.6))
    assert label.text == 'car 0.80' and label.color == (1.0, 1.0, 1.0, 1.0)
    assert arrow.points == (moving.arrow_start, moving.arrow_end)


def test_marker_layout_of_ground_truth_and_of_nothing():
    box = box_marker(np.array([5.0, 1.0, -1.0, 2.0, 4.0, 1.5, 0.3, 3.0, 4.0]), 1.0, 8)
    layout = marker_layout([box], GROUND_TRUTH_STYLE)
    assert [(m.ns, m.type) for m in layout] == [
        ('ground_truth', ARROW),
        ('ground_truth/boxes', CUBE),
        ('ground_truth/labels', TEXT_VIEW_FACING),
    ]
    assert layout[1].color[3] == 0.35 and layout[2].text == 'pedestrian'
    assert [(m.ns, m.action) for m in marker_layout([])] == [('bevformer', DELETEALL)]

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

"""Marker content and diagnostics → real ROS 2 message classes (venv), round-tripped via CDR."""

from __future__ import annotations

import sys
import types

from bevformer_ros.core.markers import BOX_EDGES, box_marker, marker_layout, MarkerStyle
from bevformer_ros.ros.convert import (
    _default,
    detection3d_array,
    diagnostic_array,
    diagnostic_status,
    header_msg,
    marker_array,
    time_msg,
)
import numpy as np
import pytest

STAMP_NS = 1_700_000_000_123_456_789


@pytest.fixture
def boxes():
    moving = box_marker(np.array([10.0, 2.0, -1.0, 1.9, 4.5, 1.6, 0.3, 5.0, 0.0]), 0.81, 0)
    parked = box_marker(np.array([-4.0, 7.0, -1.2, 2.0, 4.0, 1.5, 1.0, 0.05, 0.0]), 0.42, 5)
    return [moving, parked]


def roundtrip(msg):
    from rclpy.serialization import deserialize_message, serialize_message

    return deserialize_message(serialize_message(msg), type(msg))


def test_time_and_header():
    from builtin_interfaces.msg import Time

    t = time_msg(STAMP_NS)
    assert (t.sec, t.nanosec) == (1_700_000_000, 123_456_789)
    assert time_msg(Time(sec=3, nanosec=4)) == Time(sec=3, nanosec=4)
    h = header_msg('LIDAR_TOP', t)
    assert h.frame_id == 'LIDAR_TOP' and h.stamp == t


def test_marker_array_layout(boxes):
    from visualization_msgs.msg import Marker, MarkerArray

    msg = roundtrip(marker_array(boxes, 'LIDAR_TOP', STAMP_NS, MarkerStyle(cube_alpha=0.25)))
    assert isinstance(msg, MarkerArray)
    first, rest = msg.markers[0], msg.markers[1:]
    assert first.action == Marker.DELETEALL
    # moving box: cube, edges, label, arrow; the parked one (0.05 m/s) gets no arrow
    assert [(m.ns, m.id, m.type) for m in rest] == [
        ('bevformer/boxes', 0, Marker.CUBE),
        ('bevformer/edges', 0, Marker.LINE_LIST),
        ('bevformer/labels', 0, Marker.TEXT_VIEW_FACING),
        ('bevformer/velocity', 0, Marker.ARROW),
        ('bevformer/boxes', 1, Marker.CUBE),
        ('bevformer/edges', 1, Marker.LINE_LIST),
        ('bevformer/labels', 1, Marker.TEXT_VIEW_FACING),
    ]
    for m in msg.markers:
        assert m.header.frame_id == 'LIDAR_TOP'
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    cube, edges, label, arrow = rest[:4]
    box = boxes[0]
    assert (cube.pose.position.x, cube.pose.position.y, cube.pose.position.z) == box.center
    assert (cube.pose.orientation.z, cube.pose.orientation.w) == box.orientation_xyzw[2:]
    assert (
        cube.scale.x,
        cube.scale.y,
        cube.scale.z,
    ) == box.scale and cube.color.a == pytest.approx(0.25)
    points = np.array([[p.x, p.y, p.z] for p in edges.points])
    np.testing.assert_array_equal(points, box.corners[np.array(BOX_EDGES).reshape(-1)])
    assert label.text == 'car 0.81'
    assert [(p.x, p.y) for p in arrow.points] == [box.arrow_start[:2], box.arrow_end[:2]]


def _constructed(boxes, frame_id, stamp_ns):
    """Build the same array with the plain rosidl constructors, one Point per listed point."""
    from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
    from std_msgs.msg import ColorRGBA
    from visualization_msgs.msg import Marker, MarkerArray

    header = header_msg(frame_id, stamp_ns)
    return MarkerArray(
        markers=[
            Marker(
                header=header,
                ns=c.ns,
                id=c.id,
                type=c.type,
                action=c.action,
                pose=Pose(
                    position=Point(x=c.position[0], y=c.position[1], z=c.position[2]),
                    orientation=Quaternion(
                        x=c.orientation_xyzw[0],
                        y=c.orientation_xyzw[1],
                        z=c.orientation_xyzw[2],
                        w=c.orientation_xyzw[3],
                    ),
                ),
                scale=Vector3(x=c.scale[0], y=c.scale[1], z=c.scale[2]),
                color=ColorRGBA(r=c.color[0], g=c.color[1], b=c.color[2], a=c.color[3]),
                points=[Point(x=x, y=y, z=z) for x, y, z in c.points],
                text=c.text,
            )
            for c in marker_layout(boxes)
        ]
    )


def test_marker_array_is_the_constructed_message(boxes):
    # marker_array copies cached default messages and shares a corner's Point among the edges
    # that name it; the result, also after serialization, must be what the constructors build.
    # (The serialized bytes themselves are not compared: CDR padding bytes are not initialised.)
    fast = marker_array(boxes, 'base_link', STAMP_NS)
    plain = _constructed(boxes, 'base_link', STAMP_NS)
    assert fast == plain
    assert roundtrip(fast) == roundtrip(plain)  # float32 colours round on the way


def test_marker_arrays_share_no_field_they_set(boxes):
    from visualization_msgs.msg import Marker

    first = marker_array(boxes, 'base_link', STAMP_NS)
    second = marker_array(boxes[1:], 'map', STAMP_NS + 1)
    cube = first.markers[1]
    cube.pose.position.x += 100.0
    cube.scale.x += 1.0
    cube.color.r = 0.5
    assert second == _constructed(boxes[1:], 'map', STAMP_NS + 1)
    # the cached default the markers are copied from is untouched by edits of a built one
    assert _default('visualization_msgs/Marker')[0] == Marker()
    moved = [m for m in first.markers if m.type == Marker.CUBE and m.pose.position.x > 50]
    assert len(moved) == 1


def test_empty_detections_still_clear_the_display():
    from visualization_msgs.msg import Marker

    msg = marker_array([], 'base_link', STAMP_NS)
    assert [m.action for m in msg.markers] == [Marker.DELETEALL]


def test_diagnostics():
    from diagnostic_msgs.msg import DiagnosticStatus

    status = diagnostic_status(
        'bevformer: sync',
        'warn',
        '2 sets dropped',
        {'dropped_sets': 2, 'spread_s': 0.0123456789, 'camera': 'CAM_FRONT'},
    )
    arr = roundtrip(diagnostic_array([status], STAMP_NS))
    got = arr.status[0]
    assert got.level == DiagnosticStatus.WARN and got.name == 'bevformer: sync'
    assert {kv.key: kv.value for kv in got.values} == {
        'dropped_sets': '2',
        'spread_s': '0.0123457',
        'camera': 'CAM_FRONT',
    }
    assert diagnostic_status('x', 2, 'bad').level == DiagnosticStatus.ERROR
    with pytest.raises(ValueError, match='diagnostic level'):
        diagnostic_status('x', 7, 'bad')


def test_detection3d_array(boxes):
    pytest.importorskip(
        'vision_msgs.msg', reason='vision_msgs is not installed (a ROS 2 install can add it)'
    )
    msg = roundtrip(detection3d_array(boxes, 'LIDAR_TOP', STAMP_NS))
    det = msg.detections[0]
    assert msg.header.frame_id == 'LIDAR_TOP' and len(msg.detections) == 2
    assert det.results[0].hypothesis.class_id == 'car'
    assert det.results[0].hypothesis.score == pytest.approx(0.81)
    assert (det.bbox.size.x, det.bbox.size.y, det.bbox.size.z) == boxes[0].scale


class _Message:
    """Keyword-built message with vision_msgs' nested defaults (hypothesis, pose.pose)."""

    def __init__(self, **fields):
        self.hypothesis = types.SimpleNamespace(class_id='', score=0.0)
        self.pose = types.SimpleNamespace(pose=None)
        self.__dict__.update(fields)


def test_detection3d_array_fields_with_a_stand_in_for_vision_msgs(boxes, monkeypatch):
    """
    Map each box to the vision_msgs >= 4 fields (no vision_msgs wheel for pip exists).

    Only the field mapping is checked: the real types (test_detection3d_array) run on robots.
    """
    from bevformer_ros.optional_ros import available

    if available('vision_msgs'):
        pytest.skip('vision_msgs is installed here: test_detection3d_array uses the real type')
    package = types.ModuleType('vision_msgs')
    package.msg = types.ModuleType('vision_msgs.msg')
    for name in ('BoundingBox3D', 'Detection3D', 'Detection3DArray', 'ObjectHypothesisWithPose'):
        setattr(package.msg, name, type(name, (_Message,), {}))
    monkeypatch.setitem(sys.modules, 'vision_msgs', package)
    monkeypatch.setitem(sys.modules, 'vision_msgs.msg', package.msg)
    msg = detection3d_array(boxes, 'LIDAR_TOP', STAMP_NS)
    assert msg.header.frame_id == 'LIDAR_TOP' and len(msg.detections) == 2
    assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == STAMP_NS
    for i, (det, box) in enumerate(zip(msg.detections, boxes)):
        assert det.id == str(i) and det.header is msg.header
        (result,) = det.results
        assert result.hypothesis.class_id == box.class_name
        assert result.hypothesis.score == pytest.approx(box.score)
        centre = det.bbox.center
        assert result.pose.pose is centre
        assert (centre.position.x, centre.position.y, centre.position.z) == tuple(box.center)
        q = centre.orientation
        assert (q.x, q.y, q.z, q.w) == pytest.approx(tuple(box.orientation_xyzw))
        assert (det.bbox.size.x, det.bbox.size.y, det.bbox.size.z) == tuple(box.scale)
    assert [d.results[0].hypothesis.class_id for d in msg.detections] == ['car', 'barrier']


def test_detection3d_array_without_vision_msgs_names_the_fix(boxes):
    from bevformer_ros.optional_ros import available

    if available('vision_msgs'):
        pytest.skip('vision_msgs is installed here')
    with pytest.raises(ImportError, match='ros-\\$ROS_DISTRO-vision-msgs'):
        detection3d_array(boxes, 'LIDAR_TOP', STAMP_NS)

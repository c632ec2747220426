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
Plain marker / diagnostics content → ROS 2 messages; the one edge module building message types.

Message packages are imported inside the functions, so importing this module needs no ROS install;
calling them needs visualization_msgs, diagnostic_msgs (and vision_msgs for `detection3d_array`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import functools
import importlib
from typing import Any

from bevformer_ros.core.markers import (
    BoxMarker,
    DETECTION_STYLE,
    marker_layout,
    MarkerContent,
    MarkerStyle,
    Vec3,
)
from bevformer_ros.core.stamps import split_ns

DIAGNOSTIC_LEVELS = {'ok': 0, 'warn': 1, 'error': 2, 'stale': 3}


def time_msg(stamp: Any) -> Any:
    """builtin_interfaces/Time from a Time message, an rclpy Time, or integer nanoseconds."""
    from builtin_interfaces.msg import Time

    if isinstance(stamp, Time):
        return Time(sec=stamp.sec, nanosec=stamp.nanosec)
    if hasattr(stamp, 'to_msg'):  # rclpy.time.Time
        return stamp.to_msg()
    sec, nanosec = split_ns(stamp)
    return Time(sec=sec, nanosec=nanosec)


def header_msg(frame_id: str, stamp: Any) -> Any:
    from std_msgs.msg import Header

    return Header(frame_id=frame_id, stamp=time_msg(stamp))


@functools.cache
def _msg(name: str) -> type:
    """Return the message class 'package/Type', imported once (marker arrays make thousands)."""
    package, type_name = name.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), type_name)


@functools.cache
def _default(name: str) -> tuple[Any, tuple[str, ...]]:
    """One default instance of message 'package/Type' and its slots, for `_copy_of_default`."""
    msg_type = _msg(name)
    return msg_type(), tuple(msg_type.__slots__)


def _copy_of_default(name: str) -> Any:
    """
    Return a shallow copy of the default 'package/Type' message (20x cheaper than its constructor).

    rosidl constructors build every nested default (a Marker: header, pose, texture, mesh file...,
    30 us) even when the caller passes its own. The copy (slot by slot: `copy.copy` takes 3x as
    long) shares the nested defaults of the fields the caller does not set; they are only ever
    read, the messages are built to be published.
    """
    default, slots = _default(name)
    msg = object.__new__(type(default))
    for slot in slots:
        setattr(msg, slot, getattr(default, slot))
    return msg


def _point(xyz: Sequence[float]) -> Any:
    return _msg('geometry_msgs/Point')(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def _pose(
    position: Sequence[float], orientation_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0)
) -> Any:
    x, y, z, w = (float(v) for v in orientation_xyzw)
    pose = _copy_of_default('geometry_msgs/Pose')
    pose.position = _point(position)
    pose.orientation = _msg('geometry_msgs/Quaternion')(x=x, y=y, z=z, w=w)
    return pose


def _color(rgba: Sequence[float], alpha: float | None = None) -> Any:
    r, g, b, a = (float(v) for v in rgba)
    return _msg('std_msgs/ColorRGBA')(r=r, g=g, b=b, a=a if alpha is None else float(alpha))


def _shared_points(coords: Sequence[Vec3], made: dict[Vec3, Any]) -> list[Any]:
    out = []
    for xyz in coords:
        point = made.get(xyz)
        if point is None:
            point = made[xyz] = _point(xyz)
        out.append(point)
    return out


def _marker(header: Any, content: MarkerContent, points: dict[Vec3, Any]) -> Any:
    """
    Convert the plain content of one marker to a visualization_msgs/Marker.

    `points` maps coordinates to the Point messages already made for this array: a box's edges
    name each corner three times, one message serves them all.
    """
    sx, sy, sz = content.scale
    marker = _copy_of_default('visualization_msgs/Marker')
    marker.header = header
    marker.ns = content.ns
    marker.id = content.id
    marker.type = content.type
    marker.action = content.action
    marker.pose = _pose(content.position, content.orientation_xyzw)
    marker.scale = _msg('geometry_msgs/Vector3')(x=sx, y=sy, z=sz)
    marker.color = _color(content.color)
    marker.points = _shared_points(content.points, points)
    marker.text = content.text
    return marker


def marker_array(
    boxes: Sequence[BoxMarker], frame_id: str, stamp: Any, style: MarkerStyle = DETECTION_STYLE
) -> Any:
    """Build the visualization_msgs/MarkerArray of the boxes as `core.markers.marker_layout`."""
    from visualization_msgs.msg import MarkerArray

    header = header_msg(frame_id, stamp)
    points: dict[Vec3, Any] = {}
    return MarkerArray(
        markers=[_marker(header, m, points) for m in marker_layout(boxes, style)]
    )


def diagnostic_status(
    name: str,
    level: int | str,
    message: str,
    values: Mapping[str, Any] | None = None,
    hardware_id: str = '',
) -> Any:
    """diagnostic_msgs/DiagnosticStatus; `level` is 0..3 or 'ok' / 'warn' / 'error' / 'stale'."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    code = DIAGNOSTIC_LEVELS[level.lower()] if isinstance(level, str) else int(level)
    if code not in DIAGNOSTIC_LEVELS.values():
        raise ValueError(
            f'diagnostic level must be 0..3 or one of {list(DIAGNOSTIC_LEVELS)}, got {level!r}'
        )
    kvs = [KeyValue(key=str(k), value=_diagnostic_value(v)) for k, v in (values or {}).items()]
    return DiagnosticStatus(
        level=bytes([code]), name=name, message=message, hardware_id=hardware_id, values=kvs
    )


def _diagnostic_value(v: Any) -> str:
    return f'{v:.6g}' if isinstance(v, float) else str(v)


def diagnostic_array(statuses: Sequence[Any], stamp: Any) -> Any:
    from diagnostic_msgs.msg import DiagnosticArray

    return DiagnosticArray(header=header_msg('', stamp), status=list(statuses))


def detection3d_array(boxes: Sequence[BoxMarker], frame_id: str, stamp: Any) -> Any:
    """
    vision_msgs/Detection3DArray (vision_msgs >= 4, ROS 2 Humble and later); else ImportError.

    Velocity has no field in Detection3D; it stays in the MarkerArray arrows.
    """
    try:
        from vision_msgs.msg import (
            BoundingBox3D,
            Detection3D,
            Detection3DArray,
            ObjectHypothesisWithPose,
        )
    except ImportError as exc:
        raise ImportError(
            'vision_msgs is not installed: apt install ros-$ROS_DISTRO-vision-msgs, '
            'or leave ~/detections off'
        ) from exc
    from geometry_msgs.msg import Vector3

    header = header_msg(frame_id, stamp)
    detections = []
    for i, box in enumerate(boxes):
        pose = _pose(box.center, box.orientation_xyzw)
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = box.class_name
        hypothesis.hypothesis.score = float(box.score)
        hypothesis.pose.pose = pose
        bbox = BoundingBox3D(
            center=pose, size=Vector3(x=box.scale[0], y=box.scale[1], z=box.scale[2])
        )
        detections.append(Detection3D(header=header, results=[hypothesis], bbox=bbox, id=str(i)))
    return Detection3DArray(header=header, detections=detections)

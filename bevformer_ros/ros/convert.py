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
from typing import Any

from bevformer_ros.core.markers import (
    BoxMarker,
    DETECTION_STYLE,
    marker_layout,
    MarkerContent,
    MarkerStyle,
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


def _point(xyz: Sequence[float]) -> Any:
    from geometry_msgs.msg import Point

    return Point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def _pose(
    position: Sequence[float], orientation_xyzw: Sequence[float] = (0.0, 0.0, 0.0, 1.0)
) -> Any:
    from geometry_msgs.msg import Pose, Quaternion

    x, y, z, w = (float(v) for v in orientation_xyzw)
    return Pose(position=_point(position), orientation=Quaternion(x=x, y=y, z=z, w=w))


def _color(rgba: Sequence[float], alpha: float | None = None) -> Any:
    from std_msgs.msg import ColorRGBA

    r, g, b, a = (float(v) for v in rgba)
    return ColorRGBA(r=r, g=g, b=b, a=a if alpha is None else float(alpha))


def _marker(header: Any, content: MarkerContent) -> Any:
    """Convert the plain content of one marker to a visualization_msgs/Marker."""
    from geometry_msgs.msg import Vector3
    from visualization_msgs.msg import Marker

    sx, sy, sz = content.scale
    return Marker(
        header=header,
        ns=content.ns,
        id=content.id,
        type=content.type,
        action=content.action,
        pose=_pose(content.position, content.orientation_xyzw),
        scale=Vector3(x=sx, y=sy, z=sz),
        color=_color(content.color),
        points=[_point(p) for p in content.points],
        text=content.text,
    )


def marker_array(
    boxes: Sequence[BoxMarker], frame_id: str, stamp: Any, style: MarkerStyle = DETECTION_STYLE
) -> Any:
    """Build the visualization_msgs/MarkerArray of the boxes as `core.markers.marker_layout`."""
    from visualization_msgs.msg import MarkerArray

    header = header_msg(frame_id, stamp)
    return MarkerArray(markers=[_marker(header, m) for m in marker_layout(boxes, style)])


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

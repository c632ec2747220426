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
Plain marker / diagnostics content → ROS 2 messages. The one edge module that builds message types.

Message packages are imported inside the functions, so importing this module needs no ROS install;
calling
them needs visualization_msgs, diagnostic_msgs (and vision_msgs for `detection3d_array`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bevformer_ros.core.markers import BOX_EDGES, BoxMarker

NS_PER_S = 1_000_000_000
DIAGNOSTIC_LEVELS = {'ok': 0, 'warn': 1, 'error': 2, 'stale': 3}


def time_msg(stamp: Any) -> Any:
    """builtin_interfaces/Time from a Time message, an rclpy Time, or integer nanoseconds."""
    from builtin_interfaces.msg import Time

    if isinstance(stamp, Time):
        return Time(sec=stamp.sec, nanosec=stamp.nanosec)
    if hasattr(stamp, 'to_msg'):  # rclpy.time.Time
        return stamp.to_msg()
    ns = int(stamp)
    return Time(sec=ns // NS_PER_S, nanosec=ns % NS_PER_S)


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


def _marker(header: Any, ns: str, marker_id: int, marker_type: int, **fields: Any) -> Any:
    from visualization_msgs.msg import Marker

    return Marker(
        header=header, ns=ns, id=marker_id, type=marker_type, action=Marker.ADD, **fields
    )


def _box_markers(
    header: Any,
    ns: str,
    i: int,
    box: BoxMarker,
    cube_alpha: float,
    line_width: float,
    text_height: float,
    min_arrow_speed: float,
) -> list[Any]:
    from geometry_msgs.msg import Vector3
    from visualization_msgs.msg import Marker

    origin = _pose((0.0, 0.0, 0.0))  # LINE_LIST / ARROW points are already in the header frame
    out = [
        _marker(
            header,
            f'{ns}/boxes',
            i,
            Marker.CUBE,
            pose=_pose(box.center, box.orientation_xyzw),
            scale=Vector3(x=box.scale[0], y=box.scale[1], z=box.scale[2]),
            color=_color(box.color, cube_alpha),
        ),
        _marker(
            header,
            f'{ns}/edges',
            i,
            Marker.LINE_LIST,
            pose=origin,
            scale=Vector3(x=line_width),
            color=_color(box.color),
            points=[_point(box.corners[k]) for edge in BOX_EDGES for k in edge],
        ),
        _marker(
            header,
            f'{ns}/labels',
            i,
            Marker.TEXT_VIEW_FACING,
            pose=_pose(box.text_position),
            scale=Vector3(z=text_height),
            color=_color((1.0, 1.0, 1.0, 1.0)),
            text=box.text,
        ),
    ]
    if (box.velocity[0] ** 2 + box.velocity[1] ** 2) ** 0.5 >= min_arrow_speed:
        # ARROW from points: scale = (shaft diameter, head diameter, head length)
        out.append(
            _marker(
                header,
                f'{ns}/velocity',
                i,
                Marker.ARROW,
                pose=origin,
                scale=Vector3(x=2 * line_width, y=4 * line_width, z=6 * line_width),
                color=_color(box.color),
                points=[_point(box.arrow_start), _point(box.arrow_end)],
            )
        )
    return out


def marker_array(
    boxes: Sequence[BoxMarker],
    frame_id: str,
    stamp: Any,
    ns: str = 'bevformer',
    cube_alpha: float = 0.3,
    line_width: float = 0.05,
    text_height: float = 0.6,
    min_arrow_speed: float = 0.2,
) -> Any:
    """
    Build a visualization_msgs/MarkerArray of the boxes, led by a DELETEALL.

    Per box a CUBE, its 12 edges, a label and a velocity ARROW (if faster than `min_arrow_speed`
    m/s), all in
    `frame_id` at `stamp` (the synchronised image stamp).

    DELETEALL first because RViz2 does not reliably honour `lifetime`: boxes of the previous frame
    vanish even
    when this frame has fewer detections.
    """
    from visualization_msgs.msg import Marker, MarkerArray

    header = header_msg(frame_id, stamp)
    markers = [Marker(header=header, ns=ns, id=0, action=Marker.DELETEALL)]
    for i, box in enumerate(boxes):
        markers += _box_markers(
            header, ns, i, box, cube_alpha, line_width, text_height, min_arrow_speed
        )
    return MarkerArray(markers=markers)


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
    vision_msgs/Detection3DArray (vision_msgs >= 4, ROS 2 Humble and later); ImportError without it.

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

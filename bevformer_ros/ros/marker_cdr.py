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
The boxes' MarkerArray written straight to CDR bytes, for `Publisher.publish(bytes)`.

Through rclpy a marker costs about 50 us of Python: the rosidl objects' validating setters, then
rclpy's conversion of every nested field (an array of 100 boxes has 401 markers: 20 ms a frame,
holding the GIL the worker needs). Here the layout's plain values are packed directly. The
encoder takes the field order from the installed Marker's introspection, and `checked_encoder`
hands it out only if rclpy deserialises its bytes into exactly the message `ros.convert` builds;
otherwise the node keeps the rclpy path.
"""

from __future__ import annotations

from collections.abc import Sequence
import itertools
import struct
from typing import Any

from bevformer_ros.core.markers import (
    BoxMarker,
    build_box_markers,
    DETECTION_STYLE,
    marker_layout,
    MarkerContent,
    MarkerStyle,
)
from bevformer_ros.core.stamps import split_ns
from bevformer_ros.ros.cdr import (
    align,
    ENCAPSULATION,
    string_bytes,
    U32,
    UnsupportedTypeError,
    write_string,
    write_value,
)
import numpy as np

# Marker fields encoded from the layout, in the order every ROS 2 distribution declares them
HEAD_FIELDS = (
    ('header', 'std_msgs/Header'),
    ('ns', 'string'),
    ('id', 'int32'),
    ('type', 'int32'),
    ('action', 'int32'),
    ('pose', 'geometry_msgs/Pose'),
    ('scale', 'geometry_msgs/Vector3'),
    ('color', 'std_msgs/ColorRGBA'),
)
POINTS, TEXT = 'points', 'text'  # the two later fields the layout sets; the rest keep defaults
TAIL_FIELDS = {POINTS: 'sequence<geometry_msgs/Point>', TEXT: 'string'}
_STAMP = struct.Struct('<iI')  # builtin_interfaces/Time
_IDS = struct.Struct('<3i')  # id, type, action
_POSE_SCALE_COLOR = struct.Struct('<10d4f')  # position, orientation xyzw, scale, rgba (float32)
_ZEROS = bytes(8)

DefaultRun = list[tuple[str, Any]]  # consecutive default-valued fields: (rosidl type, value)


class MarkerArrayEncoder:
    """visualization_msgs/MarkerArray of `marker_layout` contents → serialized CDR bytes."""

    def __init__(self, marker_type: type) -> None:
        fields = list(marker_type.get_fields_and_field_types().items())
        head = len(HEAD_FIELDS)
        if tuple(fields[:head]) != HEAD_FIELDS:
            raise UnsupportedTypeError(f'Marker starts with {fields[:head]}')
        default = marker_type()
        self._tail: list[str | DefaultRun] = []  # POINTS, TEXT or a run of default fields
        for name, type_name in fields[head:]:
            if name in TAIL_FIELDS:
                if type_name != TAIL_FIELDS[name]:
                    raise UnsupportedTypeError(f'Marker.{name} is {type_name}')
                self._tail.append(name)
            elif self._tail and isinstance(self._tail[-1], list):
                self._tail[-1].append((type_name, getattr(default, name)))
            else:
                self._tail.append([(type_name, getattr(default, name))])
        if POINTS not in self._tail or TEXT not in self._tail:
            raise UnsupportedTypeError(f'Marker has no {POINTS} or {TEXT} field')
        self._runs: dict[tuple[int, int], bytes] = {}  # (tail index, payload offset % 8) -> bytes

    def encode(
        self,
        boxes: Sequence[BoxMarker],
        frame_id: str,
        stamp_ns: int,
        style: MarkerStyle = DETECTION_STYLE,
    ) -> bytes:
        """Encode what `ros.convert.marker_array(boxes, frame_id, stamp_ns, style)` builds."""
        return self.encode_layout(marker_layout(boxes, style), frame_id, stamp_ns)

    def encode_layout(
        self, contents: Sequence[MarkerContent], frame_id: str, stamp_ns: int
    ) -> bytes:
        header = _STAMP.pack(*split_ns(stamp_ns)) + string_bytes(frame_id)
        names: dict[str, bytes] = {}
        buf = bytearray(ENCAPSULATION)
        buf += U32.pack(len(contents))
        # `cdr.align` inlined: the payload starts at byte 4, so its offset % 4 is len(buf) % 4 and
        # its offset % 8 is (len(buf) - 4) % 8; a call per field was a fifth of the time
        for m in contents:
            buf += _ZEROS[: -len(buf) % 4]
            buf += header
            buf += _ZEROS[: -len(buf) % 4]
            ns = names.get(m.ns)
            buf += ns if ns is not None else names.setdefault(m.ns, string_bytes(m.ns))
            buf += _ZEROS[: -len(buf) % 4]
            buf += _IDS.pack(m.id, m.type, m.action)
            buf += _ZEROS[: (4 - len(buf)) % 8]
            buf += _POSE_SCALE_COLOR.pack(*m.position, *m.orientation_xyzw, *m.scale, *m.color)
            for index, part in enumerate(self._tail):
                if part == POINTS:
                    _write_points(buf, m.points)
                elif part == TEXT:
                    write_string(buf, m.text)
                else:
                    buf += self._default_run(index, part, len(buf))
        return bytes(buf)

    def _default_run(self, index: int, run: DefaultRun, length: int) -> bytes:
        """Bytes of a run of default fields starting at `length`: they depend on it only mod 8."""
        phase = (length - len(ENCAPSULATION)) % 8
        data = self._runs.get((index, phase))
        if data is None:
            scratch = bytearray(ENCAPSULATION + bytes(phase))
            for type_name, value in run:
                write_value(scratch, type_name, value)
            start = len(ENCAPSULATION) + phase
            data = self._runs[(index, phase)] = bytes(scratch[start:])
        return data


def _write_points(buf: bytearray, points: Sequence[tuple[float, float, float]]) -> None:
    align(buf, 4)
    buf += U32.pack(len(points))
    if points:
        align(buf, 8)
        buf += struct.pack(f'<{3 * len(points)}d', *itertools.chain.from_iterable(points))


def _probe_boxes() -> list[BoxMarker]:
    """Boxes that exercise every marker kind: moving and still, known and unknown class."""
    boxes = np.array(
        [
            [3.5, -2.25, -1.5, 1.9, 4.4, 1.6, 0.3, 2.0, -1.0],
            [-12.0, 7.125, -0.5, 0.6, 0.7, 1.8, -2.5, 0.0, 0.0],
        ]
    )  # [2, 9]
    return build_box_markers(boxes, np.array([0.9, 0.45]), np.array([0, 42]), 0.3)


def checked_encoder() -> tuple[MarkerArrayEncoder | None, str]:
    """
    Return (encoder, '') when rclpy reads its bytes as `ros.convert`'s message, else (None, why).

    Both sides are compared after deserialising (padding bytes of rclpy's own serialisation are
    uninitialised, and float32 colours round on the way).
    """
    from bevformer_ros.ros.convert import marker_array

    try:
        from rclpy.serialization import deserialize_message, serialize_message
        from visualization_msgs.msg import Marker, MarkerArray

        encoder = MarkerArrayEncoder(Marker)
        boxes, frame_id, stamp_ns = _probe_boxes(), 'base_link', 1_700_000_000_123_456_789
        ours = deserialize_message(encoder.encode(boxes, frame_id, stamp_ns), MarkerArray)
        reference = marker_array(boxes, frame_id, stamp_ns)
        theirs = deserialize_message(serialize_message(reference), MarkerArray)
    except (ImportError, UnsupportedTypeError, RuntimeError) as exc:
        return None, f'direct MarkerArray encoding unavailable: {exc}'
    if ours != theirs:
        return None, 'the installed visualization_msgs/Marker does not match the direct encoding'
    return encoder, ''

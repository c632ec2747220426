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
Direct CDR encoding (ros.cdr, ros.marker_cdr) against rclpy's own serialisation of real messages.

Bytes are compared only after rclpy deserialises them: the padding rclpy writes is uninitialised.
"""

from __future__ import annotations

from bevformer_ros.core.markers import build_box_markers, GROUND_TRUTH_STYLE, MarkerStyle
from bevformer_ros.ros.cdr import ENCAPSULATION, UnsupportedTypeError, write_value
from bevformer_ros.ros.convert import marker_array
from bevformer_ros.ros.marker_cdr import checked_encoder, MarkerArrayEncoder
import numpy as np
import pytest

STAMP_NS = 1_700_000_000_123_456_789


def deserialize(data: bytes, msg_type: type):
    from rclpy.serialization import deserialize_message

    return deserialize_message(data, msg_type)


def rclpy_roundtrip(msg):
    from rclpy.serialization import serialize_message

    return deserialize(serialize_message(msg), type(msg))


def random_boxes(rng: np.random.Generator, count: int, class_names=None):
    boxes = np.c_[
        rng.uniform(-50, 50, (count, 2)),
        rng.uniform(-3, 1, (count, 1)),
        rng.uniform(0.3, 12, (count, 3)),
        rng.uniform(-np.pi, np.pi, (count, 1)),
        rng.uniform(-8, 8, (count, 2)) * rng.integers(0, 2, (count, 1)),  # half stand still
    ]  # [count, 9]
    scores, labels = rng.uniform(0.3, 1, count), rng.integers(0, 12, count)
    kwargs = {'class_names': class_names} if class_names else {}
    return build_box_markers(boxes, scores, labels, 0.3, count, **kwargs)


@pytest.fixture(scope='module')
def encoder() -> MarkerArrayEncoder:
    from visualization_msgs.msg import Marker

    return MarkerArrayEncoder(Marker)


@pytest.mark.parametrize('count', [0, 1, 7, 100])
@pytest.mark.parametrize('frame_id', ['', 'b', 'base_link', 'LIDAR_TOP_with_a_longer_name'])
def test_marker_array_bytes_read_back_as_the_rclpy_message(encoder, count, frame_id):
    """Every frame_id length shifts the alignment of everything after it differently."""
    from visualization_msgs.msg import MarkerArray

    boxes = random_boxes(np.random.default_rng(count), count)
    ours = deserialize(encoder.encode(boxes, frame_id, STAMP_NS), MarkerArray)
    assert ours == rclpy_roundtrip(marker_array(boxes, frame_id, STAMP_NS))
    assert len(ours.markers) >= 1 + 3 * count  # DELETEALL, then cube, edges and label per box


def test_styles_unicode_names_and_stamps(encoder):
    from visualization_msgs.msg import MarkerArray

    names = ('voiture', 'Fußgänger', '自行车')  # multi-byte UTF-8 shifts the alignment
    boxes = random_boxes(np.random.default_rng(3), 20, names)
    custom = MarkerStyle(ns='x', line_width=0.125, text_height=1.5)
    for style in (custom, GROUND_TRUTH_STYLE):
        for stamp in (0, 1, 2**31 * 10**9 - 1):
            data = encoder.encode(boxes, 'map', stamp, style)
            reference = marker_array(boxes, 'map', stamp, style)
            assert deserialize(data, MarkerArray) == rclpy_roundtrip(reference)


def test_checked_encoder_accepts_the_installed_marker():
    encoder, why = checked_encoder()
    assert isinstance(encoder, MarkerArrayEncoder) and why == ''


def test_a_message_with_another_layout_is_refused():
    from visualization_msgs.msg import ImageMarker

    with pytest.raises(UnsupportedTypeError, match='Marker starts with'):
        MarkerArrayEncoder(ImageMarker)


def _filled_messages():
    """Real messages with non-default values in every kind of field the writer handles."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    header = Header(frame_id='cam_front')
    header.stamp.sec, header.stamp.nanosec = -5, 999_999_999
    info = CameraInfo(header=header, height=900, width=1600, distortion_model='plumb_bob')
    info.d = [0.1, -0.2, 0.001, 0.0, 0.05]
    info.k = np.arange(9.0) + 0.5
    info.binning_x = 2
    info.roi.do_rectify = True
    image = Image(header=header, height=2, width=3, encoding='rgb8', is_bigendian=1, step=9)
    image.data = bytes(range(18))
    status = DiagnosticStatus(
        level=b'\x02', name='n', message='ü', values=[KeyValue(key='k', value='v')] * 3
    )
    diagnostics = DiagnosticArray(header=header, status=[status, DiagnosticStatus()])
    pose = PoseWithCovarianceStamped(header=header)
    pose.pose.pose.position.x = 1e300
    pose.pose.covariance = np.linspace(-1, 1, 36)
    return [info, image, diagnostics, pose]


@pytest.mark.parametrize('index', range(4))
def test_generic_writer_matches_rclpy(index):
    msg = _filled_messages()[index]
    buf = bytearray(ENCAPSULATION)
    write_value(buf, f'{type(msg).__module__.split(".")[0]}/{type(msg).__name__}', msg)
    assert deserialize(bytes(buf), type(msg)) == rclpy_roundtrip(msg)


def test_generic_writer_refuses_types_it_cannot_encode():
    with pytest.raises(UnsupportedTypeError, match='wstring'):
        write_value(bytearray(ENCAPSULATION), 'wstring', 'x')

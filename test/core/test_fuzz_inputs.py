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
Fuzz the ROS-free input paths with hypothesis.

Whatever a driver sends, the only exceptions are the project's own input errors (ImageDecodeError,
CalibrationError, EgoMotionError, FrameError), and nothing non-finite reaches the model (lidar2img
and the used can_bus are finite, in float32 as the model reads them).

Bounded and repeatable: 200 examples per property, derandomized (the same examples on every run, no
example database written), no deadline (the shared CI machine is slow at times). For a longer hunt,
set BEVFORMER_FUZZ_EXAMPLES=5000 (random examples then).

A longer run once found that rescaling a finite but absurd K (fx = 1.8e308) overflowed to inf
without an error; the last test keeps that case.
"""

from __future__ import annotations

import os

from bevformer_ros.core.calibration import (
    CalibrationError,
    extrinsics_from_quaternion,
    intrinsics_from_camera_info,
)
from bevformer_ros.core.ego_motion import EgoMotionError, pose_from_odometry, PoseBuffer
from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.frontend.image_codec import (
    compressed_to_numpy,
    ENCODINGS,
    ImageDecodeError,
    imgmsg_to_numpy,
)
from bevformer_ros.frontend.plain_msgs import CameraInfo, CompressedImage, Header, Image, Stamp
from bevformer_ros.pipeline import (
    camera_lidar2img,
    CameraInput,
    checked_step,
    decode_camera_image,
    FrameError,
)
from hypothesis import event, given, HealthCheck, settings
from hypothesis import strategies as st
import numpy as np
import pytest

LONG_RUN = int(os.environ.get('BEVFORMER_FUZZ_EXAMPLES', '0'))
FUZZ = settings(
    max_examples=LONG_RUN or 200,
    derandomize=not LONG_RUN,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# absurd magnitudes, by design
pytestmark = pytest.mark.filterwarnings('ignore:overflow:RuntimeWarning')
ENCODING_NAMES = sorted(ENCODINGS) + ['yuv422', 'bayer_rggb8', '16SC1', 'RGB8', '', 'rgb16']
PLAIN = st.floats(-1e3, 1e3)
SPECIAL = st.sampled_from(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-300, 1e300, -1e300, 3.5e38, 1e39]
)
NUMBER = st.one_of(PLAIN, SPECIAL, st.floats(allow_nan=True, allow_infinity=True))


def _maybe_break(draw, values, breaker=NUMBER):
    """
    Return `values` (a list) with, half of the time, one entry replaced by any number.

    Every example starts from a valid message, so the accepting paths run as often as the refusing
    ones.
    """
    values = list(values)
    if values and draw(st.booleans()):
        values[draw(st.integers(0, len(values) - 1))] = draw(breaker)
    return values


# ------------------------------------------------------------------------------ image decoding
@st.composite
def images(draw):
    """Draw a valid Image (any size 1..5, rows maybe padded), then maybe one field broken."""
    encoding = draw(st.sampled_from(sorted(ENCODINGS)))
    layout = ENCODINGS[encoding]
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    step = width * layout.channels * np.dtype(layout.dtype).itemsize + draw(st.integers(0, 5))
    size = step * height
    fault = draw(st.sampled_from(['none', 'none', 'none', 'encoding', 'step', 'size', 'zero']))
    if fault == 'encoding':
        encoding = draw(st.sampled_from(ENCODING_NAMES))
    elif fault == 'step':
        step = draw(st.integers(0, 64))
    elif fault == 'size':
        size = draw(st.integers(0, 200))
    elif fault == 'zero':
        height, width = draw(st.sampled_from([(0, width), (height, 0), (0, 0)]))
    data = draw(st.binary(min_size=size, max_size=size))
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        step=step,
        data=data,
        is_bigendian=draw(st.sampled_from([0, 1])),
    )


@FUZZ
@given(msg=images(), desired=st.sampled_from(['passthrough', 'rgb8', 'bgr8', 'mono8', 'yuv422']))
def test_image_decoding_returns_the_claimed_shape_or_an_image_decode_error(msg, desired):
    try:
        image = imgmsg_to_numpy(msg, desired)
    except ImageDecodeError:
        event('refused')
        return
    event('decoded')
    assert isinstance(image, np.ndarray) and image.shape[:2] == (msg.height, msg.width)
    assert msg.height > 0 and msg.width > 0 and len(msg.data) == msg.step * msg.height


@FUZZ
@given(msg=images())
def test_camera_image_decoding_gives_uint8_colour_or_an_image_decode_error(msg):
    try:
        image, order = decode_camera_image(msg)
    except ImageDecodeError:
        event('refused')
        return
    event('decoded')
    assert (
        image.dtype == np.uint8
        and image.shape == (msg.height, msg.width, 3)
        and order in ('rgb', 'bgr')
    )


@FUZZ
@given(
    fmt=st.sampled_from(['jpeg', 'png', 'rgb8; jpeg compressed bgr8', '']),
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: b'\x89PNG\r\n\x1a\n' + b),
        st.binary(max_size=200).map(lambda b: b'\xff\xd8\xff\xe0' + b),
    ),
)
def test_compressed_garbage_is_an_image_decode_error(fmt, data):
    try:
        image = compressed_to_numpy(CompressedImage(format=fmt, data=data), 'rgb8')
    except ImageDecodeError:
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


# ------------------------------------------------------------------------- CameraInfo -> lidar2img
@st.composite
def camera_infos(draw, size=(160, 90)):
    """Draw a valid CameraInfo of an image `size` (width, height), then maybe K or size broken."""
    fx, fy = draw(st.floats(1.0, 5000.0)), draw(st.floats(1.0, 5000.0))
    k = _maybe_break(
        draw,
        [
            fx,
            0.0,
            draw(st.floats(0.0, 4000.0)),
            0.0,
            fy,
            draw(st.floats(0.0, 4000.0)),
            0.0,
            0.0,
            1.0,
        ],
    )
    if draw(st.integers(0, 9)) == 0:
        k = k[: draw(st.integers(0, 8))]
    width, height = size
    if draw(st.integers(0, 4)) == 0:
        width, height = draw(st.integers(-2, 4000)), draw(st.integers(-2, 4000))
    return CameraInfo(width=width, height=height, k=k)


def _unit_quaternion(values):
    q = np.asarray(values, dtype=np.float64)
    return list(q / np.linalg.norm(q)) if np.linalg.norm(q) > 1e-6 else [1.0, 0.0, 0.0, 0.0]


@st.composite
def quaternions(draw):
    return _maybe_break(
        draw, _unit_quaternion(draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)))
    )


@st.composite
def translations(draw, scale=100.0):
    return _maybe_break(draw, draw(st.lists(st.floats(-scale, scale), min_size=3, max_size=3)))


@FUZZ
@given(info=camera_infos(), target=st.tuples(st.integers(-1, 4000), st.integers(-1, 4000)))
def test_camera_info_gives_a_finite_k_or_a_calibration_error(info, target):
    try:
        K = intrinsics_from_camera_info(info, target_size=target)
    except CalibrationError:
        event('refused')
        return
    event('accepted')
    assert K.shape == (3, 3) and np.all(np.isfinite(K))


@FUZZ
@given(
    info=camera_infos(),
    rotation=quaternions(),
    translation=translations(),
    scale=st.floats(0.01, 4.0),
)
def test_lidar2img_is_finite_or_a_frame_or_calibration_error(info, rotation, translation, scale):
    try:
        extrinsics = extrinsics_from_quaternion(translation, rotation)
        lidar2img = camera_lidar2img([CameraInput(object(), info, extrinsics)], [(160, 90)], scale)
    except (CalibrationError, FrameError) as err:
        event(f'refused: {type(err).__name__}')
        return
    event('accepted')
    assert lidar2img.shape == (1, 4, 4)
    assert np.all(np.isfinite(lidar2img.astype(np.float32)))  # the model projects in float32


# ----------------------------------------------------------------------------- odometry -> can_bus
class _Xyz:
    def __init__(self, values):
        self.x, self.y, self.z = values[:3]
        self.w = values[3] if len(values) > 3 else 0.0


class _Odometry:
    """nav_msgs/Odometry's fields, as pose_from_odometry reads them."""

    def __init__(self, stamp_ns, position, orientation, linear, angular):
        sec, nanosec = divmod(stamp_ns, 1_000_000_000)
        self.header = Header(frame_id='odom', stamp=Stamp(sec, nanosec))
        self.pose = type('PoseWithCovariance', (), {'pose': type('Pose', (), {})()})()
        self.pose.pose.position, self.pose.pose.orientation = _Xyz(position), _Xyz(orientation)
        self.twist = type('TwistWithCovariance', (), {'twist': type('Twist', (), {})()})()
        self.twist.twist.linear, self.twist.twist.angular = _Xyz(linear), _Xyz(angular)


@st.composite
def odometry_streams(draw):
    """Odometry every 0.1 s on a plausible path, one message maybe broken, a query stamp near."""
    count = draw(st.integers(1, 5))
    start = draw(st.integers(0, 10**10))
    messages = [
        _Odometry(
            start + i * 100_000_000,
            draw(translations(1e4)),
            draw(quaternions()),
            draw(translations(30.0)),
            draw(translations(1.0)),
        )
        for i in range(count)
    ]
    return messages, start + draw(st.integers(-200_000_000, count * 100_000_000 + 200_000_000))


@FUZZ
@given(stream=odometry_streams(), previous=st.none() | translations(1e4))
def test_odometry_gives_a_finite_can_bus_or_a_clear_error(stream, previous):
    messages, query_ns = stream
    buffer = PoseBuffer(max_age_s=10.0, max_extrapolation_s=0.1, max_gap_s=0.5)
    for msg in messages:
        try:
            buffer.add(pose_from_odometry(msg))
        except EgoMotionError:
            continue
    try:
        pose = buffer.at(query_ns)
    except EgoMotionError:
        event('no pose')
        return
    state = TemporalState()
    if previous is not None:  # a history whose pose may be anything the previous frame had
        state.prev_bev, state.prev_pos = object(), np.asarray(previous, dtype=np.float64)
    try:
        step = checked_step(state, pose)
    except FrameError as err:
        assert err.kind == 'ego_pose'
        event('refused: FrameError')
        return
    event('used')
    assert step.can_bus.shape == (18,)
    assert np.all(np.isfinite(step.can_bus.astype(np.float32)))


def test_rescaling_an_absurd_k_is_a_calibration_error():
    info = CameraInfo(width=160, height=90, k=[1.7865273389936057e308, 0, 0, 0, 1, 0, 0, 0, 1])
    with pytest.raises(CalibrationError, match='not finite'):
        intrinsics_from_camera_info(info, target_size=(161, 1))

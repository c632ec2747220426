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
image_codec against hand-built sensor_msgs/Image messages (the real rclpy message class).

Expected values come from the test's own byte-by-byte message builder and explicit channel picks,
never from image_codec itself.
"""

from __future__ import annotations

import subprocess
import sys

from bevformer_ros import optional_ros
from bevformer_ros.frontend.image_codec import (
    compressed_to_numpy,
    ImageDecodeError,
    ImageEncodeError,
    imgmsg_to_numpy,
    numpy_to_imgmsg,
)
from builtin_interfaces.msg import Time
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

# sensor_msgs/image_encodings: element type and channel count, written out independently.
LAYOUTS = {
    'rgb8': ('u1', 3),
    'bgr8': ('u1', 3),
    'rgba8': ('u1', 4),
    'bgra8': ('u1', 4),
    'mono8': ('u1', 1),
    'mono16': ('u2', 1),
    '8UC1': ('u1', 1),
    '8UC3': ('u1', 3),
    '16UC1': ('u2', 1),
    '32FC1': ('f4', 1),
}
HAS_CV_BRIDGE = optional_ros.available('cv_bridge')
numpy_path_only = pytest.mark.skipif(
    HAS_CV_BRIDGE, reason='cv_bridge decodes (and words errors) itself'
)


def random_pixels(encoding: str, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Return random pixels [H, W] or [H, W, C] in the encoding's native dtype."""
    base, channels = LAYOUTS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    rng = np.random.default_rng(seed)
    if base == 'f4':
        return rng.standard_normal(shape).astype(np.float32)
    return rng.integers(0, np.iinfo(base).max + 1, shape).astype(base)


def hand_built(
    pixels: np.ndarray, encoding: str, *, big_endian: bool = False, pad: int = 0
) -> Image:
    """Build an Image whose rows are serialized one by one, each followed by `pad` junk bytes."""
    order = '>' if big_endian else '<'
    ordered = pixels.astype(pixels.dtype.newbyteorder(order))
    rows = [row.tobytes() + b'\xee' * pad for row in ordered]
    msg = Image(
        height=pixels.shape[0],
        width=pixels.shape[1],
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=len(rows[0]),
    )
    msg.data = b''.join(rows)
    return msg


@settings(max_examples=80, deadline=None)
@given(
    encoding=st.sampled_from(sorted(LAYOUTS)),
    height=st.integers(1, 5),
    width=st.integers(1, 7),
    pad=st.integers(0, 9),
    big_endian=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_decode_reads_every_layout_exactly(encoding, height, width, pad, big_endian, seed):
    pixels = random_pixels(encoding, height, width, seed)
    decoded = imgmsg_to_numpy(hand_built(pixels, encoding, big_endian=big_endian, pad=pad))
    assert decoded.dtype == np.dtype(LAYOUTS[encoding][0])  # native byte order
    assert decoded.shape == pixels.shape
    np.testing.assert_array_equal(decoded, pixels)


def test_passthrough_is_a_view_of_the_message_buffer():
    pixels = random_pixels('bgr8', 4, 5)
    msg = hand_built(pixels, 'bgr8')
    decoded = imgmsg_to_numpy(msg)
    msg.data[0] = 255 - msg.data[0]  # rclpy keeps data as array('B'), writable in place
    assert decoded[0, 0, 0] == 255 - pixels[0, 0, 0]


@numpy_path_only
def test_padded_rows_are_viewed_not_copied():
    msg = hand_built(random_pixels('mono16', 3, 4), 'mono16', pad=6)
    decoded = imgmsg_to_numpy(msg)
    assert np.shares_memory(decoded, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize(
    ('source', 'target', 'picks'),
    [
        ('rgb8', 'bgr8', [2, 1, 0]),
        ('bgr8', 'rgb8', [2, 1, 0]),
        ('rgba8', 'rgb8', [0, 1, 2]),
        ('rgba8', 'bgr8', [2, 1, 0]),
        ('bgra8', 'bgr8', [0, 1, 2]),
        ('bgra8', 'rgb8', [2, 1, 0]),
        ('mono8', 'rgb8', [0, 0, 0]),
        ('mono8', 'bgr8', [0, 0, 0]),
    ],
)
def test_colour_conversions(source, target, picks):
    pixels = random_pixels(source, 6, 7, seed=3)
    channels = pixels if pixels.ndim == 3 else pixels[..., None]
    expected = np.stack([channels[..., i] for i in picks], axis=-1)
    converted = imgmsg_to_numpy(hand_built(pixels, source, pad=2), target)
    assert converted.flags.c_contiguous
    np.testing.assert_array_equal(converted, expected)


def _bgr_msg(**fields) -> Image:
    msg = hand_built(random_pixels('bgr8', 4, 6), 'bgr8', pad=3)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


@numpy_path_only
@pytest.mark.parametrize(
    ('msg', 'desired', 'words'),
    [
        (_bgr_msg(encoding='yuv422'), 'passthrough', ['yuv422', 'publish one of', 'cv_bridge']),
        (_bgr_msg(width=0), 'passthrough', ['zero size', 'width and height']),
        (_bgr_msg(height=0, data=b''), 'passthrough', ['zero size']),
        (_bgr_msg(step=17), 'passthrough', ['step 17', '18 bytes', 'step >= width']),
        (
            _bgr_msg(data=bytes(4 * 21 - 1)),
            'passthrough',
            ['truncated', '83 bytes', 'step * height'],
        ),
        (_bgr_msg(data=bytes(4 * 21 + 5)), 'passthrough', ['larger', 'check width']),
        (_bgr_msg(), 'mono16', ['cannot convert', "'rgb8'", 'passthrough']),
        (_bgr_msg(encoding='8UC3'), 'bgr8', ['cannot convert', "'8UC3'"]),
    ],
)
def test_unreadable_messages_raise_a_clear_error(msg, desired, words):
    with pytest.raises(ImageDecodeError) as caught:
        imgmsg_to_numpy(msg, desired)
    assert isinstance(caught.value, ValueError)
    for word in words:
        assert word in str(caught.value)


def test_decoding_works_on_any_object_with_image_fields():
    class Plain:  # e.g. a rosbags-deserialized message: same fields, data as bytes
        height, width, encoding, is_bigendian, step = 2, 2, 'mono16', 1, 5
        data = b'\x01\x02\x03\x04_\x05\x06\x07\x08_'

    np.testing.assert_array_equal(imgmsg_to_numpy(Plain()), [[0x0102, 0x0304], [0x0506, 0x0708]])


@pytest.mark.parametrize('encoding', sorted(LAYOUTS))
def test_encode_writes_packed_rows_and_decodes_back(encoding):
    pixels = random_pixels(encoding, 5, 3, seed=11)
    msg = numpy_to_imgmsg(pixels, encoding)
    itemsize = np.dtype(LAYOUTS[encoding][0]).itemsize
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding) == (5, 3, encoding)
    assert msg.step == 3 * LAYOUTS[encoding][1] * itemsize
    assert msg.is_bigendian == (sys.byteorder == 'big')
    assert bytes(msg.data) == pixels.tobytes()
    np.testing.assert_array_equal(imgmsg_to_numpy(msg), pixels)


def test_encode_keeps_a_big_endian_dtype_and_says_so():
    values = np.array([[1, 258], [515, 65535]], dtype='>u2')
    msg = numpy_to_imgmsg(values, '16UC1')
    assert msg.is_bigendian == 1
    assert bytes(msg.data) == b'\x00\x01\x01\x02\x02\x03\xff\xff'
    np.testing.assert_array_equal(imgmsg_to_numpy(msg), values)


def test_encode_copies_the_header_and_accepts_views_and_single_channel_axes():
    header = Header(frame_id='cam_front', stamp=Time(sec=12, nanosec=345))
    wide = random_pixels('mono8', 4, 10)
    msg = numpy_to_imgmsg(wide[:, ::2, None], 'mono8', header)  # strided view, [H, W, 1]
    assert (msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec) == (
        'cam_front',
        12,
        345,
    )
    np.testing.assert_array_equal(imgmsg_to_numpy(msg), wide[:, ::2])


@pytest.mark.parametrize(
    ('image', 'encoding', 'words'),
    [
        (np.zeros((4, 4, 3)), 'rgb8', ['uint8', 'float64', 'astype']),
        (np.zeros((4, 4), np.uint8), 'rgb8', ['[H, W, 3]', '[4, 4]']),
        (np.zeros((4, 4, 3), np.uint8), 'mono8', ['[H, W]']),
        (np.zeros((0, 4, 3), np.uint8), 'bgr8', ['empty']),
        (np.zeros((4, 4), np.uint8), 'yuv422', ['unsupported encoding', 'bgr8']),
        ([[1, 2]], 'mono8', ['numpy array']),
    ],
)
def test_encode_rejects_arrays_that_do_not_fit(image, encoding, words):
    with pytest.raises(ImageEncodeError) as caught:
        numpy_to_imgmsg(image, encoding)
    for word in words:
        assert word in str(caught.value)


def test_core_imports_no_ros_package():
    code = (
        'import sys, bevformer_ros.frontend.image_codec; '
        'print(sorted(m for m in ("rclpy", "sensor_msgs", "cv_bridge") if m in sys.modules))'
    )
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]', out.stderr


HAS_DECODER = optional_ros.available('cv2') or optional_ros.available('PIL')


def _png(rgb: np.ndarray) -> bytes:
    if optional_ros.available('cv2'):
        import cv2

        return cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))[1].tobytes()
    import io

    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.fromarray(rgb).save(buffer, format='PNG')
    return buffer.getvalue()


@pytest.mark.skipif(not HAS_DECODER, reason='needs OpenCV or Pillow to write and read a PNG')
def test_compressed_png_decodes_losslessly():
    rgb = random_pixels('rgb8', 8, 5, seed=5)
    msg = CompressedImage(format='png')
    msg.data = _png(rgb)
    np.testing.assert_array_equal(compressed_to_numpy(msg, 'rgb8'), rgb)
    np.testing.assert_array_equal(compressed_to_numpy(msg, 'bgr8'), rgb[..., ::-1])


@pytest.mark.skipif(HAS_DECODER, reason='checks the message given when no decoder is installed')
def test_compressed_without_decoder_names_the_fix():
    msg = CompressedImage(format='jpeg', data=b'\xff\xd8\xff')
    with pytest.raises(ImageDecodeError, match='needs OpenCV or Pillow.*pip install pillow'):
        compressed_to_numpy(msg)


def test_compressed_rejects_empty_data_and_other_encodings():
    with pytest.raises(ImageDecodeError, match='no data'):
        compressed_to_numpy(CompressedImage(format='jpeg'))
    with pytest.raises(ImageDecodeError, match='bgr8 or rgb8'):
        compressed_to_numpy(CompressedImage(format='jpeg', data=b'x'), 'mono16')

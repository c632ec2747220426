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
sensor_msgs/Image <-> numpy, with cv_bridge's names and a tested numpy path.

`imgmsg_to_numpy` reads any object with the Image fields (height, width, encoding, is_bigendian,
step, data), so this module imports no ROS package at import time. It honours `step` (row padding)
and `is_bigendian`, and a passthrough decode of native-byte-order data is a zero-copy view of
`msg.data`. Decoding uses the real cv_bridge (a ROS install) when `optional_ros` finds it; the
checks below run first either way, so a bad message fails with the same `ImageDecodeError`.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, NamedTuple

from bevformer_ros import optional_ros
import numpy as np


class ImageDecodeError(ValueError):
    """A sensor_msgs/Image (or CompressedImage) that cannot be read as the message claims."""


class ImageEncodeError(ValueError):
    """An array that does not fit the requested sensor_msgs/Image encoding."""


class Layout(NamedTuple):
    dtype: str  # numpy base type, byte order applied from the message
    channels: int


# The encodings of sensor_msgs/image_encodings.hpp that the numpy path reads and writes.
ENCODINGS: dict[str, Layout] = {
    'rgb8': Layout('u1', 3),
    'bgr8': Layout('u1', 3),
    'rgba8': Layout('u1', 4),
    'bgra8': Layout('u1', 4),
    'mono8': Layout('u1', 1),
    'mono16': Layout('u2', 1),
    '8UC1': Layout('u1', 1),
    '8UC3': Layout('u1', 3),
    '16UC1': Layout('u2', 1),
    '32FC1': Layout('f4', 1),
}


def _rgb_bgr_swap(image: np.ndarray) -> np.ndarray:
    return image[..., 2::-1]


def _drop_alpha(image: np.ndarray) -> np.ndarray:
    return image[..., :3]


def _gray_to_color(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2)


# (source encoding, desired encoding) -> conversion. Generic types (8UC3, 16UC1) have no colour
# meaning, so like cv_bridge they convert to nothing but themselves.
CONVERSIONS = {
    ('rgb8', 'bgr8'): _rgb_bgr_swap,
    ('bgr8', 'rgb8'): _rgb_bgr_swap,
    ('rgba8', 'rgb8'): _drop_alpha,
    ('bgra8', 'bgr8'): _drop_alpha,
    ('rgba8', 'bgr8'): _rgb_bgr_swap,
    ('bgra8', 'rgb8'): _rgb_bgr_swap,
    ('mono8', 'rgb8'): _gray_to_color,
    ('mono8', 'bgr8'): _gray_to_color,
}


def imgmsg_to_numpy(msg: Any, desired_encoding: str = 'passthrough') -> np.ndarray:
    """
    Decode a sensor_msgs/Image into an array [H, W] (one channel) or [H, W, C].

    `passthrough` (or the message's own encoding) returns a view of `msg.data` (bytes-like) in
    native byte order; big-endian data on a little-endian host and colour conversions return a new
    C-contiguous array. Raises ImageDecodeError for a message that cannot be read as it claims.
    """
    layout = ENCODINGS.get(msg.encoding)
    use_bridge = optional_ros.available('cv_bridge')
    if layout is None and not use_bridge:
        raise ImageDecodeError(
            f'unsupported image encoding {msg.encoding!r}; publish one of {sorted(ENCODINGS)} '
            '(or install cv_bridge from a ROS distribution for the other encodings)'
        )
    if layout is not None:
        _check_message(msg, layout)
        use_bridge = use_bridge and not _needs_byteswap(msg, layout)
    if use_bridge:
        return _bridge_decode(msg, desired_encoding)
    return numpy_decode(msg, desired_encoding)


def numpy_decode(msg: Any, desired_encoding: str = 'passthrough') -> np.ndarray:
    """
    Decode a checked message of an encoding in ENCODINGS with numpy alone, never cv_bridge.

    What `imgmsg_to_numpy` does without cv_bridge; the cv_bridge self-test compares against it.
    """
    image = _decode(msg, ENCODINGS[msg.encoding])
    if desired_encoding in ('passthrough', msg.encoding):
        return image
    conversion = CONVERSIONS.get((msg.encoding, desired_encoding))
    if conversion is None:
        targets = ['passthrough', msg.encoding]
        targets += sorted(dst for src, dst in CONVERSIONS if src == msg.encoding)
        raise ImageDecodeError(
            f'cannot convert {msg.encoding!r} to {desired_encoding!r}; supported targets are '
            f'{targets}: ask for one of them and convert afterwards, or install cv_bridge (ROS) '
            'for more conversions'
        )
    return np.ascontiguousarray(conversion(image))


def numpy_to_imgmsg(image: np.ndarray, encoding: str, header: Any = None) -> Any:
    """
    Build a sensor_msgs/Image from an array [H, W] or [H, W, C] with rows packed (no padding).

    The array's byte order is kept and stated in `is_bigendian`; `header` (std_msgs/Header) is
    copied in when given. Always the numpy path: cv_bridge would add nothing but a copy, and it
    ignores a big-endian dtype.
    """
    from sensor_msgs.msg import Image  # lazy: the decoding side needs no ROS package

    layout = ENCODINGS.get(encoding)
    if layout is None:
        raise ImageEncodeError(
            f'unsupported encoding {encoding!r}; use one of {sorted(ENCODINGS)}'
        )
    image = _check_array(image, encoding, layout)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = image.shape[:2]
    msg.encoding = encoding
    msg.is_bigendian = int(_is_big_endian(image.dtype))
    msg.step = image.shape[1] * layout.channels * image.dtype.itemsize
    # tobytes() is one memcpy; assigning an ndarray would fill array('B') element by element.
    msg.data = image.tobytes()
    return msg


def compressed_to_numpy(msg: Any, desired_encoding: str = 'bgr8') -> np.ndarray:
    """
    Decode a sensor_msgs/CompressedImage (jpeg, png) into uint8 [H, W, 3] bgr8 or rgb8.

    Needs OpenCV (comes with cv_bridge) or Pillow; raises ImageDecodeError when neither imports.
    """
    if desired_encoding not in ('bgr8', 'rgb8'):
        raise ImageDecodeError(
            f'compressed images decode to bgr8 or rgb8, not {desired_encoding!r}'
        )
    data = np.frombuffer(msg.data, np.uint8)
    if data.size == 0:
        raise ImageDecodeError('compressed image has no data; check the publisher')
    if optional_ros.available('cv2'):
        import cv2

        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)  # [H, W, 3] bgr, None when unreadable
        if bgr is None:
            raise ImageDecodeError(
                f'OpenCV cannot decode the compressed image (format {msg.format!r})'
            )
        return bgr if desired_encoding == 'bgr8' else np.ascontiguousarray(bgr[..., ::-1])
    if optional_ros.available('PIL'):
        import io

        from PIL import Image as PILImage

        try:
            rgb = np.asarray(PILImage.open(io.BytesIO(data.tobytes())).convert('RGB'))  # [H, W, 3]
        except OSError as error:
            raise ImageDecodeError(
                f'Pillow cannot decode the compressed image: {error}'
            ) from error
        return rgb if desired_encoding == 'rgb8' else np.ascontiguousarray(rgb[..., ::-1])
    raise ImageDecodeError(
        'decoding sensor_msgs/CompressedImage needs OpenCV or Pillow: install cv_bridge (ROS) or '
        '`pip install pillow`, or subscribe to the raw sensor_msgs/Image topic instead'
    )


def _check_message(msg: Any, layout: Layout) -> None:
    if msg.height == 0 or msg.width == 0:
        raise ImageDecodeError(
            f'image has zero size ({msg.width}x{msg.height}); '
            'the publisher must fill width and height'
        )
    row_bytes = msg.width * layout.channels * np.dtype(layout.dtype).itemsize
    if msg.step < row_bytes:
        raise ImageDecodeError(
            f'step {msg.step} is smaller than one row of {msg.width} {msg.encoding} pixels '
            f'({row_bytes} bytes); the publisher must set step >= width * bytes per pixel'
        )
    expected = msg.step * msg.height
    if len(msg.data) != expected:
        problem = 'truncated' if len(msg.data) < expected else 'larger than its header says'
        raise ImageDecodeError(
            f'image data is {problem}: {len(msg.data)} bytes, but step * height = {msg.step} * '
            f'{msg.height} = {expected}; check width, height, step and encoding in the publisher'
        )


def _decode(msg: Any, layout: Layout) -> np.ndarray:
    dtype = np.dtype(layout.dtype).newbyteorder('>' if msg.is_bigendian else '<')
    row_bytes = msg.width * layout.channels * dtype.itemsize
    # [H, step] bytes, no copy
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    pixels = rows[:, :row_bytes].view(dtype)  # [H, W * C], drops the row padding
    shape = (
        (msg.height, msg.width)
        if layout.channels == 1
        else (msg.height, msg.width, layout.channels)
    )
    image = pixels.reshape(shape)
    if not dtype.isnative:
        image = image.astype(dtype.newbyteorder('='))  # torch and OpenCV need native byte order
    return image


def _needs_byteswap(msg: Any, layout: Layout) -> bool:
    # cv_bridge swaps bytes with ndarray.newbyteorder(), which NumPy 2 removed; keep that case
    # here.
    return np.dtype(layout.dtype).itemsize > 1 and bool(msg.is_bigendian) != (
        sys.byteorder == 'big'
    )


def _check_array(image: np.ndarray, encoding: str, layout: Layout) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageEncodeError(f'expected a numpy array, got {type(image).__name__}')
    if layout.channels == 1 and image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    expected_ndim = 2 if layout.channels == 1 else 3
    if image.ndim != expected_ndim or (expected_ndim == 3 and image.shape[2] != layout.channels):
        want = '[H, W]' if layout.channels == 1 else f'[H, W, {layout.channels}]'
        raise ImageEncodeError(f'{encoding} needs an array {want}, got shape {list(image.shape)}')
    if image.dtype.newbyteorder('=') != np.dtype(layout.dtype):
        raise ImageEncodeError(
            f'{encoding} needs dtype {np.dtype(layout.dtype)}, got {image.dtype}; '
            'convert with astype()'
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageEncodeError(f'cannot publish an empty image of shape {list(image.shape)}')
    return np.ascontiguousarray(image)


def _is_big_endian(dtype: np.dtype) -> bool:
    return dtype.byteorder == '>' or (dtype.byteorder == '=' and sys.byteorder == 'big')


@functools.cache
def _cv_bridge() -> Any:
    from cv_bridge import CvBridge

    return CvBridge()


def _bridge_decode(msg: Any, desired_encoding: str) -> np.ndarray:
    from cv_bridge import CvBridgeError

    try:
        return _cv_bridge().imgmsg_to_cv2(msg, desired_encoding=desired_encoding)
    except CvBridgeError as error:  # one exception type for callers, whichever path decoded
        raise ImageDecodeError(
            f'cv_bridge cannot decode {msg.encoding!r} as {desired_encoding!r}: {error}'
        ) from error

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
Plain stand-ins for the sensor_msgs fields the pipeline reads, for tools and tests without ROS.

`pipeline.Pipeline` duck-types its inputs, so real rclpy messages and these dataclasses are
interchangeable; the GPU benchmark machine has no ROS, and ROS-free tests should not need one
either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Stamp:
    sec: int = 0
    nanosec: int = 0


@dataclass
class Header:
    frame_id: str = ''
    stamp: Stamp = field(default_factory=Stamp)


@dataclass
class Image:
    """sensor_msgs/Image fields."""

    height: int
    width: int
    encoding: str
    step: int
    data: bytes
    is_bigendian: int = 0
    header: Header = field(default_factory=Header)


@dataclass
class CompressedImage:
    """sensor_msgs/CompressedImage fields."""

    format: str  # noqa: A003
    data: bytes
    header: Header = field(default_factory=Header)


@dataclass
class CameraInfo:
    """The sensor_msgs/CameraInfo fields the pipeline reads: width, height and row-major K."""

    width: int
    height: int
    k: list[float]
    header: Header = field(default_factory=Header)


def image_msg(pixels: np.ndarray, encoding: str = 'rgb8', frame_id: str = '') -> Image:
    """Image of uint8 [H, W, 3] pixels, rows packed."""
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        step=pixels.strides[0],
        data=pixels.tobytes(),
        header=Header(frame_id=frame_id),
    )


def camera_info_msg(K: np.ndarray, width: int, height: int, frame_id: str = '') -> CameraInfo:
    return CameraInfo(
        width=width,
        height=height,
        k=[float(v) for v in np.asarray(K).reshape(9)],
        header=Header(frame_id=frame_id),
    )

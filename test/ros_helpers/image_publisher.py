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
Publish two hand-built sensor_msgs/Image until SIGINT (child process of test_dds_image.py).

The messages are built here byte by byte, without bevformer_ros.frontend.image_codec, so the test
checks the codec against an independent encoder:
- /test_images/bgr8: bgr8 with every row padded by --pad bytes of 0xAB (reliable QoS);
- /test_images/mono16: mono16 big-endian with 6 bytes of row padding (best-effort QoS).
Publishing starts once a subscriber is matched, so discovery never eats the first messages.
"""

from __future__ import annotations

import argparse

import numpy as np
from patterns import bgr_pattern, mono16_pattern
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

PADDING_BYTE = 0xAB


def padded_rows(row_bytes: np.ndarray, pad: int) -> tuple[bytes, int]:
    """Return (data, step) of rows [H, row_len] uint8, each followed by `pad` junk bytes."""
    height, row_len = row_bytes.shape
    rows = np.full((height, row_len + pad), PADDING_BYTE, dtype=np.uint8)
    rows[:, :row_len] = row_bytes
    return rows.tobytes(), row_len + pad


def bgr8_message(height: int, width: int, pad: int) -> Image:
    msg = Image(height=height, width=width, encoding='bgr8', is_bigendian=0)
    data, msg.step = padded_rows(bgr_pattern(height, width).reshape(height, width * 3), pad)
    msg.data = data
    msg.header.frame_id = 'test_camera'
    return msg


def mono16_be_message(height: int, width: int) -> Image:
    msg = Image(height=height, width=width, encoding='mono16', is_bigendian=1)
    big_endian = mono16_pattern(height, width).astype('>u2')
    data, msg.step = padded_rows(big_endian.view(np.uint8).reshape(height, width * 2), 6)
    msg.data = data
    msg.header.frame_id = 'test_depth'
    return msg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--width', type=int, default=1600)
    parser.add_argument('--height', type=int, default=900)
    parser.add_argument('--pad', type=int, default=5)
    parser.add_argument('--rate', type=float, default=5.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node('image_publisher')
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    streams = [
        (
            node.create_publisher(Image, '/test_images/bgr8', reliable),
            bgr8_message(args.height, args.width, args.pad),
        ),
        (
            node.create_publisher(Image, '/test_images/mono16', qos_profile_sensor_data),
            mono16_be_message(args.height // 2, args.width // 2),
        ),
    ]

    def publish() -> None:
        stamp = node.get_clock().now().to_msg()
        for publisher, msg in streams:
            if publisher.get_subscription_count() > 0:
                msg.header.stamp = stamp
                publisher.publish(msg)

    node.create_timer(1.0 / args.rate, publish)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()

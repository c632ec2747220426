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
Images over real DDS: a child process publishes, this process receives and decodes.

The publisher (test/ros_helpers/image_publisher.py) builds its messages by hand; the test decodes
them with bevformer_ros.frontend.image_codec and compares with the pattern generated here.
"""

from __future__ import annotations

from pathlib import Path

from bevformer_ros.frontend.image_codec import imgmsg_to_numpy
from bevformer_ros.ros.process import GraphProbe, RosProcess
import numpy as np
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from ros_helpers.patterns import bgr_pattern, mono16_pattern
from sensor_msgs.msg import Image

PUBLISHER = Path(__file__).resolve().parents[1] / 'ros_helpers' / 'image_publisher.py'
WIDTH, HEIGHT, PAD = 1600, 900, 5


def test_padded_bgr8_and_big_endian_mono16_arrive_and_decode_exactly(ros_env, tmp_path):
    args = [str(PUBLISHER), '--width', str(WIDTH), '--height', str(HEIGHT), '--pad', str(PAD)]
    with (
        RosProcess(args, ros_env, log_dir=tmp_path, name='image_publisher') as publisher,
        GraphProbe('image_receiver') as probe,
    ):
        probe.wait_for_topics(
            ['/test_images/bgr8', '/test_images/mono16'], timeout=20, watch=[publisher]
        )
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        bgr_msgs = probe.collect(
            Image, '/test_images/bgr8', 2, timeout=20, qos=reliable, watch=[publisher]
        )
        mono_msgs = probe.collect(
            Image,
            '/test_images/mono16',
            2,
            timeout=20,
            qos=qos_profile_sensor_data,
            watch=[publisher],
        )
        assert publisher.stop() == 0, publisher.output()

    expected_bgr = bgr_pattern(HEIGHT, WIDTH)
    for msg in bgr_msgs:
        assert (msg.step, msg.header.frame_id) == (WIDTH * 3 + PAD, 'test_camera')
        np.testing.assert_array_equal(imgmsg_to_numpy(msg), expected_bgr)
        np.testing.assert_array_equal(imgmsg_to_numpy(msg, 'rgb8'), expected_bgr[..., ::-1])

    expected_depth = mono16_pattern(HEIGHT // 2, WIDTH // 2)
    for msg in mono_msgs:
        assert (msg.is_bigendian, msg.step, msg.header.frame_id) == (1, WIDTH + 6, 'test_depth')
        depth = imgmsg_to_numpy(msg)
        assert depth.dtype == np.dtype('=u2')
        np.testing.assert_array_equal(depth, expected_depth)

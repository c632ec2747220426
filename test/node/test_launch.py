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
launch_testing test of launch/bevformer.launch.py: the node starts, autostarts and publishes boxes.

Runs where ROS 2 launch, launch_ros and launch_testing are installed (`colcon test` or
`launch_test test/node/test_launch.py` after `colcon build`); the pip-only dev venv has none of
them, so it is skipped there. The launch file runs with a params file for the small random model
and the six-camera publisher beside it at 160x90.
"""

from __future__ import annotations

from pathlib import Path
import sys
import tempfile
import time
import unittest

from bevformer_ros import optional_ros
from bevformer_ros.model.small_model import (
    SMALL_IMAGE_HEIGHT,
    SMALL_IMAGE_WIDTH,
    small_model_parameters,
)
import pytest
import yaml

pytestmark = pytest.mark.dds  # launches the node
MISSING = [
    name for name in ('launch', 'launch_ros', 'launch_testing') if not optional_ros.available(name)
]
if MISSING:
    pytest.skip(
        f'{", ".join(MISSING)} not importable: launch tests need a ROS 2 install with '
        'launch_testing (the PyPI wheels do not ship it)',
        allow_module_level=True,
    )

from launch import LaunchDescription  # noqa: E402, I100
from launch.actions import ExecuteProcess, IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / 'launch' / 'bevformer.launch.py'


def _params_file() -> str:
    tree: dict = {}
    for name, value in small_model_parameters(outputs__score_threshold=0.0).items():
        *groups, leaf = name.split('.')
        node = tree
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    path = Path(tempfile.mkdtemp(prefix='bevformer_launch_test_')) / 'params.yaml'
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': tree}}))
    return str(path)


@pytest.mark.launch_test
def generate_test_description():
    bevformer = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={'params_file': _params_file(), 'device': 'cpu'}.items(),
    )
    publisher = ExecuteProcess(
        cmd=[
            sys.executable,
            '-m',
            'bevformer_ros.tools.six_camera_publisher',
            '--rate',
            '4',
            '--seconds',
            '60',
            '--width',
            str(SMALL_IMAGE_WIDTH),
            '--height',
            str(SMALL_IMAGE_HEIGHT),
        ],
        output='screen',
    )
    description = LaunchDescription([bevformer, publisher, launch_testing.actions.ReadyToTest()])
    return description, {'publisher': publisher}


class TestBoxesArrive(unittest.TestCase):
    def test_markers_with_the_configured_frame(self):
        rclpy.init()
        node = rclpy.create_node('bevformer_launch_test')
        received = []
        node.create_subscription(MarkerArray, '/bevformer/markers', received.append, 5)
        try:
            deadline = time.monotonic() + 60.0
            while not received and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.1)
        finally:
            node.destroy_node()
            rclpy.shutdown()
        self.assertTrue(received, 'no MarkerArray on /bevformer/markers within 60 s')
        self.assertEqual(received[0].markers[0].header.frame_id, 'LIDAR_TOP')


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_processes_exit_cleanly(self, proc_info):
        # SIGINT from launch: rclpy exits 0; -2 / -15 if a process was signalled before its handler
        # ran.
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])

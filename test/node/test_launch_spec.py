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
launch/bevformer.launch.py without the `launch` package: its node, parameters and remappings.

The launch file takes all of them from bevformer_ros.launch_spec (checked on its source), and
the command line that spec gives is run here as a real node over DDS (test_launch.py runs the
launch file itself where launch_testing is installed).
"""

from __future__ import annotations

import ast
from pathlib import Path
import re

from bevformer_ros import launch_spec
from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.launch_spec import camera_topics, node_ros_arguments, parameter_overrides
from bevformer_ros.model.small_model import (
    SMALL_IMAGE_HEIGHT,
    SMALL_IMAGE_WIDTH,
    small_model_parameters,
)
import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / 'launch' / 'bevformer.launch.py'


def _launch_source() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text())


def test_launch_file_takes_node_remappings_and_overrides_from_the_spec():
    tree = _launch_source()
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == 'bevformer_ros.launch_spec'
        for alias in node.names
    }
    assert {
        'camera_topics',
        'parameter_overrides',
        'EXECUTABLE',
        'NODE_NAME',
        'NODE_ARGUMENTS',
        'PACKAGE',
    } <= imported
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    # nothing the spec owns is spelled out again in the launch file
    owned = {launch_spec.EXECUTABLE, launch_spec.NODE_NAME, *launch_spec.NODE_ARGUMENTS}
    owned |= {topic for _, topic, _ in camera_topics()}
    owned |= {parameter for _, parameter in launch_spec.OVERRIDE_ARGUMENTS}
    assert not owned & literals


def test_spec_names_an_installed_executable_and_shipped_params_files():
    scripts = re.findall(r"'(\w+) = ([\w.]+):main'", (ROOT / 'setup.py').read_text())
    assert (launch_spec.EXECUTABLE, 'bevformer_ros.node') in scripts
    preset = re.search(r'choices=\[([^\]]+)\]', LAUNCH_FILE.read_text())
    presets = re.findall(r"'(\w+)'", preset[1])
    assert presets == ['tiny', 'small', 'base']
    for name in presets:  # the default params_file is config/bevformer_<preset>.yaml
        assert (ROOT / 'config' / f'bevformer_{name}.yaml').is_file()


def test_camera_topics_are_the_node_inputs_one_argument_each():
    topics = camera_topics()
    assert len(topics) == 12 and len({name for name, _, _ in topics}) == 12
    assert ('cam_front_image', 'CAM_FRONT/image_raw', 'topic of CAM_FRONT image') in topics
    assert ('cam_back_left_info', 'CAM_BACK_LEFT/camera_info', 'topic of CAM_BACK_LEFT info') in (
        topics
    )


def test_only_given_arguments_override_the_params_file():
    assert parameter_overrides({'checkpoint': '', 'device': ''}) == {}
    assert parameter_overrides({'checkpoint': '/w/small.pth', 'device': 'cuda:1'}) == {
        'model.checkpoint': '/w/small.pth',
        'model.device': 'cuda:1',
    }


def test_node_command_line_orders_overrides_after_the_params_file():
    args = node_ros_arguments(
        'p.yaml',
        '/ns',
        [('CAM_FRONT/image_raw', '/x/front')],
        {'use_sim_time': True, 'model.checkpoint': '123'},
    )
    assert args == [
        '--autostart',
        '--ros-args',
        '-r',
        '__node:=bevformer',
        '-r',
        '__ns:=/ns',
        '--params-file',
        'p.yaml',
        '-p',
        'use_sim_time:=true',
        '-p',
        'model.checkpoint:="123"',  # a string, as launch's value_type=str, not the int 123
        '-r',
        'CAM_FRONT/image_raw:=/x/front',
    ]


@pytest.mark.dds
def test_launch_command_line_comes_up_active_and_publishes_on_remapped_inputs(ros_env, tmp_path):
    """Cameras on /cams/..., the node in /launched: output only if every remapping holds."""
    from bevformer_ros.ros.process import GraphProbe, RosProcess
    from lifecycle_msgs.srv import GetState
    from rcl_interfaces.srv import GetParameters
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from ros_helpers.scripted_publisher import ScriptedPublisher
    from visualization_msgs.msg import MarkerArray

    params = tmp_path / 'params.yaml'
    write_params_file(params, small_model_parameters(outputs__score_threshold=0.0))
    node_args = node_ros_arguments(
        str(params),
        '/launched',
        [(topic, f'/cams/{topic}') for _, topic, _ in camera_topics()],
        {'use_sim_time': False, **parameter_overrides({'checkpoint': '', 'device': 'cpu'})},
    )
    node_path = '/launched/bevformer'
    publisher = None
    with (
        RosProcess(['-m', 'bevformer_ros.node', *node_args], ros_env, log_dir=tmp_path) as node,
        GraphProbe('launch_spec_probe') as probe,
    ):
        try:

            def call(service_type, service, request):
                client = probe.node.create_client(service_type, f'{node_path}/{service}')
                assert client.wait_for_service(timeout_sec=20.0), node.describe()
                future = client.call_async(request)
                probe.spin_until(future.done, 20.0, service, watch=[node])
                return future.result()

            # --autostart: active without any transition requested
            probe.spin_until(
                lambda: call(GetState, 'get_state', GetState.Request()).current_state.label
                == 'active',
                30.0,
                'node active',
                watch=[node],
            )
            request = GetParameters.Request(names=['model.device'])
            device = call(GetParameters, 'get_parameters', request)
            assert device.values[0].string_value == 'cpu'
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            markers = probe.subscribe(MarkerArray, f'{node_path}/markers', reliable)
            probe.wait_for_topics([f'{node_path}/markers'], timeout=20, watch=[node])
            publisher = ScriptedPublisher(
                ros_env, tmp_path, '/cams', SMALL_IMAGE_WIDTH, SMALL_IMAGE_HEIGHT
            )
            publisher.expect('ready')
            stamp = 1000.0
            for _ in range(20):  # resend until the node's publisher has discovered the probe
                publisher.send(stamp)
                try:
                    probe.spin_until(lambda: bool(markers), 3.0, 'markers', watch=[node])
                    break
                except TimeoutError:
                    stamp += 0.5
            assert markers, f'no markers on {node_path}/markers\n{node.describe()}'
            assert len(markers[0].markers) > 1
        finally:
            if publisher is not None:
                publisher.close()

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
Launch the BEVFormer node (configured and activated at start), optionally with RViz.

    ros2 launch bevformer_ros bevformer.launch.py preset:=small
    checkpoint:=/data/bevformer_small_epoch_24.pth ros2 launch bevformer_ros bevformer.launch.py
    use_sim_time:=true rviz:=true \
        cam_front_image:=/nuscenes/CAM_FRONT/image  # one remap per camera: <camera>_image /
        <camera>_info

Arguments: preset (tiny|small|base), params_file (default config/bevformer_<preset>.yaml),
checkpoint (empty:
random weights, the node says so loudly), device, namespace, use_sim_time, rviz, rviz_config, and
for each camera `<cam>_image` / `<cam>_info` remapping its raw image / CameraInfo topic (cam_front,
cam_front_right, cam_front_left, cam_back, cam_back_left, cam_back_right). The node is `bevformer`
in `namespace`.
"""

from __future__ import annotations

from bevformer_ros.launch_spec import (
    camera_topics,
    EXECUTABLE,
    NODE_ARGUMENTS,
    NODE_NAME,
    OVERRIDE_ARGUMENTS,
    PACKAGE,
    parameter_overrides,
)
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def _camera_arguments() -> tuple[
    list[DeclareLaunchArgument], list[tuple[str, LaunchConfiguration]]
]:
    arguments, remappings = [], []
    for name, topic, description in camera_topics():
        arguments.append(DeclareLaunchArgument(name, default_value=topic, description=description))
        remappings.append((topic, LaunchConfiguration(name)))
    return arguments, remappings


def _node(context: LaunchContext, remappings: list, use_sim_time: ParameterValue) -> list[Node]:
    """Describe the node; checkpoint and device override the params file only when given."""
    given = {
        argument: LaunchConfiguration(argument).perform(context)
        for argument, _ in OVERRIDE_ARGUMENTS
    }
    overrides = {'use_sim_time': use_sim_time}
    for parameter, value in parameter_overrides(given).items():
        overrides[parameter] = ParameterValue(value, value_type=str)
    return [
        Node(
            package=PACKAGE,
            executable=EXECUTABLE,
            name=NODE_NAME,
            namespace=LaunchConfiguration('namespace'),
            arguments=list(NODE_ARGUMENTS),
            parameters=[LaunchConfiguration('params_file'), overrides],
            remappings=remappings,
            output='screen',
            emulate_tty=True,
        )
    ]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    camera_arguments, remappings = _camera_arguments()
    arguments = [
        DeclareLaunchArgument(
            'preset',
            default_value='tiny',
            choices=['tiny', 'small', 'base'],
            description='BEVFormer preset; selects the default params_file',
        ),
        DeclareLaunchArgument(
            'params_file',
            description='node parameters (YAML: /** and ros__parameters)',
            # concatenated after the join: PathJoinSubstitution takes a list per path component
            # only since launch 3.8 (Kilted); Humble and Jazzy reject it
            default_value=[
                PathJoinSubstitution([share, 'config', 'bevformer_']),
                LaunchConfiguration('preset'),
                '.yaml',
            ],
        ),
        DeclareLaunchArgument(
            'checkpoint',
            default_value='',
            description='official BEVFormer .pth of the preset; empty: params_file value',
        ),
        DeclareLaunchArgument(
            'device',
            default_value='',
            description='auto, cpu, cuda or cuda:N; empty: the params_file value',
        ),
        DeclareLaunchArgument('namespace', default_value='', description='namespace of the node'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', description='use /clock (ros2 bag play --clock)'
        ),
        DeclareLaunchArgument(
            'rviz', default_value='false', description='start RViz with rviz_config'
        ),
        DeclareLaunchArgument(
            'rviz_config',
            description='RViz configuration file',
            default_value=PathJoinSubstitution([share, 'config', 'bevformer.rviz']),
        ),
        *camera_arguments,
    ]
    use_sim_time = ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)
    node = OpaqueFunction(
        function=_node, kwargs={'remappings': remappings, 'use_sim_time': use_sim_time}
    )
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        name='rviz2',
        arguments=['-d', LaunchConfiguration('rviz_config')],
        parameters=[{'use_sim_time': use_sim_time}],
        condition=IfCondition(LaunchConfiguration('rviz')),
    )
    return LaunchDescription([*arguments, node, rviz])

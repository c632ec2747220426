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
What launch/bevformer.launch.py starts, as plain data, importable without `launch`.

The launch file builds its node, parameters and remappings from these functions, and
`node_ros_arguments` turns the same data into the node's command line (what launch_ros runs),
so the launch configuration can be checked and run where the `launch` package is absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json

PACKAGE = 'bevformer_ros'
EXECUTABLE = 'bevformer_node'
NODE_NAME = 'bevformer'
NODE_ARGUMENTS = ('--autostart',)  # configure and activate at start
CAMERAS = (
    'CAM_FRONT',
    'CAM_FRONT_RIGHT',
    'CAM_FRONT_LEFT',
    'CAM_BACK',
    'CAM_BACK_LEFT',
    'CAM_BACK_RIGHT',
)
# launch argument -> node parameter; an empty argument keeps the params file's value
OVERRIDE_ARGUMENTS = (('checkpoint', 'model.checkpoint'), ('device', 'model.device'))


def camera_topics() -> list[tuple[str, str, str]]:
    """Return (launch argument, node topic, description) for each camera image and info topic."""
    topics = []
    for camera in CAMERAS:
        for suffix, topic in (('image', f'{camera}/image_raw'), ('info', f'{camera}/camera_info')):
            topics.append((f'{camera.lower()}_{suffix}', topic, f'topic of {camera} {suffix}'))
    return topics


def parameter_overrides(arguments: Mapping[str, str]) -> dict[str, str]:
    """Return the node parameters set by the non-empty launch arguments checkpoint and device."""
    return {
        parameter: arguments[argument]
        for argument, parameter in OVERRIDE_ARGUMENTS
        if arguments.get(argument)
    }


def node_ros_arguments(
    params_file: str,
    namespace: str = '',
    remappings: Iterable[tuple[str, str]] = (),
    overrides: Mapping[str, str | bool] | None = None,
) -> list[str]:
    """
    Return the node's command line after the executable, as the launch file would run it.

    The overrides come after the params file, so they win, as with launch_ros' parameter list;
    string values are quoted so that the node receives strings (launch's value_type=str).
    """
    args = [*NODE_ARGUMENTS, '--ros-args', '-r', f'__node:={NODE_NAME}']
    if namespace:
        args += ['-r', f'__ns:={namespace}']
    args += ['--params-file', params_file]
    for name, value in (overrides or {}).items():
        text = ('true' if value else 'false') if isinstance(value, bool) else json.dumps(value)
        args += ['-p', f'{name}:={text}']
    for source, target in remappings:
        args += ['-r', f'{source}:={target}']
    return args

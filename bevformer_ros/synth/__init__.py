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
Synthetic six-camera driving scenes.

A road, an ego vehicle, nuScenes-class boxes, a pinhole renderer.

ROS-free (numpy only). `bevformer_ros.tools.synth` writes a scene as a rosbag2 in the node's topic
layout.

Frames: `world` (= odom: x east, y north, z up, ground at z = 0), `base_link` (the ego: rear-axle
centre on the ground, x forward), `LIDAR_TOP` (the model's reference frame, from the rig's
lidar2ego) and the camera optical frames of the rig.
"""

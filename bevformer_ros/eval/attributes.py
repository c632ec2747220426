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
Give detections nuScenes attributes as the official BEVFormer does.

As mmdet3d `NuScenesDataset._format_bbox` sets them: the model predicts none, so a box gets one
from its class and whether it moves faster than 0.2 m/s.

The synthetic ground truth has no attribute labels either; `evaluation` gives each ground-truth box
the attribute this same rule assigns to its exact velocity, so mAAE measures whether the predicted
speed falls on the right side of 0.2 m/s.
"""

from __future__ import annotations

MOVING_SPEED = 0.2  # m/s
DEFAULT_ATTRIBUTE = {
    'car': 'vehicle.parked',
    'pedestrian': 'pedestrian.moving',
    'trailer': 'vehicle.parked',
    'truck': 'vehicle.parked',
    'bus': 'vehicle.moving',
    'motorcycle': 'cycle.without_rider',
    'construction_vehicle': 'vehicle.parked',
    'bicycle': 'cycle.without_rider',
    'barrier': '',
    'traffic_cone': '',
}
VEHICLES = ('car', 'construction_vehicle', 'bus', 'truck', 'trailer')
CYCLES = ('bicycle', 'motorcycle')
# The nuScenes attribute table (v1.0), in its order.
ATTRIBUTES = (
    'vehicle.moving',
    'vehicle.stopped',
    'vehicle.parked',
    'cycle.with_rider',
    'cycle.without_rider',
    'pedestrian.sitting_lying_down',
    'pedestrian.standing',
    'pedestrian.moving',
)


def official_attribute(name: str, speed: float) -> str:
    """Return the attribute of a `name` box moving at `speed` m/s ('' for barriers and cones)."""
    if speed > MOVING_SPEED:
        if name in VEHICLES:
            return 'vehicle.moving'
        if name in CYCLES:
            return 'cycle.with_rider'
        return DEFAULT_ATTRIBUTE[name]
    if name == 'pedestrian':
        return 'pedestrian.standing'
    if name == 'bus':
        return 'vehicle.stopped'
    return DEFAULT_ATTRIBUTE[name]

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
A model-ready frame: the contract between the frontend that assembles it and the pipeline.

The frontend (live node or bag replay) turns messages into a `FrameSet`; the pipeline turns a
`FrameSet` into detections. Both sides import these types from here so neither depends on the
other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import EgoPose


class FrameError(ValueError):
    """
    A frame that cannot be processed.

    `kind` groups it for /diagnostics (image, camera_info, calibration, non_finite_output). The
    node logs it, counts it and goes on with the next frame.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CameraInput:
    """One camera of a synchronized set."""

    # sensor_msgs/Image or CompressedImage (anything with their fields); None: camera missing
    image: Any
    # sensor_msgs/CameraInfo (k, width, height) of this camera, or None if none arrived yet
    info: Any
    sensor2lidar: Extrinsics  # camera optical frame -> reference frame


@dataclass(frozen=True)
class FrameSet:
    """One synchronized set of cameras with the ego pose at its stamp."""

    stamp_ns: int  # the synchronized stamp: every output carries it
    cameras: Sequence[CameraInput]  # in the model's camera order
    ego_pose: EgoPose  # ego (base_link) in the world frame at stamp_ns

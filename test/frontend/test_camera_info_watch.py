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

"""CameraInfoWatch: the latest CameraInfo per camera, and a readable description of a change."""

from __future__ import annotations

import math

from bevformer_ros.frontend.camera_info_watch import CameraInfoWatch, describe_change
from bevformer_ros.frontend.plain_msgs import camera_info_msg
import numpy as np

K = np.array([[100.0, 0, 80], [0, 100, 45], [0, 0, 1]])


def test_the_same_calibration_is_no_change_nan_included():
    nan_k = K.copy()
    nan_k[0, 0] = math.nan
    assert describe_change(camera_info_msg(K, 160, 90), camera_info_msg(K, 160, 90)) is None
    assert (
        describe_change(camera_info_msg(nan_k, 160, 90), camera_info_msg(nan_k, 160, 90)) is None
    )


def test_size_and_k_changes_are_described():
    change = describe_change(
        camera_info_msg(K, 160, 90), camera_info_msg(K * [[1.1], [1.1], [1]], 320, 180)
    )
    assert change == (
        'size 160x90 -> 320x180, '
        'K (fx 100, fy 100, cx 80, cy 45) -> (fx 110, fy 110, cx 88, cy 49.5)'
    )


def test_watch_keeps_the_latest_and_counts_changes():
    watch = CameraInfoWatch(2)
    assert watch.snapshot() == [None, None]
    first, second = camera_info_msg(K, 160, 90), camera_info_msg(K, 160, 90)
    assert watch.update(0, first) is None  # the first one is no change
    assert watch.update(0, second) is None and watch.snapshot()[0] is second
    assert watch.update(0, camera_info_msg(K, 80, 45)) == 'size 160x90 -> 80x45'
    assert watch.changes == 1 and watch.snapshot()[1] is None

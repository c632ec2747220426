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
Time units and stamp conversions, defined once for the whole package.

Stamps travel as integer nanoseconds everywhere inside the package (exact, hashable, and what
rosbag2 stores); these helpers convert from and to the `builtin_interfaces/Time` shape
(`sec`, `nanosec`) that rclpy, rosbags and plain messages all share.
"""

from __future__ import annotations

from typing import Any

NS_PER_S = 1_000_000_000
NS_PER_US = 1_000  # nuScenes timestamps are microseconds


def time_ns(stamp: Any) -> int:
    """Integer nanoseconds of a Time-like value: `.nanoseconds` (rclpy Time) or `sec`/`nanosec`."""
    ns = getattr(stamp, 'nanoseconds', None)  # rclpy.time.Time
    if ns is not None:
        return int(ns)
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def stamp_ns(msg: Any) -> int | None:
    """`msg.header.stamp` in integer nanoseconds, or None for a message without one."""
    stamp = getattr(getattr(msg, 'header', None), 'stamp', None)
    return None if stamp is None else time_ns(stamp)


def split_ns(ns: int) -> tuple[int, int]:
    """(sec, nanosec) of integer nanoseconds, nanosec in [0, 1e9) as builtin_interfaces/Time."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return sec, nanosec

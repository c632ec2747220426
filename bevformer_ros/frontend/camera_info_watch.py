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
The latest CameraInfo of every camera, and what changed when a new one differs.

CameraInfo is static for a calibrated camera, so the node keeps the latest one per camera and uses
it for every frame (a late first one still counts). A CameraInfo that changes mid-run (a driver
restarted with another resolution or calibration) is used from then on, and `update` describes the
change so the node can say so once instead of silently projecting with new numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
import threading
from typing import Any

import numpy as np


def describe_change(old: Any, new: Any) -> str | None:
    """Describe how two CameraInfo(-like) messages differ in size, K or distortion; None if not."""
    changes = []
    old_size, new_size = (old.width, old.height), (new.width, new.height)
    if old_size != new_size:
        changes.append(f'size {old_size[0]}x{old_size[1]} -> {new_size[0]}x{new_size[1]}')
    old_k, new_k = _numbers(old, 'k'), _numbers(new, 'k')
    if not _same(old_k, new_k):
        changes.append(f'K {_short(old_k)} -> {_short(new_k)}')
    if not _same(_numbers(old, 'd'), _numbers(new, 'd')):
        changes.append('distortion coefficients')
    return ', '.join(changes) or None


class CameraInfoWatch:
    """Latest CameraInfo per camera index; thread-safe (executor writes, worker reads)."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Lock()
        self._infos: list[Any] = [None] * count
        self.changes = 0

    def update(self, index: int, info: Any) -> str | None:
        """Store `info`; the description of the change when a previous one differed, else None."""
        with self._lock:
            previous, self._infos[index] = self._infos[index], info
            change = None if previous is None else describe_change(previous, info)
            self.changes += change is not None
        return change

    def snapshot(self) -> Sequence[Any]:
        with self._lock:
            return list(self._infos)


def _numbers(info: Any, name: str) -> np.ndarray:
    values = getattr(info, name, None)  # a numpy array in rclpy messages, a list in plain ones
    return np.zeros(0) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def _short(k: np.ndarray) -> str:
    if k.size != 9:
        return f'{k.size} values'
    return f'(fx {k[0]:.6g}, fy {k[4]:.6g}, cx {k[2]:.6g}, cy {k[5]:.6g})'

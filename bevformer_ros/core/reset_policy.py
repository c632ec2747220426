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
When the node drops BEVFormer's history (`prev_bev`), and why.

The official test loop resets on a new `scene_token`; a live node has no scenes, so it resets when
the history
no longer describes the area around the current frame:

- `first_frame`: nothing to reuse yet (also after a cleanup or a skipped frame that poisoned the
  history);
- `time_backwards`: the stamp did not advance (bag loop, `ros2 bag play --loop`, a replayed set);
- `gap`: more than `max_gap_s` since the last processed frame (dropout, paused bag);
- `ego_jump`: the ego moved more than `max_ego_jump_m` between consecutive frames (odometry
  reset/teleport);
- `requested`: the `~/reset` service, a backwards jump of the ROS clock, a non-finite model output;
- `disabled`: `temporal.enabled` is false, so every frame starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
import threading

from bevformer_ros.config import TemporalSettings
import numpy as np

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Reset:
    kind: str  # one of the kinds in the module docstring
    detail: str  # human-readable, for the INFO line and /diagnostics

    def __str__(self) -> str:
        return f'{self.kind} ({self.detail})'


class ResetPolicy:
    """Decides per frame; `request` may be called from any thread (service, clock-jump callback)."""

    def __init__(self, settings: TemporalSettings) -> None:
        self.settings = settings  # replaced as a whole on a runtime parameter change
        self._lock = threading.Lock()
        self._requested: Reset | None = None
        self._last_stamp_ns: int | None = None
        self._last_translation: np.ndarray | None = None

    def request(self, detail: str) -> None:
        """Reset before the next frame (the first request's reason wins until it is used)."""
        with self._lock:
            if self._requested is None:
                self._requested = Reset('requested', detail)

    def forget(self) -> None:
        """Forget the last frame: the next one counts as the first."""
        with self._lock:
            self._requested = None
            self._last_stamp_ns = None
            self._last_translation = None

    def decide(self, stamp_ns: int, translation: np.ndarray) -> Reset | None:
        """The reset this frame needs, or None to keep the history; `commit` records the frame."""
        with self._lock:
            requested, self._requested = self._requested, None
        if not self.settings.enabled:
            return Reset('disabled', 'temporal.enabled is false')
        if requested is not None:
            return requested
        if self._last_stamp_ns is None or self._last_translation is None:
            return Reset('first_frame', 'no previous frame')
        dt_s = (stamp_ns - self._last_stamp_ns) / NS_PER_S
        if dt_s <= 0:
            return Reset('time_backwards', f'stamp moved {dt_s:+.3f} s: bag loop or clock reset')
        if dt_s > self.settings.max_gap_s:
            return Reset(
                'gap',
                f'{dt_s:.3f} s since the last frame > '
                f'temporal.max_gap_s={self.settings.max_gap_s}',
            )
        jump_m = float(
            np.linalg.norm(np.asarray(translation, dtype=np.float64) - self._last_translation)
        )
        if jump_m > self.settings.max_ego_jump_m:
            return Reset(
                'ego_jump',
                f'ego moved {jump_m:.1f} m in {dt_s:.3f} s > '
                f'temporal.max_ego_jump_m={self.settings.max_ego_jump_m}',
            )
        return None

    def commit(self, stamp_ns: int, translation: np.ndarray) -> None:
        """Record a frame whose output became the history."""
        self._last_stamp_ns = stamp_ns
        self._last_translation = np.array(translation, dtype=np.float64)

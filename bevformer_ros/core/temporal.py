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
BEVFormer's temporal state: official test-time bookkeeping and the node's reset rules, ROS-free.

Reproduces ``CustomNuScenesDataset.get_data_info`` (how ``can_bus`` is filled from the ego pose)
and ``BEVFormer.forward_test`` (history reset on a new scene, ego-motion deltas, storing the BEV
for the next frame). The quirks below are kept on purpose: the official checkpoints were trained
with them, and "fixing" any of them changes the outputs by far more than float noise (fixture
README §5).

can_bus layout (18 float64 values):
    [0:3]   ego -> global translation (m), absolute; the *used* can_bus holds the delta since the
            previous frame
    [3:7]   QUIRK: all four equal the quaternion's w (``can_bus[3:7] = pyquaternion.Quaternion``
            broadcasts ``float(q)`` = w; BEVFormer PR #285)
    [7:10]  CAN accel, [10:13] CAN rotation rate, [13:16] CAN velocity (zeros when unknown)
    [16]    ego yaw in radians in [0, 2*pi), absolute, also in the used can_bus
    [17]    ego yaw in degrees in [0, 360); the used can_bus holds the *unwrapped* delta since the
            previous frame

Reset rules. The official test loop drops the history (`prev_bev`) on a new `scene_token`; a live
node has no scenes, so `TemporalState.decide` drops it when the history no longer describes the
area around the current frame (`Reset.kind`):

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

from collections.abc import Sequence
from dataclasses import dataclass
import math
import threading

from bevformer_ros.config import TemporalSettings
from bevformer_ros.core.stamps import NS_PER_S
import numpy as np
import torch

CAN_BUS_DIMS = 18


def _yaw_of_wxyz(q: np.ndarray) -> float:
    """Return the nuScenes ``quaternion_yaw``: atan2(v_y, v_x) of v = R(q) [1, 0, 0]."""
    w, x, y, z = q / np.linalg.norm(q)
    v_x = 1.0 - 2.0 * (y * y + z * z)
    v_y = 2.0 * (x * y + w * z)
    return math.atan2(v_y, v_x)


def can_bus_from_pose(
    translation: Sequence[float],
    rotation_wxyz: Sequence[float],
    accel: Sequence[float] | None = None,
    rotation_rate: Sequence[float] | None = None,
    velocity: Sequence[float] | None = None,
) -> np.ndarray:
    """
    Build the absolute ``can_bus`` [18] of one frame from the ego pose, as the official code does.

    Parameters
    ----------
    translation
        ego -> global (or any fixed world frame) translation, metres.
    rotation_wxyz
        ego -> global rotation quaternion (w, x, y, z).
    accel, rotation_rate, velocity
        CAN bus ``pose`` message values (3 each); zeros if None.

    """
    q = np.asarray(rotation_wxyz, dtype=np.float64)
    if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) == 0:
        raise ValueError(
            f'rotation_wxyz must be a finite non-zero quaternion (w, x, y, z), got {rotation_wxyz}'
        )
    can_bus = np.zeros(CAN_BUS_DIMS, dtype=np.float64)
    can_bus[0:3] = np.asarray(translation, dtype=np.float64)
    can_bus[3:7] = q[0]  # QUIRK (see module docstring): w four times, not the quaternion
    for start, values in ((7, accel), (10, rotation_rate), (13, velocity)):
        if values is not None:
            can_bus[start:start + 3] = np.asarray(values, dtype=np.float64)
    patch_angle = _yaw_of_wxyz(q) / np.pi * 180
    if patch_angle < 0:
        patch_angle += 360
    can_bus[-2] = patch_angle / 180 * np.pi
    can_bus[-1] = patch_angle
    return can_bus


@dataclass(frozen=True)
class TemporalStep:
    """
    What one frame feeds the model.

    can_bus: the used can_bus [18] float64 (pass ``torch.from_numpy(can_bus)[None]`` to the model).
    use_prev_bev: whether ``prev_bev`` is passed (False on the first frame of a scene).
    prev_bev: the previous frame's ``bev_embed`` [HW, B, C] or None.
    """

    can_bus: np.ndarray
    use_prev_bev: bool
    prev_bev: torch.Tensor | None


@dataclass(frozen=True)
class Reset:
    kind: str  # one of the kinds in the module docstring
    detail: str  # human-readable, for the INFO line and /diagnostics

    def __str__(self) -> str:
        return f'{self.kind} ({self.detail})'


class TemporalState:
    """
    Previous BEV and pose between frames (the official ``prev_frame_info``), and the reset rules.

    Official use, per frame: ``step = state.step(can_bus_abs, scene_token)``, run the model with
    ``step.can_bus`` and ``step.prev_bev``, then ``state.update(outputs['bev_embed'])``.

    Live use (no scenes): ``state.decide(stamp_ns, translation)`` first (it drops the history when
    a reset rule fires), then ``step`` and ``update`` as above, then ``state.commit(stamp_ns,
    translation)``; ``forget`` after a frame that failed. ``request`` may be called from any
    thread (service, clock-jump callback).
    """

    def __init__(
        self, video_test_mode: bool = True, settings: TemporalSettings | None = None
    ) -> None:
        self.video_test_mode = video_test_mode
        # the reset rules; replaced as a whole on a runtime parameter change
        self.settings = settings if settings is not None else TemporalSettings()
        self._lock = threading.Lock()
        self._requested: Reset | None = None
        self._last_stamp_ns: int | None = None
        self._last_translation: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        """Forget the history (the next frame behaves like the first frame of a scene)."""
        self.prev_bev: torch.Tensor | None = None
        self.prev_pos = np.zeros(3, dtype=np.float64)
        self.prev_angle = 0.0
        self.scene_token: str | None = None
        self._pending: tuple[np.ndarray, float] | None = None

    def step(
        self, can_bus_abs: np.ndarray | Sequence[float], scene_token: str | None = None
    ) -> TemporalStep:
        """
        Return the used can_bus for this frame and the history to pass (official ``forward_test``).

        Parameters
        ----------
        can_bus_abs
            absolute can_bus [18] from ``can_bus_from_pose`` (not modified).
        scene_token
            a change drops the history; None is a scene of its own that never changes.

        """
        # copy: the official code edits img_metas in place
        can_bus = np.array(can_bus_abs, dtype=np.float64)
        if can_bus.shape != (CAN_BUS_DIMS,):
            raise ValueError(
                f'can_bus must have {CAN_BUS_DIMS} values (see can_bus_from_pose), '
                f'got {can_bus.shape}'
            )
        if scene_token != self.scene_token or not self.video_test_mode:
            self.prev_bev = None
        self.scene_token = scene_token
        self._pending = (can_bus[:3].copy(), float(can_bus[-1]))
        if self.prev_bev is not None:
            # QUIRK: a global-frame translation delta, not rotated into the ego frame (the shift
            # formula projects it with the current yaw), and a degree delta that is NOT wrapped to
            # (-180, 180]: crossing 0/360 gives about +-360, which rotates the history by almost a
            # full turn.
            can_bus[:3] -= self.prev_pos
            can_bus[-1] -= self.prev_angle
        else:
            can_bus[:3] = 0
            can_bus[-1] = 0
        # can_bus[-2] stays the absolute yaw in radians in both cases (read by the shift formula).
        return TemporalStep(
            can_bus=can_bus, use_prev_bev=self.prev_bev is not None, prev_bev=self.prev_bev
        )

    def update(self, bev_embed: torch.Tensor) -> None:
        """Store this frame's ``bev_embed`` [HW, B, C] and pose as the next frame's history."""
        if self._pending is None:
            raise RuntimeError('TemporalState.update() needs a step() for the same frame first')
        self.prev_pos, self.prev_angle = self._pending
        self._pending = None
        self.prev_bev = bev_embed.detach()

    def clear(self) -> None:
        """Drop the history and forget the last frame (`reset` and `forget`)."""
        self.reset()
        self.forget()

    # ------------------------------------------------------------------ reset rules (live use)
    def request(self, detail: str) -> None:
        """Reset before the next frame (the first request's reason wins until it is used)."""
        with self._lock:
            if self._requested is None:
                self._requested = Reset('requested', detail)

    def forget(self) -> None:
        """Forget the last frame: the next one counts as the first (a pending request is void)."""
        with self._lock:
            self._requested = None
            self._last_stamp_ns = None
            self._last_translation = None

    def decide(self, stamp_ns: int, translation: np.ndarray) -> Reset | None:
        """
        Apply the reset rules to the next frame: its Reset (the history is dropped), or None.

        `commit` records the frame once its output became the history.
        """
        reset = self._reset_rule(stamp_ns, translation)
        if reset is not None:
            self.reset()
        return reset

    def commit(self, stamp_ns: int, translation: np.ndarray) -> None:
        """Record a frame whose output became the history."""
        self._last_stamp_ns = stamp_ns
        self._last_translation = np.array(translation, dtype=np.float64)

    def _reset_rule(self, stamp_ns: int, translation: np.ndarray) -> Reset | None:
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

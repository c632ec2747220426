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
Ego pose at an image stamp, from nav_msgs/Odometry or TF, for BEVFormer's `can_bus`.

Frames. nuScenes-trained checkpoints saw `ego2global` = the pose of the *ego* (base_link, rear-axle
centre) in the world frame, not the pose of the LiDAR reference frame; `can_bus` is built from it
(translation, rotation (w, x, y, z), patch angle = its yaw) and velocity / rotation rate are in the
ego frame (CAN `pose.vel`, `pose.rotation_rate`). So feed this module `odom → base_link` (Odometry
or TF). If only the pose of another frame is available (e.g. a LiDAR odometry of LIDAR_TOP),
convert it with `base_pose_from_frame_pose`.

Timing. The pose must be the one at the image stamp, never "now": `PoseBuffer` keeps a bounded,
time-indexed history and interpolates (linear translation, slerp rotation) between the two poses
around the stamp. It refuses to extrapolate further than `max_extrapolation_s` or across odometry
gaps longer than `max_gap_s`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
import threading
from typing import Any

from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.rotation import (
    matrix_to_quat_wxyz,
    normalized_wxyz,
    quat_conjugate_wxyz,
    quat_multiply_wxyz,
    quat_wxyz_to_matrix,
    rotation_vector_of_wxyz,
    slerp_wxyz,
    xyzw_to_wxyz,
    yaw_of_wxyz,
)
from bevformer_ros.core.stamps import NS_PER_S, stamp_ns
import numpy as np

# poses in a row, each older than the whole history, that make a time jump (not stale messages)
JUMP_CONFIRMATIONS = 3


class EgoMotionError(ValueError):
    """No trustworthy ego pose for the requested stamp; the message says why and what to check."""


class StalePoseError(EgoMotionError):
    """A pose older than the whole history: ignored (stale), unless more confirm a time jump."""


@dataclass(frozen=True)
class EgoPose:
    """The ego (base_link) pose in the world frame at `stamp_ns`."""

    stamp_ns: int
    translation: np.ndarray  # [3] float64, ego2global_translation (m)
    rotation: np.ndarray  # [4] float64, ego2global_rotation, unit quaternion (w, x, y, z)
    velocity: np.ndarray | None = None  # [3] m/s in the ego frame
    rotation_rate: np.ndarray | None = None  # [3] rad/s in the ego frame
    frame_id: str = ''  # world frame (odom / map)

    @property
    def rotation_matrix(self) -> np.ndarray:
        return quat_wxyz_to_matrix(self.rotation)  # [3, 3]

    @property
    def yaw(self) -> float:
        """Heading (rad) of the ego x axis in the world frame, as nuScenes `quaternion_yaw`."""
        return yaw_of_wxyz(self.rotation)


def _vector(v: Any, what: str) -> np.ndarray:
    out = np.array([float(v.x), float(v.y), float(v.z)], dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise EgoMotionError(f'{what} is not finite: {out.tolist()}; skipping this pose')
    return out


def _quaternion(q: Any, what: str) -> np.ndarray:
    try:
        return normalized_wxyz(xyzw_to_wxyz((q.x, q.y, q.z, q.w)), what)
    except ValueError as exc:
        raise EgoMotionError(f'{exc}; skipping this pose') from exc


def _stamp(msg: Any, what: str) -> int:
    ns = stamp_ns(msg)
    if ns is None:
        raise EgoMotionError(f'{what} has no header.stamp')
    return ns


def pose_from_odometry(msg: Any) -> EgoPose:
    """
    Read the EgoPose of a nav_msgs/Odometry(-like) message.

    pose.pose is in header.frame_id, twist in the child frame.
    """
    pose, twist = msg.pose.pose, msg.twist.twist
    return EgoPose(
        stamp_ns=_stamp(msg, 'Odometry'),
        translation=_vector(pose.position, 'Odometry pose.position'),
        rotation=_quaternion(pose.orientation, 'Odometry pose.orientation'),
        velocity=_vector(twist.linear, 'Odometry twist.linear'),
        rotation_rate=_vector(twist.angular, 'Odometry twist.angular'),
        frame_id=str(getattr(msg.header, 'frame_id', '')),
    )


def pose_from_transform(msg: Any) -> EgoPose:
    """Read the EgoPose of a TransformStamped world → base_link; the buffer derives velocity."""
    tf = msg.transform
    return EgoPose(
        stamp_ns=_stamp(msg, 'TransformStamped'),
        translation=_vector(tf.translation, 'TF translation'),
        rotation=_quaternion(tf.rotation, 'TF rotation'),
        frame_id=str(getattr(msg.header, 'frame_id', '')),
    )


def base_pose_from_frame_pose(pose: EgoPose, frame2base: Extrinsics) -> EgoPose:
    """
    Return the pose of base_link from the pose of a rigidly mounted frame F.

    T_world_base = T_world_F @ inv(T_base_F).

    `frame2base` maps F points into base_link (for LIDAR_TOP: the rig's `lidar2ego`). Velocities
    are dropped because they were expressed at F; the buffer re-derives them.
    """
    base2frame = frame2base.inverse()
    R_world_frame = pose.rotation_matrix
    translation = R_world_frame @ base2frame.translation + pose.translation
    rotation = matrix_to_quat_wxyz(R_world_frame @ base2frame.rotation)
    return EgoPose(pose.stamp_ns, translation, rotation, frame_id=pose.frame_id)


def interpolate(p0: EgoPose, p1: EgoPose, stamp_ns: int) -> EgoPose:
    """Pose at `stamp_ns` on the motion p0 → p1 (fractions outside [0, 1] extrapolate)."""
    dt_ns = p1.stamp_ns - p0.stamp_ns
    f = 0.0 if dt_ns == 0 else (stamp_ns - p0.stamp_ns) / dt_ns
    rotation = slerp_wxyz(p0.rotation, p1.rotation, f)
    nearest = p0.rotation if f < 0.5 else p1.rotation
    # keep the source's sign: can_bus feeds w itself to the network
    if np.dot(rotation, nearest) < 0:
        rotation = -rotation
    if p0.velocity is not None and p1.velocity is not None:
        velocity = p0.velocity + f * (p1.velocity - p0.velocity)
    elif dt_ns:  # world-frame finite difference, expressed in the ego frame at the stamp
        velocity = quat_wxyz_to_matrix(rotation).T @ (
            (p1.translation - p0.translation) * NS_PER_S / dt_ns
        )
    else:
        velocity = None
    if p0.rotation_rate is not None and p1.rotation_rate is not None:
        rotation_rate = p0.rotation_rate + f * (p1.rotation_rate - p0.rotation_rate)
    elif dt_ns:  # body-frame delta rotation over the interval
        delta = quat_multiply_wxyz(quat_conjugate_wxyz(p0.rotation), p1.rotation)
        rotation_rate = rotation_vector_of_wxyz(delta) * NS_PER_S / dt_ns
    else:
        rotation_rate = None
    return EgoPose(
        stamp_ns=stamp_ns,
        translation=p0.translation + f * (p1.translation - p0.translation),
        rotation=rotation,
        velocity=velocity,
        rotation_rate=rotation_rate,
        frame_id=p1.frame_id,
    )


class PoseBuffer:
    """
    Time-indexed ego poses (newest `max_age_s`), queried at image stamps.

    Thread-safe: the odometry callback adds while the inference worker queries.
    """

    def __init__(
        self,
        max_age_s: float = 5.0,
        max_extrapolation_s: float = 0.1,
        max_gap_s: float = 0.5,
        max_len: int = 4096,
    ) -> None:
        if not (max_age_s > 0 and max_extrapolation_s >= 0 and max_gap_s > 0 and max_len > 1):
            raise ValueError(
                f'PoseBuffer needs max_age_s > 0, max_extrapolation_s >= 0, max_gap_s > 0 and '
                f'max_len > 1; got {max_age_s}, {max_extrapolation_s}, {max_gap_s}, {max_len}'
            )
        self.max_age_ns = int(max_age_s * NS_PER_S)
        self.max_extrapolation_ns = int(max_extrapolation_s * NS_PER_S)
        self.max_gap_ns = int(max_gap_s * NS_PER_S)
        self.max_len = max_len
        self._stamps: list[int] = []
        self._poses: list[EgoPose] = []
        self.time_jumps = (
            0  # buffer resets because stamps went back further than max_age (bag loop)
        )
        self.rejected_stale = 0  # poses older than the whole history, ignored
        self._pending_jump: list[EgoPose] = []  # such poses in a row: a time jump once confirmed
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._poses)

    def clear(self) -> None:
        """
        Forget the history (time jumped back, or a reset).

        Poses held back as candidates for a time jump are from the new timeline: they stay.
        """
        with self._lock:
            self._stamps.clear()
            self._poses.clear()
            for pose in self._pending_jump:
                self._insert(pose)
            self._pending_jump.clear()

    def add(self, pose: EgoPose) -> None:
        with self._lock:
            self._add(pose)

    def at(self, stamp_ns: int) -> EgoPose:
        """Return the ego pose at `stamp_ns`; EgoMotionError if the history cannot vouch for it."""
        with self._lock:
            return self._at(stamp_ns)

    def _add(self, pose: EgoPose) -> None:
        if self._stamps and pose.stamp_ns < self._stamps[-1] - self.max_age_ns:
            self._add_from_before_history(pose)
            return
        self._pending_jump.clear()
        self._insert(pose)

    def _add_from_before_history(self, pose: EgoPose) -> None:
        """
        Keep a pose older than the whole history only as a candidate for a time jump.

        One such pose is a stale message (a late or replayed odometry): dropping the history for
        it would leave the next image set without a pose. `JUMP_CONFIRMATIONS` of them in a row,
        in order, are a new timeline (bag loop): the old history is void, they become the history.
        """
        pending = self._pending_jump
        if pending and pose.stamp_ns <= pending[-1].stamp_ns:
            pending.clear()
        pending.append(pose)
        if len(pending) < JUMP_CONFIRMATIONS:
            self.rejected_stale += 1
            raise StalePoseError(
                f'odometry stamp {(self._stamps[-1] - pose.stamp_ns) / NS_PER_S:.3f} s older '
                'than the newest pose (out of order or stale); ignored, history kept'
            )
        self._stamps.clear()
        self._poses.clear()
        self.time_jumps += 1
        for confirmed in pending:
            self._insert(confirmed)
        pending.clear()

    def _insert(self, pose: EgoPose) -> None:
        i = bisect.bisect_left(self._stamps, pose.stamp_ns)
        if i < len(self._stamps) and self._stamps[i] == pose.stamp_ns:
            self._poses[i] = pose
        else:
            self._stamps.insert(i, pose.stamp_ns)
            self._poses.insert(i, pose)
        cutoff = self._stamps[-1] - self.max_age_ns
        drop = max(bisect.bisect_left(self._stamps, cutoff), len(self._stamps) - self.max_len)
        del self._stamps[:drop], self._poses[:drop]

    def _at(self, stamp_ns: int) -> EgoPose:
        if not self._poses:
            raise EgoMotionError(
                'no ego pose received yet: check the odometry topic or the odom -> base_link TF'
            )
        stamps, poses = self._stamps, self._poses
        i = bisect.bisect_left(stamps, stamp_ns)
        if i < len(stamps) and stamps[i] == stamp_ns:
            return self._exact(i)
        if 0 < i < len(stamps):
            self._check_gap(poses[i - 1], poses[i])
            return interpolate(poses[i - 1], poses[i], stamp_ns)
        outside_ns = stamps[0] - stamp_ns if i == 0 else stamp_ns - stamps[-1]
        if outside_ns > self.max_extrapolation_ns:
            side = 'older than the oldest' if i == 0 else 'newer than the newest'
            raise EgoMotionError(
                f'image stamp is {outside_ns / NS_PER_S:.3f} s {side} ego pose '
                f'(max extrapolation {self.max_extrapolation_ns / NS_PER_S:.3f} s): '
                'odometry is late, stopped, or the clocks differ (use_sim_time?)'
            )
        if len(poses) == 1:
            return replace(poses[0], stamp_ns=stamp_ns)
        p0, p1 = (poses[0], poses[1]) if i == 0 else (poses[-2], poses[-1])
        self._check_gap(p0, p1)
        return interpolate(p0, p1, stamp_ns)

    def _exact(self, i: int) -> EgoPose:
        pose = self._poses[i]
        complete = pose.velocity is not None and pose.rotation_rate is not None
        if complete or len(self._poses) == 1:
            return pose
        j0, j1 = (i - 1, i) if i > 0 else (i, i + 1)  # derive the missing rates from a neighbour
        if self._stamps[j1] - self._stamps[j0] > self.max_gap_ns:
            return pose
        derived = interpolate(self._poses[j0], self._poses[j1], pose.stamp_ns)
        return replace(
            pose,
            velocity=pose.velocity if pose.velocity is not None else derived.velocity,
            rotation_rate=pose.rotation_rate
            if pose.rotation_rate is not None
            else derived.rotation_rate,
        )

    def _check_gap(self, p0: EgoPose, p1: EgoPose) -> None:
        gap = p1.stamp_ns - p0.stamp_ns
        if gap > self.max_gap_ns:
            raise EgoMotionError(
                f'ego poses around the image stamp are {gap / NS_PER_S:.3f} s apart '
                f'(max {self.max_gap_ns / NS_PER_S:.3f} s): odometry dropout'
            )

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
Incoming messages -> model-ready `FrameSet`s: the one frame path of the node and of bag replay.

`FrameAssembler` owns everything between the subscriptions and `Pipeline.run`:

- the synchronizer chain (`connect`): six image inputs -> approximate-time synchronizer, and
  `DropoutAssembler` while cameras are silent -> `SpreadGuard` -> `OrderGuard` ->
  `on_set(*images)`;
- the latest CameraInfo per camera (`camera_info`), as of frame time, not sync time;
- the ego pose at the image stamp: from the pose buffer fed by odometry (`add_odometry`) or by the
  odom -> base transforms of /tf (`add_transform`), from a live TF lookup (`ego_transform`), or the
  identity when `ego_motion.source` is none;
- the camera extrinsics: from TF (`calibration`, static mounting: looked up once per camera),
  else the rig YAML.

Messages are duck-typed (rclpy messages, rosbags messages or `plain_msgs`) and nothing here imports
rclpy: the caller supplies the inputs, the synchronizer class, the clock and, where TF exists, the
lookups. The node calls `frame(images, wait_s=ODOMETRY_WAIT_S)` from its worker (it waits in wall
time for odometry that trails the images); replay calls `frame(images)` and retries a set until
`ODOMETRY_WAIT_S` of record time has passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
import threading
import time
from typing import Any

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import (
    EgoMotionError,
    EgoPose,
    pose_from_odometry,
    pose_from_transform,
    PoseBuffer,
)
from bevformer_ros.core.frames import CameraInput, FrameError, FrameSet
from bevformer_ros.core.rig import Rig
from bevformer_ros.core.stamps import stamp_ns
from bevformer_ros.frontend.camera_dropout import CameraLiveness, DropoutAssembler
from bevformer_ros.frontend.camera_info_watch import CameraInfoWatch
from bevformer_ros.frontend.sync import (
    OrderGuard,
    set_stamp_ns,
    SimpleFilter,
    SpreadGuard,
    SyncStats,
)
from bevformer_ros.frontend.time_jump import TimeJumpWatch
import numpy as np

ODOMETRY_WAIT_S = 0.2  # how long a set waits for odometry that has not reached its stamp yet
TF_POSE_WAIT_S = 0.05  # how long a live TF lookup of the ego pose at the image stamp may block
IDENTITY_WXYZ = np.array([1.0, 0.0, 0.0, 0.0])
# for a missing camera, which the model ignores
UNUSED_EXTRINSICS = Extrinsics(np.eye(3), np.zeros(3))

# (target frame, source frame) -> camera extrinsics; raises, or returns None, when TF lacks them
CalibrationLookup = Callable[[str, str], Extrinsics | None]
# (target frame, source frame, stamp ns, timeout s) -> TransformStamped-like; raises when unknown
TransformLookup = Callable[[str, str, int, float], Any]


def skip_kind(exc: FrameError | EgoMotionError) -> str:
    """Return the kind under which a frame that cannot be processed is counted and logged."""
    return getattr(exc, 'kind', 'ego_pose')  # EgoMotionError has no kind: no ego pose


class FrameAssembler:
    """Synchronized camera sets + CameraInfo + ego poses + extrinsics -> `FrameSet`s."""

    def __init__(
        self,
        config: NodeConfig,
        rig: Rig,
        calibration: CalibrationLookup | None = None,
        tf_name: str = 'TF',
        ego_transform: TransformLookup | None = None,
        on_info: Callable[[str], None] | None = None,
    ) -> None:
        """
        Assemble frames for `config` with the rig YAML as the fallback calibration.

        calibration: TF lookup of a camera's extrinsics (used when calibration.use_tf), named
        `tf_name` in the extrinsics sources; ego_transform: live TF lookup of odom_frame ->
        base_frame at a stamp (used when ego_motion.source is tf; without it /tf poses go through
        `add_transform`); on_info: receives one line per camera calibration decided, and the first
        TF failure.
        """
        self.config = config
        self.rig = rig
        self._calibration = calibration
        self._tf_name = tf_name
        self._ego_transform = ego_transform
        self._on_info = on_info or (lambda text: None)
        self._tf_failure_noted = False
        ego = config.ego_motion
        self.poses = PoseBuffer(
            max_age_s=ego.buffer_s, max_extrapolation_s=ego.max_extrapolation_s
        )
        self._pose_added = threading.Condition()  # notified on every pose, for `frame(wait_s=...)`
        self.infos = CameraInfoWatch(len(config.cameras.names))
        self._extrinsics: dict[int, Extrinsics] = {}
        # camera name -> where its extrinsics came from
        self.extrinsics_sources: dict[str, str] = {}
        self.guard: SpreadGuard | None = None
        self.dropout: DropoutAssembler | None = None
        self.order: OrderGuard | None = None
        self.jumps: TimeJumpWatch | None = None

    # ------------------------------------------------------------------ synchronizer chain
    def connect(
        self,
        inputs: Sequence[Any],
        synchronizer_type: Any,
        on_set: Callable[..., None],
        on_spread_rejected: Callable[[str], None] | None = None,
        on_set_dropped: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_time_jump: Callable[[str], None] | None = None,
    ) -> None:
        """
        Chain the camera `inputs` (message_filters-style, camera order) to `on_set(*images)`.

        Complete sets come from `synchronizer_type` (message_filters' or `sync`'s
        ApproximateTimeSynchronizer), sets without the silent cameras (None in their place) from
        the dropout assembler, which reads `clock` in seconds; both pass the spread bound, then
        the stamp order. The CameraInfo seen so far is forgotten: the CameraInfo subscriptions
        start afresh too. When a camera's stamps go back in time every queue is cleared and
        `on_time_jump(text)` is told.
        """
        sync = self.config.sync
        self.infos = CameraInfoWatch(len(self.config.cameras.names))
        self._on_time_jump = on_time_jump or (lambda text: None)
        self.jumps = TimeJumpWatch(len(inputs), int(max(sync.max_out_of_order_s, sync.slop) * 1e9))
        # registered first on every input: a jump is seen (and the queues cleared) before any
        # queue holds the message that reveals it
        for i, f in enumerate(inputs):
            f.registerCallback(self._on_image, i)
        self._synchronizer_type = synchronizer_type
        self._relays: list[SimpleFilter] = []
        synchronizer = self._new_synchronizer(len(inputs))
        self.dropout = DropoutAssembler(
            inputs,
            sync.queue_size,
            sync.slop,
            sync.camera_timeout_s,
            sync.min_cameras,
            clock=clock,
        )
        self.guard = SpreadGuard(
            synchronizer, sync.max_spread, inputs=inputs, on_reject=on_spread_rejected
        )
        self.dropout.registerCallback(self.guard.add)
        self.order = OrderGuard(self.guard, sync.max_out_of_order_s, on_drop=on_set_dropped)
        self.order.registerCallback(on_set)

    def _new_synchronizer(self, count: int) -> Any:
        """
        Build a synchronizer fed through fresh relays: the way to empty message_filters' queues.

        message_filters has no call that clears a synchronizer, so a time jump replaces it; the
        old one, fed by the old relays, gets nothing more.
        """
        sync = self.config.sync
        self._relays = [SimpleFilter() for _ in range(count)]
        return self._synchronizer_type(
            self._relays, sync.queue_size, sync.slop, allow_headerless=False
        )

    def _on_image(self, msg: Any, index: int) -> None:
        stamp = stamp_ns(msg)
        if stamp is not None and self.jumps.check(index, stamp):
            self.clear_queues()
            self._on_time_jump(
                f'camera {self.config.cameras.names[index]} stamp went back in time (bag '
                'loop?): synchronizer, dropout and pose queues cleared, a new sequence starts'
            )
        self._relays[index].signalMessage(msg)

    def clear_queues(self) -> None:
        """
        Drop every message waiting for a set, and the pose history (time jumped back, or reset).

        CameraInfo stays: it is the latest per camera, not indexed by time.
        """
        if self.guard is not None:
            self.guard.incoming_connection = self._new_synchronizer(
                len(self._relays)
            ).registerCallback(self.guard.add)
        if self.dropout is not None:
            self.dropout.clear()
        self.clear_poses()

    def restart(self) -> None:
        """Start a new sequence (`~/reset`): queues cleared, stamps forgotten."""
        if self.guard is not None:
            self.jumps.restart()
            self.clear_queues()

    def disconnect(self) -> None:
        """Stop judging liveness (no camera is "silent" while nothing listens); stats stay."""
        self.dropout = None

    def liveness(self) -> CameraLiveness | None:
        return self.dropout.liveness() if self.dropout is not None else None

    def sync_stats(self) -> SyncStats | None:
        return self.guard.stats() if self.guard is not None else None

    def set_max_spread(self, max_spread_s: float) -> None:
        """Apply a new `sync.max_spread` to the running chain."""
        if self.guard is not None:
            self.guard.set_max_spread(max_spread_s)

    # ------------------------------------------------------------------ CameraInfo and poses
    def camera_info(self, index: int, info: Any) -> str | None:
        """Store camera `index`'s CameraInfo; the change when it differs from the previous one."""
        return self.infos.update(index, info)

    def add_odometry(self, msg: Any) -> None:
        """Add the pose of a nav_msgs/Odometry; EgoMotionError when it is unusable."""
        self.add_pose(pose_from_odometry(msg))

    def odometry_frames_note(self, msg: Any) -> str | None:
        """Return a warning when an Odometry's frames are not the configured odom -> base ones."""
        ego = self.config.ego_motion
        got = (msg.header.frame_id.lstrip('/'), msg.child_frame_id.lstrip('/'))
        if got == (ego.odom_frame, ego.base_frame):
            return None
        return (
            f'odometry is {got[0]!r} -> {got[1]!r} but ego_motion.odom_frame -> base_frame are '
            f'{ego.odom_frame!r} -> {ego.base_frame!r}; using it as the ego pose anyway'
        )

    def ego_transforms(self, transforms: Iterable[Any]) -> Iterator[Any]:
        """Select the odom_frame -> base_frame transforms among `transforms` (a TFMessage's)."""
        ego = self.config.ego_motion
        for transform in transforms:
            frames = (transform.header.frame_id.lstrip('/'), transform.child_frame_id.lstrip('/'))
            if frames == (ego.odom_frame, ego.base_frame):
                yield transform

    def add_transform(self, transform: Any) -> None:
        """Add the pose of an odom -> base TransformStamped; EgoMotionError when it is unusable."""
        self.add_pose(pose_from_transform(transform))

    def add_pose(self, pose: EgoPose) -> None:
        with self._pose_added:
            self.poses.add(pose)
            self._pose_added.notify_all()

    def clear_poses(self) -> None:
        """Forget the pose history (the clock jumped back)."""
        with self._pose_added:
            self.poses.clear()

    # ------------------------------------------------------------------ frames
    def frame(self, images: Sequence[Any], wait_s: float = 0.0) -> FrameSet:
        """
        Build the FrameSet of one synchronized set (None for a missing camera), stamped as the set.

        The ego pose comes first: EgoMotionError when none is known at the stamp within `wait_s`
        (wall time); then CameraInfo as of now (static: a late first one still counts) and the
        extrinsics (FrameError 'calibration' when neither TF nor the rig knows a camera).
        """
        stamp = set_stamp_ns(images)  # the reference camera's (or the first present one's) stamp
        pose = self.ego_pose(stamp, wait_s)
        return FrameSet(stamp, self.camera_inputs(images), pose)

    def camera_inputs(self, images: Sequence[Any]) -> list[CameraInput]:
        infos = self.infos.snapshot()
        return [
            CameraInput(
                image,
                info,
                UNUSED_EXTRINSICS if image is None else self.camera_extrinsics(i, image),
            )
            for i, (image, info) in enumerate(zip(images, infos))
        ]

    def ego_pose(self, stamp: int, wait_s: float = 0.0) -> EgoPose:
        """Return the ego pose at `stamp`; EgoMotionError when none is known within `wait_s`."""
        ego = self.config.ego_motion
        if ego.source == 'none':
            return EgoPose(stamp, np.zeros(3), IDENTITY_WXYZ.copy())
        if ego.source == 'tf' and self._ego_transform is not None:
            try:
                transform = self._ego_transform(
                    ego.odom_frame, ego.base_frame, stamp, TF_POSE_WAIT_S
                )
            except Exception as exc:  # tf2 raises several lookup exception types
                raise EgoMotionError(
                    f'no TF {ego.odom_frame} -> {ego.base_frame} at the image stamp: {exc}'
                ) from exc
            return pose_from_transform(transform)
        deadline = time.monotonic() + wait_s
        with self._pose_added:
            while True:
                try:
                    return self.poses.at(stamp)
                except EgoMotionError:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise
                    # odometry often trails the images by a few ms
                    self._pose_added.wait(remaining)

    def camera_extrinsics(self, index: int, image: Any) -> Extrinsics:
        """Camera `index` -> reference frame: TF (looked up once) if it knows, else the rig."""
        if index in self._extrinsics:
            return self._extrinsics[index]
        name, reference = self.config.cameras.names[index], self.config.outputs.frame_id
        frame_id = image.header.frame_id
        extrinsics = None
        if self._calibration is not None and self.config.calibration.use_tf:
            extrinsics = self._tf_extrinsics(reference, frame_id)  # static mounting: latest is it
            source = f'{self._tf_name} {reference} <- {frame_id}'
        if extrinsics is None:
            if name not in self.rig.camera_names:
                raise FrameError(
                    'calibration',
                    f'camera {name}: no {self._tf_name} {reference} <- '
                    f'{frame_id} and no such camera in the rig YAML',
                )
            extrinsics = self.rig.camera(name).sensor2lidar
            source = f'rig {self.config.calibration.rig_yaml} ({name})'
        self._on_info(f'camera {name}: extrinsics from {source}')
        self._extrinsics[index] = extrinsics
        self.extrinsics_sources[name] = source
        return extrinsics

    def _tf_extrinsics(self, reference: str, frame_id: str) -> Extrinsics | None:
        try:
            return self._calibration(reference, frame_id)
        except Exception as exc:  # tf2 raises several lookup exception types
            if not self._tf_failure_noted:
                self._tf_failure_noted = True
                self._on_info(f'no {self._tf_name} for {frame_id} ({exc}); using the rig YAML')
            return None

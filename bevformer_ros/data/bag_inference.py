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

"""Offline inference over a recorded bag: the node's frame path, fed from the bag instead of DDS.

Messages go through in record order exactly as the node's callbacks would take them: images into the same
synchronizer chain as the node's (`ApproximateTimeSynchronizer` and `camera_dropout.DropoutAssembler` ->
`SpreadGuard` -> `OrderGuard`; the synchronizer is `sync`'s implementation of the message_filters semantics,
which the node uses where message_filters is not installed; the bag's record time is the clock), CameraInfo
into a
`CameraInfoWatch`, odometry (or the odom -> base_link transforms of /tf) into a `PoseBuffer`, /tf_static
into the static transform tree. Each synchronized set then runs `Pipeline.run` with the ego pose at its
stamp and the camera extrinsics from TF (else the rig YAML), as the node's worker does.

Differences, all because nothing here runs in real time: every synchronized set is processed (the node's
latest-wins slot drops sets while the model is busy), and a set whose ego pose is not known yet waits for
the odometry recorded up to `ODOMETRY_WAIT_S` after it (the node waits that long in wall time). Only the
/tf_static and /tf transforms this module reads count as TF: a direct `calibration` lookup of reference frame
<- camera frame through the static tree, and odom_frame -> base_frame directly in /tf.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import (
    EgoMotionError,
    EgoPose,
    PoseBuffer,
    pose_from_odometry,
    pose_from_transform,
)
from bevformer_ros.core.rig import Rig
from bevformer_ros.data.bag_io import BagError, deserialize
from bevformer_ros.frontend.camera_dropout import DropoutAssembler
from bevformer_ros.frontend.camera_info_watch import CameraInfoWatch
from bevformer_ros.frontend.sync import (
    NS_PER_S,
    ApproximateTimeSynchronizer,
    OrderGuard,
    SimpleFilter,
    SpreadGuard,
    set_stamp_ns,
)
from bevformer_ros.pipeline import CameraInput, FrameError, FrameSet, Pipeline, PipelineResult
from bevformer_ros.train.static_tf import StaticTransforms

ODOMETRY_WAIT_S = 0.2  # as the node's ODOMETRY_WAIT_S: odometry may trail the images a little
IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
INFO_TYPE, ODOM_TYPE = 'sensor_msgs/msg/CameraInfo', 'nav_msgs/msg/Odometry'
TF_TYPE = 'tf2_msgs/msg/TFMessage'
TF_TOPIC, TF_STATIC_TOPIC = '/tf', '/tf_static'
IDENTITY_WXYZ = np.array([1.0, 0.0, 0.0, 0.0])
UNUSED_EXTRINSICS = Extrinsics(np.eye(3), np.zeros(3))  # for a missing camera, which the model ignores


def absolute_topic(name: str) -> str:
    """A node-relative topic name as the node resolves it in the root namespace."""
    return name if name.startswith('/') else f'/{name}'


@dataclass(frozen=True)
class InferredFrame:
    frame: FrameSet  # what went into the pipeline (stamp, camera messages, ego pose)
    result: PipelineResult


@dataclass
class InferenceStats:
    messages: int = 0
    sets: int = 0  # synchronized sets that passed the spread and order guards
    processed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # frames not processed, by FrameError kind
    dropped: dict[str, int] = field(default_factory=dict)  # sets dropped by the guards
    resets: dict[str, int] = field(default_factory=dict)  # temporal resets by kind
    problems: dict[str, str] = field(default_factory=dict)  # first description of each problem kind

    def count(self, table: dict[str, int], kind: str, detail: str = '') -> None:
        table[kind] = table.get(kind, 0) + 1
        if detail:
            self.problems.setdefault(kind, detail)


class BagInference:
    """Frames of a bag through `pipeline`; `run(reader)` yields an `InferredFrame` per processed set."""

    def __init__(self, config: NodeConfig, pipeline: Pipeline, rig: Rig, want_bev: bool = True) -> None:
        self.config = config
        self.pipeline = pipeline
        self.rig = rig
        self.want_bev = want_bev
        self.stats = InferenceStats()
        cameras, sync = config.cameras, config.sync
        self.image_topics = [absolute_topic(t) for t in cameras.subscribed_image_topics()]
        self._image_index = {t: i for i, t in enumerate(self.image_topics)}
        self._info_index = {absolute_topic(t): i for i, t in enumerate(cameras.info_topics)}
        self._odom_topic = absolute_topic(config.ego_motion.odom_topic)
        self._now_ns = 0
        self._inputs = [SimpleFilter() for _ in cameras.names]
        synchronizer = ApproximateTimeSynchronizer(self._inputs, sync.queue_size, sync.slop,
                                                   allow_headerless=False)
        dropout = DropoutAssembler(self._inputs, sync.queue_size, sync.slop, sync.camera_timeout_s,
                                   sync.min_cameras, clock=lambda: self._now_ns / NS_PER_S)
        guard = SpreadGuard(synchronizer, sync.max_spread, inputs=self._inputs,
                            on_reject=lambda detail: self.stats.count(self.stats.dropped, 'spread', detail))
        dropout.registerCallback(guard.add)
        order = OrderGuard(guard, sync.max_out_of_order_s,
                           on_drop=lambda kind, detail: self.stats.count(self.stats.dropped, kind, detail))
        order.registerCallback(self._on_set)
        self._infos = CameraInfoWatch(len(cameras.names))
        self._poses = PoseBuffer(max_age_s=config.ego_motion.buffer_s,
                                 max_extrapolation_s=config.ego_motion.max_extrapolation_s)
        self.static = StaticTransforms()
        self._extrinsics: dict[int, Extrinsics] = {}
        self.extrinsics_sources: dict[str, str] = {}  # camera name -> where its extrinsics came from
        self._pending: deque[tuple[tuple[Any, ...], int]] = deque()  # (set, deadline record time)

    # ------------------------------------------------------------------ messages
    def run(self, reader: Any, on_message: Callable[[Any, int, bytes], None] | None = None
            ) -> Iterator[InferredFrame]:
        """Read `reader` (an opened rosbags Reader) to the end; `on_message(connection, record_ns, raw)` sees
        every message first."""
        present = {c.topic for c in reader.connections}
        if not present & set(self.image_topics):
            raise BagError(f'the bag has none of the image topics {self.image_topics}; it has '
                           f'{sorted(present)}. Set cameras.image_topics (and cameras.compressed) to match')
        for conn, record_ns, raw in reader.messages():
            self._now_ns = record_ns
            self.stats.messages += 1
            if on_message is not None:
                on_message(conn, record_ns, raw)
            self._handle(conn.topic, conn.msgtype, raw)
            yield from self._drain(final=False)
        yield from self._drain(final=True)

    def _handle(self, topic: str, msgtype: str, raw: bytes) -> None:
        ego = self.config.ego_motion
        if topic in self._image_index and msgtype in IMAGE_TYPES:
            self._inputs[self._image_index[topic]].signalMessage(deserialize(raw, msgtype))
        elif topic in self._info_index and msgtype == INFO_TYPE:
            change = self._infos.update(self._info_index[topic], deserialize(raw, msgtype))
            if change is not None:
                self.stats.problems.setdefault('camera_info_changed', f'{topic}: {change}')
        elif topic == self._odom_topic and msgtype == ODOM_TYPE and ego.source == 'odom':
            self._add_pose(pose_from_odometry, deserialize(raw, msgtype))
        elif topic == TF_TOPIC and msgtype == TF_TYPE and ego.source == 'tf':
            for transform in deserialize(raw, msgtype).transforms:
                if (transform.header.frame_id.lstrip('/'), transform.child_frame_id.lstrip('/')) == \
                        (ego.odom_frame, ego.base_frame):
                    self._add_pose(pose_from_transform, transform)
        elif topic == TF_STATIC_TOPIC and msgtype == TF_TYPE:
            for transform in deserialize(raw, msgtype).transforms:
                self.static.add(transform)

    def _add_pose(self, convert: Callable[[Any], EgoPose], msg: Any) -> None:
        try:
            self._poses.add(convert(msg))
        except EgoMotionError as exc:
            self.stats.count(self.stats.skipped, 'odometry_rejected', str(exc))

    def _on_set(self, *images: Any) -> None:
        self.stats.sets += 1
        self._pending.append((images, self._now_ns + int(ODOMETRY_WAIT_S * NS_PER_S)))

    # ------------------------------------------------------------------ frames
    def _drain(self, final: bool) -> Iterator[InferredFrame]:
        """Process the waiting sets in order; a set without an ego pose yet waits until its deadline."""
        while self._pending:
            images, deadline = self._pending[0]
            stamp = set_stamp_ns(images)
            try:
                pose = self._ego_pose(stamp)
            except EgoMotionError as exc:
                if not final and self._now_ns < deadline:
                    return
                self._pending.popleft()
                self.stats.count(self.stats.skipped, 'ego_pose', f'frame {stamp / NS_PER_S:.3f}: {exc}')
                continue
            self._pending.popleft()
            inferred = self._process(images, stamp, pose)
            if inferred is not None:
                yield inferred

    def _process(self, images: tuple[Any, ...], stamp: int, pose: EgoPose) -> InferredFrame | None:
        try:
            # CameraInfo as of now, not as of the sync, as in the node
            cameras = [CameraInput(image, info, UNUSED_EXTRINSICS if image is None
                                   else self._camera_extrinsics(i, image))
                       for i, (image, info) in enumerate(zip(images, self._infos.snapshot()))]
            frame = FrameSet(stamp, cameras, pose)
            result = self.pipeline.run(frame, want_bev=self.want_bev)
        except (FrameError, EgoMotionError) as exc:
            kind = getattr(exc, 'kind', 'ego_pose')
            self.stats.count(self.stats.skipped, kind, f'frame {stamp / NS_PER_S:.3f}: {exc}')
            return None
        self.stats.processed += 1
        if result.reset is not None:
            self.stats.count(self.stats.resets, result.reset.kind)
        return InferredFrame(frame, result)

    def _ego_pose(self, stamp: int) -> EgoPose:
        if self.config.ego_motion.source == 'none':
            return EgoPose(stamp, np.zeros(3), IDENTITY_WXYZ.copy())
        return self._poses.at(stamp)

    def _camera_extrinsics(self, index: int, image: Any) -> Extrinsics:
        if index in self._extrinsics:
            return self._extrinsics[index]
        name, reference = self.config.cameras.names[index], self.config.outputs.frame_id
        extrinsics = None
        if self.config.calibration.use_tf:  # static mounting: the latest transform is the transform
            extrinsics = self.static.lookup(reference, image.header.frame_id)
            source = f'/tf_static {reference} <- {image.header.frame_id}'
        if extrinsics is None:
            if name not in self.rig.camera_names:
                raise FrameError('calibration', f'camera {name}: no /tf_static {reference} <- '
                                                f'{image.header.frame_id} and no such camera in the rig YAML')
            extrinsics = self.rig.camera(name).sensor2lidar
            source = f'rig {self.config.calibration.rig_yaml} ({name})'
        self._extrinsics[index] = extrinsics
        self.extrinsics_sources[name] = source
        return extrinsics

    def lidar2ego(self) -> Extrinsics | None:
        """Reference frame -> base frame: from /tf_static when it links the two, else the rig's lidar2ego
        (None when it has none)."""
        found = self.static.lookup(self.config.ego_motion.base_frame, self.config.outputs.frame_id)
        return found if found is not None else self.rig.lidar2ego

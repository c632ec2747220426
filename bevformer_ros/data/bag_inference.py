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
Offline inference over a recorded bag: the node's frame path, fed from the bag instead of DDS.

Messages go through in record order exactly as the node's callbacks would take them, into the
node's `FrameAssembler`: images into its synchronizer chain (`sync`'s implementation of the
message_filters semantics, which the node uses where message_filters is not installed; the bag's
record time is the clock), CameraInfo, odometry (or the odom -> base_link transforms of /tf) into
its pose buffer, and /tf_static into the static transform tree that gives it the camera
extrinsics (else the rig YAML). Each synchronized set then becomes a `FrameSet` and runs
`Pipeline.run`, as in the node's worker.

Differences, all because nothing here runs in real time: every synchronized set is processed (the
node's latest-wins slot drops sets while the model is busy), and a set whose ego pose is not known
yet waits for the odometry recorded up to `ODOMETRY_WAIT_S` after it (the node waits that long in
wall time). Only the /tf_static and /tf transforms this module reads count as TF: a direct
`calibration` lookup of reference frame <- camera frame through the static tree, and odom_frame ->
base_frame directly in /tf.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import EgoMotionError
from bevformer_ros.core.rig import Rig
from bevformer_ros.data.bag_io import BagError, deserialize
from bevformer_ros.data.static_tf import StaticTransforms
from bevformer_ros.frontend.assembler import FrameAssembler, ODOMETRY_WAIT_S, skip_kind
from bevformer_ros.frontend.sync import (
    ApproximateTimeSynchronizer,
    NS_PER_S,
    set_stamp_ns,
    SimpleFilter,
)
from bevformer_ros.pipeline import FrameError, FrameSet, Pipeline, PipelineResult

IMAGE_TYPES = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
INFO_TYPE, ODOM_TYPE = 'sensor_msgs/msg/CameraInfo', 'nav_msgs/msg/Odometry'
TF_TYPE = 'tf2_msgs/msg/TFMessage'
TF_TOPIC, TF_STATIC_TOPIC = '/tf', '/tf_static'


def absolute_topic(name: str) -> str:
    """Return a node-relative topic name as the node resolves it in the root namespace."""
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
    # frames not processed, by FrameError kind
    skipped: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # sets dropped by the guards
    resets: dict[str, int] = field(default_factory=dict)  # temporal resets by kind
    # first description of each problem kind
    problems: dict[str, str] = field(default_factory=dict)

    def count(self, table: dict[str, int], kind: str, detail: str = '') -> None:
        table[kind] = table.get(kind, 0) + 1
        if detail:
            self.problems.setdefault(kind, detail)


class BagInference:
    """
    Run the frames of a bag through `pipeline`.

    `run(reader)` yields an `InferredFrame` per processed set.
    """

    def __init__(
        self, config: NodeConfig, pipeline: Pipeline, rig: Rig, want_bev: bool = True
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.rig = rig
        self.want_bev = want_bev
        self.stats = InferenceStats()
        cameras = config.cameras
        self.image_topics = [absolute_topic(t) for t in cameras.subscribed_image_topics()]
        self._image_index = {t: i for i, t in enumerate(self.image_topics)}
        self._info_index = {absolute_topic(t): i for i, t in enumerate(cameras.info_topics)}
        self._odom_topic = absolute_topic(config.ego_motion.odom_topic)
        self._now_ns = 0
        self.static = StaticTransforms()
        self.assembler = FrameAssembler(
            config, rig, calibration=self.static.lookup, tf_name='/tf_static'
        )
        self._inputs = [SimpleFilter() for _ in cameras.names]
        self.assembler.connect(
            self._inputs,
            ApproximateTimeSynchronizer,
            self._on_set,
            on_spread_rejected=lambda detail: self.stats.count(
                self.stats.dropped, 'spread', detail
            ),
            on_set_dropped=lambda kind, detail: self.stats.count(self.stats.dropped, kind, detail),
            clock=lambda: self._now_ns / NS_PER_S,
        )  # the record time is the clock
        self._pending: deque[tuple[tuple[Any, ...], int]] = deque()  # (set, deadline record time)

    @property
    def extrinsics_sources(self) -> dict[str, str]:
        """Camera name -> where its extrinsics came from."""
        return self.assembler.extrinsics_sources

    # ------------------------------------------------------------------ messages
    def run(
        self, reader: Any, on_message: Callable[[Any, int, bytes], None] | None = None
    ) -> Iterator[InferredFrame]:
        """
        Read `reader` (an opened rosbags Reader) to the end.

        `on_message(connection, record_ns, raw)` sees every message first.
        """
        present = {c.topic for c in reader.connections}
        if not present & set(self.image_topics):
            raise BagError(
                f'the bag has none of the image topics {self.image_topics}; it has '
                f'{sorted(present)}. Set cameras.image_topics (and cameras.compressed) to match'
            )
        for conn, record_ns, raw in reader.messages():
            self._now_ns = record_ns
            self.stats.messages += 1
            if on_message is not None:
                on_message(conn, record_ns, raw)
            self._handle(conn.topic, conn.msgtype, raw)
            yield from self._drain(final=False)
        yield from self._drain(final=True)

    def _handle(self, topic: str, msgtype: str, raw: bytes) -> None:
        ego, assembler = self.config.ego_motion, self.assembler
        if topic in self._image_index and msgtype in IMAGE_TYPES:
            self._inputs[self._image_index[topic]].signalMessage(deserialize(raw, msgtype))
        elif topic in self._info_index and msgtype == INFO_TYPE:
            change = assembler.camera_info(self._info_index[topic], deserialize(raw, msgtype))
            if change is not None:
                self.stats.problems.setdefault('camera_info_changed', f'{topic}: {change}')
        elif topic == self._odom_topic and msgtype == ODOM_TYPE and ego.source == 'odom':
            self._add_pose(assembler.add_odometry, deserialize(raw, msgtype))
        elif topic == TF_TOPIC and msgtype == TF_TYPE and ego.source == 'tf':
            for transform in assembler.ego_transforms(deserialize(raw, msgtype).transforms):
                self._add_pose(assembler.add_transform, transform)
        elif topic == TF_STATIC_TOPIC and msgtype == TF_TYPE:
            for transform in deserialize(raw, msgtype).transforms:
                self.static.add(transform)

    def _add_pose(self, add: Callable[[Any], None], msg: Any) -> None:
        try:
            add(msg)
        except EgoMotionError as exc:
            self.stats.count(self.stats.skipped, 'odometry_rejected', str(exc))

    def _on_set(self, *images: Any) -> None:
        self.stats.sets += 1
        self._pending.append((images, self._now_ns + int(ODOMETRY_WAIT_S * NS_PER_S)))

    # ------------------------------------------------------------------ frames
    def _drain(self, final: bool) -> Iterator[InferredFrame]:
        """
        Process the waiting sets in order.

        A set without an ego pose yet waits until its deadline.
        """
        while self._pending:
            images, deadline = self._pending[0]
            stamp = set_stamp_ns(images)
            try:
                frame = self.assembler.frame(images)
            except (FrameError, EgoMotionError) as exc:
                if isinstance(exc, EgoMotionError) and not final and self._now_ns < deadline:
                    return  # the odometry recorded just after the set may still come
                self._pending.popleft()
                self._skip(stamp, exc)
                continue
            self._pending.popleft()
            inferred = self._process(frame)
            if inferred is not None:
                yield inferred

    def _process(self, frame: FrameSet) -> InferredFrame | None:
        try:
            result = self.pipeline.run(frame, want_bev=self.want_bev)
        except (FrameError, EgoMotionError) as exc:
            self._skip(frame.stamp_ns, exc)
            return None
        self.stats.processed += 1
        if result.reset is not None:
            self.stats.count(self.stats.resets, result.reset.kind)
        return InferredFrame(frame, result)

    def _skip(self, stamp: int, exc: FrameError | EgoMotionError) -> None:
        self.stats.count(
            self.stats.skipped, skip_kind(exc), f'frame {stamp / NS_PER_S:.3f}: {exc}'
        )

    def lidar2ego(self) -> Extrinsics | None:
        """
        Return the reference frame -> base frame transform.

        From /tf_static when it links the two, else the rig's lidar2ego (None when it has none).
        """
        found = self.static.lookup(self.config.ego_motion.base_frame, self.config.outputs.frame_id)
        return found if found is not None else self.rig.lidar2ego

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
What `bevformer_infer_bag` writes per inferred frame.

The node's output topics into the output bag (stamped and recorded at the image stamp), and the
frame's nuScenes results entries beside them.

Topics are the node's under its default name (`~/markers` -> /bevformer/markers, ...), the messages
those of `output_messages`, so the bag reads like a recording of the node.
"""

from __future__ import annotations

from typing import Any

from bevformer_ros.config import NodeConfig
from bevformer_ros.core.bev_image import bev_to_rgb
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.markers import build_box_markers
from bevformer_ros.data.bag_inference import InferredFrame
from bevformer_ros.data.bag_io import BagWriter, serialize, typestore
from bevformer_ros.data.output_messages import (
    bev_features_message,
    IMAGE_TYPE,
    marker_array_message,
    MARKERS_TYPE,
    rgb_image_message,
)
from bevformer_ros.eval.nusc_results import ResultsError, sample_results
from bevformer_ros.eval.tokens import sample_token
from bevformer_ros.pipeline import Pipeline, PipelineResult

NODE = '/bevformer'  # the node's default name: its ~/ topics are /bevformer/...
MARKERS_TOPIC, BEV_FEATURES_TOPIC, BEV_IMAGE_TOPIC = (
    f'{NODE}/markers',
    f'{NODE}/bev_features',
    f'{NODE}/bev_image',
)
OUTPUT_TOPICS = (MARKERS_TOPIC, BEV_FEATURES_TOPIC, BEV_IMAGE_TOPIC)


class OutputWriter:
    """
    Write the node's output messages of each inferred frame into the bag.

    The results entries go on the side.
    """

    def __init__(
        self,
        bag: BagWriter,
        config: NodeConfig,
        pipeline: Pipeline,
        scene: str,
        with_results: bool,
    ) -> None:
        self.bag, self.config, self.pipeline, self.scene = bag, config, pipeline, scene
        self.with_results = with_results
        self.results: dict[str, list[dict[str, Any]]] = {}  # sample token -> nuScenes boxes
        self.markers: list[int] = []  # detections drawn per frame
        self.model_s: list[float] = []  # model time per frame
        self.not_copied: set[str] = set()  # input topics --copy-inputs left out

    def write(self, inferred: InferredFrame, lidar2ego: Extrinsics | None) -> None:
        """
        Write the outputs of one inferred frame.

        `lidar2ego` (reference frame -> base_link) places the results; None is an error with
        results.
        """
        self._write_topics(inferred.result)
        if self.with_results:
            self._add_results(inferred, lidar2ego)

    def _write_topics(self, result: PipelineResult) -> None:
        out, stamp = self.config.outputs, result.stamp_ns
        boxes = build_box_markers(
            result.boxes,
            result.scores,
            result.labels,
            out.score_threshold,
            out.max_markers,
            self.pipeline.cfg.class_names,
        )
        self.markers.append(len(boxes))
        self.model_s.append(result.timings.get('model', 0.0))
        self._put(
            MARKERS_TOPIC, MARKERS_TYPE, stamp, marker_array_message(boxes, out.frame_id, stamp)
        )
        if result.bev is not None and out.publish_bev_features:
            features = bev_features_message(result.bev, out.frame_id, stamp)
            self._put(BEV_FEATURES_TOPIC, IMAGE_TYPE, stamp, features)
        if result.bev is not None and out.publish_bev_image:
            picture = bev_to_rgb(result.bev, out.bev_image_mode)  # [H, W, 3] uint8, forward up
            self._put(
                BEV_IMAGE_TOPIC, IMAGE_TYPE, stamp, rgb_image_message(picture, out.frame_id, stamp)
            )

    def _add_results(self, inferred: InferredFrame, lidar2ego: Extrinsics | None) -> None:
        if lidar2ego is None:
            raise ResultsError(
                f'no {self.config.ego_motion.base_frame} <- {self.config.outputs.frame_id} in '
                "the bag's /tf_static and no lidar2ego in the rig "
                f'{self.config.calibration.rig_yaml}: the results JSON needs the reference '
                'frame on the vehicle'
            )
        result, pose = inferred.result, inferred.frame.ego_pose
        token = sample_token(self.scene, result.stamp_ns)
        self.results[token] = sample_results(
            token,
            result.boxes,
            result.scores,
            result.labels,
            self.pipeline.cfg.class_names,
            lidar2ego,
            Extrinsics(pose.rotation_matrix, pose.translation),
        )

    def _put(self, topic: str, typename: str, stamp_ns: int, msg: Any) -> None:
        self.bag.write(topic, typename, stamp_ns, serialize(msg))


def input_copier(bag: BagWriter, skipped: set[str]) -> Any:
    """
    Return an `on_message` callback copying every input message into `bag`.

    Topics it cannot copy go to `skipped`.
    """
    known = typestore().fielddefs

    def copy(conn: Any, record_ns: int, raw: bytes) -> None:
        if conn.topic in OUTPUT_TOPICS or conn.msgtype not in known:
            skipped.add(conn.topic)  # an old output of the node, or a type rosbags cannot write
            return
        bag.write(conn.topic, conn.msgtype, record_ns, raw)

    return copy

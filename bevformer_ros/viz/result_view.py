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
The `FrameView` of one processed camera set: what the node's `~/overlay` picture shows.

The camera images are decoded again from the set's messages (a view for raw images; compressed ones
are decoded a second time, which only happens while someone subscribes to the overlay) and
`lidar2img` is built at the images' own resolution, not the network's. Cameras are keyed by their
official names in model order, so that `overlay.CAMERA_LAYOUT` places them whatever `cameras.names`
calls them.
"""

from __future__ import annotations

from collections.abc import Sequence

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.pipeline import camera_lidar2img, decode_camera_image, FrameSet, PipelineResult
from bevformer_ros.viz.frame_view import Boxes, FrameView
import numpy as np


def result_view(
    frame: FrameSet,
    result: PipelineResult,
    score_threshold: float,
    max_boxes: int,
    title: str = '',
    notes: Sequence[str] = (),
) -> FrameView:
    """
    Build the picture content of `result` on its input `frame`.

    The cameras present, the detections scoring at least `score_threshold` (at most `max_boxes`,
    best first, like ~/markers) and the BEV when computed.
    """
    images: dict[str, np.ndarray] = {}
    for name, cam in zip(OFFICIAL_CAMERAS, frame.cameras):
        if cam.image is not None:
            image, order = decode_camera_image(cam.image)  # [H, W, 3] uint8
            images[name] = image if order == 'rgb' else np.ascontiguousarray(image[..., ::-1])
    present = [cam.image is not None for cam in frame.cameras]
    sizes = [
        (images[name].shape[1], images[name].shape[0]) if name in images else (0, 0)
        for name in OFFICIAL_CAMERAS[: len(frame.cameras)]
    ]
    lidar2img = camera_lidar2img(frame.cameras, sizes, 1.0, present)  # [N, 4, 4] to image pixels
    return FrameView(
        stamp_ns=result.stamp_ns,
        images=images,
        lidar2img={n: lidar2img[i] for i, n in enumerate(OFFICIAL_CAMERAS) if n in images},
        detections=_detections(result, score_threshold, max_boxes),
        bev=result.bev,
        title=title,
        notes=list(notes),
    )


def _detections(result: PipelineResult, score_threshold: float, max_boxes: int) -> Boxes:
    """Select the boxes ~/markers shows: finite, score >= threshold, best first."""
    finite = np.isfinite(result.boxes).all(axis=1) & np.isfinite(result.scores)
    keep = np.flatnonzero(finite & (result.scores >= score_threshold))
    keep = keep[np.argsort(-result.scores[keep], kind='stable')][: max(max_boxes, 0)]  # [K']
    return Boxes(result.boxes[keep], result.labels[keep].astype(np.int64), result.scores[keep])

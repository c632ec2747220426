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
Camera frames of bags as `FrameView`s: images, calibration, detections, ground truth, BEV.

A first pass reads everything but the images (CameraInfo, MarkerArrays, BEV features; image stamps
come from the CDR header without decoding); frames are the stamps of the first rig camera that has
images, and every other camera joins the frame nearest its own stamp (within `MATCH_S`, the node's
default sync slop). Images are decoded only when a frame is rendered, so a bag of any length
streams through in bounded memory.

Calibration: K from the camera's CameraInfo (else the rig's K scaled to the image), extrinsics from
the rig YAML (`config/nuscenes_rig.yaml` by default, the one `bevformer_synth` renders with).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bevformer_ros.core.calibration import lidar2img, scale_intrinsics
from bevformer_ros.core.progress import Progress
from bevformer_ros.core.rig import load_rig, Rig
from bevformer_ros.data.bag_io import BagError, deserialize, header_stamp_ns, open_bag
from bevformer_ros.frontend.image_codec import (
    compressed_to_numpy,
    ImageDecodeError,
    imgmsg_to_numpy,
)
from bevformer_ros.resources import config_file
from bevformer_ros.synth.ground_truth_file import ground_truth_path, read_ground_truth
from bevformer_ros.viz.frame_view import Boxes, FrameView
from bevformer_ros.viz.marker_boxes import boxes_from_marker_array, marker_array_stamp_ns
from bevformer_ros.viz.overlay import write_frame_png
import numpy as np

IMAGE_TYPE, COMPRESSED_TYPE = 'sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage'
INFO_TYPE, MARKERS_TYPE = 'sensor_msgs/msg/CameraInfo', 'visualization_msgs/msg/MarkerArray'
GT_TOPIC = '/ground_truth/markers'
MATCH_S = 0.08
STAMP_TOLERANCE_NS = 1_000_000  # outputs carry the image stamp; allow for float rounding elsewhere


def _camera_of(topic: str, names: Sequence[str]) -> str | None:
    parts = topic.strip('/').split('/')
    return next((name for name in names if name in parts), None)


def _nearest(stamps: dict[int, Any], stamp: int, tolerance_ns: int) -> Any:
    if not stamps:
        return None
    key = min(stamps, key=lambda s: abs(s - stamp))
    return stamps[key] if abs(key - stamp) <= tolerance_ns else None


def bev_features_array(msg: Any) -> np.ndarray | None:
    """[H, W, C] float32 of a `32FC<C>` Image (the node's ~/bev_features), None otherwise."""
    if not msg.encoding.startswith('32FC'):
        return None
    channels = int(msg.encoding[4:] or 1)
    dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    data = np.frombuffer(np.asarray(msg.data, dtype=np.uint8).tobytes(), dtype=dtype)
    return data.reshape(msg.height, msg.width, channels).astype(np.float32)


class BagFrames:
    def __init__(
        self,
        bags: Sequence[str | Path],
        detections_topic: str | None = None,
        gt_topic: str = GT_TOPIC,
        rig_path: str | Path | None = None,
    ) -> None:
        self.bags = [Path(b) for b in bags]
        self.rig: Rig = load_rig(rig_path or config_file('nuscenes_rig.yaml'))
        self.gt_topic = gt_topic
        self.detections_topic = detections_topic
        self.image_topics: dict[str, tuple[int, str]] = {}  # topic -> (bag index, camera)
        # camera -> [(header stamp, record time)]
        self.image_stamps: dict[str, list[tuple[int, int]]] = {}
        self.infos: dict[str, Any] = {}  # camera -> first CameraInfo
        self.detections: dict[int, Boxes] = {}  # stamp -> boxes
        self.ground_truth: dict[int, Boxes] = {}
        self.bev: dict[int, Any] = {}  # stamp -> raw BEV image message
        self._index()
        self.frame_stamps, self.members = self._match_frames()

    # ------------------------------------------------------------------ pass 1
    def _index(self) -> None:
        marker_topics: dict[str, list[Any]] = {}
        for index, path in enumerate(self.bags):
            reader = open_bag(path)
            try:
                for conn, record_ns, raw in reader.messages():
                    self._index_message(
                        index, conn.topic, conn.msgtype, record_ns, raw, marker_topics
                    )
            finally:
                reader.close()
            self._read_sidecar(path)
        self._sort_markers(marker_topics)
        if not self.image_stamps:
            raise BagError(
                f'no camera images of {list(self.rig.camera_names)} in '
                f'{[str(b) for b in self.bags]}'
            )

    def _index_message(
        self,
        index: int,
        topic: str,
        msgtype: str,
        record_ns: int,
        raw: bytes,
        marker_topics: dict[str, list[Any]],
    ) -> None:
        if msgtype in (IMAGE_TYPE, COMPRESSED_TYPE) and topic.rstrip('/').endswith('bev_features'):
            msg = deserialize(raw, msgtype)
            self.bev[header_stamp_ns(raw)] = msg
            return
        camera = _camera_of(topic, self.rig.camera_names)
        if msgtype in (IMAGE_TYPE, COMPRESSED_TYPE) and camera is not None:
            self.image_topics[topic] = (index, camera)
            self.image_stamps.setdefault(camera, []).append((header_stamp_ns(raw), record_ns))
        elif msgtype == INFO_TYPE and camera is not None and camera not in self.infos:
            self.infos[camera] = deserialize(raw, msgtype)
        elif msgtype == MARKERS_TYPE:
            marker_topics.setdefault(topic, []).append(deserialize(raw, msgtype))

    def _sort_markers(self, marker_topics: dict[str, list[Any]]) -> None:
        if self.detections_topic is None:
            candidates = sorted(
                t for t in marker_topics if t != self.gt_topic and t.endswith('markers')
            )
            self.detections_topic = candidates[0] if candidates else None
        elif self.detections_topic not in marker_topics:
            raise BagError(
                f'no MarkerArray topic {self.detections_topic!r}; the bags have '
                f'{sorted(marker_topics)}'
            )
        for topic, target in (
            (self.detections_topic, self.detections),
            (self.gt_topic, self.ground_truth),
        ):
            for msg in marker_topics.get(topic, []):
                stamp = marker_array_stamp_ns(msg)
                if stamp is not None and not (target is self.ground_truth and stamp in target):
                    target[stamp] = boxes_from_marker_array(msg)

    def _read_sidecar(self, bag: Path) -> None:
        """Read the synthetic scene's exact ground truth (with velocities); it beats markers."""
        path = ground_truth_path(bag)
        if not path.exists():
            return
        frames, _ = read_ground_truth(path)
        for f in frames:
            self.ground_truth[f.stamp_ns] = Boxes(f.boxes, f.labels)

    def _match_frames(self) -> tuple[list[int], list[dict[str, int]]]:
        """Frame stamps (first rig camera with images) and, per frame, camera -> image stamp."""
        reference = next(name for name in self.rig.camera_names if name in self.image_stamps)
        stamps = sorted({s for s, _ in self.image_stamps[reference]})
        members: list[dict[str, int]] = [{} for _ in stamps]
        array = np.array(stamps)
        for camera, entries in self.image_stamps.items():
            for stamp, _ in entries:
                i = int(np.argmin(np.abs(array - stamp)))
                if abs(array[i] - stamp) <= MATCH_S * 1e9:
                    members[i].setdefault(camera, stamp)
        return stamps, members

    # ------------------------------------------------------------------ frames
    def __len__(self) -> int:
        return len(self.frame_stamps)

    def _lidar2img(self, camera: str, image: np.ndarray) -> np.ndarray:
        rig_camera = self.rig.camera(camera)
        info = self.infos.get(camera)
        size = (image.shape[1], image.shape[0])
        if info is not None and (info.width, info.height) == size and np.any(info.k):
            K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        else:
            K = scale_intrinsics(rig_camera.K, rig_camera.image_size, size)
        extrinsics = rig_camera.sensor2lidar
        return lidar2img(K, extrinsics.rotation, extrinsics.translation)

    def _view(self, index: int, images: dict[str, np.ndarray]) -> FrameView:
        stamp = self.frame_stamps[index]
        bev_msg = _nearest(self.bev, stamp, STAMP_TOLERANCE_NS)
        notes = [f'detections: {self.detections_topic}'] if self.detections_topic else []
        return FrameView(
            stamp_ns=stamp,
            images=images,
            lidar2img={name: self._lidar2img(name, image) for name, image in images.items()},
            detections=(
                _nearest(self.detections, stamp, STAMP_TOLERANCE_NS)
                if self.detections_topic
                else None
            ),
            ground_truth=_nearest(self.ground_truth, stamp, STAMP_TOLERANCE_NS),
            bev=bev_features_array(bev_msg) if bev_msg is not None else None,
            title=f'{self.bags[0].name} frame {index}',
            notes=notes,
        )

    def frames(self, indices: Sequence[int] | None = None) -> Any:
        """Yield FrameViews of `indices` (default all) in stamp order, reading the images once."""
        wanted = sorted(set(range(len(self))) if indices is None else set(indices))
        for i in wanted:
            if not 0 <= i < len(self):
                raise ValueError(
                    f'frame {i} does not exist: the bags hold frames 0..{len(self) - 1}'
                )
        lookup = {(camera, stamp): i for i in wanted for camera, stamp in self.members[i].items()}
        pending: dict[int, dict[str, np.ndarray]] = {i: {} for i in wanted}
        times = [
            record
            for camera, entries in self.image_stamps.items()
            for stamp, record in entries
            if (camera, stamp) in lookup
        ]
        window = (min(times), max(times) + 1) if times else (None, None)
        for path_index, path in enumerate(self.bags):
            topics = {t for t, (b, _) in self.image_topics.items() if b == path_index}
            if not topics:
                continue
            reader = open_bag(path)
            try:
                connections = [c for c in reader.connections if c.topic in topics]
                for conn, _, raw in reader.messages(connections, start=window[0], stop=window[1]):
                    camera = self.image_topics[conn.topic][1]
                    i = lookup.get((camera, header_stamp_ns(raw)))
                    if i is None or i not in pending:
                        continue
                    pending[i][camera] = _decode(deserialize(raw, conn.msgtype))
                    while pending and len(pending[first := min(pending)]) == len(
                        self.members[first]
                    ):
                        yield self._view(first, pending.pop(first))
            finally:
                reader.close()
        for i in sorted(pending):  # frames that missed a camera, or came out of order
            yield self._view(i, pending.pop(i))

    def render_all(
        self,
        out_dir: str | Path,
        frame_index: int | None = None,
        tile_width: int = 480,
        progress: bool = True,
    ) -> list[Path]:
        indices = None if frame_index is None else [frame_index]
        bar = Progress(len(self) if indices is None else 1, 'render', 'frames', enabled=progress)
        paths = []
        for view in self.frames(indices):
            index = self.frame_stamps.index(view.stamp_ns)
            paths.append(
                write_frame_png(view, Path(out_dir) / f'frame_{index:04d}.png', tile_width)
            )
            bar.update(1)
        bar.close()
        return paths


def _decode(msg: Any) -> np.ndarray:
    try:
        if hasattr(msg, 'format'):
            return compressed_to_numpy(msg, 'rgb8')
        return imgmsg_to_numpy(msg, 'rgb8')
    except ImageDecodeError as exc:
        raise BagError(f'cannot decode a camera image: {exc}') from exc

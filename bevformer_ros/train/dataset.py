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
Training frames from rosbag2 recordings, and the official temporal queues built from them.

A bag has the node's topic layout: six ``sensor_msgs/Image`` (or ``CompressedImage``) topics
``/<CAM>/image_raw``, their ``/<CAM>/camera_info``, and ``nav_msgs/Odometry`` ``/odom`` (odom ->
base_link). Ground truth is the synthetic tool's JSON (``bevformer_ros.synth.ground_truth_file``:
per image stamp, boxes ``[x, y, z_bottom, w, l, h, yaw, vx, vy]`` in the reference frame with
nuScenes class labels), inside a bag directory or beside a bag file; a user recording needs the
same file. Camera extrinsics come from the bag's ``/tf_static`` when it has them, else from a rig
YAML (as the node: TF first, the rig file as fallback).

Each frame reaches the network exactly as the node would feed it (``pipeline.network_scale``,
``camera_lidar2img``, ``ImagePreprocessor``), with the official training filters on the ground
truth (``ObjectRangeFilter``: centre inside the BEV; ``ObjectNameFilter``: the model's classes).

Temporal queues follow the official ``CustomNuScenesDataset.prepare_train_data`` / ``union2one``:
for frame i of a scene, ``queue_length - 1`` of the ``queue_length`` preceding frames (one dropped
at random, clamped to the scene start), then frame i; the first queue frame has no history (can_bus
translation and yaw delta 0), every later one the deltas to the previous queue frame. Frames
without ground truth are not trained on (official ``filter_empty_gt``).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bevformer_ros.config import OFFICIAL_CAMERAS
from bevformer_ros.core.calibration import Extrinsics
from bevformer_ros.core.ego_motion import EgoMotionError, EgoPose, pose_from_odometry, PoseBuffer
from bevformer_ros.core.markers import NUSCENES_CLASSES
from bevformer_ros.core.rig import Rig
from bevformer_ros.core.stamps import NS_PER_S
from bevformer_ros.core.temporal import CAN_BUS_DIMS, can_bus_from_pose
from bevformer_ros.data.static_tf import camera_extrinsics, StaticTransforms
from bevformer_ros.frontend.image_codec import compressed_to_numpy, imgmsg_to_numpy
from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.preprocess import ImagePreprocessor
from bevformer_ros.pipeline import (
    camera_lidar2img,
    CameraInput,
    CONVERTED_ENCODINGS,
    DIRECT_ENCODINGS,
    network_preprocessor,
    network_scale,
)
from bevformer_ros.train.targets import in_bev_range
import numpy as np
import torch

DEFAULT_SLOP_S = 0.08  # the node's sync.slop: one synchronized set per camera period at 12 Hz
TF_STATIC_TOPIC = '/tf_static'


class DatasetError(ValueError):
    """
    A bag or ground-truth file that cannot be trained on.

    The message names the file and the fix.
    """


@dataclass(frozen=True)
class FrameInputs:
    """
    One frame as the network and the loss see it.

    img: [N, 3, Hp, Wp] float32 network input; img_shape: (Hp, Wp).
    lidar2img: [N, 4, 4] float64, reference frame -> padded-image pixels.
    can_bus: [18] float64 *absolute* can_bus of the ego pose (``can_bus_from_pose``).
    gt_boxes: [K, 9] float32 ``[x, y, z_bottom, w, l, h, yaw, vx, vy]``; gt_labels: [K] int64 model
    classes.
    """

    img: torch.Tensor
    img_shape: tuple[int, int]
    lidar2img: torch.Tensor
    can_bus: np.ndarray
    gt_boxes: torch.Tensor
    gt_labels: torch.Tensor
    scene: str
    stamp_ns: int


class FrameSource(Protocol):
    """The frames of one scene in time order."""

    name: str

    def __len__(self) -> int: ...

    def num_gt(self, index: int) -> int: ...

    def frame(self, index: int) -> FrameInputs: ...


@dataclass(frozen=True)
class BagTopics:
    """Topic names in the bag (the node's defaults, as absolute names)."""

    camera_names: tuple[str, ...] = OFFICIAL_CAMERAS
    image_topics: tuple[str, ...] = tuple(f'/{c}/image_raw' for c in OFFICIAL_CAMERAS)
    info_topics: tuple[str, ...] = tuple(f'/{c}/camera_info' for c in OFFICIAL_CAMERAS)
    odom_topic: str = '/odom'
    slop_s: float = DEFAULT_SLOP_S


@dataclass(frozen=True)
class _FrameIndex:
    stamp_ns: int
    images: tuple[tuple[Any, int, int], ...]  # per camera (connection, bag time, header stamp)
    infos: tuple[Any, ...]  # per camera CameraInfo
    pose: EgoPose
    gt_boxes: np.ndarray  # [K, 9] float64, already filtered
    gt_labels: np.ndarray  # [K] int64, model class indices


def decode_image(msg: Any) -> tuple[np.ndarray, str]:
    """
    Decode an Image or CompressedImage as the node does.

    Returns uint8 [H, W, 3] and its channel order ('rgb' / 'bgr').
    """
    if hasattr(msg, 'format'):
        return compressed_to_numpy(msg, 'rgb8'), 'rgb'
    if msg.encoding in DIRECT_ENCODINGS:
        return imgmsg_to_numpy(msg), DIRECT_ENCODINGS[msg.encoding]
    if msg.encoding in CONVERTED_ENCODINGS:
        target = 'bgr8' if msg.encoding == 'bgra8' else 'rgb8'
        return imgmsg_to_numpy(msg, target), target[:3]
    raise DatasetError(
        f'image encoding {msg.encoding!r} is not a colour image; record one of '
        f'{sorted(DIRECT_ENCODINGS) + list(CONVERTED_ENCODINGS)}'
    )


def _nearest(items: Sequence[Any], stamp: int, key: Any = None) -> int:
    """
    Return the index of the item whose ``key(item)`` is nearest to ``stamp``.

    ``items`` are sorted and non-empty.
    """
    key = key or (lambda x: x)
    i = bisect.bisect_left(items, stamp, key=key)
    if i == 0:
        return 0
    if i == len(items):
        return len(items) - 1
    return i if key(items[i]) - stamp < stamp - key(items[i - 1]) else i - 1


def _stamp_of(frame: Any) -> int:
    return frame.stamp_ns


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


def _model_labels(cfg: BEVFormerConfig) -> np.ndarray:
    """
    Map ground-truth labels to model class indices: [len(NUSCENES_CLASSES)].

    -1 for classes the model lacks.
    """
    return np.array(
        [cfg.class_names.index(n) if n in cfg.class_names else -1 for n in NUSCENES_CLASSES]
    )


def filter_ground_truth(
    boxes: np.ndarray, labels: np.ndarray, cfg: BEVFormerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """
    Official ObjectRangeFilter + ObjectNameFilter: boxes [K, 9], nuScenes labels [K] -> kept ones.

    Returns the kept boxes [K', 9] and their model class indices [K'].
    """
    mapped = _model_labels(cfg)[labels] if len(labels) else labels
    keep = (mapped >= 0) & in_bev_range(torch.from_numpy(boxes), cfg.head.pc_range).numpy()
    return boxes[keep], mapped[keep]


class BagScene:
    """
    The frames of one rosbag2 recording; images are read from the bag on demand and cached.

    Parameters
    ----------
    path
        rosbag2 directory or .mcap / .db3 file.
    cfg
        the model configuration (image pipeline, pc_range, class names).
    rig
        camera extrinsics (camera -> reference frame) by camera name, and the reference frame's
        name.
    extrinsics
        'tf' (the bag's /tf_static), 'rig', or 'auto' (/tf_static when it connects every camera
        frame to the reference frame, else the rig), as the node prefers TF over the rig file.
    ground_truth
        the ground-truth JSON (default: ``ground_truth_path(path)``).
    cache_bytes
        keep preprocessed frames (float16) up to this many bytes in memory.
    frame_step
        use every frame_step-th synchronized set (e.g. 6 turns 12 Hz into the official 2 Hz).

    """

    def __init__(
        self,
        path: str | Path,
        cfg: BEVFormerConfig,
        rig: Rig,
        topics: BagTopics | None = None,
        ground_truth: str | Path | None = None,
        cache_bytes: int = 2 << 30,
        frame_step: int = 1,
        extrinsics: str = 'auto',
    ) -> None:
        from bevformer_ros.data.bag_io import open_bag
        from bevformer_ros.synth.ground_truth_file import ground_truth_path, read_ground_truth

        self.path = Path(path)
        self.name = self.path.name
        self.cfg = cfg
        self.topics = topics or BagTopics()
        if extrinsics not in ('auto', 'tf', 'rig'):
            raise ValueError(f"extrinsics must be 'auto', 'tf' or 'rig', got {extrinsics!r}")
        gt_path = Path(ground_truth) if ground_truth else ground_truth_path(self.path)
        if not gt_path.exists():
            raise DatasetError(
                f'no ground truth for bag {self.path}: expected {gt_path} (the file '
                '`bevformer_synth` writes; a recording of your own needs one in that format)'
            )
        gt_frames, _ = read_ground_truth(gt_path)
        self._reader = open_bag(self.path)
        self._static_tf = StaticTransforms()
        self._frames = self._index(gt_frames)[:: max(int(frame_step), 1)]
        self.sensor2lidar, self.extrinsics_source = self._extrinsics(rig, extrinsics)
        self._preprocessors: dict[float, ImagePreprocessor] = {}
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor, tuple[int, int]]] = {}
        self._cache_bytes, self._cached_bytes = int(cache_bytes), 0

    def __len__(self) -> int:
        return len(self._frames)

    def num_gt(self, index: int) -> int:
        return len(self._frames[index].gt_labels)

    def close(self) -> None:
        self._reader.close()

    # ------------------------------------------------------------------ indexing
    def _connections(self, topic: str) -> list[Any]:
        conns = [c for c in self._reader.connections if c.topic == topic]
        if not conns:
            have = sorted({c.topic for c in self._reader.connections})
            raise DatasetError(
                f"bag {self.path} has no topic {topic!r}; it has {have}. Record the node's "
                'topic layout (six cameras, their camera_info, /odom) or pass the topic names'
            )
        return conns

    def _image_connections(self, topic: str) -> list[Any]:
        # nuScenes bags (bevformer_nuscenes2bag) keep the dataset's JPEGs on the image_transport
        # name.
        compressed = f'{topic}/compressed'
        if not any(c.topic == topic for c in self._reader.connections) and any(
            c.topic == compressed for c in self._reader.connections
        ):
            return self._connections(compressed)
        return self._connections(topic)

    def _index(self, gt_frames: Sequence[Any]) -> list[_FrameIndex]:
        from bevformer_ros.data.bag_io import deserialize, header_stamp_ns

        t = self.topics
        image_conns = [self._image_connections(topic) for topic in t.image_topics]
        info_conns = [self._connections(topic) for topic in t.info_topics]
        camera_of = {c.id: i for i, conns in enumerate(image_conns) for c in conns}
        info_of = {c.id: i for i, conns in enumerate(info_conns) for c in conns}
        odom_conns = [c for c in self._reader.connections if c.topic == t.odom_topic]
        tf_conns = [c for c in self._reader.connections if c.topic == TF_STATIC_TOPIC]
        tf_ids = {c.id for c in tf_conns}
        # (stamp, conn, bag time)
        images: list[list[tuple[int, Any, int]]] = [[] for _ in t.camera_names]
        infos: list[list[tuple[int, Any]]] = [[] for _ in t.camera_names]
        poses = PoseBuffer(
            max_age_s=1e9, max_extrapolation_s=t.slop_s, max_gap_s=1.0, max_len=1 << 30
        )
        wanted = [c for conns in image_conns + info_conns for c in conns] + odom_conns + tf_conns
        for conn, bag_ns, raw in self._reader.messages(connections=wanted):
            if conn.id in camera_of:
                images[camera_of[conn.id]].append((header_stamp_ns(raw), conn, bag_ns))
            elif conn.id in info_of:
                msg = deserialize(raw, conn.msgtype)
                infos[info_of[conn.id]].append((header_stamp_ns(raw), msg))
            elif conn.id in tf_ids:
                for transform in deserialize(raw, conn.msgtype).transforms:
                    self._static_tf.add(transform)
            else:
                poses.add(pose_from_odometry(deserialize(raw, conn.msgtype)))
        for lst in images + infos:
            lst.sort(key=lambda item: item[0])
        gt_by_stamp = sorted(gt_frames, key=lambda f: f.stamp_ns)
        frames = []
        for stamp, conn, bag_ns in images[0]:
            frame = self._frame_at(
                stamp, (conn, bag_ns), images, infos, poses, gt_by_stamp, bool(odom_conns)
            )
            if frame is not None:
                frames.append(frame)
        if not frames:
            raise DatasetError(
                f'bag {self.path}: no frame has all six images within {t.slop_s} s, a '
                'CameraInfo per camera, an ego pose and a ground-truth entry'
            )
        return frames

    def _frame_at(
        self,
        stamp: int,
        first: tuple[Any, int],
        images: list[list[tuple[int, Any, int]]],
        infos: list[list[tuple[int, Any]]],
        poses: PoseBuffer,
        gt_frames: Sequence[Any],
        have_odom: bool,
    ) -> _FrameIndex | None:
        slop_ns = int(self.topics.slop_s * NS_PER_S)
        refs = [(first[0], first[1], stamp)]
        for cam in images[1:]:
            if not cam:
                return None
            s, conn, bag_ns = cam[_nearest(cam, stamp, _first)]
            if abs(s - stamp) > slop_ns:
                return None
            refs.append((conn, bag_ns, s))
        cam_infos = []
        for cam in infos:
            if not cam:
                return None
            before = bisect.bisect_right(cam, stamp, key=_first)
            # latest CameraInfo up to the frame (else the first)
            cam_infos.append(cam[max(before - 1, 0)][1])
        gt = gt_frames[_nearest(gt_frames, stamp, _stamp_of)] if gt_frames else None
        if gt is None or abs(gt.stamp_ns - stamp) > slop_ns:
            return None
        try:
            pose = (
                poses.at(stamp)
                if have_odom
                else EgoPose(
                    stamp,
                    np.asarray(gt.ego_translation, float),
                    np.asarray(gt.ego_rotation_wxyz, float),
                )
            )
        except EgoMotionError:
            return None
        boxes, labels = filter_ground_truth(gt.boxes, gt.labels, self.cfg)
        return _FrameIndex(stamp, tuple(refs), tuple(cam_infos), pose, boxes, labels)

    def _extrinsics(self, rig: Rig, source: str) -> tuple[list[Extrinsics], str]:
        """sensor2lidar per camera from /tf_static or the rig, and which one was used."""
        frames = [info.header.frame_id for info in self._frames[0].infos]
        if source != 'rig':
            found = camera_extrinsics(self._static_tf, rig.reference_frame, frames)
            if found is not None:
                return found, TF_STATIC_TOPIC
            if source == 'tf':
                raise DatasetError(
                    f'bag {self.path}: {TF_STATIC_TOPIC} does not connect the camera frames '
                    f'{frames} to {rig.reference_frame}; record the static TF or use the rig'
                )
        return [rig.camera(name).sensor2lidar for name in self.topics.camera_names], 'rig'

    # ------------------------------------------------------------------ frames
    def frame(self, index: int) -> FrameInputs:
        """
        Return frame ``index`` as the network input with its ground truth.

        The images are preprocessed like the node does it.
        """
        rec = self._frames[index]
        if index in self._cache:
            img16, lidar2img, img_shape = self._cache[index]
            img = img16.float()
        else:
            img, lidar2img, img_shape = self._network_input(rec)
            if self._cached_bytes + img.numel() * 2 <= self._cache_bytes:
                self._cache[index] = (img.half(), lidar2img, img_shape)
                self._cached_bytes += img.numel() * 2
        pose = rec.pose
        can_bus = can_bus_from_pose(
            pose.translation,
            pose.rotation,
            rotation_rate=pose.rotation_rate,
            velocity=pose.velocity,
        )
        return FrameInputs(
            img=img,
            img_shape=img_shape,
            lidar2img=lidar2img,
            can_bus=can_bus,
            gt_boxes=torch.from_numpy(rec.gt_boxes).float(),
            gt_labels=torch.from_numpy(rec.gt_labels).long(),
            scene=self.name,
            stamp_ns=rec.stamp_ns,
        )

    def _read_image(self, conn: Any, bag_ns: int, stamp: int) -> Any:
        from bevformer_ros.data.bag_io import deserialize, header_stamp_ns

        for _, _, raw in self._reader.messages(connections=[conn], start=bag_ns, stop=bag_ns + 1):
            if header_stamp_ns(raw) == stamp:
                return deserialize(raw, conn.msgtype)
        raise DatasetError(
            f'bag {self.path}: image of {conn.topic} at {stamp} ns vanished while reading'
        )

    def _network_input(
        self, rec: _FrameIndex
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        msgs = [self._read_image(conn, bag_ns, stamp) for conn, bag_ns, stamp in rec.images]
        decoded = [decode_image(m) for m in msgs]
        order = decoded[0][1]
        images = [im if o == order else np.ascontiguousarray(im[..., ::-1]) for im, o in decoded]
        if any(im.shape != images[0].shape for im in images):
            raise DatasetError(
                f'bag {self.path}: cameras differ in image size at {rec.stamp_ns} ns; the node '
                'needs one size for all six cameras'
            )
        scale = network_scale(self.cfg.image, images[0].shape[1])
        sizes = [(im.shape[1], im.shape[0]) for im in images]
        cameras = [
            CameraInput(m, info, s2l) for m, info, s2l in zip(msgs, rec.infos, self.sensor2lidar)
        ]
        lidar2img = torch.from_numpy(camera_lidar2img(cameras, sizes, scale))  # [N, 4, 4] float64
        key = round(scale, 9)
        if key not in self._preprocessors:
            self._preprocessors[key] = network_preprocessor(self.cfg.image, scale, exact=False)
        out = self._preprocessors[key](np.stack(images), channel_order=order)
        return out.img, lidar2img, out.img_shape


# ------------------------------------------------------------------------------------------------
# temporal queues


def queue_indices(index: int, queue_length: int, rng: np.random.Generator) -> list[int]:
    """
    Return the official queue of frame ``index``.

    queue_length - 1 of the queue_length previous frames, then index.
    """
    previous = list(range(index - queue_length, index))
    rng.shuffle(previous)
    return [max(0, i) for i in sorted(previous[1:])] + [index]


def queue_can_bus(can_bus_abs: np.ndarray, scenes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """
    Official ``union2one``: absolute can_bus [T, 18] -> used can_bus [T, 18], prev_bev_exists [T].

    A frame whose scene differs from the previous queue frame's starts without history (translation
    and yaw delta 0); every other frame gets the global-frame translation and the unwrapped yaw
    (deg) change since the previous queue frame. can_bus[-2], the absolute yaw in radians, is kept.
    """
    used = np.array(can_bus_abs, dtype=np.float64)
    if used.ndim != 2 or used.shape[1] != CAN_BUS_DIMS:
        raise ValueError(f'can_bus_abs must be [T, {CAN_BUS_DIMS}], got {used.shape}')
    exists = np.zeros(len(used), dtype=bool)
    prev_pos, prev_angle, prev_scene = None, 0.0, None
    for t in range(len(used)):
        pos, angle = used[t, :3].copy(), float(used[t, -1])
        if scenes[t] != prev_scene:
            used[t, :3] = 0
            used[t, -1] = 0
        else:
            exists[t] = True
            used[t, :3] -= prev_pos
            used[t, -1] -= prev_angle
        prev_pos, prev_angle, prev_scene = pos, angle, scenes[t]
    return used, exists


@dataclass(frozen=True)
class QueueSample:
    frames: list[FrameInputs]  # T frames, oldest first; the last one is trained on
    can_bus: np.ndarray  # [T, 18] used can_bus
    prev_bev_exists: np.ndarray  # [T] bool


@dataclass(frozen=True)
class Batch:
    """
    B queues of T frames stacked for the model.

    img: [B, T, N, 3, Hp, Wp] float32; lidar2img: [B, T, N, 4, 4] float64; can_bus: [B, T, 18]
    float64 (used); prev_bev_exists: [T] bool (of the first sample, as the official code reads it);
    gt_boxes / gt_labels: per sample [K, 9] / [K] of the last frame.
    """

    img: torch.Tensor
    img_shape: tuple[int, int]
    lidar2img: torch.Tensor
    can_bus: torch.Tensor
    prev_bev_exists: list[bool]
    gt_boxes: list[torch.Tensor]
    gt_labels: list[torch.Tensor]


def collate(samples: Sequence[QueueSample]) -> Batch:
    shapes = {f.img_shape for s in samples for f in s.frames}
    if len(shapes) != 1:
        raise DatasetError(
            f'frames of one batch have different network input sizes {sorted(shapes)}; use '
            'bags of one camera size per run or batch size 1'
        )
    return Batch(
        img=torch.stack([torch.stack([f.img for f in s.frames]) for s in samples]),
        img_shape=shapes.pop(),
        lidar2img=torch.stack([torch.stack([f.lidar2img for f in s.frames]) for s in samples]),
        can_bus=torch.from_numpy(np.stack([s.can_bus for s in samples])),
        prev_bev_exists=[bool(e) for e in samples[0].prev_bev_exists],
        gt_boxes=[s.frames[-1].gt_boxes for s in samples],
        gt_labels=[s.frames[-1].gt_labels for s in samples],
    )


class TemporalQueueDataset:
    """
    Training samples (scene, frame with ground truth) of several scenes.

    Each sample is given as a temporal queue.
    """

    def __init__(self, scenes: Sequence[FrameSource], queue_length: int = 3) -> None:
        if queue_length < 1:
            raise ValueError(f'queue_length must be >= 1, got {queue_length}')
        self.scenes = list(scenes)
        self.queue_length = queue_length
        self.samples = [
            (s, i)
            for s, scene in enumerate(self.scenes)
            for i in range(len(scene))
            if scene.num_gt(i) > 0
        ]
        if not self.samples:
            raise DatasetError('no training frame has a ground-truth box inside the BEV range')

    def __len__(self) -> int:
        return len(self.samples)

    def sample(self, index: int, rng: np.random.Generator) -> QueueSample:
        scene_index, frame_index = self.samples[index]
        scene = self.scenes[scene_index]
        frames = [scene.frame(i) for i in queue_indices(frame_index, self.queue_length, rng)]
        can_bus, exists = queue_can_bus(
            np.stack([f.can_bus for f in frames]), [f.scene for f in frames]
        )
        return QueueSample(frames, can_bus, exists)

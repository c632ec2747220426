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
One synchronized camera set -> detections and BEV features.

The node, tools and tests all call this.

Per frame (`Pipeline.run`):
1. decode: the six image messages (sensor_msgs/Image or CompressedImage, duck-typed) -> uint8 HWC
   views, checked against each other and against their CameraInfo;
2. geometry: `lidar2img` [6, 4, 4] from CameraInfo K and the camera -> reference extrinsics, scaled
   like the images;
3. preprocess: the uint8 images are uploaded as they are and normalised, resized and padded on the
   device;
4. temporal: `TemporalState` decides whether the history is usable (its reset rules) and builds
   the used can_bus;
5. model: `BEVFormer.forward` under `torch.inference_mode` (optionally float16 autocast on CUDA);
6. postprocess: non-finite check, NMS-free decoding, results to numpy.

Image size. The presets' `image.scale` is relative to the nominal nuScenes 1600x900 image
(`image.input_hw`): tiny feeds the network 800x450. A camera of another width W is resized by
`scale * 1600 / W` (both axes, so the aspect ratio is kept) and K scaled alike, which is what the
checkpoint saw for a 1600x900 camera.

Missing cameras. A set may lack cameras (`CameraInput.image is None`: the camera went silent, see
`camera_dropout`). The model then gets a zero image for it and a camera mask that removes it from
spatial cross-attention, so the BEV is built from the cameras that are there
(`PipelineResult.missing_cameras`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass
import re
import sys
import time
from typing import Any

from bevformer_ros.config import NodeConfig, TemporalSettings
from bevformer_ros.core.calibration import (
    CalibrationError,
    check_plausible,
    intrinsics_from_camera_info,
    lidar2img_stack,
)
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.frames import CameraInput, FrameError, FrameSet
from bevformer_ros.core.heap_trim import release_freed_memory, shrink_heaps
from bevformer_ros.core.temporal import can_bus_from_pose, Reset, TemporalState, TemporalStep
from bevformer_ros.frontend.image_codec import (
    compressed_to_numpy,
    ImageDecodeError,
    imgmsg_to_numpy,
)
from bevformer_ros.model.box_coder import decode_boxes
from bevformer_ros.model.build import build_engine, build_model, BuiltModel
from bevformer_ros.model.config import BEVFormerConfig
from bevformer_ros.model.detector import BEVFormer
from bevformer_ros.model.preprocess import ImagePreprocessor
import numpy as np
import torch

# Encodings read directly (channel order for the preprocessor) or converted to rgb8 first.
DIRECT_ENCODINGS = {'rgb8': 'rgb', 'bgr8': 'bgr', '8UC3': 'bgr'}
CONVERTED_ENCODINGS = ('rgba8', 'bgra8', 'mono8')


@dataclass(frozen=True)
class PipelineResult:
    """
    The outcome of one frame.

    Decoded boxes [K, 9] `[x, y, z_bottom, w, l, h, yaw, vx, vy]` in the reference frame, scores
    [K], labels [K] (best first, K <= max_num); bev [bev_h, bev_w, C] float32 (rows +y, cols +x) or
    None when not asked for; timings in seconds per stage; the reset applied before this frame, if
    any.
    """

    stamp_ns: int
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    bev: np.ndarray | None
    bev_shape: tuple[int, int, int]
    timings: dict[str, float]
    reset: Reset | None
    missing_cameras: tuple[int, ...] = ()  # indices of the cameras left out (no image in the set)


@dataclass(frozen=True)
class ModelInputs:
    img: torch.Tensor  # [N, 3, Hp, Wp] float32, normalised and padded, on the device
    # [N, 4, 4] float64, reference frame -> padded-image pixels, on the device
    lidar2img: torch.Tensor
    img_shape: tuple[int, int]  # (Hp, Wp)
    camera_mask: torch.Tensor | None = (
        None  # [N] bool on the device, False = missing; None: all present
    )


TRIM_AGAIN_AFTER_FRAMES = 5


def network_scale(image_cfg: Any, width: int) -> float:
    """
    Return the resize factor for a camera `width` pixels wide.

    The preset's scale is relative to `input_hw`.
    """
    return (image_cfg.scale or 1.0) * image_cfg.input_hw[1] / width


def network_input_hw(image_cfg: Any, width: int, height: int) -> tuple[int, int]:
    """Return the padded network input (Hp, Wp) of camera images `width` x `height` pixels."""
    scale = network_scale(image_cfg, width)
    return network_preprocessor(image_cfg, scale).output_shapes(height, width)[1]


def network_preprocessor(image_cfg: Any, scale: float, exact: bool = True) -> ImagePreprocessor:
    """Return the preprocessor of the image config at resize factor `scale` (`network_scale`)."""
    return ImagePreprocessor(
        image_cfg.mean,
        image_cfg.std,
        image_cfg.to_rgb,
        scale=None if abs(scale - 1) < 1e-9 else scale,
        size_divisor=image_cfg.size_divisor,
        exact=exact,
    )


def camera_lidar2img(
    cameras: Sequence[CameraInput],
    sizes: Sequence[tuple[int, int]],
    scale: float,
    present: Sequence[bool] | None = None,
) -> np.ndarray:
    """
    Return the [N, 4, 4] float64 `lidar2img` of the network input.

    From CameraInfo K (checked against the image `sizes`, (width, height) each) and each camera's
    extrinsics, rows 0 and 1 scaled by `scale` like the images.

    A camera that is not `present` (missing from the set) gets the identity: the camera mask keeps
    the model from using it. `present` None means every camera.
    """
    present = [i for i in range(len(cameras)) if present is None or present[i]]
    intrinsics = []
    for i in present:
        cam, size = cameras[i], sizes[i]
        if cam.info is None:
            raise FrameError(
                'camera_info', f'camera {i} ({_frame_id(cam.image)}): no CameraInfo yet'
            )
        if (cam.info.width, cam.info.height) != tuple(size):
            raise FrameError(
                'image',
                f'camera {i} ({_frame_id(cam.image)}): image is {size[0]}x{size[1]} '
                f'but its CameraInfo says {cam.info.width}x{cam.info.height}',
            )
        try:
            intrinsics.append(intrinsics_from_camera_info(cam.info))
        except CalibrationError as exc:
            raise FrameError('camera_info', f'camera {i} ({_frame_id(cam.image)}): {exc}') from exc
        try:
            check_plausible(cam.info)
        except CalibrationError as exc:  # an impossible camera: no inference, ERROR
            raise FrameError('calibration', f'camera {i} ({_frame_id(cam.image)}): {exc}') from exc
    try:
        # [P, 4, 4]
        used = lidar2img_stack(intrinsics, [cameras[i].sensor2lidar for i in present], scale)
    except CalibrationError as exc:
        raise FrameError('calibration', str(exc)) from exc
    # the model projects in float32: a finite but absurd K overflows there
    if not _fits_float32(used):
        raise FrameError(
            'camera_info',
            'lidar2img is not finite in float32: check the magnitudes in CameraInfo.k',
        )
    out = np.tile(np.eye(4), (len(cameras), 1, 1))  # [N, 4, 4]
    out[present] = used
    return out


class Pipeline:
    """Frame sets in, results out; holds the model, the preprocessors and the temporal state."""

    def __init__(
        self,
        model: BEVFormer,
        cfg: BEVFormerConfig,
        device: torch.device,
        temporal: TemporalSettings,
        exact_resize: bool = False,
        built: BuiltModel | None = None,
    ) -> None:
        self.model = model
        self.built = built  # where the model came from, when built from the settings
        self.cfg = cfg
        self.device = device
        self.exact_resize = exact_resize
        self.state = TemporalState(video_test_mode=True, settings=temporal)
        self._preprocessors: dict[float, ImagePreprocessor] = {}
        self._upload: torch.Tensor | None = None  # [N, H, W, 3] uint8, reused between frames
        self._trim_in = 0  # frames until the heap is trimmed again after a size change

    @classmethod
    def from_settings(cls, config: NodeConfig, device: torch.device | None = None) -> Pipeline:
        """
        Build the node's pipeline from its settings in one call (`model.build`).

        The detector comes from `build_model` (device: `model.device` unless given), then the
        inference engine from `build_engine`; `Pipeline.built` keeps what chose them.
        """
        built = build_model(config.model, device)
        m = config.model
        engine = build_engine(
            built, m.backend, m.precision, m.engine_cache or None, progress=_engine_progress
        )
        pipeline = cls(engine, built.cfg, built.device, config.temporal, built=built)
        if m.engine_image_size:
            pipeline.prepare_engine(*m.engine_image_size)
        return pipeline

    def prepare_engine(self, width: int, height: int) -> None:
        """Export / compile the engine for camera images of this size now, not at a frame."""
        prepare = getattr(self.model, 'prepare', None)  # only engines built per image size
        if prepare is not None:
            prepare(network_input_hw(self.cfg.image, width, height), self.cfg.head.num_cams)

    @property
    def bev_shape(self) -> tuple[int, int, int]:
        h = self.cfg.head
        return (h.bev_h, h.bev_w, h.embed_dims)

    def set_temporal(self, temporal: TemporalSettings) -> None:
        self.state.settings = temporal

    def request_reset(self, detail: str) -> None:
        self.state.request(detail)

    def release_buffers(self) -> None:
        """Drop the history and the upload buffer (GPU memory the model itself does not need)."""
        self.state.clear()
        self._upload = None

    def run(self, frame: FrameSet, want_bev: bool = True) -> PipelineResult:
        """Process one set; FrameError for bad input or output (the history is then dropped)."""
        clock = _StageClock(self.device)
        inputs = self.prepare(frame, clock)
        reset = self._temporal_decision(frame)
        try:
            step = checked_step(self.state, frame.ego_pose)
        except FrameError:
            self.state.forget()
            raise
        out = self.forward(
            inputs, torch.from_numpy(step.can_bus)[None].to(self.device), step.prev_bev
        )
        clock.lap('model')
        result = self._postprocess(frame, out, reset, want_bev)
        clock.lap('postprocess')
        return dataclasses.replace(result, timings=clock.laps)

    def prepare(self, frame: FrameSet, clock: _StageClock | None = None) -> ModelInputs:
        """Decode, check and preprocess one set; the model inputs on the device."""
        clock = clock or _StageClock(self.device)
        images, order = _decode_images(frame.cameras)
        clock.lap('decode')
        scale = network_scale(self.cfg.image, images[0].shape[1])
        sizes = [(image.shape[1], image.shape[0]) for image in images]
        present = [cam.image is not None for cam in frame.cameras]
        lidar2img = camera_lidar2img(frame.cameras, sizes, scale, present)  # [N, 4, 4] float64
        img, img_shape = self._preprocess(images, order, scale)
        # [N] bool
        camera_mask = None if all(present) else torch.tensor(present, device=self.device)
        inputs = ModelInputs(
            img, torch.from_numpy(lidar2img).to(self.device), img_shape, camera_mask
        )
        clock.lap('preprocess')
        return inputs

    def forward(
        self, inputs: ModelInputs, can_bus: torch.Tensor, prev_bev: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """
        Run the engine (`BEVFormer.forward`'s signature) for batch 1 under inference mode.

        can_bus: the used can_bus [1, 18] on the device; prev_bev: [HW, 1, C] or None.
        """
        mask = None if inputs.camera_mask is None else inputs.camera_mask[None]  # [1, N]
        with torch.inference_mode():
            return self.model(
                inputs.img[None],
                inputs.lidar2img[None],
                inputs.img_shape,
                can_bus,
                prev_bev,
                camera_mask=mask,
            )

    def _preprocess(
        self, images: Sequence[np.ndarray], order: str, scale: float
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        shape = (len(images), *images[0].shape)
        if self._upload is not None and tuple(self._upload.shape) != shape:
            self._release_size_buffers()
        elif self._trim_in > 0:
            self._trim_in -= 1
            if self._trim_in == 0:
                release_freed_memory()
                shrink_heaps(False)
        if self._upload is None:
            pin = self.device.type == 'cuda'
            self._upload = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)  # [N, H, W, 3]
        host = self._upload.numpy()  # [N, H, W, 3] view of the (pinned) upload buffer
        for i, image in enumerate(images):
            host[i] = image  # one memcpy per camera, no stacking copy
        key = round(scale, 9)
        if key not in self._preprocessors:
            exact = self.exact_resize
            self._preprocessors[key] = network_preprocessor(self.cfg.image, scale, exact)
        out = self._preprocessors[key](self._upload, channel_order=order, device=self.device)
        return out.img, out.img_shape  # [N, 3, Hp, Wp] float32, (Hp, Wp)

    def _release_size_buffers(self) -> None:
        # The image size changed: the buffers of the old size go, and the heap pages they (and the
        # decode buffers of the old size, freed over the next frames) held go back to the OS, else
        # RSS stays grown; heaps shrink on every free until the second trim.
        self._upload = None
        self._preprocessors.clear()
        shrink_heaps(True)
        release_freed_memory()
        self._trim_in = TRIM_AGAIN_AFTER_FRAMES

    def _temporal_decision(self, frame: FrameSet) -> Reset | None:
        return self.state.decide(frame.stamp_ns, frame.ego_pose.translation)

    def _postprocess(
        self, frame: FrameSet, out: dict[str, torch.Tensor], reset: Reset | None, want_bev: bool
    ) -> PipelineResult:
        bev_embed = out['bev_embed']  # [HW, 1, C]
        cls_scores = out['all_cls_scores'][-1, 0].float()  # [Q, num_classes]
        bbox_preds = out['all_bbox_preds'][-1, 0].float()  # [Q, 10]
        finite = torch.stack(
            [torch.isfinite(t).all() for t in (bev_embed, cls_scores, bbox_preds)]
        ).all()
        if not bool(finite):
            self.state.clear()
            raise FrameError(
                'non_finite_output',
                'the model produced NaN or inf; history dropped '
                '(check the checkpoint, model.precision, and the input images)',
            )
        self.state.update(bev_embed)
        self.state.commit(frame.stamp_ns, frame.ego_pose.translation)
        det = decode_boxes(cls_scores, bbox_preds, self.cfg)
        bev = None
        if want_bev:
            h, w, c = self.bev_shape
            # [H, W, C], q = row * W + col
            bev = bev_embed[:, 0].float().reshape(h, w, c).cpu().numpy()
        missing = tuple(i for i, cam in enumerate(frame.cameras) if cam.image is None)
        return PipelineResult(
            stamp_ns=frame.stamp_ns,
            boxes=det.boxes.cpu().numpy(),
            scores=det.scores.cpu().numpy(),
            labels=det.labels.cpu().numpy(),
            bev=bev,
            bev_shape=self.bev_shape,
            timings={},
            reset=reset,
            missing_cameras=missing,
        )


def _engine_progress(line: str) -> None:
    """Show an engine export / compile step (minutes on a cache miss) on stderr."""
    print(f'[bevformer_ros engine] {line}', file=sys.stderr, flush=True)


def frame_can_bus(pose: EgoPose) -> np.ndarray:
    """
    Return the absolute can_bus [18] float64 of an ego pose.

    FrameError('ego_pose') unless it is finite.
    """
    try:
        can_bus = can_bus_from_pose(
            pose.translation,
            pose.rotation,
            rotation_rate=pose.rotation_rate,
            velocity=pose.velocity,
        )  # [18]
    except ValueError as exc:
        raise FrameError('ego_pose', f'unusable ego pose: {exc}') from exc
    # the model reads it in float32: 1e39 m/s would become inf there
    if not _fits_float32(can_bus):
        raise FrameError(
            'ego_pose',
            f'ego pose gives a can_bus that is not finite in float32: '
            f'{np.array2string(can_bus, precision=3)}; check the odometry',
        )
    return can_bus


def checked_step(state: TemporalState, pose: EgoPose) -> TemporalStep:
    """
    `state.step` for this pose: the used can_bus [18] and the history to feed.

    FrameError('ego_pose') unless every can_bus value is finite in float32 (as the model reads it);
    the history is dropped when only the delta to the previous pose overflowed.
    """
    step = state.step(frame_can_bus(pose))
    if not _fits_float32(step.can_bus):
        state.reset()
        raise FrameError(
            'ego_pose',
            'the ego-motion delta (can_bus) is not finite in float32; history '
            'dropped (check the odometry magnitudes)',
        )
    return step


def _fits_float32(values: np.ndarray) -> bool:
    with np.errstate(over='ignore'):
        return bool(np.all(np.isfinite(np.asarray(values, dtype=np.float32))))


def _frame_id(msg: Any) -> str:
    return getattr(getattr(msg, 'header', None), 'frame_id', '') or '?'


def decode_camera_image(msg: Any) -> tuple[np.ndarray, str]:
    """
    Decode one Image / CompressedImage.

    Return uint8 [H, W, 3] and its channel order ('rgb' or 'bgr'); ImageDecodeError for anything
    else.
    """
    if hasattr(msg, 'format'):  # sensor_msgs/CompressedImage
        return compressed_to_numpy(msg, 'rgb8'), 'rgb'
    encoding = msg.encoding
    if encoding in DIRECT_ENCODINGS:
        return imgmsg_to_numpy(msg), DIRECT_ENCODINGS[encoding]
    if encoding in CONVERTED_ENCODINGS:
        target = 'bgr8' if encoding == 'bgra8' else 'rgb8'
        return imgmsg_to_numpy(msg, target), target[:3]
    supported = sorted(DIRECT_ENCODINGS) + list(CONVERTED_ENCODINGS)
    raise ImageDecodeError(
        f'encoding {encoding!r} {_encoding_problem(encoding, supported)}; publish one of '
        f'{supported}'
    )


def _encoding_problem(encoding: str, supported: Sequence[str]) -> str:
    """Say what is wrong with an unsupported encoding, as precisely as its name allows."""
    if encoding.lower() in supported:
        lower = encoding.lower()
        return f'is not supported: encodings are case-sensitive, did you mean {lower!r}?'
    generic = re.fullmatch(r'(8|16|32|64)([USF])C(\d+)', encoding)
    if generic is not None:
        bits, kind, channels = generic.groups()
        kinds = {'U': 'unsigned', 'S': 'signed', 'F': 'float'}
        return (
            f'is {channels}-channel {bits}-bit {kinds[kind]}: not supported (8-bit colour only, '
            'and no channel order is known for generic encodings)'
        )
    if encoding.startswith(('mono', 'bayer_')) or encoding in ('8UC1', '16UC1', '32FC1'):
        return 'is not a colour image'
    return 'is not supported'


def _decode_images(cameras: Sequence[CameraInput]) -> tuple[list[np.ndarray], str]:
    """
    Decode the six images into uint8 [H, W, 3] arrays of one size, in one channel order.

    The order is the first present camera's; a missing camera (image None) gets zeros.
    """
    decoded: dict[int, tuple[np.ndarray, str]] = {}
    for i, cam in enumerate(cameras):
        if cam.image is None:
            continue
        try:
            decoded[i] = decode_camera_image(cam.image)
        except ImageDecodeError as exc:
            raise FrameError('image', f'camera {i} ({_frame_id(cam.image)}): {exc}') from exc
    if not decoded:
        raise FrameError('image', 'the set holds no camera image')
    first = min(decoded)
    reference, order = decoded[first]
    _check_one_size(cameras, {i: image.shape for i, (image, _) in decoded.items()})
    images = []
    for i in range(len(cameras)):
        if i not in decoded:
            images.append(np.zeros_like(reference))  # [H, W, 3]: masked out of the model anyway
            continue
        image, own_order = decoded[i]
        if own_order != order:
            # rare mixed rigs: match the first camera's order
            image = np.ascontiguousarray(image[..., ::-1])
        images.append(image)
    return images, order


def _check_one_size(cameras: Sequence[CameraInput], shapes: dict[int, tuple[int, ...]]) -> None:
    """Raise FrameError naming the camera(s) whose size differs from the most common one."""
    counts = Counter(shapes.values())
    if len(counts) == 1:
        return
    # the size most cameras share is the rig's; the others are the odd ones
    common = counts.most_common(1)[0][0]  # insertion order breaks ties: the lowest camera's
    odd = [i for i, shape in shapes.items() if shape != common]
    names = ', '.join(
        f'camera {i} ({_frame_id(cameras[i].image)}) is {shapes[i][1]}x{shapes[i][0]}' for i in odd
    )
    raise FrameError(
        'image',
        f'{names} but the other cameras are {common[1]}x{common[0]}; all cameras must publish '
        'one size',
    )


class _StageClock:
    """
    Wall time per stage.

    On CUDA each lap waits for the queued kernels, so stages are not blurred.
    """

    def __init__(self, device: torch.device) -> None:
        self._sync: Callable[[], None] = (
            (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
        )
        self._t = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        self._sync()
        now = time.perf_counter()
        self.laps[stage] = now - self._t
        self._t = now

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
One synchronized camera set -> detections and BEV features; the node, tools and tests all call this.

Per frame (`Pipeline.run`):
1. decode: the six image messages (sensor_msgs/Image or CompressedImage, duck-typed) -> uint8 HWC
   views,
   checked against each other and against their CameraInfo;
2. geometry: `lidar2img` [6, 4, 4] from CameraInfo K and the camera -> reference extrinsics, scaled
   like the
   images;
3. preprocess: the uint8 images are uploaded as they are and normalised, resized and padded on the
   device;
4. temporal: `ResetPolicy` decides whether the history is usable, `TemporalState` builds the used
   can_bus;
5. model: `BEVFormer.forward` under `torch.inference_mode` (optionally float16 autocast on CUDA);
6. postprocess: non-finite check, NMS-free decoding, results to numpy.

Image size. The presets' `image.scale` is relative to the nominal nuScenes 1600x900 image
(`image.input_hw`):
tiny feeds the network 800x450. A camera of another width W is resized by `scale * 1600 / W` (both
axes, so
the aspect ratio is kept) and K scaled alike, which is what the checkpoint saw for a 1600x900
camera.

Missing cameras. A set may lack cameras (`CameraInput.image is None`: the camera went silent, see
`camera_dropout`). The model then gets a zero image for it and a camera mask that removes it from
spatial
cross-attention, so the BEV is built from the cameras that are there
(`PipelineResult.missing_cameras`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass
import json
from pathlib import Path
import time
from typing import Any

from bevformer_ros.config import DEFAULT_PRESET, ModelSettings, TemporalSettings
from bevformer_ros.core.calibration import (
    CalibrationError,
    Extrinsics,
    intrinsics_from_camera_info,
    lidar2img_stack,
)
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.reset_policy import Reset, ResetPolicy
from bevformer_ros.core.temporal import can_bus_from_pose, TemporalState, TemporalStep
from bevformer_ros.frontend.image_codec import (
    compressed_to_numpy,
    ImageDecodeError,
    imgmsg_to_numpy,
)
from bevformer_ros.model.box_coder import decode_boxes
from bevformer_ros.model.checkpoint_config import config_from_checkpoint
from bevformer_ros.model.config import BEVFormerConfig, from_official_config, preset
from bevformer_ros.model.detector import BEVFormer, build_bevformer
from bevformer_ros.model.preprocess import ImagePreprocessor
from bevformer_ros.resources import checkpoint_path
import numpy as np
import torch

# Encodings read directly (channel order for the preprocessor) or converted to rgb8 first.
DIRECT_ENCODINGS = {'rgb8': 'rgb', 'bgr8': 'bgr', '8UC3': 'bgr'}
CONVERTED_ENCODINGS = ('rgba8', 'bgra8', 'mono8')


class FrameError(ValueError):
    """
    A frame that cannot be processed; `kind` groups it for /diagnostics (image, camera_info, calibration,
    non_finite_output). The node logs it, counts it and goes on with the next frame.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class CameraInput:
    # sensor_msgs/Image or CompressedImage (anything with their fields); None: camera missing
    image: Any
    # sensor_msgs/CameraInfo (k, width, height) of this camera, or None if none arrived yet
    info: Any
    sensor2lidar: Extrinsics  # camera optical frame -> reference frame


@dataclass(frozen=True)
class FrameSet:
    stamp_ns: int  # the synchronized stamp: every output carries it
    cameras: Sequence[CameraInput]  # in the model's camera order
    ego_pose: EgoPose  # ego (base_link) in the world frame at stamp_ns


@dataclass(frozen=True)
class PipelineResult:
    """
    Decoded boxes [K, 9] `[x, y, z_bottom, w, l, h, yaw, vx, vy]` in the reference frame, scores [K],
    labels [K] (best first, K <= max_num); bev [bev_h, bev_w, C] float32 (rows +y, cols +x) or None
    when not
    asked for; timings in seconds per stage; the reset applied before this frame, if any.
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
    lidar2img: (
        torch.Tensor
    )  # [N, 4, 4] float64, reference frame -> padded-image pixels, on the device
    img_shape: tuple[int, int]  # (Hp, Wp)
    camera_mask: torch.Tensor | None = (
        None  # [N] bool on the device, False = missing; None: all present
    )


@dataclass(frozen=True)
class ModelChoice:
    """The architecture to build, the weights to load into it, and which settings chose the architecture."""

    cfg: BEVFormerConfig
    checkpoint: Path | None  # the resolved model.checkpoint; None: seeded random weights
    from_checkpoint: bool  # cfg is the architecture stored in the checkpoint by bevformer_train
    ignored: tuple[
        str, ...
    ] = ()  # architecture parameters that the checkpoint's architecture overrules


def choose_model(settings: ModelSettings) -> ModelChoice:
    """
    The architecture stored in a project-trained `model.checkpoint`, else the one of the settings.

    Official checkpoints carry no usable architecture (mmcv stores the config file as text), so for
    them, and
    for random weights, `model.official_config_json` or `model.preset` with the size overrides
    decide.
    """
    checkpoint = checkpoint_path(settings.checkpoint) if settings.checkpoint else None
    stored = config_from_checkpoint(checkpoint) if checkpoint is not None else None
    if stored is None:
        return ModelChoice(_configured_model(settings), checkpoint, from_checkpoint=False)
    # The preset at its default was most likely not chosen by anyone: naming it as ignored would
    # only confuse.
    ignored = [f'model.preset={settings.preset}'] if settings.preset != DEFAULT_PRESET else []
    if settings.official_config_json:
        ignored.append('model.official_config_json')
    ignored += [f'model.{k}' for k, v in vars(settings.overrides).items() if v]
    return ModelChoice(stored, checkpoint, from_checkpoint=True, ignored=tuple(ignored))


def model_config(settings: ModelSettings) -> BEVFormerConfig:
    """The BEVFormerConfig of the node's model settings (`choose_model`)."""
    return choose_model(settings).cfg


def _configured_model(settings: ModelSettings) -> BEVFormerConfig:
    """An official config JSON, or a preset with the small-model overrides applied."""
    if settings.official_config_json:
        return _official_json_config(Path(settings.official_config_json))
    cfg = preset(settings.preset)
    o = settings.overrides
    if not o.any():
        return cfg
    head = cfg.head
    embed = o.embed_dims or head.embed_dims
    head = dataclasses.replace(
        head,
        embed_dims=embed,
        ffn_dims=o.ffn_dims or (2 * embed if o.embed_dims else head.ffn_dims),
        bev_h=o.bev_size or head.bev_h,
        bev_w=o.bev_size or head.bev_w,
        row_num_embed=o.bev_size or head.row_num_embed,
        col_num_embed=o.bev_size or head.col_num_embed,
        num_encoder_layers=o.num_encoder_layers or head.num_encoder_layers,
        num_decoder_layers=o.num_decoder_layers or head.num_decoder_layers,
        num_query=o.num_query or head.num_query,
    )
    backbone, neck = cfg.backbone, cfg.neck
    if backbone is not None and neck is not None:
        base = o.base_channels or backbone.base_channels
        expansion = 4 if backbone.depth >= 50 else 1  # Bottleneck vs BasicBlock
        backbone = dataclasses.replace(backbone, base_channels=base)
        neck = dataclasses.replace(
            neck,
            out_channels=embed,
            in_channels=tuple(base * expansion * 2**i for i in backbone.out_indices),
        )
    image = dataclasses.replace(cfg.image, scale=o.image_scale or cfg.image.scale)
    return dataclasses.replace(cfg, backbone=backbone, neck=neck, head=head, image=image)


def _official_json_config(path: Path) -> BEVFormerConfig:
    """An official mmdet3d config dumped as JSON: the `model` dict itself or {model, img_norm_cfg, ...}."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f'model.official_config_json: cannot read {path}: {exc}') from exc
    model = doc.get('model', doc)
    return from_official_config(
        model,
        img_norm_cfg=doc.get('img_norm_cfg'),
        test_image_scale=doc.get('test_image_scale'),
        class_names=doc.get('class_names'),
    )


def network_scale(image_cfg: Any, width: int) -> float:
    """Resize factor for a camera `width` pixels wide; the preset's scale is relative to `input_hw`."""
    return (image_cfg.scale or 1.0) * image_cfg.input_hw[1] / width


def camera_lidar2img(
    cameras: Sequence[CameraInput],
    sizes: Sequence[tuple[int, int]],
    scale: float,
    present: Sequence[bool] | None = None,
) -> np.ndarray:
    """
    [N, 4, 4] float64 `lidar2img` of the network input: CameraInfo K (checked against the image `sizes`,
    (width, height) each) and each camera's extrinsics, rows 0 and 1 scaled by `scale` like the
    images.

    A camera that is not `present` (missing from the set) gets the identity: the camera mask keeps
    the model
    from using it. `present` None means every camera.
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
        used = lidar2img_stack(
            intrinsics, [cameras[i].sensor2lidar for i in present], scale
        )  # [P, 4, 4]
    except CalibrationError as exc:
        raise FrameError('calibration', str(exc)) from exc
    if not _fits_float32(
        used
    ):  # the model projects in float32: a finite but absurd K overflows there
        raise FrameError(
            'camera_info',
            'lidar2img is not finite in float32: check the magnitudes in CameraInfo.k',
        )
    out = np.tile(np.eye(4), (len(cameras), 1, 1))  # [N, 4, 4]
    out[present] = used
    return out


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; asking for CUDA without CUDA is an error, not a fallback."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise ValueError(
            f'model.device={name!r} but this torch has no usable CUDA device '
            f'(torch {torch.__version__}); use model.device:=auto or cpu'
        )
    return device


def build_model(
    cfg: BEVFormerConfig, device: torch.device, checkpoint: str | Path = '', seed: int = 0
) -> BEVFormer:
    """
    The detector in eval mode on `device`: weights from `checkpoint` (a path, or a bare name resolved by
    `resources.checkpoint_path`), or seeded random ones.
    """
    from bevformer_ros.model.checkpoint import load_checkpoint

    torch.manual_seed(seed)
    model = build_bevformer(cfg)
    if checkpoint:
        load_checkpoint(model, checkpoint_path(str(checkpoint)))
    return model.eval().to(device)


class Pipeline:
    """Frame sets in, results out; holds the model, the preprocessors and the temporal state."""

    def __init__(
        self,
        model: BEVFormer,
        cfg: BEVFormerConfig,
        device: torch.device,
        temporal: TemporalSettings,
        fp16: bool = False,
        exact_resize: bool = False,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.device = device
        self.fp16 = fp16 and device.type == 'cuda'
        self.exact_resize = exact_resize
        self.policy = ResetPolicy(temporal)
        self.state = TemporalState(video_test_mode=True)
        self._preprocessors: dict[float, ImagePreprocessor] = {}
        self._upload: torch.Tensor | None = None  # [N, H, W, 3] uint8, reused between frames

    @property
    def bev_shape(self) -> tuple[int, int, int]:
        h = self.cfg.head
        return (h.bev_h, h.bev_w, h.embed_dims)

    def set_temporal(self, temporal: TemporalSettings) -> None:
        self.policy.settings = temporal

    def request_reset(self, detail: str) -> None:
        self.policy.request(detail)

    def release_buffers(self) -> None:
        """Drop the history and the upload buffer (GPU memory the model itself does not need)."""
        self.state.reset()
        self.policy.forget()
        self._upload = None

    def run(self, frame: FrameSet, want_bev: bool = True) -> PipelineResult:
        """Process one set; FrameError for bad input or output (the history is then dropped)."""
        clock = _StageClock(self.device)
        inputs = self.prepare(frame, clock)
        reset = self._temporal_decision(frame)
        try:
            step = checked_step(self.state, frame.ego_pose)
        except FrameError:
            self.policy.forget()
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
        camera_mask = (
            None if all(present) else torch.tensor(present, device=self.device)
        )  # [N] bool
        inputs = ModelInputs(
            img, torch.from_numpy(lidar2img).to(self.device), img_shape, camera_mask
        )
        clock.lap('preprocess')
        return inputs

    def forward(
        self, inputs: ModelInputs, can_bus: torch.Tensor, prev_bev: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """
        `BEVFormer.forward` for batch 1 under inference mode (and fp16 autocast when enabled).

        can_bus: the used can_bus [1, 18] on the device; prev_bev: [HW, 1, C] or None.
        """
        mask = None if inputs.camera_mask is None else inputs.camera_mask[None]  # [1, N]
        with (
            torch.inference_mode(),
            torch.autocast('cuda', dtype=torch.float16, enabled=self.fp16),
        ):
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
        if self._upload is None or tuple(self._upload.shape) != shape:
            pin = self.device.type == 'cuda'
            self._upload = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)  # [N, H, W, 3]
        host = self._upload.numpy()  # [N, H, W, 3] view of the (pinned) upload buffer
        for i, image in enumerate(images):
            host[i] = image  # one memcpy per camera, no stacking copy
        key = round(scale, 9)
        if key not in self._preprocessors:
            image_cfg = self.cfg.image
            self._preprocessors[key] = ImagePreprocessor(
                image_cfg.mean,
                image_cfg.std,
                image_cfg.to_rgb,
                scale=None if abs(scale - 1) < 1e-9 else scale,
                size_divisor=image_cfg.size_divisor,
                exact=self.exact_resize,
            )
        out = self._preprocessors[key](self._upload, channel_order=order, device=self.device)
        return out.img, out.img_shape  # [N, 3, Hp, Wp] float32, (Hp, Wp)

    def _temporal_decision(self, frame: FrameSet) -> Reset | None:
        reset = self.policy.decide(frame.stamp_ns, frame.ego_pose.translation)
        if reset is not None:
            self.state.reset()
        return reset

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
            self.state.reset()
            self.policy.forget()
            raise FrameError(
                'non_finite_output',
                'the model produced NaN or inf; history dropped '
                '(check the checkpoint, fp16, and the input images)',
            )
        self.state.update(bev_embed)
        self.policy.commit(frame.stamp_ns, frame.ego_pose.translation)
        det = decode_boxes(cls_scores, bbox_preds, self.cfg)
        bev = None
        if want_bev:
            h, w, c = self.bev_shape
            bev = (
                bev_embed[:, 0].float().reshape(h, w, c).cpu().numpy()
            )  # [H, W, C], q = row * W + col
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


def frame_can_bus(pose: EgoPose) -> np.ndarray:
    """The absolute can_bus [18] float64 of an ego pose; FrameError('ego_pose') unless it is finite."""
    try:
        can_bus = can_bus_from_pose(
            pose.translation,
            pose.rotation,
            rotation_rate=pose.rotation_rate,
            velocity=pose.velocity,
        )  # [18]
    except ValueError as exc:
        raise FrameError('ego_pose', f'unusable ego pose: {exc}') from exc
    if not _fits_float32(
        can_bus
    ):  # the model reads it in float32: 1e39 m/s would become inf there
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
    the
    history is dropped when only the delta to the previous pose overflowed.
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
    uint8 [H, W, 3] and its channel order ('rgb' or 'bgr') of one Image / CompressedImage;
    ImageDecodeError for anything else.
    """
    if hasattr(msg, 'format'):  # sensor_msgs/CompressedImage
        return compressed_to_numpy(msg, 'rgb8'), 'rgb'
    encoding = msg.encoding
    if encoding in DIRECT_ENCODINGS:
        return imgmsg_to_numpy(msg), DIRECT_ENCODINGS[encoding]
    if encoding in CONVERTED_ENCODINGS:
        target = 'bgr8' if encoding == 'bgra8' else 'rgb8'
        return imgmsg_to_numpy(msg, target), target[:3]
    raise ImageDecodeError(
        f'encoding {encoding!r} is not a colour image; publish one of '
        f'{sorted(DIRECT_ENCODINGS) + list(CONVERTED_ENCODINGS)}'
    )


def _decode_images(cameras: Sequence[CameraInput]) -> tuple[list[np.ndarray], str]:
    """
    Six uint8 [H, W, 3] arrays of one size, in one channel order (the first present camera's); a missing
    camera (image None) gets zeros.
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
    images = []
    for i in range(len(cameras)):
        if i not in decoded:
            images.append(np.zeros_like(reference))  # [H, W, 3]: masked out of the model anyway
            continue
        image, own_order = decoded[i]
        if image.shape != reference.shape:
            size, ref = (
                f'{image.shape[1]}x{image.shape[0]}',
                f'{reference.shape[1]}x{reference.shape[0]}',
            )
            raise FrameError(
                'image',
                f'camera {i} ({_frame_id(cameras[i].image)}) is {size} but camera '
                f'{first} is {ref}; all cameras must publish one size',
            )
        if own_order != order:
            image = np.ascontiguousarray(
                image[..., ::-1]
            )  # rare mixed rigs: match the first camera's order
        images.append(image)
    return images, order


class _StageClock:
    """Wall time per stage; on CUDA each lap waits for the queued kernels, so stages are not blurred."""

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

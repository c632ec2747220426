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
The node's one typed configuration, built from a flat dict of ROS parameters.

ROS hands parameters over flat (`sync.slop`), so `PARAMETERS` lists every name with its default, a
description
and whether it may change while the node is configured. `NodeConfig.from_parameters` turns such a
dict into a
tree of frozen dataclasses and rejects each bad value with one `NodeConfigError` that names the
parameter and
what it accepts. Nothing here imports rclpy, so the offline tools and tests share it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import math
from typing import Any

# The official camera order (nuScenes data converter); the model's `cams_embeds` are indexed in
# this order.
OFFICIAL_CAMERAS = (
    'CAM_FRONT',
    'CAM_FRONT_RIGHT',
    'CAM_FRONT_LEFT',
    'CAM_BACK',
    'CAM_BACK_LEFT',
    'CAM_BACK_RIGHT',
)
PRESETS = ('tiny', 'small', 'base')
DEFAULT_PRESET = 'tiny'
RELIABILITIES = ('best_effort', 'reliable')
EGO_SOURCES = ('odom', 'tf', 'none')
BEV_IMAGE_MODES = ('norm', 'pca')


class NodeConfigError(ValueError):
    """A parameter value the node cannot use; the message names the parameter and the allowed values."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        super().__init__(f'parameter {name!r} = {value!r} is invalid: expected {allowed}')
        self.name = name
        self.value = value
        self.allowed = allowed


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    runtime: bool = (
        False  # may change while the model is loaded; the rest apply at the next configure
    )


def _p(name: str, default: Any, description: str, runtime: bool = False) -> Param:
    return Param(name, default, description, runtime)


PARAMETERS: tuple[Param, ...] = (
    _p(
        'autostart',
        False,
        'Configure and activate on start (plain-node mode, for tools that drive no lifecycle).',
    ),
    # model
    _p(
        'model.preset',
        DEFAULT_PRESET,
        'Official architecture: tiny (R50, 50x50 BEV), small (R101-DCN, '
        '150x150), base (R101-DCN, 200x200).',
    ),
    _p(
        'model.checkpoint',
        '',
        'Path of an official BEVFormer .pth checkpoint; empty = seeded random weights '
        '(detections then mean nothing).',
    ),
    _p(
        'model.official_config_json',
        '',
        'Optional JSON dump of an official mmdet3d model config; overrides model.preset.',
    ),
    _p(
        'model.device',
        'auto',
        'Torch device: auto (cuda when available, else cpu), cpu, cuda or cuda:N.',
    ),
    _p('model.fp16', False, 'Run the model in float16 autocast (cuda only).'),
    _p('model.seed', 0, 'Seed of the random weights used when model.checkpoint is empty.'),
    _p('model.embed_dims', 0, 'Test-size override of the transformer width (0 = preset value).'),
    _p(
        'model.ffn_dims',
        0,
        'Test-size override of the FFN width (0 = preset value, or 2 x embed_dims when '
        'embed_dims is set).',
    ),
    _p('model.bev_size', 0, 'Test-size override of bev_h = bev_w (0 = preset value).'),
    _p(
        'model.num_encoder_layers',
        0,
        'Test-size override of the encoder depth (0 = preset value).',
    ),
    _p(
        'model.num_decoder_layers',
        0,
        'Test-size override of the decoder depth (0 = preset value).',
    ),
    _p(
        'model.num_query',
        0,
        'Test-size override of the number of object queries (0 = preset value).',
    ),
    _p(
        'model.base_channels',
        0,
        'Test-size override of the ResNet stem width (0 = preset value, 64).',
    ),
    _p(
        'model.image_scale',
        0.0,
        'Resize factor applied to the camera images before the network '
        '(0 = preset value: tiny 0.5, small 0.8, base 1.0 for 1600x900 nuScenes images).',
    ),
    # cameras
    _p(
        'cameras.names',
        list(OFFICIAL_CAMERAS),
        'Camera names in the official model order; also the keys of the rig YAML.',
    ),
    _p(
        'cameras.image_topics',
        [f'{c}/image_raw' for c in OFFICIAL_CAMERAS],
        'Image topics, one per camera name (relative names follow the node namespace; remappable).',
    ),
    _p(
        'cameras.info_topics',
        [f'{c}/camera_info' for c in OFFICIAL_CAMERAS],
        'CameraInfo topics, one per camera name.',
    ),
    _p(
        'cameras.compressed',
        False,
        'Subscribe to sensor_msgs/CompressedImage on <image_topic>/compressed '
        '(image_transport convention) instead of raw Image.',
    ),
    # sync
    _p(
        'sync.queue_size',
        5,
        'Messages kept per camera by the approximate-time synchronizer. The matcher '
        'tries up to queue_size^5 combinations per message, so keep it small.',
    ),
    _p(
        'sync.slop',
        0.08,
        'Approximate-time matching window in seconds (max - min stamp < slop). 0.08 s is '
        'just under one frame at 12 Hz, so two frames of the same camera never fall into one set.',
    ),
    _p(
        'sync.max_spread',
        0.06,
        'Reject (and count) matched sets whose stamps spread more than this, in '
        'seconds. A nuScenes rig spreads at most ~50 ms (the cameras fire as the 20 Hz lidar sweeps past).',
        runtime=True,
    ),
    _p(
        'sync.camera_timeout_s',
        0.5,
        'A camera that delivers no image for this long (seconds) while the '
        'others do is left out: sets are formed from the remaining cameras (its BEV contribution masked) and '
        '/diagnostics reports DEGRADED, until it publishes again.',
    ),
    _p(
        'sync.min_cameras',
        4,
        'Fewest cameras a set may have when cameras are silent; below it no output is '
        'produced (ERROR in /diagnostics). 6 disables dropout handling.',
    ),
    _p(
        'sync.max_out_of_order_s',
        0.3,
        'A set up to this many seconds older than the previous one is dropped '
        'as out of order (and a repeated stamp as a duplicate); an older one is a time jump back (bag loop) '
        'and resets the temporal history.',
    ),
    # qos
    _p(
        'qos.reliability',
        'best_effort',
        'Image/CameraInfo subscription reliability: best_effort hears both '
        'best-effort camera drivers and reliable bag players; reliable hears only reliable publishers.',
    ),
    _p('qos.depth', 5, 'Subscription history depth (sensor-data QoS uses 5).'),
    # ego motion
    _p(
        'ego_motion.source',
        'odom',
        'Where the ego pose at each image stamp comes from: odom '
        '(nav_msgs/Odometry, interpolated), tf (odom_frame -> base_frame, needs tf2_ros) or none '
        '(static rig).',
    ),
    _p(
        'ego_motion.odom_topic',
        '/odom',
        'nav_msgs/Odometry topic used when ego_motion.source is odom.',
    ),
    _p(
        'ego_motion.odom_frame', 'odom', 'World-fixed, continuous frame of the ego pose (REP-105).'
    ),
    _p(
        'ego_motion.base_frame',
        'base_link',
        'Body frame of the ego pose (the nuScenes "ego" frame).',
    ),
    _p('ego_motion.buffer_s', 3.0, 'Seconds of odometry kept for interpolation at image stamps.'),
    _p(
        'ego_motion.max_extrapolation_s',
        0.1,
        'How far past the newest odometry message a pose may be '
        'extrapolated before the frame counts as having no ego pose.',
    ),
    # temporal
    _p(
        'temporal.enabled',
        True,
        'Feed the previous BEV to the next frame (BEVFormer video_test_mode). False '
        'resets the history on every frame.',
        runtime=True,
    ),
    _p(
        'temporal.max_gap_s',
        1.5,
        'Reset the history when consecutive frames are further apart than this '
        '(seconds). BEVFormer was trained and evaluated on 2 Hz keyframes (0.5 s steps); 1.5 s allows '
        'two dropped keyframes before the shifted history no longer overlaps the scene it describes.',
        runtime=True,
    ),
    _p(
        'temporal.max_ego_jump_m',
        20.0,
        'Reset the history when the ego pose moves further than this '
        '(metres) between consecutive frames: more than any road vehicle covers within max_gap_s at 12 Hz '
        'frame steps, about a fifth of the 102.4 m BEV grid.',
        runtime=True,
    ),
    # outputs
    _p(
        'outputs.frame_id',
        'LIDAR_TOP',
        'Reference frame of lidar2img, the boxes and the BEV grid '
        '(LIDAR_TOP for nuScenes-trained checkpoints; its axes differ from base_link).',
    ),
    _p(
        'outputs.score_threshold',
        0.3,
        'Publish detections whose score is at least this.',
        runtime=True,
    ),
    _p(
        'outputs.max_markers',
        100,
        'Most detections drawn in ~/markers per frame (highest scores first).',
        runtime=True,
    ),
    _p(
        'outputs.publish_bev_features',
        True,
        'Publish ~/bev_features (32FC<C> Image) when subscribed.',
        runtime=True,
    ),
    _p(
        'outputs.publish_bev_image',
        True,
        'Publish ~/bev_image (rgb8) when subscribed.',
        runtime=True,
    ),
    _p(
        'outputs.publish_detections',
        True,
        'Publish ~/detections (vision_msgs/Detection3DArray) when '
        'vision_msgs is importable and someone subscribes.',
        runtime=True,
    ),
    _p(
        'outputs.bev_image_mode',
        'norm',
        'How ~/bev_image colours the BEV: norm (L2 norm of the channels) or '
        'pca (first three principal components as RGB).',
        runtime=True,
    ),
    _p(
        'outputs.publish_overlay',
        False,
        'Publish ~/overlay (rgb8) when subscribed: the six cameras with the '
        "detected boxes projected onto them and the bird's-eye view beside them (the bevformer_render "
        'picture). Drawn in the publishing thread, only while someone subscribes.',
        runtime=True,
    ),
    _p(
        'outputs.overlay_tile_width',
        320,
        'Width of one camera tile of ~/overlay in pixels; the tile height '
        'keeps the camera aspect (tile_h), the picture is 3 x width + 2 x tile_h wide and 2 x tile_h high.',
        runtime=True,
    ),
    # calibration
    _p(
        'calibration.rig_yaml',
        'nuscenes_rig.yaml',
        'Camera extrinsics (camera -> reference frame) used when '
        'TF has none; a bare name is looked up in the package config/ folder.',
    ),
    _p(
        'calibration.use_tf',
        True,
        'Take extrinsics from TF (reference frame <- camera frame) when tf2_ros '
        'is importable and the transform exists; else the rig YAML.',
    ),
    # diagnostics
    _p('diagnostics.period_s', 1.0, 'Period of /diagnostics messages in seconds.'),
)
PARAMETERS_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}


def default_parameters() -> dict[str, Any]:
    """Flat `{name: default}` of every parameter (what the node declares)."""
    return {
        p.name: (list(p.default) if isinstance(p.default, list) else p.default) for p in PARAMETERS
    }


@dataclass(frozen=True)
class ModelOverrides:
    """Small-model sizes for tests and benchmarks; 0 keeps the preset's value."""

    embed_dims: int = 0
    ffn_dims: int = 0
    bev_size: int = 0
    num_encoder_layers: int = 0
    num_decoder_layers: int = 0
    num_query: int = 0
    base_channels: int = 0
    image_scale: float = 0.0

    def any(self) -> bool:
        return any(v != 0 for v in vars(self).values())


@dataclass(frozen=True)
class ModelSettings:
    preset: str = 'tiny'
    checkpoint: str = ''
    official_config_json: str = ''
    device: str = 'auto'
    fp16: bool = False
    seed: int = 0
    overrides: ModelOverrides = field(default_factory=ModelOverrides)


@dataclass(frozen=True)
class CameraSettings:
    names: tuple[str, ...] = OFFICIAL_CAMERAS
    image_topics: tuple[str, ...] = tuple(f'{c}/image_raw' for c in OFFICIAL_CAMERAS)
    info_topics: tuple[str, ...] = tuple(f'{c}/camera_info' for c in OFFICIAL_CAMERAS)
    compressed: bool = False

    def subscribed_image_topics(self) -> tuple[str, ...]:
        if not self.compressed:
            return self.image_topics
        return tuple(
            t if t.endswith('/compressed') else f'{t}/compressed' for t in self.image_topics
        )


@dataclass(frozen=True)
class SyncSettings:
    queue_size: int = 5
    slop: float = 0.08
    max_spread: float = 0.06
    camera_timeout_s: float = 0.5
    min_cameras: int = 4
    max_out_of_order_s: float = 0.3


@dataclass(frozen=True)
class QosSettings:
    reliability: str = 'best_effort'
    depth: int = 5


@dataclass(frozen=True)
class EgoMotionSettings:
    source: str = 'odom'
    odom_topic: str = '/odom'
    odom_frame: str = 'odom'
    base_frame: str = 'base_link'
    buffer_s: float = 3.0
    max_extrapolation_s: float = 0.1


@dataclass(frozen=True)
class TemporalSettings:
    enabled: bool = True
    max_gap_s: float = 1.5
    max_ego_jump_m: float = 20.0


@dataclass(frozen=True)
class OutputSettings:
    frame_id: str = 'LIDAR_TOP'
    score_threshold: float = 0.3
    max_markers: int = 100
    publish_bev_features: bool = True
    publish_bev_image: bool = True
    publish_detections: bool = True
    bev_image_mode: str = 'norm'
    publish_overlay: bool = False
    overlay_tile_width: int = 320


@dataclass(frozen=True)
class CalibrationSettings:
    rig_yaml: str = 'nuscenes_rig.yaml'
    use_tf: bool = True


@dataclass(frozen=True)
class DiagnosticsSettings:
    period_s: float = 1.0


@dataclass(frozen=True)
class NodeConfig:
    model: ModelSettings = field(default_factory=ModelSettings)
    cameras: CameraSettings = field(default_factory=CameraSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    qos: QosSettings = field(default_factory=QosSettings)
    ego_motion: EgoMotionSettings = field(default_factory=EgoMotionSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    outputs: OutputSettings = field(default_factory=OutputSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    autostart: bool = False

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> NodeConfig:
        """
        Build from a flat `{name: value}`; missing names take their defaults.

        Raises NodeConfigError for an unknown name or a bad value (the first one found).
        """
        for name in params:
            if name not in PARAMETERS_BY_NAME:
                raise NodeConfigError(name, params[name], _known_names_hint(name))
        r = _Reader({**default_parameters(), **params})
        return cls(
            model=_model(r),
            cameras=_cameras(r),
            sync=_sync(r),
            qos=_qos(r),
            ego_motion=_ego(r),
            temporal=_temporal(r),
            outputs=_outputs(r),
            calibration=_calibration(r),
            diagnostics=DiagnosticsSettings(
                period_s=r.number('diagnostics.period_s', low=0.05, high=60.0)
            ),
            autostart=r.flag('autostart'),
        )


def is_runtime_parameter(name: str) -> bool:
    param = PARAMETERS_BY_NAME.get(name)
    return param is not None and param.runtime


def _known_names_hint(name: str) -> str:
    prefix = name.split('.')[0] + '.'
    near = sorted(p.name for p in PARAMETERS if p.name.startswith(prefix))
    return 'a known parameter name' + (f' such as {", ".join(near)}' if near else '')


class _Reader:
    """Typed access to the flat dict; every getter raises NodeConfigError naming the parameter."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def flag(self, name: str) -> bool:
        value = self._values[name]
        if not isinstance(value, bool):
            raise NodeConfigError(name, value, 'true or false')
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self._values[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise NodeConfigError(name, value, f'an integer in [{low}, {high}]')
        return value

    def number(self, name: str, low: float, high: float = math.inf) -> float:
        value = self._values[name]
        ok = (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
        if not ok or not low <= value <= high:
            raise NodeConfigError(name, value, f'a finite number in [{low}, {high}]')
        return float(value)

    def text(self, name: str, allow_empty: bool = True) -> str:
        value = self._values[name]
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise NodeConfigError(
                name, value, 'a non-empty string' if not allow_empty else 'a string'
            )
        return value

    def choice(self, name: str, allowed: Sequence[str]) -> str:
        value = self._values[name]
        if value not in allowed:
            raise NodeConfigError(name, value, 'one of ' + ', '.join(allowed))
        return value

    def strings(
        self, name: str, length: int | None = None, check: Callable[[str], bool] = bool
    ) -> tuple[str, ...]:
        value = self._values[name]
        ok = isinstance(value, list | tuple) and all(
            isinstance(v, str) and check(v) for v in value
        )
        if not ok or (length is not None and len(value) != length):
            count = f'{length} ' if length is not None else ''
            raise NodeConfigError(name, value, f'a list of {count}non-empty strings')
        return tuple(value)


def _model(r: _Reader) -> ModelSettings:
    device = r.text('model.device', allow_empty=False)
    if device not in ('auto', 'cpu', 'cuda') and not (
        device.startswith('cuda:') and device[5:].isdigit()
    ):
        raise NodeConfigError('model.device', device, 'auto, cpu, cuda or cuda:N')
    overrides = ModelOverrides(
        embed_dims=r.integer('model.embed_dims', 0, 4096),
        ffn_dims=r.integer('model.ffn_dims', 0, 16384),
        bev_size=r.integer('model.bev_size', 0, 400),
        num_encoder_layers=r.integer('model.num_encoder_layers', 0, 12),
        num_decoder_layers=r.integer('model.num_decoder_layers', 0, 12),
        num_query=r.integer('model.num_query', 0, 10000),
        base_channels=r.integer('model.base_channels', 0, 256),
        image_scale=r.number('model.image_scale', 0.0, 4.0),
    )
    if overrides.embed_dims % 8:
        raise NodeConfigError(
            'model.embed_dims', overrides.embed_dims, 'a multiple of 8 (8 attention heads)'
        )
    return ModelSettings(
        preset=r.choice('model.preset', PRESETS),
        checkpoint=r.text('model.checkpoint'),
        official_config_json=r.text('model.official_config_json'),
        device=device,
        fp16=r.flag('model.fp16'),
        seed=r.integer('model.seed', 0, 2**31 - 1),
        overrides=overrides,
    )


def _cameras(r: _Reader) -> CameraSettings:
    names = r.strings('cameras.names')
    if len(names) != len(OFFICIAL_CAMERAS) or len(set(names)) != len(names):
        raise NodeConfigError(
            'cameras.names',
            list(names),
            f'{len(OFFICIAL_CAMERAS)} distinct camera names in the official order '
            f'({", ".join(OFFICIAL_CAMERAS)})',
        )
    return CameraSettings(
        names=names,
        image_topics=r.strings('cameras.image_topics', len(names)),
        info_topics=r.strings('cameras.info_topics', len(names)),
        compressed=r.flag('cameras.compressed'),
    )


def _sync(r: _Reader) -> SyncSettings:
    return SyncSettings(
        queue_size=r.integer('sync.queue_size', 1, 50),
        slop=r.number('sync.slop', 0.001, 5.0),
        max_spread=r.number('sync.max_spread', 0.0, 5.0),
        camera_timeout_s=r.number('sync.camera_timeout_s', 0.01, 60.0),
        min_cameras=r.integer('sync.min_cameras', 1, len(OFFICIAL_CAMERAS)),
        max_out_of_order_s=r.number('sync.max_out_of_order_s', 0.0, 60.0),
    )


def _qos(r: _Reader) -> QosSettings:
    return QosSettings(
        reliability=r.choice('qos.reliability', RELIABILITIES),
        depth=r.integer('qos.depth', 1, 1000),
    )


def _ego(r: _Reader) -> EgoMotionSettings:
    return EgoMotionSettings(
        source=r.choice('ego_motion.source', EGO_SOURCES),
        odom_topic=r.text('ego_motion.odom_topic', allow_empty=False),
        odom_frame=r.text('ego_motion.odom_frame', allow_empty=False),
        base_frame=r.text('ego_motion.base_frame', allow_empty=False),
        buffer_s=r.number('ego_motion.buffer_s', 0.1, 600.0),
        max_extrapolation_s=r.number('ego_motion.max_extrapolation_s', 0.0, 10.0),
    )


def _temporal(r: _Reader) -> TemporalSettings:
    return TemporalSettings(
        enabled=r.flag('temporal.enabled'),
        max_gap_s=r.number('temporal.max_gap_s', 0.001, 3600.0),
        max_ego_jump_m=r.number('temporal.max_ego_jump_m', 0.001),
    )


def _outputs(r: _Reader) -> OutputSettings:
    return OutputSettings(
        frame_id=r.text('outputs.frame_id', allow_empty=False),
        score_threshold=r.number('outputs.score_threshold', 0.0, 1.0),
        max_markers=r.integer('outputs.max_markers', 0, 10000),
        publish_bev_features=r.flag('outputs.publish_bev_features'),
        publish_bev_image=r.flag('outputs.publish_bev_image'),
        publish_detections=r.flag('outputs.publish_detections'),
        bev_image_mode=r.choice('outputs.bev_image_mode', BEV_IMAGE_MODES),
        publish_overlay=r.flag('outputs.publish_overlay'),
        overlay_tile_width=r.integer('outputs.overlay_tile_width', 32, 1600),
    )


def _calibration(r: _Reader) -> CalibrationSettings:
    return CalibrationSettings(
        rig_yaml=r.text('calibration.rig_yaml', allow_empty=False),
        use_tf=r.flag('calibration.use_tf'),
    )

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
The node's parameters, declared once, and its one typed configuration built from them.

Each parameter is a field of the frozen settings dataclasses below, declared with `param(default,
check, description, runtime)`. Everything else is generated from those fields: `PARAMETERS` (the
flat ROS names such as `sync.slop`, which the node declares), the validation in
`NodeConfig.from_parameters` (one `NodeConfigError` naming the parameter and what it accepts) and
the README's parameter table (`parameter_table`). Nothing here imports rclpy, so the offline tools
and tests share it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, Field, field, fields
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
ENGINE_BACKENDS = ('torch', 'openvino', 'onnxruntime', 'tensorrt')
ENGINE_PRECISIONS = ('fp32', 'bf16', 'fp16')
RELIABILITIES = ('best_effort', 'reliable')
EGO_SOURCES = ('odom', 'tf', 'none')
BEV_IMAGE_MODES = ('norm', 'pca')


class NodeConfigError(ValueError):
    """A value the node cannot use; the message names the parameter and what it accepts."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        super().__init__(f'parameter {name!r} = {value!r} is invalid: expected {allowed}')
        self.name = name
        self.value = value
        self.allowed = allowed


class Check:
    """
    How one parameter's value is checked and converted.

    `allowed` is the "expected ..." part of the `NodeConfigError` and the README's allowed column;
    `ros_type` is the ROS parameter type the README names.
    """

    ros_type = 'string'

    @property
    def allowed(self) -> str:
        raise NotImplementedError

    def __call__(self, name: str, value: Any) -> Any:
        """Return `value` converted to the config field's type; raise NodeConfigError if bad."""
        raise NotImplementedError

    def _refuse(self, name: str, value: Any, allowed: str | None = None) -> NodeConfigError:
        return NodeConfigError(name, value, allowed or self.allowed)


@dataclass(frozen=True)
class Flag(Check):
    ros_type = 'bool'
    allowed = 'true or false'

    def __call__(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self._refuse(name, value)
        return value


@dataclass(frozen=True)
class Integer(Check):
    low: int
    high: int
    multiple_of: int = 1
    why: str = ''  # reason for multiple_of, shown in its error

    ros_type = 'int'

    @property
    def allowed(self) -> str:
        return f'an integer in [{self.low}, {self.high}]'

    def __call__(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._refuse(name, value)
        if not self.low <= value <= self.high:
            raise self._refuse(name, value)
        if value % self.multiple_of:
            raise self._refuse(name, value, f'a multiple of {self.multiple_of} ({self.why})')
        return value


@dataclass(frozen=True)
class Number(Check):
    low: float
    high: float = math.inf

    ros_type = 'float'

    @property
    def allowed(self) -> str:
        return f'a finite number in [{self.low}, {self.high}]'

    def __call__(self, name: str, value: Any) -> float:
        # ints pass too: `-p sync.slop:=1` arrives as an integer parameter.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or not self.low <= value <= self.high:
            raise self._refuse(name, value)
        return float(value)


@dataclass(frozen=True)
class Text(Check):
    allow_empty: bool = True

    @property
    def allowed(self) -> str:
        return 'a string' if self.allow_empty else 'a non-empty string'

    def __call__(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or (not self.allow_empty and not value.strip()):
            raise self._refuse(name, value)
        return value


@dataclass(frozen=True)
class Choice(Check):
    options: tuple[str, ...]

    @property
    def allowed(self) -> str:
        return 'one of ' + ', '.join(self.options)

    def __call__(self, name: str, value: Any) -> str:
        if value not in self.options:
            raise self._refuse(name, value)
        return value


@dataclass(frozen=True)
class Device(Check):
    allowed = 'auto, cpu, cuda or cuda:N'

    def __call__(self, name: str, value: Any) -> str:
        value = Text(allow_empty=False)(name, value)
        indexed = value.startswith('cuda:') and value[5:].isdigit()
        if value not in ('auto', 'cpu', 'cuda') and not indexed:
            raise self._refuse(name, value)
        return value


@dataclass(frozen=True)
class Strings(Check):
    length: int | None = None

    ros_type = 'string[]'

    @property
    def allowed(self) -> str:
        count = f'{self.length} ' if self.length is not None else ''
        return f'a list of {count}non-empty strings'

    def __call__(self, name: str, value: Any) -> tuple[str, ...]:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)
        if not ok or (self.length is not None and len(value) != self.length):
            raise self._refuse(name, value)
        return tuple(value)


@dataclass(frozen=True)
class CameraNames(Strings):
    @property
    def allowed(self) -> str:
        return (
            f'{len(OFFICIAL_CAMERAS)} distinct camera names in the official order '
            f'({", ".join(OFFICIAL_CAMERAS)})'
        )

    def __call__(self, name: str, value: Any) -> tuple[str, ...]:
        names = Strings()(name, value)
        if len(names) != len(OFFICIAL_CAMERAS) or len(set(names)) != len(names):
            raise self._refuse(name, list(names))
        return names


@dataclass(frozen=True)
class ImageSize(Check):
    ros_type = 'int[]'
    allowed = 'empty, or [width, height] in pixels (two positive integers)'

    def __call__(self, name: str, value: Any) -> tuple[int, ...]:
        if isinstance(value, list | tuple):  # rclpy: a list; an empty default: an empty list
            values = list(value)
        elif hasattr(value, 'tolist'):  # array.array or numpy
            values = value.tolist()
        else:
            raise self._refuse(name, value)
        if values == []:
            return ()
        ok = len(values) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 16384 for v in values
        )
        if not ok:
            raise self._refuse(name, value)
        return (values[0], values[1])


@dataclass(frozen=True)
class ParamSpec:
    check: Check
    description: str
    runtime: bool  # may change while the model is loaded; the rest apply at the next configure


_SPEC = 'bevformer_parameter'  # dataclass field metadata key of a parameter's ParamSpec
_FLAT = 'bevformer_flat_group'  # metadata key: the group's fields keep the parent's prefix


def param(default: Any, check: Check, description: str, runtime: bool = False) -> Any:
    """Declare a config field that is a node parameter: one entry here is all a parameter needs."""
    return field(default=default, metadata={_SPEC: ParamSpec(check, description, runtime)})


def group(settings: type, flat: bool = False) -> Any:
    """Nest a settings dataclass: its parameters are `<field>.<name>`, or `<name>` when `flat`."""
    return field(default_factory=settings, metadata={_FLAT: flat})


@dataclass(frozen=True)
class ModelOverrides:
    """Small-model sizes for tests and benchmarks (`model.<name>`); 0 keeps the preset's value."""

    embed_dims: int = param(
        0,
        Integer(0, 4096, multiple_of=8, why='8 attention heads'),
        'Test-size override of the transformer width (0 = preset value).',
    )
    ffn_dims: int = param(
        0,
        Integer(0, 16384),
        'Test-size override of the FFN width (0 = preset value, or 2 x embed_dims when '
        'embed_dims is set).',
    )
    bev_size: int = param(
        0, Integer(0, 400), 'Test-size override of bev_h = bev_w (0 = preset value).'
    )
    num_encoder_layers: int = param(
        0, Integer(0, 12), 'Test-size override of the encoder depth (0 = preset value).'
    )
    num_decoder_layers: int = param(
        0, Integer(0, 12), 'Test-size override of the decoder depth (0 = preset value).'
    )
    num_query: int = param(
        0,
        Integer(0, 10000),
        'Test-size override of the number of object queries (0 = preset value).',
    )
    base_channels: int = param(
        0, Integer(0, 256), 'Test-size override of the ResNet stem width (0 = preset value, 64).'
    )
    image_scale: float = param(
        0.0,
        Number(0.0, 4.0),
        'Resize factor applied to the camera images before the network '
        '(0 = preset value: tiny 0.5, small 0.8, base 1.0 for 1600x900 nuScenes images).',
    )

    def any(self) -> bool:  # noqa: A003
        return any(v != 0 for v in vars(self).values())


@dataclass(frozen=True)
class ModelSettings:
    preset: str = param(
        DEFAULT_PRESET,
        Choice(PRESETS),
        'Official architecture: tiny (R50, 50x50 BEV), small (R101-DCN, 150x150), '
        'base (R101-DCN, 200x200).',
    )
    checkpoint: str = param(
        '',
        Text(),
        'Path of an official BEVFormer .pth checkpoint; empty = seeded random weights '
        '(detections then mean nothing).',
    )
    official_config_json: str = param(
        '',
        Text(),
        'Optional JSON dump of an official mmdet3d model config; overrides model.preset.',
    )
    device: str = param(
        'auto',
        Device(),
        'Torch device: auto (cuda when available, else cpu), cpu, cuda or cuda:N.',
    )
    backend: str = param(
        'torch',
        Choice(ENGINE_BACKENDS),
        'Inference engine: torch (batch norm folded, channels_last, CUDA graphs on a GPU), or '
        'the exported ONNX graph in openvino (Intel CPUs), '
        'onnxruntime or tensorrt (NVIDIA GPUs); exported and compiled once, cached on disk '
        '(model.engine_cache). The runtimes are optional: pip install openvino / onnxruntime / '
        'tensorrt.',
    )
    precision: str = param(
        'fp32',
        Choice(ENGINE_PRECISIONS),
        'Engine precision: fp32, bf16 (torch and openvino on CPUs with AVX512-BF16/AMX, '
        'tensorrt) or fp16 (torch on CUDA, tensorrt); onnxruntime runs fp32.',
    )
    engine_image_size: tuple[int, ...] = param(
        (),
        ImageSize(),
        'Camera image size [width, height] the openvino / onnxruntime / tensorrt engine is '
        'exported and compiled for at configure (progress in the log); empty = at the first '
        'frame. A frame of another size gets its own engine then.',
    )
    engine_cache: str = param(
        '',
        Text(),
        'Folder of the exported / compiled engines; empty = ~/.cache/bevformer_ros/engines.',
    )
    seed: int = param(
        0, Integer(0, 2**31 - 1), 'Seed of the random weights used when model.checkpoint is empty.'
    )
    overrides: ModelOverrides = group(ModelOverrides, flat=True)


@dataclass(frozen=True)
class CameraSettings:
    names: tuple[str, ...] = param(
        OFFICIAL_CAMERAS,
        CameraNames(),
        'Camera names in the official model order; also the keys of the rig YAML.',
    )
    image_topics: tuple[str, ...] = param(
        tuple(f'{c}/image_raw' for c in OFFICIAL_CAMERAS),
        Strings(len(OFFICIAL_CAMERAS)),
        'Image topics, one per camera name (relative names follow the node namespace; '
        'remappable).',
    )
    info_topics: tuple[str, ...] = param(
        tuple(f'{c}/camera_info' for c in OFFICIAL_CAMERAS),
        Strings(len(OFFICIAL_CAMERAS)),
        'CameraInfo topics, one per camera name.',
    )
    compressed: bool = param(
        False,
        Flag(),
        'Subscribe to sensor_msgs/CompressedImage on <image_topic>/compressed '
        '(image_transport convention) instead of raw Image.',
    )
    rectified: bool = param(
        False,
        Flag(),
        'The images are already rectified although their CameraInfo carries distortion '
        'coefficients: no warning about distortion (the model ignores distortion; raw images '
        'must be rectified first, e.g. with image_proc).',
    )

    def subscribed_image_topics(self) -> tuple[str, ...]:
        if not self.compressed:
            return self.image_topics
        return tuple(
            t if t.endswith('/compressed') else f'{t}/compressed' for t in self.image_topics
        )


@dataclass(frozen=True)
class SyncSettings:
    queue_size: int = param(
        5,
        Integer(1, 50),
        'Messages kept per camera by the approximate-time synchronizer. The matcher tries up to '
        'queue_size^5 combinations per message, so keep it small.',
    )
    slop: float = param(
        0.08,
        Number(0.001, 5.0),
        'Approximate-time matching window in seconds (max - min stamp < slop). 0.08 s is just '
        'under one frame at 12 Hz, so two frames of the same camera never fall into one set.',
    )
    max_spread: float = param(
        0.06,
        Number(0.0, 5.0),
        'Reject (and count) matched sets whose stamps spread more than this, in seconds. A '
        'nuScenes rig spreads at most ~50 ms (the cameras fire as the 20 Hz lidar sweeps past).',
        runtime=True,
    )
    camera_timeout_s: float = param(
        0.5,
        Number(0.01, 60.0),
        'A camera that delivers no image for this long (seconds) while the others do is left '
        'out: sets are formed from the remaining cameras (its BEV contribution masked) and '
        '/diagnostics reports DEGRADED, until it publishes again.',
    )
    min_cameras: int = param(
        4,
        Integer(1, len(OFFICIAL_CAMERAS)),
        'Fewest cameras a set may have when cameras are silent; below it no output is produced '
        '(ERROR in /diagnostics). 6 disables dropout handling.',
    )
    max_out_of_order_s: float = param(
        0.3,
        Number(0.0, 60.0),
        'A set up to this many seconds older than the previous one is dropped as out of order '
        '(and a repeated stamp as a duplicate); an older one is a time jump back (bag loop) and '
        'resets the temporal history.',
    )


@dataclass(frozen=True)
class QosSettings:
    reliability: str = param(
        'best_effort',
        Choice(RELIABILITIES),
        'Image/CameraInfo subscription reliability: best_effort hears both best-effort camera '
        'drivers and reliable bag players; reliable hears only reliable publishers.',
    )
    depth: int = param(5, Integer(1, 1000), 'Subscription history depth (sensor-data QoS uses 5).')


@dataclass(frozen=True)
class EgoMotionSettings:
    source: str = param(
        'odom',
        Choice(EGO_SOURCES),
        'Where the ego pose at each image stamp comes from: odom (nav_msgs/Odometry, '
        'interpolated), tf (odom_frame -> base_frame, needs tf2_ros) or none (static rig).',
    )
    odom_topic: str = param(
        '/odom',
        Text(allow_empty=False),
        'nav_msgs/Odometry topic used when ego_motion.source is odom.',
    )
    odom_frame: str = param(
        'odom',
        Text(allow_empty=False),
        'World-fixed, continuous frame of the ego pose (REP-105).',
    )
    base_frame: str = param(
        'base_link',
        Text(allow_empty=False),
        'Body frame of the ego pose (the nuScenes "ego" frame).',
    )
    buffer_s: float = param(
        3.0, Number(0.1, 600.0), 'Seconds of odometry kept for interpolation at image stamps.'
    )
    max_extrapolation_s: float = param(
        0.1,
        Number(0.0, 10.0),
        'How far past the newest odometry message a pose may be extrapolated before the frame '
        'counts as having no ego pose.',
    )


@dataclass(frozen=True)
class TemporalSettings:
    enabled: bool = param(
        True,
        Flag(),
        'Feed the previous BEV to the next frame (BEVFormer video_test_mode). False resets the '
        'history on every frame.',
        runtime=True,
    )
    max_gap_s: float = param(
        1.5,
        Number(0.001, 3600.0),
        'Reset the history when consecutive frames are further apart than this (seconds). '
        'BEVFormer was trained and evaluated on 2 Hz keyframes (0.5 s steps); 1.5 s allows two '
        'dropped keyframes before the shifted history no longer overlaps the scene it describes.',
        runtime=True,
    )
    max_ego_jump_m: float = param(
        20.0,
        Number(0.001),
        'Reset the history when the ego pose moves further than this (metres) between '
        'consecutive frames: more than any road vehicle covers within max_gap_s at 12 Hz frame '
        'steps, about a fifth of the 102.4 m BEV grid.',
        runtime=True,
    )


@dataclass(frozen=True)
class OutputSettings:
    frame_id: str = param(
        'LIDAR_TOP',
        Text(allow_empty=False),
        'Reference frame of lidar2img, the boxes and the BEV grid (LIDAR_TOP for '
        'nuScenes-trained checkpoints; its axes differ from base_link).',
    )
    score_threshold: float = param(
        0.3, Number(0.0, 1.0), 'Publish detections whose score is at least this.', runtime=True
    )
    max_markers: int = param(
        100,
        Integer(0, 10000),
        'Most detections drawn in ~/markers per frame (highest scores first).',
        runtime=True,
    )
    publish_bev_features: bool = param(
        True, Flag(), 'Publish ~/bev_features (32FC<C> Image) when subscribed.', runtime=True
    )
    publish_bev_image: bool = param(
        True, Flag(), 'Publish ~/bev_image (rgb8) when subscribed.', runtime=True
    )
    publish_detections: bool = param(
        True,
        Flag(),
        'Publish ~/detections (vision_msgs/Detection3DArray) when vision_msgs is importable and '
        'someone subscribes.',
        runtime=True,
    )
    bev_image_mode: str = param(
        'norm',
        Choice(BEV_IMAGE_MODES),
        'How ~/bev_image colours the BEV: norm (L2 norm of the channels) or pca (first three '
        'principal components as RGB).',
        runtime=True,
    )
    publish_overlay: bool = param(
        False,
        Flag(),
        'Publish ~/overlay (rgb8) when subscribed: the six cameras with the detected boxes '
        "projected onto them and the bird's-eye view beside them (the bevformer_render picture). "
        'Drawn in the publishing thread, only while someone subscribes.',
        runtime=True,
    )
    overlay_tile_width: int = param(
        320,
        Integer(32, 1600),
        'Width of one camera tile of ~/overlay in pixels; the tile height keeps the camera aspect '
        '(tile_h), the picture is 3 x width + 2 x tile_h wide and 2 x tile_h high.',
        runtime=True,
    )


@dataclass(frozen=True)
class CalibrationSettings:
    rig_yaml: str = param(
        'nuscenes_rig.yaml',
        Text(allow_empty=False),
        'Camera extrinsics (camera -> reference frame) used when TF has none; a bare name is '
        'looked up in the package config/ folder.',
    )
    use_tf: bool = param(
        True,
        Flag(),
        'Take extrinsics from TF (reference frame <- camera frame) when tf2_ros is importable '
        'and the transform exists; else the rig YAML.',
    )


@dataclass(frozen=True)
class DiagnosticsSettings:
    period_s: float = param(1.0, Number(0.05, 60.0), 'Period of /diagnostics messages in seconds.')


@dataclass(frozen=True)
class NodeConfig:
    autostart: bool = param(
        False,
        Flag(),
        'Configure and activate on start (plain-node mode, for tools that drive no lifecycle).',
    )
    model: ModelSettings = group(ModelSettings)
    cameras: CameraSettings = group(CameraSettings)
    sync: SyncSettings = group(SyncSettings)
    qos: QosSettings = group(QosSettings)
    ego_motion: EgoMotionSettings = group(EgoMotionSettings)
    temporal: TemporalSettings = group(TemporalSettings)
    outputs: OutputSettings = group(OutputSettings)
    calibration: CalibrationSettings = group(CalibrationSettings)
    diagnostics: DiagnosticsSettings = group(DiagnosticsSettings)

    @classmethod
    def from_parameters(cls, params: Mapping[str, Any]) -> NodeConfig:
        """
        Build from a flat `{name: value}`; missing names take their defaults.

        Raises NodeConfigError for an unknown name or a bad value (the first one found).
        """
        for name in params:
            if name not in PARAMETERS_BY_NAME:
                raise NodeConfigError(name, params[name], _known_names_hint(name))
        return _build(cls, {**default_parameters(), **params}, '')


@dataclass(frozen=True)
class Param:
    """One node parameter as ROS sees it: flat name, default, check, description, runtime."""

    name: str
    default: Any  # tuples as lists: ROS string arrays
    description: str
    runtime: bool
    check: Check

    @property
    def constraints(self) -> str:
        """Describe what the value may be and when it applies (ROS `additional_constraints`)."""
        return self.check.allowed + ('' if self.runtime else '; applies at configure')


def _prefix(f: Field, prefix: str) -> str:
    return prefix if f.metadata[_FLAT] else f'{prefix}{f.name}.'


def _walk(settings: type, prefix: str) -> Iterator[Param]:
    for f in fields(settings):
        spec = f.metadata.get(_SPEC)
        if spec is None:
            yield from _walk(f.default_factory, _prefix(f, prefix))
            continue
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        yield Param(prefix + f.name, default, spec.description, spec.runtime, spec.check)


def _build(settings: type, values: Mapping[str, Any], prefix: str) -> Any:
    """Build the `settings` dataclass, every parameter field checked; nested groups recursively."""
    kwargs = {}
    for f in fields(settings):
        spec = f.metadata.get(_SPEC)
        if spec is None:
            kwargs[f.name] = _build(f.default_factory, values, _prefix(f, prefix))
        else:
            kwargs[f.name] = spec.check(prefix + f.name, values[prefix + f.name])
    return settings(**kwargs)


# Every node parameter, in declaration order; generated from the fields above.
PARAMETERS: tuple[Param, ...] = tuple(_walk(NodeConfig, ''))
PARAMETERS_BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}


def default_parameters() -> dict[str, Any]:
    """Flat `{name: default}` of every parameter (what the node declares)."""
    return {
        p.name: (list(p.default) if isinstance(p.default, list) else p.default) for p in PARAMETERS
    }


def is_runtime_parameter(name: str) -> bool:
    param = PARAMETERS_BY_NAME.get(name)
    return param is not None and param.runtime


def _known_names_hint(name: str) -> str:
    prefix = name.split('.')[0] + '.'
    near = sorted(p.name for p in PARAMETERS if p.name.startswith(prefix))
    return 'a known parameter name' + (f' such as {", ".join(near)}' if near else '')


# The README's parameter table sits between these markers; `with_parameter_table` rewrites it.
TABLE_BEGIN = '<!-- parameters:begin -->'
TABLE_END = '<!-- parameters:end -->'


def _markdown_value(value: Any) -> str:
    if isinstance(value, bool):
        return f'`{str(value).lower()}`'
    if isinstance(value, list):
        return '`[' + ', '.join(value) + ']`'
    return f'`{value}`' if value != '' else "`''`"


def parameter_table() -> str:
    """Return the Markdown table of every parameter (README, between TABLE_BEGIN and TABLE_END)."""
    rows = [
        '| parameter | type | default | allowed | run time | description |',
        '|---|---|---|---|---|---|',
    ]
    for p in PARAMETERS:
        cells = (
            f'`{p.name}`',
            p.check.ros_type,
            _markdown_value(p.default),
            p.check.allowed,
            'yes' if p.runtime else 'no',
            p.description,
        )
        rows.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
    return '\n'.join(rows)


def with_parameter_table(text: str) -> str:
    """`text` (the README) with the block between the table markers replaced by a fresh table."""
    head, begin, rest = text.partition(TABLE_BEGIN)
    _, end, tail = rest.partition(TABLE_END)
    if not begin or not end:
        raise ValueError(f'no {TABLE_BEGIN} ... {TABLE_END} block to fill')
    return f'{head}{TABLE_BEGIN}\n{parameter_table()}\n{TABLE_END}{tail}'

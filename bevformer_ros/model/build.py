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
The one place that builds the detector: architecture, checkpoint, device, inference engine.

`build_model(settings)` resolves `model.checkpoint` once (a bare file name is looked up in the
package's models/ folder, `resources.checkpoint_path`), reads the file once
(`torch.load(weights_only=True)`), takes the architecture stored in a project-trained checkpoint
(official ones carry none: then the preset, the size overrides or `model.official_config_json`
decide), builds the detector, loads the weights strictly (`checkpoint.load_state`) and returns it
in eval mode on the device with its config (`BuiltModel`). `build_detector(cfg, ...)` does the
same for tools whose architecture comes from elsewhere (a fixture, a benchmark preset).
`build_engine(built, backend, precision)` then chooses what runs the frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any

from bevformer_ros.config import DEFAULT_PRESET, ModelSettings
from bevformer_ros.model.checkpoint import CheckpointError, load_state, read_checkpoint
from bevformer_ros.model.config import BEVFormerConfig, from_official_config, preset
from bevformer_ros.model.config_dict import bevformer_config_from_dict
from bevformer_ros.model.detector import BEVFormer, build_bevformer
from bevformer_ros.resources import checkpoint_path
import torch
from torch import nn

# exported-graph engines (model.engines), chosen here after the torch model is built
EXPORTED_BACKENDS = ('onnxruntime', 'openvino', 'tensorrt')


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint file, read once: its resolved path and the object `torch.load` returned."""

    path: Path
    raw: Any  # {'meta': ..., 'state_dict': {name: tensor}} or a bare state dict (checked on load)


@dataclass(frozen=True)
class BuiltModel:
    """The detector (eval mode, on `device`), its architecture, and what chose both."""

    model: BEVFormer
    cfg: BEVFormerConfig
    device: torch.device
    checkpoint: Path | None  # the resolved checkpoint file; None: seeded random weights
    from_checkpoint: bool  # cfg is the architecture stored in the checkpoint by bevformer_train
    ignored: tuple[str, ...] = ()  # settings that the checkpoint's stored architecture overrules
    meta: dict[str, Any] = field(default_factory=dict)  # the checkpoint's meta ({} for none)


def resolve_device(name: str, option: str = 'model.device') -> torch.device:
    """
    Map 'auto' to cuda when available, else cpu; CUDA asked for without CUDA is an error.

    `option` names the setting in the message: the node parameter, or a tool's '--device'.
    """
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        hint = f'{option}:=auto' if option == 'model.device' else f'{option} auto'
        raise ValueError(
            f'{option}={name!r} but this torch has no usable CUDA device '
            f'(torch {torch.__version__}); use {hint} or cpu'
        )
    return device


def node_checkpoint_arguments(value: str) -> list[str]:
    """
    Return the ros-args that give a node started by a tool this `model.checkpoint` value.

    The value is resolved here (bare names in the package's models/ folder, relative paths against
    this working directory), so the node gets an absolute path; '' gives no arguments (random
    weights). ResourceNotFoundError for a bare name that is nowhere.
    """
    if not value:
        return []
    return ['-p', f'model.checkpoint:={checkpoint_path(value).resolve()}']


def read_checkpoint_file(value: str | Path) -> CheckpointFile | None:
    """
    Resolve a `model.checkpoint` value and read the file; None for '' (random weights).

    FileNotFoundError for a missing file, CheckpointError for one that cannot be read safely.
    """
    if not str(value):
        return None
    path = checkpoint_path(str(value))
    return CheckpointFile(path, read_checkpoint(path))


def stored_architecture(checkpoint: CheckpointFile | None) -> BEVFormerConfig | None:
    """
    Return the BEVFormerConfig bevformer_train stored in `meta['config']['model']`, or None.

    Official mmcv checkpoints carry the config file's text under `meta['config']` (or no meta).
    CheckpointError for a stored architecture this version cannot build.
    """
    raw = checkpoint.raw if checkpoint is not None else None
    meta = raw.get('meta') if isinstance(raw, Mapping) and 'state_dict' in raw else None
    config = meta.get('config') if isinstance(meta, Mapping) else None
    model = config.get('model') if isinstance(config, Mapping) else None  # official meta: text
    if model is None:
        return None
    try:
        return bevformer_config_from_dict(model, "meta['config']['model']")
    except ValueError as exc:
        raise CheckpointError(
            f'checkpoint {checkpoint.path} names its architecture, but this version of '
            f'bevformer_ros cannot build it: {exc}. Use the bevformer_ros version that trained '
            "it, or re-save the checkpoint without meta['config'] and choose the architecture "
            'with the node parameters.'
        ) from None


def configured_architecture(settings: ModelSettings) -> BEVFormerConfig:
    """Return the settings' architecture: an official config JSON, or a preset with overrides."""
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
        in_channels = tuple(base * expansion * 2**i for i in backbone.out_indices)
        neck = dataclasses.replace(neck, out_channels=embed, in_channels=in_channels)
    image = dataclasses.replace(cfg.image, scale=o.image_scale or cfg.image.scale)
    return dataclasses.replace(cfg, backbone=backbone, neck=neck, head=head, image=image)


def _official_json_config(path: Path) -> BEVFormerConfig:
    """Read an official mmdet3d config dumped as JSON: `model` or {model, img_norm_cfg, ...}."""
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


def _ignored_settings(settings: ModelSettings) -> tuple[str, ...]:
    """Name the architecture settings that a checkpoint's stored architecture overrules."""
    # The preset at its default was most likely not chosen by anyone: naming it would only confuse.
    ignored = [f'model.preset={settings.preset}'] if settings.preset != DEFAULT_PRESET else []
    if settings.official_config_json:
        ignored.append('model.official_config_json')
    ignored += [f'model.{k}' for k, v in vars(settings.overrides).items() if v]
    return tuple(ignored)


def build_model(settings: ModelSettings, device: torch.device | None = None) -> BuiltModel:
    """
    Build the node's detector from its model settings (device: `settings.device` unless given).

    A project-trained checkpoint's stored architecture wins over the preset and the size overrides
    (`BuiltModel.ignored` names those that were set).
    """
    device = device if device is not None else resolve_device(settings.device)
    checkpoint = read_checkpoint_file(settings.checkpoint)
    stored = stored_architecture(checkpoint)
    if stored is None:
        return _assemble(configured_architecture(settings), device, checkpoint, settings.seed)
    return _assemble(
        stored,
        device,
        checkpoint,
        settings.seed,
        from_checkpoint=True,
        ignored=_ignored_settings(settings),
    )


def build_detector(
    cfg: BEVFormerConfig,
    device: torch.device,
    checkpoint: str | Path = '',
    seed: int = 0,
    head_only: bool = False,
) -> BuiltModel:
    """
    Build the detector of `cfg` for a tool, with the weights of `checkpoint` ('' = seeded random).

    As in `build_model`, a project-trained checkpoint's stored architecture replaces `cfg`.
    """
    source = read_checkpoint_file(checkpoint)
    stored = stored_architecture(source)
    if stored is None:
        return _assemble(cfg, device, source, seed, head_only=head_only)
    ignored = ('the given architecture',) if stored != cfg else ()
    return _assemble(
        stored, device, source, seed, from_checkpoint=True, ignored=ignored, head_only=head_only
    )


def _assemble(
    cfg: BEVFormerConfig,
    device: torch.device,
    checkpoint: CheckpointFile | None,
    seed: int,
    from_checkpoint: bool = False,
    ignored: tuple[str, ...] = (),
    head_only: bool = False,
) -> BuiltModel:
    """Build `cfg` with seeded random weights, then fill it strictly from the checkpoint read."""
    torch.manual_seed(seed)
    model = build_bevformer(cfg, head_only=head_only)
    meta: dict[str, Any] = {}
    if checkpoint is not None:
        meta = load_state(model, checkpoint.raw, checkpoint.path)['meta']
    return BuiltModel(
        model.eval().to(device),
        cfg,
        device,
        checkpoint.path if checkpoint is not None else None,
        from_checkpoint=from_checkpoint,
        ignored=ignored,
        meta=meta,
    )


def load_weights(model: nn.Module, checkpoint: str | Path) -> dict[str, Any]:
    """
    Fill an already built `model` (e.g. a training model) strictly from a `model.checkpoint` value.

    The file is resolved as in `build_model` and read once; returns `load_state`'s summary.
    """
    source = read_checkpoint_file(checkpoint)
    if source is None:
        raise ValueError('load_weights needs a checkpoint file, got an empty name')
    return load_state(model, source.raw, source.path)


def build_engine(
    built: BuiltModel,
    backend: str = 'torch',
    precision: str = 'fp32',
    cache_dir: str | Path | None = None,
    image_hw: tuple[int, int] | None = None,
    num_cams: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> nn.Module | Callable[..., dict[str, torch.Tensor]]:
    """
    Choose what runs the frames for the built detector: eager torch or an exported graph.

    The engine has the detector's call signature (`BEVFormer.forward`). The exported-graph
    backends (onnxruntime, openvino, tensorrt: `model.engines`) export the detector to ONNX once
    and cache it and the compiled engine in `cache_dir` (default ~/.cache/bevformer_ros/engines);
    with `image_hw` (padded network input) and `num_cams` they are built now, else at the first
    frame. `progress` gets a line per export / compile step.
    """
    if backend in EXPORTED_BACKENDS:
        from bevformer_ros.model.engines import create_engine, DeferredEngine

        options = {
            'device': built.device,
            'precision': precision,
            'checkpoint': built.checkpoint,
            'preset': str(built.meta.get('preset', '')) if isinstance(built.meta, dict) else '',
            'folder': cache_dir,
            'progress': progress,
        }
        if image_hw is not None and num_cams is not None:
            return create_engine(backend, built.model, built.cfg, image_hw, num_cams, **options)
        return DeferredEngine(backend, built.model, built.cfg, **options)

    if backend != 'torch':
        raise ValueError(
            f'inference backend {backend!r} is not available; expected torch or one of '
            f'{", ".join(EXPORTED_BACKENDS)}'
        )
    from bevformer_ros.model.engines.torch_engine import TorchEngine

    # batch norm folded, channels_last, reduced precision per part, CUDA graphs on a GPU
    return TorchEngine(built.model, precision)

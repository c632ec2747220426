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
Training presets: a model configuration sized for the job plus the official optimisation recipe.

``demo_small`` is the model trained on the synthetic scenes (``bevformer_ros.synth``) on 2 CPU
cores:

- Images: every camera is fed at 400 px width (``input_hw`` 900x1600, ``scale`` 0.25, like the
  presets' scale relative to the nominal nuScenes size), 400x225 padded to 416x256. Objects of the
  synthetic scenes stay several pixels wide up to ~40 m (a pedestrian at 30 m: ~7 px at f = 316
  px); smaller inputs lose them.
- Backbone: ResNet-18 at base width 16 with three stages, read at stride 16 (layer3, 64 channels):
  a 26x16 feature map per camera. Stride 32 (the official choice) would leave a 13x8 map where a
  distant car is a quarter of a cell. It trains from scratch, so its BatchNorm layers train too
  (``norm_eval`` off, nothing frozen): the official frozen BN only makes sense with ImageNet
  weights.
- BEV: 50x50 over the official +-51.2 m (2 m cells, the tiny preset's grid), 64 channels, 4 heads,
  one encoder layer, three decoder layers (two auxiliary losses), 200 queries for the 40-70 objects
  of a synthetic frame (nuScenes uses 900 for up to ~100). ``rotate_center`` is the BEV centre: the
  official (100, 100) only fits a 200x200 grid, and a model trained from scratch need not inherit
  that quirk.
- Cost on 2 CPU cores (measured on 400x225 synthetic bags): ~0.3 s per iteration (two history
  frames without gradient, one with; batch 1) once the frames are cached, so the 8000 iterations
  take ~40 minutes plus ~10 s per validation; more with other jobs on the cores. The synthetic bags
  are best written at 400x225 and 2 Hz (the official keyframe rate): ``bevformer_synth x.mcap
  --width 400 --height 225 --rate 2``.

The optimisation recipe is the official one (AdamW 2e-4, weight decay 0.01, backbone lr x0.1, 500
linear warm-up iterations from 1/3, cosine decay to 1e-3 of the rate, gradient norm clipped at 35,
queue of 3 frames), with iterations instead of epochs.

``smoke`` is a seconds-fast model for tests (ResNet-18 at base width 8, 10x10 BEV, 2 decoder
layers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Any

from bevformer_ros.model.config import (
    BackboneConfig,
    BEVFormerConfig,
    HeadConfig,
    ImageConfig,
    NeckConfig,
    preset,
)
from bevformer_ros.model.config_dict import (
    bevformer_config_from_dict,
    config_to_dict,
    dataclass_from_dict,
)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping settings (official values where the recipe has one)."""

    iters: int = 3000
    batch_size: int = 1
    queue_length: int = 3  # frames per sample: queue_length - 1 history frames + the trained one
    lr: float = 2e-4
    weight_decay: float = 0.01
    backbone_lr_mult: float = 0.1
    warmup_iters: int = 500
    warmup_ratio: float = 1.0 / 3
    min_lr_ratio: float = 1e-3
    max_grad_norm: float = 35.0
    log_interval: int = 10
    val_interval: int = 500
    checkpoint_interval: int = 500
    val_max_frames: int = 200  # per validation run, spread over the validation bags
    val_score_threshold: float = 0.3
    recall_distance_m: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            'iters',
            'batch_size',
            'queue_length',
            'log_interval',
            'val_interval',
            'checkpoint_interval',
            'val_max_frames',
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f'invalid training setting {name}={value!r}: expected a positive integer'
                )
        if (
            not self.lr > 0
            or self.weight_decay < 0
            or not 0 < self.warmup_ratio <= 1
            or self.max_grad_norm <= 0
        ):
            raise ValueError(
                f'invalid training settings: lr={self.lr}, weight_decay={self.weight_decay}, '
                f'warmup_ratio={self.warmup_ratio}, max_grad_norm={self.max_grad_norm}'
            )


@dataclass(frozen=True)
class TrainPreset:
    model: BEVFormerConfig
    train: TrainConfig = field(default_factory=TrainConfig)


def _resnet18_head(
    base_channels: int,
    embed: int,
    bev: int,
    encoder_layers: int,
    decoder_layers: int,
    num_query: int,
    num_heads: int = 4,
) -> tuple[BackboneConfig, NeckConfig, HeadConfig]:
    """ResNet-18 read at stride 16 (3 stages, layer3) + a single-level FPN + a small head."""
    backbone = BackboneConfig(
        depth=18,
        base_channels=base_channels,
        num_stages=3,
        out_indices=(2,),
        style='pytorch',
        frozen_stages=-1,
        norm_eval=False,
        norm_requires_grad=True,
        stage_with_dcn=(False, False, False),
    )
    neck = NeckConfig(in_channels=(base_channels * 4,), out_channels=embed, num_outs=1)
    head = HeadConfig(
        embed_dims=embed,
        num_heads=num_heads,
        ffn_dims=2 * embed,
        num_encoder_layers=encoder_layers,
        num_decoder_layers=decoder_layers,
        bev_h=bev,
        bev_w=bev,
        row_num_embed=bev,
        col_num_embed=bev,
        num_query=num_query,
        rotate_center=(bev / 2, bev / 2),
    )
    return backbone, neck, head


def demo_small() -> TrainPreset:
    backbone, neck, head = _resnet18_head(16, 64, 50, 1, 3, 200)
    # 400 px wide network input, tiny's RGB norm
    image = ImageConfig(scale=0.25, input_hw=(900, 1600))
    train = TrainConfig(iters=8000, log_interval=20, val_interval=1000, checkpoint_interval=500)
    return TrainPreset(
        BEVFormerConfig(backbone=backbone, neck=neck, image=image, head=head), train
    )


def smoke() -> TrainPreset:
    backbone, neck, head = _resnet18_head(8, 32, 10, 1, 2, 20, num_heads=4)
    image = ImageConfig(scale=1.0, input_hw=(90, 160))
    train = TrainConfig(
        iters=20, warmup_iters=2, log_interval=1, val_interval=10, checkpoint_interval=10
    )
    return TrainPreset(
        BEVFormerConfig(backbone=backbone, neck=neck, image=image, head=head), train
    )


TRAIN_PRESETS: dict[str, Callable[[], TrainPreset]] = {'demo_small': demo_small, 'smoke': smoke}


def train_preset(name: str) -> TrainPreset:
    """
    Return a training preset by name.

    Official model presets (tiny, small, base) get the default recipe.
    """
    if name in TRAIN_PRESETS:
        return TRAIN_PRESETS[name]()
    try:
        return TrainPreset(preset(name))
    except ValueError:
        raise ValueError(
            f'unknown training preset {name!r}; '
            f'use one of {sorted(TRAIN_PRESETS)} or tiny, small, base'
        ) from None


# ------------------------------------------------------------------------------------------------
# plain-dict form (JSON files, checkpoint meta); dict <-> dataclass:
# bevformer_ros.model.config_dict


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config_from_dict(doc: Mapping[str, Any], where: str = 'config') -> TrainPreset:
    """
    ``{"preset": NAME?, "model": {...}?, "train": {...}?}`` -> TrainPreset.

    ``model`` and ``train`` override the named preset (default: the model defaults and the default
    recipe) key by key, nested sections included, e.g. ``{"preset": "demo_small", "model": {"head":
    {"bev_h": 40, "bev_w": 40}}, "train": {"iters": 6000}}``. The checkpoint meta written by
    training has this form.
    """
    unknown = sorted(set(doc) - {'preset', 'model', 'train'})
    if unknown:
        raise ValueError(
            f"{where}: unknown keys {unknown}; expected 'preset', 'model' and/or 'train'"
        )
    base = train_preset(doc['preset']) if doc.get('preset') else TrainPreset(BEVFormerConfig())
    model = _merge(config_to_dict(base.model), doc.get('model') or {})
    train = _merge(config_to_dict(base.train), doc.get('train') or {})
    return TrainPreset(
        bevformer_config_from_dict(model, f'{where}.model'),
        dataclass_from_dict(TrainConfig, train, f'{where}.train'),
    )


def load_config_json(path: str | Path) -> TrainPreset:
    """Read a training configuration file (see ``config_from_dict``)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f'cannot read training config {path}: {exc}') from exc
    if not isinstance(doc, Mapping):
        raise ValueError(f'training config {path} must hold a JSON object')
    return config_from_dict(doc, str(path))

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
Typed BEVFormer configuration: presets equal to the official configs, a reader for their dicts.

One frozen dataclass per part (backbone, neck, image pipeline, head/transformer) grouped in
:class:`BEVFormerConfig`. ``preset('tiny'|'small'|'base')`` returns the values of the official
``projects/configs/bevformer/bevformer_{tiny,small,base}.py`` (commit 66b65f3);
``from_official_config`` reads the ``model`` dict of such a config (what the reference fixtures
carry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from bevformer_ros.core.markers import NUSCENES_CLASSES

PC_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
POST_CENTER_RANGE = (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)
# BEVFormerHead default; only the training loss reads it, but it is a state-dict entry.
CODE_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)
# mmcv ImageNet constants in RGB order (tiny) and the caffe-style BGR ones (small, base).
RGB_MEAN, RGB_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
BGR_MEAN, UNIT_STD = (103.53, 116.28, 123.675), (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class BackboneConfig:
    """mmdet ResNet arguments (``img_backbone``)."""

    depth: int = 50
    base_channels: int = 64
    num_stages: int = 4
    out_indices: tuple[int, ...] = (3,)
    style: str = 'pytorch'
    frozen_stages: int = 1
    norm_eval: bool = True
    norm_requires_grad: bool = False
    stage_with_dcn: tuple[bool, ...] = (False, False, False, False)
    dcn_deform_groups: int = 1


@dataclass(frozen=True)
class NeckConfig:
    """mmdet FPN arguments (``img_neck``)."""

    in_channels: tuple[int, ...] = (2048,)
    out_channels: int = 256
    num_outs: int = 1
    start_level: int = 0
    add_extra_convs: bool | str = 'on_output'
    relu_before_extra_convs: bool = True


@dataclass(frozen=True)
class ImageConfig:
    """
    Official test pipeline settings.

    Normalise (in network channel order), resize by ``scale``, pad to a multiple of
    ``size_divisor``.

    ``input_hw`` is the camera image size the official pipeline was built for (nuScenes 900x1600).
    """

    mean: tuple[float, float, float] = RGB_MEAN
    std: tuple[float, float, float] = RGB_STD
    to_rgb: bool = True
    scale: float | None = 0.5
    size_divisor: int = 32
    input_hw: tuple[int, int] = (900, 1600)


@dataclass(frozen=True)
class HeadConfig:
    """
    BEVFormerHead + PerceptionTransformer (encoder, decoder) + NMSFreeCoder settings.

    ``sca_num_levels`` is the number of FPN levels the spatial cross-attention reads
    (``num_outs``); ``num_feature_levels`` only sizes the ``level_embeds`` parameter (official
    default 4).
    """

    embed_dims: int = 256
    num_heads: int = 8
    ffn_dims: int = 512
    num_encoder_layers: int = 3
    num_decoder_layers: int = 6
    bev_h: int = 50
    bev_w: int = 50
    num_query: int = 900
    num_feature_levels: int = 4
    num_cams: int = 6
    num_points_in_pillar: int = 4
    sca_num_points: int = 8
    sca_num_levels: int = 1
    tsa_num_points: int = 4
    decoder_num_points: int = 4
    row_num_embed: int = 50
    col_num_embed: int = 50
    rotate_prev_bev: bool = True
    use_shift: bool = True
    use_can_bus: bool = True
    can_bus_norm: bool = True
    use_cams_embeds: bool = True
    rotate_center: tuple[float, float] = (100.0, 100.0)
    pc_range: tuple[float, ...] = PC_RANGE
    post_center_range: tuple[float, ...] | None = POST_CENTER_RANGE
    max_num: int = 300
    num_classes: int = 10
    code_size: int = 10
    code_weights: tuple[float, ...] = CODE_WEIGHTS
    with_box_refine: bool = True
    num_reg_fcs: int = 2


@dataclass(frozen=True)
class BEVFormerConfig:
    """
    Everything needed to build the detector and its input pipeline.

    ``backbone``/``neck`` None describes a head-only model (input: FPN features), as in
    ``head_only`` fixtures.
    """

    backbone: BackboneConfig | None = field(default_factory=BackboneConfig)  # None: head only
    neck: NeckConfig | None = field(default_factory=NeckConfig)  # None: head only
    image: ImageConfig = field(default_factory=ImageConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    class_names: tuple[str, ...] = NUSCENES_CLASSES
    video_test_mode: bool = True

    def __post_init__(self) -> None:
        validate(self)


def _tiny() -> BEVFormerConfig:
    return BEVFormerConfig(
        backbone=BackboneConfig(depth=50, out_indices=(3,), style='pytorch'),
        neck=NeckConfig(in_channels=(2048,), num_outs=1),
        image=ImageConfig(mean=RGB_MEAN, std=RGB_STD, to_rgb=True, scale=0.5),
        head=HeadConfig(
            bev_h=50, bev_w=50, row_num_embed=50, col_num_embed=50, num_encoder_layers=3
        ),
    )


def _small() -> BEVFormerConfig:
    r101_dcn = BackboneConfig(
        depth=101, out_indices=(3,), style='caffe', stage_with_dcn=(False, False, True, True)
    )
    return BEVFormerConfig(
        backbone=r101_dcn,
        neck=NeckConfig(in_channels=(2048,), num_outs=1),
        image=ImageConfig(mean=BGR_MEAN, std=UNIT_STD, to_rgb=False, scale=0.8),
        head=HeadConfig(
            bev_h=150, bev_w=150, row_num_embed=150, col_num_embed=150, num_encoder_layers=3
        ),
    )


def _base() -> BEVFormerConfig:
    r101_dcn = BackboneConfig(
        depth=101, out_indices=(1, 2, 3), style='caffe', stage_with_dcn=(False, False, True, True)
    )
    return BEVFormerConfig(
        backbone=r101_dcn,
        neck=NeckConfig(in_channels=(512, 1024, 2048), num_outs=4),
        image=ImageConfig(mean=BGR_MEAN, std=UNIT_STD, to_rgb=False, scale=None),
        head=HeadConfig(
            bev_h=200,
            bev_w=200,
            row_num_embed=200,
            col_num_embed=200,
            num_encoder_layers=6,
            sca_num_levels=4,
        ),
    )


PRESETS = {'tiny': _tiny, 'small': _small, 'base': _base}


def preset(name: str) -> BEVFormerConfig:
    """Return the official ``bevformer_{tiny,small,base}.py`` configuration."""
    if name not in PRESETS:
        raise ValueError(f'unknown BEVFormer preset {name!r}; use one of {sorted(PRESETS)}')
    return PRESETS[name]()


# ------------------------------------------------------------------------------------------------
# validation


def _fail(name: str, value: Any, expected: str) -> None:
    raise ValueError(f'invalid BEVFormer config field {name}={value!r}: expected {expected}')


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        _fail(name, value, 'a positive integer')


def _validate_head(h: HeadConfig) -> None:
    for name in (
        'embed_dims',
        'num_heads',
        'ffn_dims',
        'num_encoder_layers',
        'num_decoder_layers',
        'bev_h',
        'bev_w',
        'num_query',
        'num_feature_levels',
        'num_cams',
        'num_points_in_pillar',
        'sca_num_points',
        'sca_num_levels',
        'tsa_num_points',
        'decoder_num_points',
        'row_num_embed',
        'col_num_embed',
        'max_num',
        'num_classes',
        'num_reg_fcs',
    ):
        _positive(f'head.{name}', getattr(h, name))
    if h.embed_dims % h.num_heads:
        _fail('head.embed_dims', h.embed_dims, f'a multiple of head.num_heads={h.num_heads}')
    if h.embed_dims % 2:
        _fail(
            'head.embed_dims',
            h.embed_dims,
            'an even number (positional encoding is half rows, half columns)',
        )
    if h.sca_num_points % h.num_points_in_pillar:
        _fail(
            'head.sca_num_points',
            h.sca_num_points,
            f'a multiple of head.num_points_in_pillar={h.num_points_in_pillar}',
        )
    if h.sca_num_levels > h.num_feature_levels:
        _fail(
            'head.sca_num_levels',
            h.sca_num_levels,
            f'<= head.num_feature_levels={h.num_feature_levels}',
        )
    if h.row_num_embed < h.bev_h or h.col_num_embed < h.bev_w:
        _fail(
            'head.row_num_embed/col_num_embed',
            (h.row_num_embed, h.col_num_embed),
            f'at least the BEV size (bev_h={h.bev_h}, bev_w={h.bev_w})',
        )
    if len(h.pc_range) != 6 or not all(h.pc_range[i] < h.pc_range[i + 3] for i in range(3)):
        _fail(
            'head.pc_range',
            h.pc_range,
            '[x_min, y_min, z_min, x_max, y_max, z_max] with min < max',
        )
    if h.post_center_range is not None and len(h.post_center_range) != 6:
        _fail('head.post_center_range', h.post_center_range, 'six numbers or None')
    if h.code_size != 10 or len(h.code_weights) != h.code_size:
        _fail(
            'head.code_size/code_weights',
            (h.code_size, h.code_weights),
            'code_size 10 ([cx, cy, w, l, cz, h, sin, cos, vx, vy]) with 10 code_weights',
        )
    if len(h.rotate_center) != 2:
        _fail('head.rotate_center', h.rotate_center, 'two numbers (pixel x, y)')


def _validate_image_path(b: BackboneConfig, n: NeckConfig, h: HeadConfig) -> None:
    if b.depth not in (18, 34, 50, 101, 152):
        _fail('backbone.depth', b.depth, 'one of 18, 34, 50, 101, 152')
    if b.style not in ('pytorch', 'caffe'):
        _fail('backbone.style', b.style, "'pytorch' or 'caffe'")
    if len(b.stage_with_dcn) != b.num_stages:
        _fail('backbone.stage_with_dcn', b.stage_with_dcn, f'{b.num_stages} flags (one per stage)')
    if not b.out_indices or any(not 0 <= i < b.num_stages for i in b.out_indices):
        _fail('backbone.out_indices', b.out_indices, f'stage indices in [0, {b.num_stages})')
    if len(n.in_channels) != len(b.out_indices):
        _fail(
            'neck.in_channels',
            n.in_channels,
            f'one entry per backbone output (out_indices={b.out_indices})',
        )
    if n.out_channels != h.embed_dims:
        _fail('neck.out_channels', n.out_channels, f'head.embed_dims={h.embed_dims}')
    if n.num_outs != h.sca_num_levels:
        _fail(
            'neck.num_outs',
            n.num_outs,
            f'head.sca_num_levels={h.sca_num_levels} (FPN levels read by SCA)',
        )


def validate(cfg: BEVFormerConfig) -> None:
    """Raise ValueError naming the first inconsistent field."""
    if (cfg.backbone is None) != (cfg.neck is None):
        _fail(
            'backbone/neck',
            (cfg.backbone, cfg.neck),
            'both set (full detector) or both None (head only)',
        )
    if cfg.backbone is not None:
        _validate_image_path(cfg.backbone, cfg.neck, cfg.head)
    im, h = cfg.image, cfg.head
    if len(im.mean) != 3 or len(im.std) != 3 or any(s == 0 for s in im.std):
        _fail('image.mean/std', (im.mean, im.std), 'three values each, std non-zero')
    if im.scale is not None and not im.scale > 0:
        _fail('image.scale', im.scale, 'a positive number or None')
    _positive('image.size_divisor', im.size_divisor)
    _validate_head(h)
    if len(cfg.class_names) != h.num_classes:
        _fail('class_names', cfg.class_names, f'head.num_classes={h.num_classes} names')


# ------------------------------------------------------------------------------------------------
# official config dicts


def _get(cfg: Mapping[str, Any], key: str, where: str, default: Any = dataclasses.MISSING) -> Any:
    if key in cfg:
        return cfg[key]
    if default is dataclasses.MISSING:
        raise ValueError(f'official config {where} has no {key!r}')
    return default


def _expect_type(cfg: Mapping[str, Any], where: str, expected: str) -> None:
    if cfg.get('type') != expected:
        raise ValueError(
            f'official config {where}.type is {cfg.get("type")!r}; only {expected!r} is supported'
        )


def backbone_from_official(cfg: Mapping[str, Any]) -> BackboneConfig:
    """Read the BackboneConfig of an official ``img_backbone=dict(type='ResNet', ...)``."""
    _expect_type(cfg, 'img_backbone', 'ResNet')
    dcn = cfg.get('dcn')
    stages = int(cfg.get('num_stages', 4))
    if dcn is not None and dcn.get('type') != 'DCNv2':
        raise ValueError(
            f"official config img_backbone.dcn.type is {dcn.get('type')!r}; only 'DCNv2' is "
            'supported'
        )
    return BackboneConfig(
        depth=int(_get(cfg, 'depth', 'img_backbone')),
        base_channels=int(cfg.get('base_channels', 64)),
        num_stages=stages,
        out_indices=tuple(int(i) for i in cfg.get('out_indices', (0, 1, 2, 3))),
        style=str(cfg.get('style', 'pytorch')),
        frozen_stages=int(cfg.get('frozen_stages', -1)),
        norm_eval=bool(cfg.get('norm_eval', True)),
        norm_requires_grad=bool(cfg.get('norm_cfg', {}).get('requires_grad', True)),
        stage_with_dcn=tuple(bool(s) for s in cfg.get('stage_with_dcn', (False,) * stages))
        if dcn
        else (False,) * stages,
        dcn_deform_groups=int(dcn.get('deform_groups', 1)) if dcn else 1,
    )


def neck_from_official(cfg: Mapping[str, Any]) -> NeckConfig:
    """Read the NeckConfig of an official ``img_neck=dict(type='FPN', ...)``."""
    _expect_type(cfg, 'img_neck', 'FPN')
    return NeckConfig(
        in_channels=tuple(int(c) for c in _get(cfg, 'in_channels', 'img_neck')),
        out_channels=int(_get(cfg, 'out_channels', 'img_neck')),
        num_outs=int(_get(cfg, 'num_outs', 'img_neck')),
        start_level=int(cfg.get('start_level', 0)),
        add_extra_convs=cfg.get('add_extra_convs', False),
        relu_before_extra_convs=bool(cfg.get('relu_before_extra_convs', False)),
    )


def _layer_attn(
    layers: Mapping[str, Any], index: int, where: str, expected: str
) -> Mapping[str, Any]:
    attn = _get(layers, 'attn_cfgs', where)[index]
    _expect_type(attn, f'{where}.attn_cfgs[{index}]', expected)
    return attn


def _ffn_channels(layer: Mapping[str, Any], where: str) -> int:
    ffn = layer.get('ffn_cfgs') or {}
    return int(ffn.get('feedforward_channels', _get(layer, 'feedforward_channels', where)))


def _head_from(head: Mapping[str, Any]) -> HeadConfig:
    _expect_type(head, 'pts_bbox_head', 'BEVFormerHead')
    if head.get('as_two_stage', False):
        raise ValueError(
            'official config pts_bbox_head.as_two_stage=True is not supported (no official '
            'preset uses it)'
        )
    tf = _get(head, 'transformer', 'pts_bbox_head')
    _expect_type(tf, 'transformer', 'PerceptionTransformer')
    enc, dec = _get(tf, 'encoder', 'transformer'), _get(tf, 'decoder', 'transformer')
    _expect_type(enc, 'transformer.encoder', 'BEVFormerEncoder')
    _expect_type(dec, 'transformer.decoder', 'DetectionTransformerDecoder')
    enc_layer = _get(enc, 'transformerlayers', 'encoder')
    dec_layer = _get(dec, 'transformerlayers', 'decoder')
    tsa = _layer_attn(enc_layer, 0, 'encoder.transformerlayers', 'TemporalSelfAttention')
    sca = _layer_attn(enc_layer, 1, 'encoder.transformerlayers', 'SpatialCrossAttention')
    msda3d = _get(sca, 'deformable_attention', 'SpatialCrossAttention')
    _expect_type(msda3d, 'SpatialCrossAttention.deformable_attention', 'MSDeformableAttention3D')
    mha = _layer_attn(dec_layer, 0, 'decoder.transformerlayers', 'MultiheadAttention')
    cross = _layer_attn(dec_layer, 1, 'decoder.transformerlayers', 'CustomMSDeformableAttention')
    coder = _get(head, 'bbox_coder', 'pts_bbox_head')
    _expect_type(coder, 'bbox_coder', 'NMSFreeCoder')
    pos = _get(head, 'positional_encoding', 'pts_bbox_head')
    _expect_type(pos, 'positional_encoding', 'LearnedPositionalEncoding')
    embed_dims = int(tf.get('embed_dims', 256))
    ffn_dims = {
        int(_ffn_channels(layer, where))
        for layer, where in (
            (enc_layer, 'encoder.transformerlayers'),
            (dec_layer, 'decoder.transformerlayers'),
        )
    }
    if len(ffn_dims) != 1:
        raise ValueError(
            f'official config encoder and decoder FFN widths differ ({sorted(ffn_dims)}); '
            'only one width is supported'
        )
    if int(pos.get('num_feats', 128)) * 2 != embed_dims:
        raise ValueError(
            f'official config positional_encoding.num_feats={pos.get("num_feats")} must be half '
            'of '
            f'transformer.embed_dims={embed_dims}'
        )
    for what, attn in (
        ('TemporalSelfAttention', tsa),
        ('MSDeformableAttention3D', msda3d),
        ('CustomMSDeformableAttention', cross),
    ):
        if int(attn.get('num_heads', 8)) != int(mha.get('num_heads', 8)):
            raise ValueError(
                f'official config {what}.num_heads differs from the decoder MultiheadAttention; '
                'only one head count is supported'
            )
    for what, attn in (('TemporalSelfAttention', tsa), ('CustomMSDeformableAttention', cross)):
        if int(attn.get('num_levels', 4)) != 1:
            raise ValueError(
                f'official config {what}.num_levels must be 1 (the BEV is a single level)'
            )
    return HeadConfig(
        embed_dims=embed_dims,
        num_heads=int(mha.get('num_heads', 8)),
        ffn_dims=ffn_dims.pop(),
        num_encoder_layers=int(_get(enc, 'num_layers', 'encoder')),
        num_decoder_layers=int(_get(dec, 'num_layers', 'decoder')),
        bev_h=int(_get(head, 'bev_h', 'pts_bbox_head', 30)),
        bev_w=int(_get(head, 'bev_w', 'pts_bbox_head', 30)),
        num_query=int(_get(head, 'num_query', 'pts_bbox_head', 100)),
        num_feature_levels=int(tf.get('num_feature_levels', 4)),
        num_cams=int(tf.get('num_cams', 6)),
        num_points_in_pillar=int(enc.get('num_points_in_pillar', 4)),
        sca_num_points=int(msda3d.get('num_points', 8)),
        sca_num_levels=int(msda3d.get('num_levels', 4)),
        tsa_num_points=int(tsa.get('num_points', 4)),
        decoder_num_points=int(cross.get('num_points', 4)),
        row_num_embed=int(pos.get('row_num_embed', 50)),
        col_num_embed=int(pos.get('col_num_embed', 50)),
        rotate_prev_bev=bool(tf.get('rotate_prev_bev', True)),
        use_shift=bool(tf.get('use_shift', True)),
        use_can_bus=bool(tf.get('use_can_bus', True)),
        can_bus_norm=bool(tf.get('can_bus_norm', True)),
        use_cams_embeds=bool(tf.get('use_cams_embeds', True)),
        rotate_center=tuple(float(c) for c in tf.get('rotate_center', (100, 100))),
        pc_range=tuple(float(v) for v in _get(coder, 'pc_range', 'bbox_coder')),
        post_center_range=None
        if coder.get('post_center_range') is None
        else tuple(float(v) for v in coder['post_center_range']),
        max_num=int(coder.get('max_num', 100)),
        num_classes=int(_get(head, 'num_classes', 'pts_bbox_head')),
        code_size=int(head.get('code_size', 10)),
        code_weights=tuple(float(w) for w in (head.get('code_weights') or CODE_WEIGHTS)),
        with_box_refine=bool(head.get('with_box_refine', False)),
        num_reg_fcs=int(head.get('num_reg_fcs', 2)),
    )


def from_official_config(
    model_cfg: Mapping[str, Any],
    img_norm_cfg: Mapping[str, Any] | None = None,
    test_image_scale: float | None = None,
    class_names: Sequence[str] | None = None,
    size_divisor: int = 32,
    input_hw: Sequence[int] = (900, 1600),
) -> BEVFormerConfig:
    """
    Build the config from an official ``model=dict(...)`` (+ pipeline ``img_norm_cfg`` and scale).

    Without ``img_norm_cfg`` the image settings default to the official tiny pipeline's
    normalisation.
    """
    _expect_type(model_cfg, 'model', 'BEVFormer')
    head = _head_from(_get(model_cfg, 'pts_bbox_head', 'model'))
    norm = img_norm_cfg or {'mean': RGB_MEAN, 'std': RGB_STD, 'to_rgb': True}
    image = ImageConfig(
        mean=tuple(float(m) for m in norm['mean']),
        std=tuple(float(s) for s in norm['std']),
        to_rgb=bool(norm.get('to_rgb', True)),
        scale=None if test_image_scale is None else float(test_image_scale),
        size_divisor=int(size_divisor),
        input_hw=(int(input_hw[0]), int(input_hw[1])),
    )
    names = tuple(class_names) if class_names is not None else NUSCENES_CLASSES[: head.num_classes]
    backbone_cfg, neck_cfg = model_cfg.get('img_backbone'), model_cfg.get('img_neck')
    return BEVFormerConfig(
        backbone=backbone_from_official(backbone_cfg) if backbone_cfg else None,
        neck=neck_from_official(neck_cfg) if neck_cfg else None,
        image=image,
        head=head,
        class_names=names,
        video_test_mode=bool(model_cfg.get('video_test_mode', False)),
    )

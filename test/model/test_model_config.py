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

"""Typed config: presets equal the official configs, official dicts are read, bad values fail."""

from __future__ import annotations

import copy
import dataclasses

from bevformer_ros.model.config import BEVFormerConfig, from_official_config, HeadConfig, preset
import pytest
from reference_fixtures import CASE_SMALL, require
import torch

FIXTURE = CASE_SMALL


@pytest.fixture(scope='module')
def official() -> dict:
    return torch.load(require(FIXTURE), weights_only=True)['config']


def test_presets_follow_the_official_configs():
    tiny, small, base = preset('tiny'), preset('small'), preset('base')
    # bevformer_tiny.py: R50 pytorch C5, BEV 50x50, 3 encoder layers, RGB ImageNet normalisation,
    # scale 0.5
    assert (tiny.backbone.depth, tiny.backbone.style, tiny.backbone.out_indices) == (
        50,
        'pytorch',
        (3,),
    )
    assert not any(tiny.backbone.stage_with_dcn)
    assert (tiny.head.bev_h, tiny.head.num_encoder_layers, tiny.head.sca_num_levels) == (50, 3, 1)
    assert (tiny.image.to_rgb, tiny.image.scale, tiny.image.std) == (
        True,
        0.5,
        (58.395, 57.12, 57.375),
    )
    # bevformer_small.py: R101-DCN caffe C5, BEV 150x150, 3 layers, BGR std 1, scale 0.8
    assert (small.backbone.depth, small.backbone.style) == (101, 'caffe')
    assert small.backbone.stage_with_dcn == (False, False, True, True)
    assert (small.head.bev_h, small.head.num_encoder_layers) == (150, 3)
    assert (small.image.to_rgb, small.image.scale, small.image.mean) == (
        False,
        0.8,
        (103.53, 116.28, 123.675),
    )
    # bevformer_base.py: R101-DCN C3-C5, FPN 4 levels, BEV 200x200, 6 layers, no resize
    assert base.backbone.out_indices == (1, 2, 3) and base.neck.in_channels == (512, 1024, 2048)
    assert (base.neck.num_outs, base.head.sca_num_levels, base.head.num_encoder_layers) == (
        4,
        4,
        6,
    )
    assert (base.head.bev_h, base.image.scale, base.image.size_divisor) == (200, None, 32)
    for cfg in (tiny, small, base):
        h = cfg.head
        assert (h.embed_dims, h.ffn_dims, h.num_query, h.num_decoder_layers, h.max_num) == (
            256,
            512,
            900,
            6,
            300,
        )
        assert h.pc_range == (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)
        assert h.post_center_range == (-61.2, -61.2, -10.0, 61.2, 61.2, 10.0)
        assert h.rotate_center == (100.0, 100.0) and h.with_box_refine and cfg.video_test_mode
    with pytest.raises(ValueError, match='tiny'):
        preset('huge')


def test_from_official_config_reads_the_fixture_model(official):
    cfg = from_official_config(
        official['model'],
        img_norm_cfg=official['img_norm_cfg'],
        test_image_scale=official['test_image_scale'],
        class_names=official['class_names'],
    )
    h = cfg.head
    assert (h.embed_dims, h.ffn_dims, h.bev_h, h.bev_w, h.num_query) == (64, 128, 20, 20, 40)
    assert (h.num_encoder_layers, h.num_decoder_layers, h.row_num_embed) == (2, 2, 20)
    assert (h.sca_num_points, h.tsa_num_points, h.decoder_num_points, h.num_points_in_pillar) == (
        8,
        4,
        4,
        4,
    )
    assert (cfg.backbone.base_channels, cfg.neck.in_channels, cfg.neck.out_channels) == (
        16,
        (512,),
        64,
    )
    assert cfg.image.scale == 0.1 and cfg.image.to_rgb and cfg.video_test_mode
    # the unchanged parts of official tiny
    assert dataclasses.replace(h, embed_dims=256, ffn_dims=512, bev_h=50, bev_w=50, num_query=900,
                               num_encoder_layers=3, num_decoder_layers=6, row_num_embed=50,
                               col_num_embed=50) == preset('tiny').head  # fmt: skip


def test_official_dict_without_image_path_is_head_only(official):
    model = {k: v for k, v in official['model'].items() if k not in ('img_backbone', 'img_neck')}
    cfg = from_official_config(model)
    assert cfg.backbone is None and cfg.neck is None


def test_unsupported_official_options_are_named(official):
    model = copy.deepcopy(official['model'])
    model['pts_bbox_head']['as_two_stage'] = True
    with pytest.raises(ValueError, match='as_two_stage'):
        from_official_config(model)
    model = copy.deepcopy(official['model'])
    model['img_neck']['type'] = 'SECONDFPN'
    with pytest.raises(ValueError, match='img_neck.type'):
        from_official_config(model)


@pytest.mark.parametrize(
    ('change', 'field'),
    [
        ({'embed_dims': 250}, 'head.embed_dims'),
        ({'sca_num_points': 6}, 'head.sca_num_points'),
        ({'bev_h': 0}, 'head.bev_h'),
        ({'row_num_embed': 10}, 'row_num_embed'),
        ({'pc_range': (0, 0, 0, -1, 1, 1)}, 'head.pc_range'),
    ],
)
def test_invalid_head_values_name_the_field(change, field):
    with pytest.raises(ValueError, match=field):
        BEVFormerConfig(head=dataclasses.replace(HeadConfig(), **change))


def test_inconsistent_parts_name_the_field():
    tiny = preset('tiny')
    with pytest.raises(ValueError, match='neck.out_channels'):
        dataclasses.replace(tiny, neck=dataclasses.replace(tiny.neck, out_channels=128))
    with pytest.raises(ValueError, match='class_names'):
        dataclasses.replace(tiny, class_names=('car',))
    with pytest.raises(ValueError, match='backbone/neck'):
        dataclasses.replace(tiny, neck=None)

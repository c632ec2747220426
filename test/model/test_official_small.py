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

"""Model vs outputs and intermediates of the OFFICIAL BEVFormer (case_small.pt, README §3-5)."""

from __future__ import annotations

import json

from bevformer_ros.model.encoder import point_sampling
from bevformer_ros.model.transformer import bev_shift
from bevformer_ros.tools.check_official import build_from_fixture, main
import pytest
from reference_fixtures import CASE_SMALL, require
import torch

FIXTURE = CASE_SMALL
CPU = torch.device('cpu')


@pytest.fixture(scope='module')
def case() -> dict:
    return torch.load(require(FIXTURE), weights_only=True)


@pytest.fixture(scope='module')
def model(case):
    return build_from_fixture(case, head_only=False, device=CPU)[0]


def _inputs(frame):
    meta = frame['img_metas']
    lidar2img = meta['lidar2img'].double()[None]  # [1, 6, 4, 4]
    img_shape = tuple(int(v) for v in meta['img_shape'][0][:2])
    return lidar2img, img_shape, meta['can_bus_used'].double()[None]


def test_check_official_passes_every_frame(capsys):
    assert main([str(require(FIXTURE)), '--json']) == 0
    reports = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r['frame'] for r in reports] == [0, 1, 2]
    assert [r['prev_bev_used'] for r in reports] == [False, True, True]
    for r in reports:
        assert r['passed'], r
        # README §5: float64 vs float32 noise is 5e-6; another CPU's float32 may differ as much
        assert r['bev_embed']['max_abs_diff'] <= 1e-4
        assert (
            r['decoded']['unmatched_flat_index'] == 0 and r['decoded']['labels_3d_mismatch'] == 0
        )


def test_check_official_head_only_path_passes(capsys):
    assert main([str(require(FIXTURE)), '--head-only']) == 0
    assert capsys.readouterr().out.count('[PASS]') == 3


def test_check_official_fails_beyond_tolerance(case, tmp_path, capsys):
    broken = dict(case, frames=[dict(f) for f in case['frames']])
    frame = broken['frames'][2]
    frame['outputs'] = dict(frame['outputs'], bev_embed=frame['outputs']['bev_embed'] + 1e-3)
    path = tmp_path / 'broken.pt'
    torch.save(broken, path)
    assert main([str(path), '--head-only']) == 1
    assert capsys.readouterr().out.count('[FAIL]') == 1


def test_point_sampling_matches_official(case, model):
    frame = case['frames'][0]
    lidar2img, img_shape, _ = _inputs(frame)
    encoder = model.pts_bbox_head.transformer.encoder
    ref_cam, bev_mask = encoder.camera_geometry((20, 20), lidar2img, img_shape, CPU)
    expected = frame['intermediates']
    assert torch.equal(bev_mask, expected['bev_mask'])
    # SCA reads all 4 pillar points of a query some camera sees; the rest are never read and
    # hold points behind the camera (|uv| up to 6e6), where rounding is amplified without bound.
    used = expected['bev_mask'].any(-1, keepdim=True).expand_as(bev_mask)  # [N, B, HW, Z]
    # float32 projection noise is 1.4e-6 (fixture README §6), values |uv| <= 2.5
    torch.testing.assert_close(
        ref_cam[used], expected['reference_points_cam'][used], rtol=0, atol=1e-5
    )


def test_point_sampling_uses_official_operand_order():
    """
    Project as the official code does: lidar2img @ point, batched 4x4 @ 4x1.

    ``point @ lidar2img^T`` gives other bits on CPUs whose BLAS sums in another order (Intel AMX:
    6000 of 19200 case_small values differed, 4.8e-7 where used); this order matched bit for bit.
    """
    generator = torch.Generator().manual_seed(0)
    ref_3d = torch.rand(4, 2500, 3, generator=generator)  # [Z, HW, 3] normalised
    lidar2img = torch.randn(1, 6, 4, 4, generator=generator, dtype=torch.float64) * 500
    pc_range = [-51.2, -51.2, -5.0, 51.2, 51.2, 3.0]
    ref_cam, _ = point_sampling(ref_3d, pc_range, lidar2img, (480, 800))
    # the official BEVFormerEncoder.point_sampling, verbatim apart from names
    ref = ref_3d.clone()
    for axis in range(3):
        ref[..., axis] = ref[..., axis] * (pc_range[axis + 3] - pc_range[axis]) + pc_range[axis]
    ref = torch.cat((ref, torch.ones_like(ref[..., :1])), -1)[:, None]  # [Z, B, HW, 4]
    depth_n, batch, queries = ref.shape[:3]
    ref = ref.view(depth_n, batch, 1, queries, 4).repeat(1, 1, 6, 1, 1).unsqueeze(-1)
    matrices = lidar2img.view(1, batch, 6, 1, 4, 4).repeat(depth_n, 1, 1, queries, 1, 1)
    cam = torch.matmul(matrices.to(torch.float32), ref.to(torch.float32)).squeeze(-1)
    eps = 1e-5
    uv = cam[..., 0:2] / torch.maximum(cam[..., 2:3], torch.ones_like(cam[..., 2:3]) * eps)
    uv[..., 0] /= 800
    uv[..., 1] /= 480
    assert torch.equal(ref_cam, uv.permute(2, 1, 3, 0, 4))  # [N, B, HW, Z, 2]


def test_shift_matches_official(case):
    for frame in case['frames']:
        shift = bev_shift(
            frame['img_metas']['can_bus_used'].double()[None],
            (20, 20),
            [-51.2, -51.2, -5, 51.2, 51.2, 3],
        )
        torch.testing.assert_close(shift, frame['intermediates']['shift'], rtol=0, atol=1e-7)


def test_rotated_history_matches_official(case, model):
    transformer = model.pts_bbox_head.transformer
    for prev, frame in zip(case['frames'][:-1], case['frames'][1:]):
        _, _, can_bus = _inputs(frame)
        # [1, HW, C]
        history = transformer.align_prev_bev(prev['outputs']['bev_embed'], can_bus, (20, 20))
        expected = frame['intermediates']['encoder_prev_bev'].transpose(0, 1)
        assert torch.equal(history, expected)
        # rotated about pixel (100, 100): most falls out
        assert int((history.abs().sum(-1) == 0).sum()) == 175


def test_bev_queries_and_positional_encoding_match_official(case, model):
    head = model.pts_bbox_head
    for frame in case['frames']:
        _, _, can_bus = _inputs(frame)
        query = head.transformer.bev_queries(head.bev_embedding.weight, can_bus)  # [1, HW, C]
        torch.testing.assert_close(
            query, frame['intermediates']['encoder_bev_query'].transpose(0, 1)
        )
    pos = head.positional_encoding(20, 20)
    torch.testing.assert_close(
        pos, case['frames'][0]['intermediates']['bev_pos'][:, 0], rtol=0, atol=0
    )


def test_decoder_reference_points_match_official(case, model):
    frame = case['frames'][0]
    lidar2img, img_shape, can_bus = _inputs(frame)
    with torch.no_grad():
        out = model(frame['img'].float(), lidar2img, img_shape, can_bus, None)
    expected = frame['intermediates']
    torch.testing.assert_close(
        out['init_reference'], expected['init_reference'], rtol=1e-4, atol=1e-4
    )
    torch.testing.assert_close(
        out['inter_references'], expected['inter_references'], rtol=1e-4, atol=1e-4
    )
    feats = model.extract_img_feat(frame['img'].float())
    torch.testing.assert_close(feats[0], expected['mlvl_feats'][0], rtol=1e-4, atol=1e-4)


def test_batch_of_two_equals_single_runs(case, model):
    """The official code only supports batch 1; batches give each sample's batch-1 result."""
    f0, f1 = case['frames'][0], case['frames'][1]
    feats = [
        torch.cat(
            [f0['intermediates']['mlvl_feats'][0], f1['intermediates']['mlvl_feats'][0]]
        ).float()
    ]
    l0, img_shape, c0 = _inputs(f0)
    l1, _, c1 = _inputs(f1)
    can_bus = torch.cat([c1, c1])
    prev = torch.cat([f0['outputs']['bev_embed'], f1['outputs']['bev_embed']], 1)  # [HW, 2, C]
    with torch.no_grad():
        both = model.forward_head(feats, torch.cat([l0, l1]), img_shape, can_bus, prev)
        singles = [
            model.forward_head(
                [feats[0][i:i + 1]], [l0, l1][i], img_shape, c1, prev[:, i:i + 1]
            )
            for i in range(2)
        ]
    # a batch changes GEMM blocking, hence float32 rounding: README §5 tolerances
    for i, single in enumerate(singles):
        torch.testing.assert_close(
            both['bev_embed'][:, i], single['bev_embed'][:, 0], rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(
            both['all_cls_scores'][:, i:i + 1], single['all_cls_scores'], rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(
            both['all_bbox_preds'][:, i:i + 1], single['all_bbox_preds'], rtol=1e-4, atol=5e-4
        )

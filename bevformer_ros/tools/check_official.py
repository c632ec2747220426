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
Compare this package's BEVFormer with outputs computed by the OFFICIAL implementation.

    python -m bevformer_ros.tools.check_official FIXTURE.pt [FIXTURE.pt ...] [--json]
        [--device cpu|cuda]

Fixture kinds (see shared/fixtures/bevformer_reference/README.md):
  full_detector   frames with ``img``; state dict of the whole detector; one report per frame.
  head_only       frames with ``mlvl_feats`` (FPN output); state dict ``pts_bbox_head.*`` only.
  image_preprocess  raw PNG images and the official test pipeline's network input; one report per
                    case.
Exit status 0 when every number is within the README §5 / §10.4 tolerances, 1 otherwise, 2 on bad
input. ``--checkpoint FILE.pth`` runs full_detector fixtures with the weights of that file (e.g.
the official release the fixture was computed with) instead of the state dict the fixture stores.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import hashlib
import json
import math
from pathlib import Path
import struct
import sys
from typing import Any
import zlib

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS
from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.model.box_coder import decode_boxes
from bevformer_ros.model.build import build_detector
from bevformer_ros.model.config import BEVFormerConfig, from_official_config
from bevformer_ros.model.detector import BEVFormer
import numpy as np
import torch

# name: (rtol, atol), README §5 (assert_close semantics: |a - b| <= atol + rtol * |b|)
TOLERANCES = {
    'bev_embed': (1e-4, 1e-4),
    'all_cls_scores': (1e-4, 1e-4),
    'all_bbox_preds': (1e-4, 5e-4),
    'boxes_3d': (1e-4, 5e-4),
    'scores_3d': (0.0, 5e-5),
    'can_bus_used': (0.0, 1e-9),
}
# Exported-graph engines (--backend): absolute tolerances of the numbers they return (the last
# decoder layer only); fp32 runtimes reorder sums, so they get a looser budget than eager torch.
BACKEND_TOLERANCES = {
    'bev_embed': (0.0, 1e-4),
    'all_cls_scores': (0.0, 2e-3),
    'all_bbox_preds': (0.0, 1e-2),
    'boxes_3d': (0.0, 1e-2),
    'scores_3d': (0.0, 5e-4),
}
# README §10.4
PREPROCESS_TOLERANCES = {
    'sample_values': 1e-4,
    'mean': 1e-5,
    'std': 1e-5,
    'min': 1e-4,
    'max': 1e-4,
}


def compare(
    name: str,
    actual: torch.Tensor,
    expected: torch.Tensor,
    tolerance: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """
    Return the max abs difference and whether every element is within ``tolerance``.

    ``tolerance`` defaults to that of ``name``.
    """
    rtol, atol = tolerance or TOLERANCES[name]
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    if actual.shape != expected.shape:
        return {
            'max_abs_diff': None,
            'passed': False,
            'error': f'shape {list(actual.shape)} != expected {list(expected.shape)}',
        }
    if not bool(torch.isfinite(actual).all()):
        return {'max_abs_diff': None, 'passed': False, 'error': 'non-finite values'}
    diff = (actual - expected).abs()
    return {
        'max_abs_diff': float(diff.max()) if diff.numel() else 0.0,
        'passed': bool((diff <= atol + rtol * expected.abs()).all()),
    }


# ------------------------------------------------------------------------------------------------
# detector fixtures


def _config(d: dict[str, Any]) -> BEVFormerConfig:
    c = d['config']
    return from_official_config(
        c['model'],
        img_norm_cfg=c.get('img_norm_cfg'),
        test_image_scale=c.get('test_image_scale'),
        class_names=c.get('class_names'),
        size_divisor=c.get('pad_size_divisor', 32),
    )


def build_from_fixture(
    d: dict[str, Any], head_only: bool, device: torch.device, checkpoint: str = ''
) -> tuple[BEVFormer, BEVFormerConfig]:
    """
    Build the model of the fixture's official config (`model.build`), weights loaded strictly.

    The weights are the fixture's state dict (float16 -> float32), or those of `checkpoint` (a
    whole detector: not with `head_only`).
    """
    if checkpoint and head_only:
        raise ValueError('--checkpoint holds a whole detector; not for head-only runs')
    built = build_detector(_config(d), device, checkpoint, head_only=head_only)
    if not checkpoint:
        state = {k: v.float() if v.is_floating_point() else v for k, v in d['state_dict'].items()}
        if head_only:
            state = {k: v for k, v in state.items() if k.startswith('pts_bbox_head.')}
        built.model.load_state_dict(state, strict=True)
    return built.model, built.cfg


def _frame_features(frame: dict[str, Any]) -> list[torch.Tensor]:
    feats = frame.get('mlvl_feats')
    if feats is None:
        feats = frame['intermediates']['mlvl_feats']
    return [f.float() for f in feats]


def _compare_decoded(
    det: Any,
    out: dict[str, torch.Tensor],
    tolerances: dict[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """
    Compare decoded boxes matched by flat index.

    Near-tied scores may swap order under rounding.
    """
    expected_index = out['decode_flat_index'].tolist()
    mine = {int(i): k for k, i in enumerate(det.flat_index.tolist())}
    matched = [mine.get(int(i)) for i in expected_index]
    missing = sum(m is None for m in matched)
    result: dict[str, Any] = {
        'num_boxes': len(mine),
        'expected_num_boxes': len(expected_index),
        'unmatched_flat_index': missing + max(len(mine) - len(expected_index), 0),
    }
    if missing:
        result.update(passed=False)
        return result
    order = torch.tensor(matched, dtype=torch.long, device=det.boxes.device)
    boxes = det.boxes[order].detach().double().cpu()
    expected_boxes = out['boxes_3d'].double()
    # yaw = atan2(sin, cos) may flip between +pi and -pi under rounding: compare it modulo 2 pi
    yaw_diff = torch.remainder(boxes[:, 6] - expected_boxes[:, 6] + math.pi, 2 * math.pi) - math.pi
    boxes[:, 6] = expected_boxes[:, 6] + yaw_diff
    tol = tolerances or {}
    result['boxes_3d'] = compare('boxes_3d', boxes, expected_boxes, tol.get('boxes_3d'))
    result['scores_3d'] = compare(
        'scores_3d', det.scores[order], out['scores_3d'], tol.get('scores_3d')
    )
    result['labels_3d_mismatch'] = int((det.labels[order].cpu() != out['labels_3d']).sum())
    result['passed'] = (
        result['unmatched_flat_index'] == 0
        and result['labels_3d_mismatch'] == 0
        and result['boxes_3d']['passed']
        and result['scores_3d']['passed']
    )
    return result


def fixture_engine(
    model: BEVFormer,
    cfg: BEVFormerConfig,
    d: dict[str, Any],
    backend: str,
    precision: str,
    device: torch.device,
) -> Any:
    """Return the exported-graph engine of the fixture's model (cached in the default folder)."""
    from bevformer_ros.model.engines import create_engine

    frame = d['frames'][0]
    meta = frame['img_metas']
    img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
    return create_engine(
        backend,
        model,
        cfg,
        img_shape,
        frame['img'].shape[1],
        device,
        precision,
        preset=str(d.get('case') or 'fixture'),
        progress=lambda line: print(line, file=sys.stderr),
    )


def check_detector(
    d: dict[str, Any],
    device: torch.device,
    head_only: bool = False,
    checkpoint: str = '',
    backend: str = 'torch',
    precision: str = 'fp32',
) -> list[dict[str, Any]]:
    """
    Run every frame in order with TemporalState; one report per frame.

    With an engine ``backend`` (not torch) the frames run through the exported graph: only the
    last decoder layer is compared, within BACKEND_TOLERANCES.
    """
    head_only = head_only or d['kind'] == 'head_only'
    if backend != 'torch' and head_only:
        raise ValueError(f'--backend {backend} runs whole detectors only, not head-only fixtures')
    model, cfg = build_from_fixture(d, head_only, device, checkpoint)
    engine = None
    if backend != 'torch':
        engine = fixture_engine(model, cfg, d, backend, precision, device)
    tolerances = BACKEND_TOLERANCES if engine is not None else {}
    state = TemporalState(video_test_mode=cfg.video_test_mode)
    reports = []
    for index, frame in enumerate(d['frames']):
        meta = frame['img_metas']
        step = state.step(np.asarray(meta['can_bus_input'], dtype=np.float64), meta['scene_token'])
        # [1, N, 4, 4]
        lidar2img = torch.as_tensor(meta['lidar2img'], dtype=torch.float64)[None].to(device)
        img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
        can_bus = torch.from_numpy(step.can_bus)[None]  # [1, 18] float64, stays on the CPU
        with torch.no_grad():
            if head_only:
                feats = [f.to(device) for f in _frame_features(frame)]
                out = model.forward_head(feats, lidar2img, img_shape, can_bus, step.prev_bev)
            else:
                out = (engine or model)(
                    frame['img'].float().to(device), lidar2img, img_shape, can_bus, step.prev_bev
                )
        state.update(out['bev_embed'])
        expected = frame['outputs']
        report: dict[str, Any] = {
            'case': d.get('case'),
            'kind': d['kind'],
            'frame': index,
            'device': str(device),
            'backend': backend,
            'precision': precision,
            'prev_bev_used': step.use_prev_bev,
            'prev_bev_used_expected': bool(frame.get('prev_bev_used', step.use_prev_bev)),
            'can_bus_used': compare(
                'can_bus_used', torch.from_numpy(step.can_bus), meta['can_bus_used']
            ),
        }
        for name in ('bev_embed', 'all_cls_scores', 'all_bbox_preds'):
            want = expected[name]
            if engine is not None and name != 'bev_embed':
                want = want[-1:]  # engines return the last decoder layer
            report[name] = compare(name, out[name], want, tolerances.get(name))
        det = decode_boxes(out['all_cls_scores'][-1, 0], out['all_bbox_preds'][-1, 0], cfg)
        report['decoded'] = _compare_decoded(det, expected, tolerances)
        report['passed'] = report['prev_bev_used'] == report['prev_bev_used_expected'] and all(
            report[k]['passed']
            for k in ('can_bus_used', 'bev_embed', 'all_cls_scores', 'all_bbox_preds', 'decoded')
        )
        reports.append(report)
    return reports


# ------------------------------------------------------------------------------------------------
# image preprocessing fixtures


def decode_png_bgr(data: bytes) -> np.ndarray:
    """
    8-bit RGB/RGBA non-interlaced PNG -> uint8 [H, W, 3] BGR (no OpenCV/Pillow needed).

    Unfiltering depends on the left, upper and upper-left pixels, so it sweeps anti-diagonals of
    the image: the pixels of one anti-diagonal are independent and are processed together.
    """
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG file')
    pos, chunks, header = 8, [], None
    while pos + 8 <= len(data):
        length, kind = struct.unpack('>I4s', data[pos:pos + 8])
        if kind == b'IHDR':
            header = struct.unpack('>IIBBBBB', data[pos + 8:pos + 21])
        elif kind == b'IDAT':
            chunks.append(data[pos + 8:pos + 8 + length])
        pos += 12 + length
    if header is None:
        raise ValueError('PNG without IHDR')
    width, height, depth, color, _, _, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(
            f'unsupported PNG (bit depth {depth}, colour type {color}, interlace {interlace})'
        )
    ch = 3 if color == 2 else 4
    rows = np.frombuffer(zlib.decompress(b''.join(chunks)), np.uint8).reshape(
        height, 1 + width * ch
    )
    filters = rows[:, 0].astype(np.int16)
    coded = rows[:, 1:].reshape(height, width, ch).astype(np.int16)
    # decoded pixels, with a zero row on top and a zero column on the left as the filters' outside
    img = np.zeros((height + 1, width + 1, ch), np.int16)
    for diag in range(height + width - 1):
        r = np.arange(max(0, diag - width + 1), min(height, diag + 1))
        c = diag - r
        a, b, cc = img[r + 1, c], img[r, c + 1], img[r, c]  # left, up, upper-left
        p = a + b - cc
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - cc)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, cc))
        f = filters[r][:, None]
        predictor = np.where(
            f == 1,
            a,
            np.where(f == 2, b, np.where(f == 3, (a + b) // 2, np.where(f == 4, paeth, 0))),
        )
        img[r + 1, c + 1] = (coded[r, c] + predictor) % 256
    return np.ascontiguousarray(img[1:, 1:, 2::-1].astype(np.uint8))  # RGB -> BGR


def _pipeline_steps(pipeline: list[Any]) -> dict[str, dict[str, Any]]:
    """
    Official test-pipeline steps by type, nested ones (inside MultiScaleFlipAug3D) included.

    A fallback for fixtures whose config gives only the pipeline (the base config has no
    RandomScale step and pads outside MultiScaleFlipAug3D).
    """
    steps: dict[str, dict[str, Any]] = {}
    for step in pipeline:
        if isinstance(step, dict):
            steps.setdefault(str(step.get('type')), step)
            for name, nested in _pipeline_steps(step.get('transforms') or []).items():
                steps.setdefault(name, nested)
    return steps


def _stats(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per (camera, channel) statistics in float64 of x [N, 3, H, W]."""
    x = x.double().flatten(2)
    return {
        'mean': x.mean(-1),
        'std': x.std(-1, correction=0),
        'min': x.amin(-1),
        'max': x.amax(-1),
    }


def check_preprocess(d: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """README §10.4: sampled values, statistics, shapes, pad masks and the scaled lidar2img."""
    from bevformer_ros.model.preprocess import ImagePreprocessor

    c, inputs, expected = d['config'], d['inputs'], d['outputs']
    steps = _pipeline_steps(c.get('test_pipeline') or [])
    norm = c.get('img_norm_cfg') or steps['NormalizeMultiviewImage']
    scales = (
        c['scales']
        if 'scales' in c
        else steps.get('RandomScaleImageMultiViewImage', {}).get('scales')
    )
    divisor = c.get('size_divisor') or steps.get('PadMultiViewImage', {}).get('size_divisor', 32)
    pre = ImagePreprocessor(
        norm['mean'],
        norm['std'],
        norm['to_rgb'],
        scale=scales[0] if scales else None,
        size_divisor=divisor,
    )
    # [N, H, W, 3]
    images = np.stack([decode_png_bgr(t.numpy().tobytes()) for t in inputs['images_png']])
    md5 = [hashlib.md5(np.ascontiguousarray(image).tobytes()).hexdigest() for image in images]
    md5_ok = 'image_md5_bgr_hwc' not in inputs or md5 == list(inputs['image_md5_bgr_hwc'])
    res = pre(torch.from_numpy(images), channel_order='bgr', device=device)
    img = res.img.cpu()  # [N, 3, Hp, Wp]
    pos = expected['sample_positions'].long()
    values = img[pos[:, 0], :, pos[:, 1], pos[:, 2]]  # [K, 3]
    report: dict[str, Any] = {
        'case': d.get('case'),
        'kind': d['kind'],
        'device': str(device),
        'image_md5_match': md5_ok,
    }
    diff = float((values - expected['sample_values']).abs().max())
    report['sample_values'] = {
        'max_abs_diff': diff,
        'passed': diff <= PREPROCESS_TOLERANCES['sample_values'],
    }
    hr, wr = res.resized_shape
    for which, part in (('stats_padded', img), ('stats_valid', img[:, :, :hr, :wr])):
        mine = _stats(part)
        report[which] = {}
        for key, value in mine.items():
            err = float((value - expected[which][key].double()).abs().max())
            report[which][key] = {'max_abs_diff': err, 'passed': err <= PREPROCESS_TOLERANCES[key]}
    n = img.shape[0]
    shape_ok = [1, *img.shape] == list(expected['network_input_shape'])
    meta_ok = all(
        list(v) == [*shape, 3]
        for v, shape in [(s, res.img_shape) for s in expected['img_shape']]
        + [(s, res.pad_shape) for s in expected['pad_shape']]
        + [(s, res.ori_shape) for s in expected['ori_shape']]
    )
    rows = (torch.arange(img.shape[2]) >= hr)[None].expand(n, -1)
    cols = (torch.arange(img.shape[3]) >= wr)[None].expand(n, -1)
    masks_ok = bool(
        (rows == expected['pad_row_mask']).all() and (cols == expected['pad_col_mask']).all()
    )
    padding_zero = bool((img[:, :, hr:] == 0).all() and (img[:, :, :, wr:] == 0).all())
    scaled = torch.as_tensor(pre.scale_lidar2img(inputs['lidar2img'].double()))
    lidar2img_ok = bool(torch.allclose(scaled, expected['lidar2img'].double(), rtol=1e-12, atol=0))
    report.update(
        shapes_match=shape_ok and meta_ok,
        pad_masks_match=masks_ok,
        padding_all_zero=padding_zero == bool(expected['padding_all_zero']),
        lidar2img_match=lidar2img_ok,
    )
    report['passed'] = (
        report['sample_values']['passed']
        and md5_ok
        and shape_ok
        and meta_ok
        and masks_ok
        and report['padding_all_zero']
        and lidar2img_ok
        and all(v['passed'] for s in ('stats_padded', 'stats_valid') for v in report[s].values())
    )
    return report


# ------------------------------------------------------------------------------------------------
# DCNv2 / backbone fixture (README §9, its own format without ``kind``)

DCN_LAYER_TOLERANCE = (1e-4, 1e-4)  # float32, README §9.4
DCN_BACKBONE_ATOL = (1e-4, 5e-3, 1e-2)  # float32, per output, rtol 0
FLOAT64_ATOL = 1e-9  # float64 run vs the float64 references


def _run_both(module: torch.nn.Module, x: torch.Tensor, device: torch.device) -> tuple[Any, Any]:
    """(float32 output, float64 output) of ``module`` on x (float16-exact values)."""
    with torch.no_grad():
        out32 = module.float().to(device)(x.float().to(device))
        out64 = module.double()(x.double().to(device))
    return out32, out64


def check_dcn(d: dict[str, Any], device: torch.device) -> list[dict[str, Any]]:
    """Single ModulatedDeformConv2dPack layers and the narrowed ResNet-101-DCN backbone."""
    from bevformer_ros.model.config import backbone_from_official
    from bevformer_ros.model.dcn import ModulatedDeformConv2dPack
    from bevformer_ros.model.resnet import ResNet

    reports = []
    for name, case in d['layers'].items():
        layer = ModulatedDeformConv2dPack(**case['config'])
        layer.load_state_dict({k: v.float() for k, v in case['state_dict'].items()}, strict=True)
        out32, out64 = _run_both(layer.eval(), case['input'], device)
        report = {
            'case': f'case_dcn/{name}',
            'kind': 'dcn_layer',
            'device': str(device),
            'output': compare(name, out32, case['output'], DCN_LAYER_TOLERANCE),
            'output_float64': compare(name, out64, case['output_float64'], (0.0, FLOAT64_ATOL)),
        }
        report['passed'] = report['output']['passed'] and report['output_float64']['passed']
        reports.append(report)
    bb = d['backbone']
    cfg = backbone_from_official(bb['config'])
    backbone = ResNet(
        depth=cfg.depth,
        base_channels=cfg.base_channels,
        num_stages=cfg.num_stages,
        out_indices=cfg.out_indices,
        style=cfg.style,
        frozen_stages=cfg.frozen_stages,
        norm_eval=cfg.norm_eval,
        norm_requires_grad=cfg.norm_requires_grad,
        stage_with_dcn=cfg.stage_with_dcn,
        dcn_deform_groups=cfg.dcn_deform_groups,
    )
    prefix = bb.get('key_prefix', '')
    state = {
        k[len(prefix):]: v.float() if v.is_floating_point() else v
        for k, v in bb['state_dict'].items()
    }
    backbone.load_state_dict(state, strict=True)
    outs32, outs64 = _run_both(backbone.eval(), bb['img'], device)
    report = {'case': 'case_dcn/backbone', 'kind': 'dcn_backbone', 'device': str(device)}
    for i, atol in enumerate(DCN_BACKBONE_ATOL[: len(outs32)]):
        report[f'outs[{i}]'] = compare('outs', outs32[i], bb['outs'][i], (0.0, atol))
        report[f'outs_float64[{i}]'] = compare(
            'outs', outs64[i], bb['outs_float64'][i], (0.0, FLOAT64_ATOL)
        )
    report['passed'] = all(v['passed'] for k, v in report.items() if k.startswith('outs'))
    reports.append(report)
    return reports


# ------------------------------------------------------------------------------------------------
# command line


def check_fixture(
    path: str | Path,
    device: torch.device,
    head_only: bool = False,
    checkpoint: str = '',
    backend: str = 'torch',
    precision: str = 'fp32',
) -> list[dict[str, Any]]:
    """
    All reports of one fixture file (`checkpoint`: weights for detector fixtures).

    `backend` / `precision` apply to detector fixtures; layer fixtures always run in torch.
    """
    d = torch.load(path, map_location='cpu', weights_only=True)
    kind = d.get('kind')
    if kind in ('full_detector', 'head_only'):
        return check_detector(
            d,
            device,
            head_only=head_only,
            checkpoint=checkpoint,
            backend=backend,
            precision=precision,
        )
    if kind == 'image_preprocess':
        return [check_preprocess(d, device)]
    if kind is None and 'layers' in d and 'backbone' in d:
        return check_dcn(d, device)
    raise ValueError(
        f'{path}: unknown fixture kind {kind!r} '
        '(expected full_detector, head_only or image_preprocess)'
    )


def _fmt(value: float | None) -> str:
    return 'n/a' if value is None else f'{value:.3g}'


def _summary(report: dict[str, Any]) -> str:
    """One line: status, case, and the max abs difference of every compared output."""
    status = 'PASS' if report['passed'] else 'FAIL'
    where = (
        f'frame {report["frame"]} (prev_bev {report["prev_bev_used"]})'
        if 'frame' in report
        else report['kind']
    )
    parts = [
        f'{k} {_fmt(v["max_abs_diff"])}'
        for k, v in report.items()
        if isinstance(v, dict) and 'max_abs_diff' in v
    ]
    for stats in ('stats_padded', 'stats_valid'):
        if stats in report:
            parts.append(f'{stats} {_fmt(max(v["max_abs_diff"] for v in report[stats].values()))}')
    dec = report.get('decoded', {})
    parts += [f'{k} {_fmt(dec[k]["max_abs_diff"])}' for k in ('boxes_3d', 'scores_3d') if k in dec]
    if dec:
        mismatched = dec.get('labels_3d_mismatch', 'n/a')
        parts.append(
            f'labels mismatched {mismatched}, unmatched boxes {dec["unmatched_flat_index"]}'
        )
    flags = (
        'image_md5_match',
        'shapes_match',
        'pad_masks_match',
        'padding_all_zero',
        'lidar2img_match',
    )
    parts += [f'{k}={report[k]}' for k in flags if k in report]
    return f'[{status}] {report["case"]} {where}: ' + ', '.join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n\n')[0])
    parser.add_argument('fixtures', nargs='+', help='fixture .pt files')
    parser.add_argument(
        '--json', action='store_true', help='print one JSON object per frame / case'
    )
    parser.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    parser.add_argument(
        '--head-only',
        action='store_true',
        help='run full_detector fixtures from their intermediate FPN features '
        '(skips backbone/neck)',
    )
    parser.add_argument(
        '--checkpoint',
        default='',
        help='run detector fixtures with the weights of this .pth (path or shipped name) instead '
        'of the state dict stored in the fixture',
    )
    parser.add_argument(
        '--backend',
        default='torch',
        choices=ENGINE_BACKENDS,
        help='run detector fixtures through this engine (the exported graph; cached in '
        '~/.cache/bevformer_ros/engines) instead of eager torch',
    )
    parser.add_argument(
        '--precision', default='fp32', choices=ENGINE_PRECISIONS, help='engine precision'
    )
    args = parser.parse_args(argv)
    if args.backend == 'torch' and args.precision != 'fp32':
        parser.error('--precision applies to the engine backends (--backend); torch runs fp32')
    if args.checkpoint and args.head_only:
        parser.error('--checkpoint holds a whole detector; it does not apply with --head-only')
    if args.device == 'cuda':
        if not torch.cuda.is_available():
            print('--device cuda: no CUDA device is available', file=sys.stderr)
            return 2
        # The fixtures are exact float32; TF32 matmuls/convolutions differ by ~1e-3 relative.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    all_passed = True
    for path in args.fixtures:
        try:
            reports = check_fixture(
                path,
                device,
                head_only=args.head_only,
                checkpoint=args.checkpoint,
                backend=args.backend,
                precision=args.precision,
            )
        except (OSError, KeyError, ValueError, RuntimeError) as error:
            print(f'{path}: cannot check: {error}', file=sys.stderr)
            return 2
        for report in reports:
            report['fixture'] = str(path)
            all_passed &= bool(report['passed'])
            print(json.dumps(report) if args.json else _summary(report))
    return 0 if all_passed else 1


if __name__ == '__main__':
    sys.exit(main())

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
check_official on the other fixture kinds.

head_only, image_preprocess, the DCN format, bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

from bevformer_ros.tools.check_official import decode_png_bgr, main
from reference_fixtures import REFERENCE, require
import torch

FIXTURES = REFERENCE


def fixture(name: str) -> Path:
    return require(FIXTURES / name)


def run_json(capsys, *argv: str) -> tuple[int, list[dict]]:
    rc = main([*argv, '--json'])
    return rc, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_head_only_kind(tmp_path, capsys):
    """
    Return a head_only fixture.

    Frames carry the FPN output, the state dict holds only pts_bbox_head.*.
    """
    d = torch.load(fixture('case_small.pt'), weights_only=True)
    frames = []
    for frame in d['frames']:
        frame = {k: v for k, v in frame.items() if k != 'img'}
        frame['mlvl_feats'] = frame['intermediates']['mlvl_feats']
        frames.append(frame)
    state = {k: v for k, v in d['state_dict'].items() if k.startswith('pts_bbox_head.')}
    path = tmp_path / 'head_only.pt'
    torch.save(dict(d, kind='head_only', frames=frames, state_dict=state), path)
    rc, reports = run_json(capsys, str(path))
    assert rc == 0
    assert [r['frame'] for r in reports] == [0, 1, 2] and all(
        r['kind'] == 'head_only' for r in reports
    )
    # the fixture README §5 tolerance: float32 noise differs between CPUs
    assert all(r['bev_embed']['max_abs_diff'] <= 1e-4 for r in reports)


def test_image_preprocess_kind(capsys):
    rc, reports = run_json(capsys, str(fixture('case_preprocess_tiny.pt')))
    assert rc == 0 and len(reports) == 1
    report = reports[0]
    assert report['kind'] == 'image_preprocess' and report['image_md5_match']
    assert report['sample_values']['max_abs_diff'] <= 1e-4
    assert report['shapes_match'] and report['pad_masks_match'] and report['lidar2img_match']


def test_png_decoder_reads_the_fixture_images():
    d = torch.load(fixture('case_preprocess_tiny.pt'), weights_only=True)
    bgr = decode_png_bgr(d['inputs']['images_png'][1].numpy().tobytes())
    assert bgr.shape == (900, 1600, 3)
    sums = torch.from_numpy(bgr).long().sum((0, 1))
    assert sums.tolist() == d['inputs']['image_channel_sums_bgr'][1].tolist()


def test_dcn_fixture(capsys):
    rc, reports = run_json(capsys, str(fixture('case_dcn.pt')))
    assert rc == 0
    assert [r['kind'] for r in reports] == ['dcn_layer'] * 3 + ['dcn_backbone']


def test_unreadable_fixture_exits_2(tmp_path, capsys):
    path = tmp_path / 'other.pt'
    torch.save({'kind': 'something_else'}, path)
    assert main([str(path)]) == 2
    assert 'unknown fixture kind' in capsys.readouterr().err


def test_checkpoint_weights_replace_the_fixture_weights(tmp_path, capsys):
    """--checkpoint: the official-layout file's weights run (the model builder's strict load)."""
    d = torch.load(fixture('case_small.pt'), weights_only=True)
    same = tmp_path / 'same.pth'
    torch.save({'meta': {}, 'state_dict': d['state_dict']}, same)  # float16, as the fixture stores
    rc, reports = run_json(capsys, str(fixture('case_small.pt')), '--checkpoint', str(same))
    assert rc == 0 and [r['frame'] for r in reports] == [0, 1, 2]
    other = dict(d['state_dict'])
    key = 'pts_bbox_head.bev_embedding.weight'
    other[key] = other[key] * 2  # a different checkpoint: the results must no longer match
    changed = tmp_path / 'changed.pth'
    torch.save({'meta': {}, 'state_dict': other}, changed)
    assert main([str(fixture('case_small.pt')), '--checkpoint', str(changed)]) == 1
    assert '[FAIL]' in capsys.readouterr().out
    assert main([str(fixture('case_small.pt')), '--checkpoint', str(tmp_path / 'none.pth')]) == 2
    assert 'checkpoint not found' in capsys.readouterr().err

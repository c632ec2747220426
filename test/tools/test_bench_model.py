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

"""Smoke test of the model benchmark CLI and checks of its analytic FLOP counter."""

from __future__ import annotations

import json

from bevformer_ros.model.resnet import ResNet
from bevformer_ros.tools.bench_model import count_flops, main, synthetic_lidar2img
import numpy as np
import pytest
import torch
from torch import nn

# tiny's architecture at toy sizes (C5 of a base_channels=16 ResNet-50 has 512 channels).
TOY_CONFIG = {
    'backbone': {'base_channels': 16},
    'neck': {'in_channels': [512], 'out_channels': 32},
    'image': {'scale': 1.0},
    'head': {
        'embed_dims': 32,
        'ffn_dims': 64,
        'bev_h': 10,
        'bev_w': 10,
        'row_num_embed': 10,
        'col_num_embed': 10,
        'num_encoder_layers': 1,
        'num_decoder_layers': 1,
        'num_query': 20,
    },
}


def test_bench_runs_every_stage(capsys: pytest.CaptureFixture) -> None:
    argv = [
        '--preset',
        'tiny',
        '--device',
        'cpu',
        '--iters',
        '2',
        '--warmup',
        '1',
        '--image-hw',
        '90',
        '160',
    ]
    assert main([*argv, '--config-json', json.dumps(TOY_CONFIG), '--json']) == 0
    result = json.loads(capsys.readouterr().out)
    assert result['network_input_hw'] == [96, 160] and result['bev_hw'] == [10, 10]
    for stage in ('preprocess', 'backbone+neck', 'encoder', 'decoder+head', 'decode', 'total'):
        assert result['stages_ms'][stage] > 0, stage
    stages = ('preprocess', 'backbone+neck', 'encoder', 'decoder+head', 'decode')
    assert sum(result['stages_ms'][s] for s in stages) <= result['stages_ms']['total'] * 1.01
    assert all(result['gflop'][s] > 0 for s in ('backbone+neck', 'encoder', 'decoder+head'))
    assert result['decoded_boxes'] == 20 * 10  # min(max_num=300, queries * classes)
    assert result['peak_memory_mb'] > 0


def test_operator_profile_lists_the_heaviest_ops(capsys: pytest.CaptureFixture) -> None:
    argv = ['--device', 'cpu', '--iters', '1', '--warmup', '0', '--image-hw', '90', '160']
    assert main([*argv, '--config-json', json.dumps(TOY_CONFIG), '--json', '--ops', '6']) == 0
    ops = json.loads(capsys.readouterr().out)['ops']
    assert len(ops) == 6
    assert [o['self_ms'] for o in ops] == sorted((o['self_ms'] for o in ops), reverse=True)
    assert all(o['op'].startswith('aten::') and o['calls'] >= 1 for o in ops)
    assert 0 < sum(o['share'] for o in ops) <= 1.0 + 1e-9
    # a ResNet frame spends its time in convolutions, whichever kernel the CPU picks
    assert any('conv' in o['op'] for o in ops[:3])
    assert main([*argv, '--config-json', json.dumps(TOY_CONFIG), '--ops', '3']) == 0
    table = capsys.readouterr().out
    assert 'operators by own cpu time' in table and table.count('aten::') == 3
    with pytest.raises(SystemExit):
        main([*argv, '--ops', '3', '--backend', 'torch'])


def test_bench_table_and_bad_config(capsys: pytest.CaptureFixture) -> None:
    argv = ['--device', 'cpu', '--iters', '1', '--warmup', '0', '--image-hw', '90', '160']
    assert main([*argv, '--config-json', json.dumps(TOY_CONFIG)]) == 0
    table = capsys.readouterr().out
    assert 'backbone+neck' in table and 'peak memory' in table and 'GFLOP/s' in table
    bad = {**TOY_CONFIG, 'head': {**TOY_CONFIG['head'], 'embed_dims': 33}}
    assert main([*argv, '--config-json', json.dumps(bad)]) == 2
    assert 'head.embed_dims' in capsys.readouterr().err


def test_compare_mode_times_every_backend_and_reports_the_unavailable(capsys) -> None:
    """One interleaved run: a row per entry, diffs vs the first, a reason for what cannot run."""
    argv = ['--device', 'cpu', '--iters', '2', '--warmup', '1', '--image-hw', '90', '160',
            '--config-json', json.dumps(TOY_CONFIG), '--json',
            '--compare', 'eager:fp32', 'torch:fp32', 'torch:bf16:bf16', 'nosuch:fp32',
            'torch:fp16']
    assert main(argv) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r['backend'], r['precision']) for r in rows] == [
        ('eager', 'fp32'), ('torch', 'fp32'), ('torch', 'bf16'), ('nosuch', 'fp32'),
        ('torch', 'fp16')]
    eager, fast, bf16, nosuch, fp16 = rows
    assert eager['speedup'] == 1.0 and eager['max_abs_diff'] == {'bev': 0, 'cls': 0, 'box': 0}
    assert fast['median_s'] > 0 and fast['speedup'] > 0 and fast['history']
    assert max(fast['max_abs_diff'].values()) < 1e-4  # folded + channels_last fp32 is the model
    assert 'BN folded' in fast['engine'] and bf16['head_precision'] == 'bf16'
    assert max(bf16['max_abs_diff'].values()) > 1e-4  # bf16 really ran
    assert not nosuch['available'] and 'nosuch' in nosuch['reason'] and nosuch['median_s'] is None
    assert not fp16['available'] and 'CUDA only' in fp16['reason']
    assert eager['cpu_features'] and all(
        f in ('AMX', 'AVX512-BF16', 'none') for f in eager['cpu_features'])


def test_compare_table_names_the_reason(capsys) -> None:
    argv = ['--device', 'cpu', '--iters', '1', '--warmup', '0', '--image-hw', '90', '160',
            '--config-json', json.dumps(TOY_CONFIG), '--no-history',
            '--compare', 'torch', 'nosuch:bf16']
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert 'without history' in captured.out and 'speedup' in captured.out
    assert 'not available: ' in captured.out
    assert 'building engine nosuch:bf16' in captured.err  # progress lines go to stderr


def test_backend_and_precision_are_one_compare_entry(capsys) -> None:
    """--backend/--precision as on the node and other tools; --precision in the eager profile."""
    argv = ['--device', 'cpu', '--iters', '1', '--warmup', '0', '--image-hw', '90', '160',
            '--config-json', json.dumps(TOY_CONFIG), '--json']
    assert main([*argv, '--backend', 'torch', '--precision', 'bf16']) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row['backend'], row['precision'], row['available']) == ('torch', 'bf16', True)
    assert row['median_s'] > 0
    assert main([*argv, '--precision', 'bf16']) == 0  # the per-stage eager profile, autocast
    assert json.loads(capsys.readouterr().out)['precision'] == 'bf16 (torch.autocast)'
    with pytest.raises(SystemExit):
        main([*argv, '--backend', 'torch', '--compare', 'eager'])
    assert '--backend is one --compare entry' in capsys.readouterr().err


def test_flops_of_conv_linear_and_attention() -> None:
    model = nn.Module()
    model.conv = nn.Conv2d(3, 8, 3, padding=1)
    model.fc = nn.Linear(4, 5)
    model.attn = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.inference_mode(), count_flops(model) as flops:
        model.conv(torch.zeros(1, 3, 10, 10))
        model.fc(torch.zeros(2, 3, 4))
        model.attn(torch.zeros(2, 3, 8), torch.zeros(2, 5, 8), torch.zeros(2, 5, 8))
    conv = 2 * 8 * 10 * 10 * 3 * 9
    linear = 2 * 2 * 3 * 5 * 4
    # projections + 2 matmuls
    attention = 2 * 2 * (3 * 64 + 2 * 5 * 64 + 3 * 64) + 2 * 2 * 2 * 3 * 5 * 8
    assert sum(flops.values()) == conv + linear + attention


def test_flops_of_resnet50_match_the_published_figure() -> None:
    """
    Count ResNet-50 at 224x224: 4.09 GMACs without the classifier, as torchvision lists it.

    He et al. 2016 report 3.8e9 'FLOPs' (multiply-adds) for the stride-on-1x1 original.
    """
    backbone = ResNet(depth=50, out_indices=(3,)).eval()
    with torch.inference_mode(), count_flops(backbone) as flops:
        backbone(torch.zeros(1, 3, 224, 224))
    assert sum(flops.values()) / 2 / 1e9 == pytest.approx(4.09, rel=0.01)


def test_synthetic_ring_sees_the_road_around_the_car() -> None:
    """Each camera of the synthetic rig sees a point 10 m along its own optical axis."""
    lidar2img = synthetic_lidar2img((900, 1600))
    for cam, yaw in enumerate(np.deg2rad([0.0, -55.0, 55.0, 180.0, 110.0, -110.0])):
        # camera at (0, 0.5, -0.3)
        point = np.array([-10 * np.sin(yaw), 0.5 + 10 * np.cos(yaw), -0.3, 1.0])
        u, v, depth, _ = lidar2img[cam] @ point
        assert depth > 0
        assert abs(u / depth - 800) < 1e-6 and abs(v / depth - 450) < 1e-6

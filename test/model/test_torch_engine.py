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

"""The fast torch engine: BN folding, channels_last, autocast vs the detector and the fixture."""

from __future__ import annotations

import copy
from pathlib import Path
import traceback
import warnings

from bevformer_ros.core.temporal import TemporalState
from bevformer_ros.model.engines.cpu_features import bf16_features, cpu_flags, has_bf16
from bevformer_ros.model.engines.fold_bn import fold_batch_norms
from bevformer_ros.model.engines.torch_engine import default_head_precision, TorchEngine
from bevformer_ros.model.export import frame_inputs
from bevformer_ros.model.resnet import ResNet
from bevformer_ros.tools.check_official import build_from_fixture
import numpy as np
import pytest
from reference_fixtures import CASE_SMALL, require
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

CPU = torch.device('cpu')
# The brief's torch tolerances against the official outputs (max abs diff).
TOLERANCE = {'bev_embed': 1e-4, 'all_cls_scores': 2e-3, 'all_bbox_preds': 1e-2}


@pytest.fixture(scope='module')
def case() -> dict:
    return torch.load(require(CASE_SMALL), weights_only=True)


@pytest.fixture(scope='module')
def model(case):
    return build_from_fixture(case, head_only=False, device=CPU)[0]


def _run_frames(engine, case) -> list[dict[str, torch.Tensor]]:
    """Every fixture frame in order with the official temporal bookkeeping."""
    state, outs = TemporalState(), []
    for frame in case['frames']:
        meta = frame['img_metas']
        step = state.step(np.asarray(meta['can_bus_input'], dtype=np.float64), meta['scene_token'])
        lidar2img = torch.as_tensor(meta['lidar2img'], dtype=torch.float64)[None]  # [1, 6, 4, 4]
        img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
        can_bus = torch.from_numpy(step.can_bus)[None]  # [1, 18] float64
        out = engine(frame['img'].float(), lidar2img, img_shape, can_bus, step.prev_bev)
        state.update(out['bev_embed'])
        outs.append(out)
    return outs


def _random_bn_stats(module: nn.Module, seed: int) -> None:
    """Give every BN non-trivial statistics and affine parameters, as a trained network has."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                n = bn.num_features
                bn.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                bn.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.25)
                bn.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                bn.bias.copy_(torch.randn(n, generator=gen) * 0.1)


def test_folded_resnet_with_dcn_matches_within_float32_noise():
    """Folding is exact up to rounding: its error vs a float64 run stays at float32's own level."""
    torch.manual_seed(0)
    dcn = (False, False, True, True)
    net = ResNet(depth=50, base_channels=8, out_indices=(3,), stage_with_dcn=dcn)
    _random_bn_stats(net, 1)
    net.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref64 = ResNet.forward(net.double(), x.double())[0]
        net.float()
        plain = net(x)[0]
        folded_net = net  # folded in place below; plain is already computed
        assert fold_batch_norms(folded_net) == 53  # stem + 16 blocks x 3 + 4 downsamples
        folded = folded_net(x)[0]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded_net.modules())
    noise = (plain.double() - ref64).abs().max().item()
    error = (folded.double() - ref64).abs().max().item()
    assert 0 < error <= 4 * noise + 1e-6, (error, noise)


def test_folding_refuses_batch_norm_in_training_mode():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match='training mode'):
        fold_batch_norms(net)


def test_fp32_fast_path_reproduces_the_official_fixture(case, model):
    engine = TorchEngine(model)
    assert engine.folded_bn == 53 and engine.channels_last
    assert 'channels_last' in engine.describe()
    conv = engine.model.img_backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and conv.dim() == 4
    for out, frame in zip(_run_frames(engine, case), case['frames']):
        for name, tol in TOLERANCE.items():
            diff = (out[name] - frame['outputs'][name].float()).abs().max().item()
            assert diff <= tol, (name, diff)
    # the caller's model is left as it was (the engine folds a copy)
    assert isinstance(model.img_backbone.bn1, nn.BatchNorm2d)


def test_channels_last_and_folding_change_nothing_beyond_rounding(case, model):
    frames = {'frames': case['frames'][:2]}
    plain = _run_frames(TorchEngine(model, fold_bn=False, channels_last=False), frames)
    fast = _run_frames(TorchEngine(model), frames)
    for a, b in zip(plain, fast):
        for name in TOLERANCE:
            assert (a[name] - b[name]).abs().max().item() <= 5e-5, name


def test_bf16_returns_float32_and_stays_near_fp32(case, model):
    """bf16 backbone with an fp32 head: float32 outputs, errors of bf16 size, not garbage."""
    frames = {'frames': case['frames'][:2]}
    ref = _run_frames(TorchEngine(model), frames)
    engine = TorchEngine(model, precision='bf16', head_precision='fp32')
    assert 'head fp32' in engine.describe()
    for a, b in zip(_run_frames(engine, frames), ref):
        assert a['bev_embed'].dtype == torch.float32 and a['all_bbox_preds'].dtype == torch.float32
        bev_diff = (a['bev_embed'] - b['bev_embed']).abs().max().item()
        assert 1e-4 < bev_diff < 0.5, bev_diff  # bf16 did run, and the result is still the model's


def test_cpu_bf16_keeps_the_head_in_fp32_unless_asked(model):
    assert TorchEngine(model, precision='bf16').head_precision == 'fp32'
    assert TorchEngine(model, precision='bf16', head_precision='bf16').head_precision == 'bf16'


def test_the_head_defaults_to_fp32_on_cuda_too():
    """Measured on an H200: an fp16 head is slower than fp32 and costs 0.38 max |d bev|."""
    assert default_head_precision('fp16', torch.device('cuda')) == 'fp32'
    assert default_head_precision('bf16', torch.device('cpu')) == 'fp32'


def test_unusable_precisions_are_rejected(model):
    with pytest.raises(ValueError, match='CUDA only'):
        TorchEngine(model, precision='fp16')
    with pytest.raises(ValueError, match='precision must be one of'):
        TorchEngine(model, precision='int8')
    with pytest.raises(ValueError, match='CUDA only'):
        TorchEngine(model, head_precision='fp16')


def test_cpu_bf16_features_from_cpuinfo_flags(tmp_path):
    info = tmp_path / 'cpuinfo'
    info.write_text('processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\n'
                    'processor\t: 1\nflags\t\t: fpu\n')
    flags = cpu_flags(info)
    assert 'amx_bf16' in flags and 'avx2' in flags
    assert bf16_features(flags) == ['AMX', 'AVX512-BF16']
    assert bf16_features({'avx2', 'avx512f'}) == [] and not has_bf16({'avx2'})
    assert cpu_flags(tmp_path / 'missing') == set()


def _run_masked_frames(engine, case) -> list[dict[str, torch.Tensor]]:
    """Run the fixture frames with history, camera 2 left out from the second frame on."""
    state, outs = TemporalState(), []
    for index, frame in enumerate(case['frames']):
        meta = frame['img_metas']
        step = state.step(np.asarray(meta['can_bus_input'], dtype=np.float64), meta['scene_token'])
        lidar2img = torch.as_tensor(meta['lidar2img'], dtype=torch.float64)[None]  # [1, 6, 4, 4]
        img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
        can_bus = torch.from_numpy(step.can_bus)[None]  # [1, 18] float64
        mask = torch.ones(1, 6, dtype=torch.bool)
        mask[0, 2] = index == 0
        out = engine(frame['img'].float(), lidar2img, img_shape, can_bus, step.prev_bev, mask)
        state.update(out['bev_embed'])
        outs.append(out)
    assert state.prev_bev is not None and len(outs) == 3
    return outs


def _assert_last_layer_close(static, eager, tol) -> None:
    for a, b in zip(static, eager):
        for name in TOLERANCE:
            want = b[name] if name == 'bev_embed' else b[name][-1:]  # static: last layer only
            assert a[name].shape == want.shape, name
            assert (a[name] - want).abs().max().item() <= tol, name


def test_static_frame_matches_eager_with_history_and_a_masked_camera(case, model):
    """The CUDA-graph formulation (export.FrameGraph, fixed SCA capacity) run eagerly on a CPU."""
    static = TorchEngine(model, static=True)
    assert 'static (SCA capacity' in static.describe() and 'CUDA graph' not in static.describe()
    eager = TorchEngine(model, static=False)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # the default capacity holds this rig: no fallback
        got = _run_masked_frames(static, case)
    assert static.overflow_frames == 0
    _assert_last_layer_close(got, _run_masked_frames(eager, case), 1e-5)
    assert not TorchEngine(model).static  # static is the CUDA default only


def test_static_capacity_overflow_falls_back_to_eager_with_one_warning(case, model):
    static = TorchEngine(model, static=True, sca_capacity=8)
    with pytest.warns(UserWarning, match='SCA capacity 8 ') as caught:
        got = _run_masked_frames(static, case)
    assert len([w for w in caught if 'SCA capacity' in str(w.message)]) == 1
    assert static.overflow_frames == 3
    # the eager fallback returns every decoder layer, exactly the eager engine's numbers
    for a, b in zip(got, _run_masked_frames(TorchEngine(model, static=False), case)):
        for name in TOLERANCE:
            assert torch.equal(a[name], b[name]), name


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_graph_of_the_whole_frame_matches_eager(case, model):
    cuda = copy.deepcopy(model).cuda()
    graphed = TorchEngine(cuda)
    assert graphed.static and 'CUDA graph (frame)' in graphed.describe()
    on_cuda = {'frames': [_to_cuda(frame) for frame in case['frames']]}
    got = _run_masked_frames(graphed, on_cuda)
    assert len(graphed._frames) == 1 and not graphed.capture_error  # captured once, replayed
    plain = _run_masked_frames(TorchEngine(cuda, static=False), on_cuda)
    _assert_last_layer_close(got, plain, 1e-3)


def _to_cuda(frame: dict) -> dict:
    return {**frame, 'img': frame['img'].cuda()}


class _HostTraffic(TorchDispatchMode):
    """Record ops that move data between Python and a tensor: not allowed in a CUDA graph."""

    # lift_fresh: torch.tensor / new_tensor from Python data (a host-to-device copy on a GPU);
    # _local_scalar_dense: .item() / int() / bool() of a tensor (a device-to-host sync)
    FORBIDDEN = ('lift_fresh', '_local_scalar_dense')

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split('.')[0] in self.FORBIDDEN:
            stack = traceback.extract_stack()[::-1]
            frame = next(f for f in stack if 'bevformer_ros' in f.filename)
            self.seen.append(f'{func} at {Path(frame.filename).name}:{frame.lineno}')
        return func(*args, **(kwargs or {}))


def test_the_static_frame_has_no_host_traffic_so_a_cuda_graph_can_capture_it(case, model):
    """What CUDA graph capture refuses, found on a CPU: no Python data enters the frame."""
    engine = TorchEngine(model, static=True)
    frame = case['frames'][1]
    meta = frame['img_metas']
    img_shape = (int(meta['img_shape'][0][0]), int(meta['img_shape'][0][1]))
    lidar2img = torch.as_tensor(meta['lidar2img'], dtype=torch.float64)[None]  # [1, 6, 4, 4]
    can_bus = torch.zeros(1, 18, dtype=torch.float64)
    prev_bev = torch.zeros(model.pts_bbox_head.bev_embedding.num_embeddings, 1, 64)  # [HW, 1, C]
    # built on the host, then copied into the graph's buffers
    inputs = frame_inputs(engine._grid, frame['img'].float(), lidar2img, can_bus, prev_bev, None)
    run = engine._frame(img_shape, inputs)
    with _HostTraffic() as traffic:
        run(*inputs)
    assert traffic.seen == []

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
Benchmark one BEVFormer preset: per-stage latency, peak memory and an analytic FLOP count.

    python -m bevformer_ros.tools.bench_model --preset tiny --device cpu --iters 3 --warmup 1
    python -m bevformer_ros.tools.bench_model --preset base --device cuda --precision fp16 --json
    python -m bevformer_ros.tools.bench_model --backend openvino --precision bf16
    python -m bevformer_ros.tools.bench_model --compare eager:fp32 torch:fp32 openvino:bf16

``--compare`` times the full model per inference backend instead (tools/bench_compare.py);
``--backend B --precision P`` is ``--compare B:P``.

The model has random weights (the official preset's architecture; latency does not depend on the
values) and sees six synthetic 900x1600 uint8 images on the device plus a synthetic nuScenes-like
camera ring, so the spatial cross-attention attends to a realistic share of the BEV. Every frame
after the first passes the previous ``bev_embed`` as ``prev_bev`` and a small ego motion, as in a
drive.

Stages (medians over ``--iters`` frames): ``preprocess`` (uint8 on the device -> normalised,
resized, padded), ``backbone+neck`` (ResNet + FPN), ``encoder`` (BEV encoder: TSA + SCA),
``decoder+head`` (everything else in ``pts_bbox_head``: query/can_bus preparation, history
alignment, decoder, class/box branches) and ``decode`` (NMS-free top-k). Stage boundaries come from
forward hooks on ``img_backbone``, ``img_neck``, ``pts_bbox_head`` and
``pts_bbox_head.transformer.encoder``; on CUDA they are CUDA events, read after one
synchronisation per frame, so the stages are GPU times without extra synchronisation in between.

FLOPs (one multiply-add = 2 FLOPs), counted with forward hooks on the first frame:
* ``nn.Conv2d``: 2 * C_out * C_in/groups * kh * kw per output pixel (bias, BN, ReLU not counted);
* DCNv2 (modules with ``weight`` and ``conv_offset``): the same contraction, plus 8 FLOPs per
  sampled input value (4-corner bilinear blend: 4 multiplies, 3 adds; 1 mask multiply); its
  ``conv_offset`` is a Conv2d;
* ``nn.Linear``: 2 * in_features per output value;
* ``nn.MultiheadAttention``: q/k/v/out projections and the two attention matmuls (softmax not
  counted);
* deformable attention (modules with ``sampling_offsets`` and ``value_proj``): 9 FLOPs per sampled
  channel (bilinear blend 7, attention-weighted accumulation 2); its Linear layers count as above.
Not counted: normalisation, activations, softmax, elementwise adds, preprocessing, the BEV
rotation, top-k.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
import contextlib
import dataclasses
import json
import math
import platform
import resource
import statistics
import sys
import time
from typing import Any

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS
from bevformer_ros.core.progress import Progress
from bevformer_ros.core.temporal import can_bus_from_pose, TemporalState
from bevformer_ros.model.box_coder import decode_boxes
from bevformer_ros.model.build import build_detector
from bevformer_ros.model.config import BEVFormerConfig, preset
from bevformer_ros.model.detector import BEVFormer
from bevformer_ros.model.engines.torch_engine import DTYPES
from bevformer_ros.model.preprocess import ImagePreprocessor
import numpy as np
import torch
from torch import nn

STAGES = ('preprocess', 'backbone+neck', 'encoder', 'decoder+head', 'decode')
MODEL_STAGES = ('backbone+neck', 'encoder', 'decoder+head')
# nuScenes camera order and rough yaw of each optical axis (degrees, counter-clockwise from
# forward).
RING_YAW_DEG = (0.0, -55.0, 55.0, 180.0, 110.0, -110.0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    summary = __doc__.strip().split('\n')[0]
    parser = argparse.ArgumentParser(prog='bench_model', description=summary)
    parser.add_argument('--preset', choices=('tiny', 'small', 'base'), default='tiny')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu', help='cpu or cuda'
    )
    parser.add_argument(
        '--backend',
        choices=ENGINE_BACKENDS,
        default=None,
        help='time the full model on this engine (the same as --compare BACKEND:PRECISION); '
        'without it: the per-stage profile of the eager model',
    )
    parser.add_argument(
        '--precision',
        choices=ENGINE_PRECISIONS,
        default='fp32',
        help='with --backend: model.precision; else the eager profile under torch.autocast',
    )
    parser.add_argument(
        '--tf32', action='store_true', help='allow TF32 matmuls/convs on CUDA (default: off)'
    )
    parser.add_argument('--iters', type=int, default=10, help='timed frames (default 10)')
    parser.add_argument('--warmup', type=int, default=2, help='untimed frames first (default 2)')
    parser.add_argument(
        '--image-hw',
        type=int,
        nargs=2,
        default=None,
        metavar=('H', 'W'),
        help="camera image size (default: the preset's 900 1600)",
    )
    parser.add_argument(
        '--fast-preprocess',
        action='store_true',
        help='F.interpolate resize instead of the bit-exact official arithmetic',
    )
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    parser.add_argument(
        '--ops',
        type=int,
        default=0,
        metavar='N',
        help='per-stage mode: after the timed frames, profile one more frame (torch.profiler) '
        'and list the N operators with the most own time on the device',
    )
    parser.add_argument(
        '--json', action='store_true', help='print one JSON object instead of a table'
    )
    parser.add_argument(
        '--compare', nargs='+', default=None, metavar='BACKEND[:PRECISION]',
        help='full model per backend, interleaved: eager (plain torch), torch (fast torch '
        'engine), torch-compile, openvino, onnxruntime, tensorrt; precision fp32|bf16|fp16 '
        '(default fp32); e.g. --compare eager:fp32 torch:fp32 torch:bf16 openvino:bf16',
    )
    parser.add_argument(
        '--checkpoint', default=None, help='weights (a .pth path or models/ name); default random'
    )
    parser.add_argument(
        '--no-history', action='store_true', help='--compare: time a first frame (no prev_bev)'
    )
    # For tests: shrink the preset, e.g. '{"head": {"embed_dims": 32}, "backbone":
    # {"base_channels": 16}}'.
    parser.add_argument('--config-json', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.backend and args.compare:
        parser.error('--backend is one --compare entry: give either')
    if args.ops and (args.backend or args.compare):
        parser.error('--ops profiles the eager per-stage run: leave out --backend / --compare')
    if args.backend:
        args.compare = [f'{args.backend}:{args.precision}']
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error('--device cuda requested but torch.cuda.is_available() is False')
    return args


def build_config(name: str, overrides_json: str | None) -> BEVFormerConfig:
    """
    Return an official preset, optionally with overrides.

    Overrides are ``{section: {field: value}}``; lists become tuples.
    """
    cfg = preset(name)
    if not overrides_json:
        return cfg
    sections = {}
    for section, fields in json.loads(overrides_json).items():
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        sections[section] = dataclasses.replace(getattr(cfg, section), **values)
    return dataclasses.replace(cfg, **sections)


def synthetic_lidar2img(image_hw: tuple[int, int]) -> np.ndarray:
    """
    Return [6, 4, 4] float64 LiDAR -> pixel matrices of a nuScenes-like ring.

    LiDAR axes: x right, y forward, z up.
    """
    height, width = image_hw
    focal = 1266.0 * width / 1600.0
    K = np.array(
        [
            [focal, 0.0, width / 2.0, 0.0],
            [0.0, focal, height / 2.0, 0.0],
            [0, 0, 1, 0],
            [0, 0, 0, 1],
        ]
    )
    mats = []
    for yaw in np.deg2rad(RING_YAW_DEG):
        # Camera axes (x right, y down, z forward) as columns in the LiDAR frame.
        cam2lidar = np.array(
            [[np.cos(yaw), 0.0, -np.sin(yaw)], [np.sin(yaw), 0.0, np.cos(yaw)], [0, -1.0, 0]]
        )
        lidar2cam = np.eye(4)
        lidar2cam[:3, :3] = cam2lidar.T
        # mounted 0.5 m ahead, 0.3 m lower
        lidar2cam[:3, 3] = -cam2lidar.T @ np.array([0.0, 0.5, -0.3])
        mats.append(K @ lidar2cam)
    return np.stack(mats)  # [6, 4, 4]


class Clock:
    """
    Named timestamps: CUDA events on a GPU, perf_counter on the CPU.

    CUDA events are read after one synchronisation.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == 'cuda'
        self.marks: dict[str, Any] = {}

    def mark(self, name: str) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks[name] = event
        else:
            self.marks[name] = time.perf_counter()

    def ms(self, start: str, end: str) -> float:
        if self.cuda:
            return self.marks[start].elapsed_time(self.marks[end])
        return (self.marks[end] - self.marks[start]) * 1e3


@contextlib.contextmanager
def stage_marks(model: BEVFormer, clock: Clock) -> Iterator[None]:
    """Mark stage boundaries from forward (pre-)hooks on the detector's submodules."""
    encoder = model.pts_bbox_head.transformer.encoder
    handles = [
        model.img_backbone.register_forward_pre_hook(lambda *_: clock.mark('backbone_start')),
        model.img_neck.register_forward_hook(lambda *_: clock.mark('neck_end')),
        model.pts_bbox_head.register_forward_pre_hook(lambda *_: clock.mark('head_start')),
        encoder.register_forward_pre_hook(lambda *_: clock.mark('encoder_start')),
        encoder.register_forward_hook(lambda *_: clock.mark('encoder_end')),
        model.pts_bbox_head.register_forward_hook(lambda *_: clock.mark('head_end')),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def stage_times(clock: Clock) -> dict[str, float]:
    head = clock.ms('head_start', 'head_end')
    encoder = clock.ms('encoder_start', 'encoder_end')
    return {
        'preprocess': clock.ms('start', 'preprocessed'),
        'backbone+neck': clock.ms('backbone_start', 'neck_end'),
        'encoder': encoder,
        'decoder+head': head - encoder,
        'decode': clock.ms('head_end', 'decoded'),
        'total': clock.ms('start', 'decoded'),
    }


# ---- analytic FLOPs
# -------------------------------------------------------------------------------


def _stage_of(name: str) -> str:
    if name.startswith(('img_backbone', 'img_neck')):
        return 'backbone+neck'
    if name.startswith('pts_bbox_head.transformer.encoder'):
        return 'encoder'
    return 'decoder+head'


def _conv_flops(module: nn.Conv2d, output: torch.Tensor) -> float:
    kh, kw = module.kernel_size
    return 2.0 * output.numel() * (module.in_channels // module.groups) * kh * kw


def _dcn_flops(module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> float:
    c_out, c_in_per_group, kh, kw = module.weight.shape
    taps = output.numel() // c_out * kh * kw  # (N * Ho * Wo) * K
    return 2.0 * output.numel() * c_in_per_group * kh * kw + 8.0 * x.shape[1] * taps


def _mha_flops(module: nn.MultiheadAttention, args: tuple, kwargs: dict) -> float:
    query = args[0] if args else kwargs['query']
    key = args[1] if len(args) > 1 else kwargs['key']
    E = module.embed_dim
    # Batch-first [B, L, E] or sequence-first [L, B, E]: only the products matter.
    if module.batch_first:
        B, L, S = query.shape[0], query.shape[1], key.shape[1]
    else:
        B, L, S = query.shape[1], query.shape[0], key.shape[0]
    projections = 2.0 * B * (L * E * E + 2 * S * E * E + L * E * E)  # q, k, v, out
    return projections + 2.0 * 2 * B * L * S * E  # q k^T and attn v


@contextlib.contextmanager
def count_flops(model: nn.Module) -> Iterator[dict[str, float]]:
    """Accumulate analytic FLOPs per stage (see the module docstring) while the block runs."""
    flops: dict[str, float] = defaultdict(float)
    handles = []

    def add(
        stage: str, fn: Callable[..., float], with_kwargs: bool = False
    ) -> Callable[..., None]:
        if with_kwargs:
            return lambda m, args, kwargs, out: flops.__setitem__(
                stage, flops[stage] + fn(m, args, kwargs)
            )
        return lambda m, args, out: flops.__setitem__(stage, flops[stage] + fn(m, args, out))

    for name, module in model.named_modules():
        stage = _stage_of(name)
        if isinstance(module, nn.Conv2d):
            hook = add(stage, lambda m, args, out: _conv_flops(m, out))
        elif isinstance(module, nn.Linear):
            hook = add(stage, lambda m, args, out: 2.0 * out.numel() * m.in_features)
        elif isinstance(module, nn.MultiheadAttention):
            handles.append(
                module.register_forward_hook(add(stage, _mha_flops, True), with_kwargs=True)
            )
            continue
        elif hasattr(module, 'conv_offset') and isinstance(
            getattr(module, 'weight', None), torch.Tensor
        ):
            hook = add(stage, lambda m, args, out: _dcn_flops(m, args[0], out))
        else:
            if hasattr(module, 'sampling_offsets') and hasattr(module, 'value_proj'):
                head_dim = module.value_proj.out_features // module.num_heads
                sample = add(stage, lambda m, args, out, d=head_dim: 9.0 * d * out.numel() / 2)
                handles.append(module.sampling_offsets.register_forward_hook(sample))
            continue
        handles.append(module.register_forward_hook(hook))
    try:
        yield flops
    finally:
        for handle in handles:
            handle.remove()


# ---- the benchmark
# --------------------------------------------------------------------------------


def _peak_memory_mb(device: torch.device) -> tuple[float, str]:
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20, 'torch.cuda.max_memory_allocated'
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return rss_kb / 1024.0, 'process peak RSS (ru_maxrss)'


def _device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return (
        f'{platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)'
    )


def run_frame(
    model: BEVFormer,
    pre: ImagePreprocessor,
    cfg: BEVFormerConfig,
    images: torch.Tensor,
    lidar2img: torch.Tensor,
    temporal: TemporalState,
    frame: int,
    autocast: contextlib.AbstractContextManager,
    clock: Clock,
) -> int:
    """One drive frame through every stage; returns the number of decoded boxes."""
    device = images.device
    yaw = math.radians(0.5 * frame)  # a gentle left turn at ~5 m/s (10 Hz)
    can_bus_abs = can_bus_from_pose(
        [0.5 * frame, 0.02 * frame**2, 0.0], [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
    )
    step = temporal.step(can_bus_abs, scene_token='bench')
    can_bus = torch.from_numpy(step.can_bus)[None].to(device)  # [1, 18] float64
    clock.mark('start')
    inputs = pre(images)
    clock.mark('preprocessed')
    with autocast:
        out = model(inputs.img[None], lidar2img, inputs.img_shape, can_bus, step.prev_bev)
    detections = decode_boxes(
        out['all_cls_scores'][-1, 0].float(), out['all_bbox_preds'][-1, 0].float(), cfg
    )
    clock.mark('decoded')
    temporal.update(out['bev_embed'])
    return int(detections.scores.numel())


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
    cfg = build_config(args.preset, args.config_json)
    print(f'bench_model: building {args.preset} on {device}', file=sys.stderr, flush=True)
    built = build_detector(cfg, device, args.checkpoint or '', seed=0)
    model, cfg = built.model, built.cfg  # a trained checkpoint's stored architecture wins
    image_hw = tuple(args.image_hw) if args.image_hw else tuple(cfg.image.input_hw)
    pre = ImagePreprocessor.from_config(cfg.image, exact=not args.fast_preprocess)
    num_cams = cfg.head.num_cams
    gen = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(
        0, 256, (num_cams, *image_hw, 3), dtype=torch.uint8, device=device, generator=gen
    )
    lidar2img = torch.as_tensor(pre.scale_lidar2img(synthetic_lidar2img(image_hw)[:num_cams]))
    lidar2img = lidar2img[None].to(device)  # [1, N, 4, 4] float64
    autocast = (
        torch.autocast(device.type, dtype=DTYPES[args.precision])
        if args.precision != 'fp32'
        else contextlib.nullcontext()
    )
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)

    temporal, clock, per_frame, flops, boxes = TemporalState(), Clock(device), [], {}, 0
    # stderr: the table or JSON on stdout stays clean; frame 0 also counts FLOPs (slower)
    bar = Progress(args.warmup + args.iters, 'bench_model', 'frames')
    with torch.inference_mode(), stage_marks(model, clock):
        for frame in range(args.warmup + args.iters):
            counter = count_flops(model) if frame == 0 else contextlib.nullcontext({})
            with counter as counted:
                boxes = run_frame(
                    model, pre, cfg, images, lidar2img, temporal, frame, autocast, clock
                )
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            flops = dict(counted) if frame == 0 else flops
            if frame >= args.warmup:
                per_frame.append(stage_times(clock))
            kind = 'warm-up' if frame < args.warmup else 'timed'
            bar.update(1, f'{kind} frame {clock.ms("start", "decoded"):.0f} ms')
        bar.close()
        ops = []
        if args.ops > 0:
            frame = args.warmup + args.iters
            ops = operator_profile(
                lambda: run_frame(
                    model, pre, cfg, images, lidar2img, temporal, frame, autocast, clock
                ),
                device,
                args.ops,
            )
    result = _summarise(args, cfg, model, device, image_hw, pre, per_frame, flops, boxes)
    return {**result, 'ops': ops}


def operator_profile(
    run: Callable[[], Any], device: torch.device, top: int
) -> list[dict[str, Any]]:
    """
    Profile one call of `run`; the `top` operators by own time on `device`, largest first.

    Each: op (aten name), self_ms (own time, children excluded, all calls), calls, share (of
    the sum over all operators: where a frame's time goes, not a timing).
    """
    from torch.profiler import profile, ProfilerActivity

    cuda = device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        run()
        if cuda:
            torch.cuda.synchronize(device)
    # torch >= 2.4 names the CUDA time 'device' time
    key = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    events = [e for e in prof.key_averages() if getattr(e, key, 0) > 0]
    total_us = sum(getattr(e, key) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    return [
        {
            'op': e.key,
            'self_ms': getattr(e, key) / 1e3,
            'calls': int(e.count),
            'share': getattr(e, key) / total_us,
        }
        for e in events[:top]
    ]


def _summarise(
    args: argparse.Namespace,
    cfg: BEVFormerConfig,
    model: nn.Module,
    device: torch.device,
    image_hw: tuple[int, int],
    pre: ImagePreprocessor,
    per_frame: list[dict[str, float]],
    flops: dict[str, float],
    boxes: int,
) -> dict[str, Any]:
    stages_ms = {k: statistics.median(f[k] for f in per_frame) for k in (*STAGES, 'total')}
    model_ms = sum(stages_ms[k] for k in MODEL_STAGES)
    total_flops = sum(flops.get(k, 0.0) for k in MODEL_STAGES)
    peak_mb, peak_kind = _peak_memory_mb(device)
    return {
        'preset': args.preset,
        # --config-json, or the architecture stored in a trained --checkpoint
        'custom_config': bool(args.config_json) or cfg != preset(args.preset),
        'device': str(device),
        'device_name': _device_name(device),
        'precision': f'{args.precision} (torch.autocast)'
        if args.precision != 'fp32'
        else ('fp32 + TF32' if args.tf32 else 'fp32'),
        'torch': torch.__version__,
        'num_cams': cfg.head.num_cams,
        'image_hw': list(image_hw),
        'network_input_hw': list(pre.output_shapes(*image_hw)[1]),
        'bev_hw': [cfg.head.bev_h, cfg.head.bev_w],
        'iters': args.iters,
        'warmup': args.warmup,
        'parameters': sum(p.numel() for p in model.parameters()),
        'stages_ms': stages_ms,
        'stages_ms_min': {k: min(f[k] for f in per_frame) for k in (*STAGES, 'total')},
        'gflop': {
            **{k: flops.get(k, 0.0) / 1e9 for k in MODEL_STAGES},
            'model': total_flops / 1e9,
        },
        'gflop_per_s': {
            **{k: flops.get(k, 0.0) / 1e6 / max(stages_ms[k], 1e-9) for k in MODEL_STAGES},
            'model': total_flops / 1e6 / max(model_ms, 1e-9),
        },
        'peak_memory_mb': peak_mb,
        'peak_memory_kind': peak_kind,
        'decoded_boxes': boxes,
    }


def format_table(result: dict[str, Any]) -> str:
    h, w = result['image_hw']
    hp, wp = result['network_input_hw']
    lines = [
        f'bench_model: preset {result["preset"]}'
        f'{" (custom config)" if result["custom_config"] else ""}, '
        f'{result["device"]} [{result["device_name"]}], {result["precision"]}, '
        f'torch {result["torch"]}',
        f'  {result["num_cams"]} cameras {w}x{h} uint8 -> {wp}x{hp}, BEV {result["bev_hw"][0]}x'
        f'{result["bev_hw"][1]}, {result["parameters"] / 1e6:.1f} M parameters, '
        f'{result["iters"]} timed frames after {result["warmup"]} warm-up',
        f'  {"stage":<14}{"median ms":>11}{"min ms":>10}{"GFLOP":>10}{"GFLOP/s":>10}',
    ]
    for stage in (*STAGES, 'total'):
        gflop = result['gflop'].get(stage if stage != 'total' else 'model')
        rate = result['gflop_per_s'].get(stage if stage != 'total' else 'model')
        extra = f'{gflop:>10.1f}{rate:>10.1f}' if gflop is not None else ''
        lines.append(
            f'  {stage:<14}{result["stages_ms"][stage]:>11.1f}'
            f'{result["stages_ms_min"][stage]:>10.1f}{extra}'
        )
    lines.append('  (total GFLOP/s = model FLOPs / (backbone+neck + encoder + decoder+head) time)')
    lines.append(
        f'  peak memory: {result["peak_memory_mb"]:.0f} MiB ({result["peak_memory_kind"]})'
    )
    if result.get('ops'):
        lines.append(f'  operators by own {result["device"]} time, one profiled frame:')
        lines.append(f'  {"operator":<44}{"self ms":>10}{"calls":>8}{"share":>8}')
        lines += [
            f'  {op["op"][:43]:<44}{op["self_ms"]:>10.2f}{op["calls"]:>8}{op["share"]:>8.1%}'
            for op in result['ops']
        ]
    return '\n'.join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare:
        return compare_main(args)
    try:
        result = run_benchmark(args)
    except (ValueError, json.JSONDecodeError, FileNotFoundError) as err:
        print(f'bench_model: {err}', file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def compare_main(args: argparse.Namespace) -> int:
    """Run the --compare mode (tools/bench_compare.py) and print its table or JSON lines."""
    from bevformer_ros.tools.bench_compare import format_compare, run_compare

    try:
        cfg = build_config(args.preset, args.config_json)
        results = run_compare(args, cfg, synthetic_lidar2img)
    except (ValueError, OSError, json.JSONDecodeError) as err:
        print(f'bench_model: {err}', file=sys.stderr)
        return 2
    if args.json:
        print('\n'.join(json.dumps(r) for r in results))
    else:
        print(format_compare(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())

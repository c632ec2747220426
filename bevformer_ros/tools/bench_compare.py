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
The ``--compare`` mode of bench_model: the full model on several backends, interleaved in one run.

    python -m bevformer_ros.tools.bench_model --compare eager:fp32 torch:fp32 openvino:bf16

Each entry is ``BACKEND[:PRECISION[:HEAD_PRECISION]]`` (precision default fp32):

* ``eager``: the plain torch detector (today's path; autocast for bf16 / fp16);
* ``torch``: the fast torch engine (model.engines.torch_engine); a head precision is allowed here
  only, e.g. ``torch:bf16:fp32`` = bf16 backbone + neck, fp32 BEV head;
* ``torch-compile``: the same in static mode with the whole frame through torch.compile
  (COMPILE_MODE; slow first calls);
* anything else (openvino, onnxruntime, tensorrt): an exported graph through
  model.engines.factory, exported or taken from the engine cache.

An entry that cannot be built or fails at run time is reported as not available with the reason;
the others still run. All entries see the same inputs: the preset's six synthetic images after
preprocessing (not timed), a frame with history (the ``prev_bev`` the first entry computed for the
frame before) and a small ego motion. Rounds are interleaved (one frame of each entry per round) so
that load on a shared machine hits every entry alike. Speedups and max abs differences are against
the first entry; logits and boxes are compared on the last decoder layer (what gets decoded).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import contextlib
import dataclasses
import math
import statistics
import sys
import time
from typing import Any

from bevformer_ros.core.temporal import can_bus_from_pose, TemporalState
from bevformer_ros.model.build import build_detector, BuiltModel
from bevformer_ros.model.engines.cpu_features import bf16_features
from bevformer_ros.model.engines.torch_engine import check_precision, DTYPES, TorchEngine
from bevformer_ros.model.preprocess import ImagePreprocessor
import torch

Engine = Callable[..., dict[str, torch.Tensor]]
DIFF_KEYS = (('bev', 'bev_embed'), ('cls', 'all_cls_scores'), ('box', 'all_bbox_preds'))
# torch-compile entries: inductor kernels with its own CUDA graphs (max-autotune tunes for minutes)
COMPILE_MODE = 'reduce-overhead'


@dataclasses.dataclass
class Entry:
    """One backend:precision of the comparison and what was measured for it."""

    backend: str
    precision: str
    head_precision: str | None = None  # torch engine only: the BEV head's precision
    engine: Engine | None = None
    reason: str = ''  # why it is not available
    description: str = ''
    times: list[float] = dataclasses.field(default_factory=list)
    outputs: dict[str, torch.Tensor] | None = None

    @property
    def name(self) -> str:
        """Return the entry as written on the command line, e.g. torch:bf16:fp32."""
        head = f':{self.head_precision}' if self.head_precision else ''
        return f'{self.backend}:{self.precision}{head}'


class EagerEngine:
    """The plain detector as the node runs it today: eager torch, autocast for bf16/fp16."""

    def __init__(self, model: torch.nn.Module, precision: str, device: torch.device) -> None:
        check_precision(precision, device)
        self.model, self.dtype, self.device = model, DTYPES[precision], device
        self.description = f'eager torch {precision}'

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype
                    else contextlib.nullcontext())
        with torch.no_grad(), autocast:
            out = self.model(*args, **kwargs)
        return {k: v.float() for k, v in out.items() if v.is_floating_point()}


def parse_entry(spec: str) -> Entry:
    """Turn 'backend[:precision[:head_precision]]' into an Entry (precision fp32 when left out)."""
    backend, _, rest = spec.lower().partition(':')
    precision, _, head = rest.partition(':')
    return Entry(backend.strip(), (precision or 'fp32').strip(), head.strip() or None)


def progress(message: str, started: float) -> None:
    """Print a progress line on stderr, so that nobody waits minutes in silence."""
    print(f'bench_model [{time.perf_counter() - started:6.1f} s] {message}', file=sys.stderr,
          flush=True)


def _exported_engine(entry: Entry, built: BuiltModel, img_shape: tuple[int, int],
                     say: Callable[[str], None]) -> Engine:
    """Return an engine of an exported graph (engines.factory), exported or cached."""
    from bevformer_ros.model.engines.factory import create_engine

    return create_engine(entry.backend, built.model, built.cfg, img_shape, built.cfg.head.num_cams,
                         built.device, entry.precision, checkpoint=built.checkpoint,
                         progress=say)


def make_engine(entry: Entry, built: BuiltModel, img_shape: tuple[int, int],
                say: Callable[[str], None] = lambda _msg: None) -> None:
    """Build the entry's engine for images of img_shape, or record why it is not available."""
    try:
        if entry.backend == 'eager':
            entry.engine = EagerEngine(built.model, entry.precision, built.device)
        elif entry.backend in ('torch', 'torch-compile'):
            compiled = entry.backend == 'torch-compile'
            entry.engine = TorchEngine(built.model, entry.precision, entry.head_precision,
                                       static=True if compiled else None,
                                       compile_mode=COMPILE_MODE if compiled else None)
        elif entry.head_precision:
            raise ValueError('a separate head precision is a torch-engine option only')
        else:
            entry.engine = _exported_engine(entry, built, img_shape, say)
    except (ImportError, ValueError, RuntimeError, OSError, NotImplementedError) as err:
        entry.reason = f'{type(err).__name__}: {err}'.splitlines()[0]
        return
    describe = getattr(entry.engine, 'describe', None)
    entry.description = describe() if callable(describe) else getattr(
        entry.engine, 'description', f'{entry.backend} {entry.precision}')


@dataclasses.dataclass(frozen=True)
class Inputs:
    """One frame with history, identical for every entry."""

    img: torch.Tensor  # [1, N, 3, H, W] normalised, padded
    lidar2img: torch.Tensor  # [1, N, 4, 4] float64
    img_shape: tuple[int, int]
    can_bus: torch.Tensor  # [1, 18] float64, CPU
    prev_bev: torch.Tensor | None  # [HW, 1, C]

    def args(self) -> tuple[Any, ...]:
        return self.img, self.lidar2img, self.img_shape, self.can_bus, self.prev_bev


def _can_bus(frame: int) -> Any:
    yaw = math.radians(0.5 * frame)  # a gentle left turn at ~5 m/s (10 Hz), as in the stage mode
    return can_bus_from_pose([0.5 * frame, 0.02 * frame**2, 0.0],
                             [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])


def first_frame(built: BuiltModel, image_hw: tuple[int, int], lidar2img_fn: Callable) -> Inputs:
    """Preprocess synthetic images: a first frame (no history) for a nuScenes-like ring."""
    cfg, device = built.cfg, built.device
    pre = ImagePreprocessor.from_config(cfg.image, exact=False)
    num_cams = cfg.head.num_cams
    gen = torch.Generator(device='cpu').manual_seed(0)
    images = torch.randint(0, 256, (num_cams, *image_hw, 3), dtype=torch.uint8, generator=gen)
    inputs = pre(images.to(device))
    lidar2img = torch.as_tensor(pre.scale_lidar2img(lidar2img_fn(image_hw)[:num_cams]))
    lidar2img = lidar2img[None].to(device)  # [1, N, 4, 4] float64
    step = TemporalState().step(_can_bus(0), scene_token='bench')
    return Inputs(inputs.img[None], lidar2img, tuple(inputs.img_shape),
                  torch.from_numpy(step.can_bus)[None], None)


def with_history(first: Inputs, reference: Engine) -> Inputs:
    """Return the next frame: prev_bev by reference on `first`, after a small ego motion."""
    temporal = TemporalState()
    temporal.step(_can_bus(0), scene_token='bench')
    temporal.update(reference(*first.args())['bev_embed'])
    step = temporal.step(_can_bus(1), scene_token='bench')
    return dataclasses.replace(first, can_bus=torch.from_numpy(step.can_bus)[None],
                               prev_bev=step.prev_bev)


def _timed(engine: Engine, inputs: Inputs, device: torch.device) -> tuple[float, dict]:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = engine(*inputs.args())
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def max_abs_diffs(out: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> dict[str, float]:
    """Max abs difference of bev_embed and of the last decoder layer's logits and boxes."""
    diffs = {}
    for short, key in DIFF_KEYS:
        a, b = out[key].float().cpu(), ref[key].float().cpu()
        if key != 'bev_embed':
            a, b = a[-1], b[-1]  # [B, Q, *]: the layer that is decoded
        diffs[short] = float((a - b).abs().max())
    return diffs


def _warm(entries: list[Entry], inputs: Inputs, warmup: int, device: torch.device,
          started: float) -> None:
    """Warm every available entry (first calls capture, compile, tune); keep its outputs."""
    for entry in entries:
        if entry.engine is None:
            continue
        for i in range(max(warmup, 1)):
            progress(f'warming {entry.name} ({i + 1}/{max(warmup, 1)})', started)
            try:
                seconds, entry.outputs = _timed(entry.engine, inputs, device)
            except Exception as err:  # a backend failing at run time is a result, not a crash
                reason = f'failed at run time: {type(err).__name__}: {err}'
                entry.engine, entry.reason = None, reason.splitlines()[0]
                break
        if entry.engine is not None:
            progress(f'  {entry.name} warm, last {seconds:.3f} s', started)


def run_compare(
    args: argparse.Namespace, cfg: Any, lidar2img_fn: Callable
) -> list[dict[str, Any]]:
    """Build, warm and time every entry of ``args.compare``; one result dict per entry."""
    started = time.perf_counter()
    device = torch.device(args.device)
    if device.type == 'cuda':  # as in the stage mode: no TF32 unless asked, tuned conv algorithms
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cudnn.benchmark = True
    entries = [parse_entry(spec) for spec in args.compare]
    weights = f'from {args.checkpoint}' if args.checkpoint else '(random weights)'
    progress(f'building the {args.preset} detector on {device} {weights}', started)
    built = build_detector(cfg, device, args.checkpoint or '', seed=0)
    image_hw = tuple(args.image_hw) if args.image_hw else tuple(built.cfg.image.input_hw)
    progress(f'preprocessing {image_hw[1]}x{image_hw[0]} images', started)
    inputs = first_frame(built, image_hw, lidar2img_fn)
    for entry in entries:
        progress(f'building engine {entry.name}', started)
        make_engine(entry, built, inputs.img_shape, lambda msg: progress(f'  {msg}', started))
        if entry.engine is None:
            progress(f'  not available: {entry.reason}', started)
    reference = next((e.engine for e in entries if e.engine is not None), None)
    if reference is not None and not args.no_history:
        progress('the previous frame (history) with the first available entry', started)
        inputs = with_history(inputs, reference)
    _warm(entries, inputs, args.warmup, device, started)
    for round_index in range(args.iters):
        for entry in entries:
            if entry.engine is not None:
                seconds, _ = _timed(entry.engine, inputs, device)
                entry.times.append(seconds)
        line = ', '.join(f'{e.name} {e.times[-1]:.3f} s' for e in entries if e.times)
        progress(f'round {round_index + 1}/{args.iters}: {line}', started)
    return summarise(entries, args, built, image_hw, inputs)


def _head_precision(entry: Entry) -> str | None:
    """Return the precision the engine runs its head in (None when it is not available)."""
    if entry.engine is None:
        return None
    return getattr(entry.engine, 'head_precision', None) or entry.head_precision or entry.precision


def summarise(entries: list[Entry], args: argparse.Namespace, built: BuiltModel,
              image_hw: tuple[int, int], inputs: Inputs) -> list[dict[str, Any]]:
    """One dict per entry: median, speedup and max abs diffs against the first entry."""
    first = entries[0]
    base = statistics.median(first.times) if first.times else None
    common = {
        'preset': args.preset, 'device': str(built.device),
        'cpu_features': bf16_features() or ['none'],
        'torch_threads': torch.get_num_threads(), 'image_hw': list(image_hw),
        'network_input_hw': list(inputs.img.shape[-2:]), 'history': inputs.prev_bev is not None,
        'checkpoint': str(built.checkpoint) if built.checkpoint else None, 'rounds': args.iters,
    }
    results = []
    for entry in entries:
        median = statistics.median(entry.times) if entry.times else None
        diffs = (max_abs_diffs(entry.outputs, first.outputs)
                 if entry.outputs is not None and first.outputs is not None else None)
        results.append({
            'backend': entry.backend, 'precision': entry.precision,
            'head_precision': _head_precision(entry),
            'available': entry.engine is not None, 'reason': entry.reason or None,
            'engine': entry.description, 'median_s': median,
            'min_s': min(entry.times) if entry.times else None,
            'speedup': base / median if base and median else None,
            'max_abs_diff': diffs, **common,
        })
    return results


def _num(value: float | None, fmt: str) -> str:
    return format(value, fmt) if value is not None else '-'


def format_compare(results: list[dict[str, Any]]) -> str:
    """Render the comparison as a plain-text table."""
    r0 = results[0]
    (h, w), (hp, wp) = r0['image_hw'], r0['network_input_hw']
    lines = [
        f"bench_model --compare: preset {r0['preset']}, {r0['device']}, {w}x{h} -> {wp}x{hp}, "
        f"{'with' if r0['history'] else 'without'} history, {r0['rounds']} interleaved rounds, "
        f"{r0['torch_threads']} torch threads, CPU bf16: {', '.join(r0['cpu_features'])}",
        f"  weights: {r0['checkpoint'] or 'random'}; speedup and max abs diff vs "
        f"{r0['backend']}:{r0['precision']} (logits and boxes: last decoder layer)",
        f"  {'backend':<12}{'precision':<10}{'median s':>9}{'min s':>8}{'speedup':>9}"
        f"{'|d bev|':>10}{'|d cls|':>10}{'|d box|':>10}  engine",
    ]
    for r in results:
        head = r['head_precision']
        label = r['precision'] if head in (None, r['precision']) else f"{r['precision']}/{head}"
        if not r['available']:
            lines.append(f"  {r['backend']:<12}{label:<10}  not available: {r['reason']}")
            continue
        d = r['max_abs_diff'] or {}
        lines.append(
            f"  {r['backend']:<12}{label:<10}{_num(r['median_s'], '.3f'):>9}"
            f"{_num(r['min_s'], '.3f'):>8}"
            f"{_num(r['speedup'], '.2f') + 'x':>9}{_num(d.get('bev'), '.2e'):>10}"
            f"{_num(d.get('cls'), '.2e'):>10}{_num(d.get('box'), '.2e'):>10}  {r['engine']}")
    return '\n'.join(lines)

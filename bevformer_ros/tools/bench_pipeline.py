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
Benchmark the node's frame path without ROS: six images as bytes in, marker content out.

    python -m bevformer_ros.tools.bench_pipeline --preset tiny --frames 30
    python -m bevformer_ros.tools.bench_pipeline --preset base --device cuda
        --precision fp16 --json base.json

Each frame goes through exactly what the node's worker runs (`Pipeline.run`: decode -> lidar2img ->
upload uint8 + preprocess on the device -> temporal step -> model -> decode boxes) plus marker
building; only DDS is missing. Frames are 12 Hz apart with the ego driving, so the temporal path
(prev_bev, shift, rotation) is exercised. The bare model forward on the same inputs is timed
afterwards for the ratio. Random weights (seeded) unless --checkpoint: the timing does not depend
on them. No rclpy import: the GPU machine has no ROS.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
import sys
import time
from typing import Any

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS, NodeConfig
from bevformer_ros.core.ego_motion import EgoPose
from bevformer_ros.core.markers import build_box_markers
from bevformer_ros.core.progress import Progress
from bevformer_ros.core.rig import load_rig
from bevformer_ros.core.stamps import NS_PER_S
from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
from bevformer_ros.model.small_model import SMALL_MODEL_PARAMETERS
from bevformer_ros.pipeline import CameraInput, FrameSet, Pipeline
from bevformer_ros.resources import config_file
import numpy as np
import torch


def node_parameters(
    preset: str, device: str, precision: str, checkpoint: str, backend: str = 'torch'
) -> dict[str, Any]:
    """Node parameters of a benchmark run; preset 'small-test' is the seconds-fast test model."""
    params = dict(SMALL_MODEL_PARAMETERS) if preset == 'small-test' else {'model.preset': preset}
    params.update(
        {
            'model.device': device,
            'model.precision': precision,
            'model.backend': backend,
            'model.checkpoint': checkpoint,
        }
    )
    return params


def synthetic_frames(
    config: NodeConfig,
    width: int,
    height: int,
    count: int,
    rate_hz: float,
    encoding: str = 'rgb8',
    seed: int = 0,
) -> list[FrameSet]:
    """
    Return `count` frame sets of six random images with nuScenes calibration.

    Images are bytes, like rclpy messages.
    """
    rig = load_rig(config_file(config.calibration.rig_yaml))
    rng = np.random.default_rng(seed)
    pixels = [
        rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in config.cameras.names
    ]
    cameras = []
    for name, image in zip(config.cameras.names, pixels):
        cam = rig.camera(name)
        K = np.diag([width / cam.image_size[0], height / cam.image_size[1], 1.0]) @ cam.K
        cameras.append(
            CameraInput(
                image_msg(image, encoding, name),
                camera_info_msg(K, width, height, name),
                cam.sensor2lidar,
            )
        )
    frames = []
    for i in range(count):
        t = i / rate_hz
        yaw = 0.05 * t  # 5 m/s on a gentle left curve
        pose = EgoPose(
            round(t * NS_PER_S),
            np.array([100 * np.sin(yaw), 100 * (1 - np.cos(yaw)), 0.0]),
            np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]),
            velocity=np.array([5.0, 0, 0]),
        )
        frames.append(FrameSet(round((1000 + t) * NS_PER_S), cameras, pose))
    return frames


def run_frames(
    pipeline: Pipeline, frames: Sequence[FrameSet], class_names: Sequence[str]
) -> list[dict]:
    """Per-frame stage timings (seconds), including marker building as the node does it."""
    records = []
    bar = Progress(len(frames), 'bench_pipeline', 'frames')  # stderr: the report stays clean
    for frame in frames:
        started = time.perf_counter()
        result = pipeline.run(frame, want_bev=True)
        marker_start = time.perf_counter()
        build_box_markers(result.boxes, result.scores, result.labels, 0.3, 100, class_names)
        now = time.perf_counter()
        records.append(dict(result.timings, markers=now - marker_start, total=now - started))
        bar.update(1, f'{records[-1]["total"] * 1e3:.0f} ms')
    bar.close()
    return records


def time_model_forward(
    pipeline: Pipeline, frame: FrameSet, iterations: int, warmup: int = 2, period_s: float = 0.0
) -> list[float]:
    """
    Time the bare `BEVFormer.forward` on this frame's inputs.

    No decode, preprocess or history bookkeeping. With `period_s` each forward starts a period
    after the previous one, idle in between as in a node fed at that rate (on a shared 2-core VM
    that alone made the forward 20 % slower than back to back: cold caches, sleeping threads).
    """
    inputs = pipeline.prepare(frame)
    can_bus = torch.zeros(1, 18, dtype=torch.float64, device=pipeline.device)
    prev_bev = pipeline.state.prev_bev  # the history of the last run() frame, as in steady state
    sync = torch.cuda.synchronize if pipeline.device.type == 'cuda' else (lambda: None)
    times = []
    started = time.perf_counter()
    for i in range(warmup + iterations):
        if period_s > 0 and i > 0:
            time.sleep(max(0.0, started + period_s - time.perf_counter()))
        sync()
        started = time.perf_counter()
        pipeline.forward(inputs, can_bus, prev_bev)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return times


def summarize(records: Sequence[dict]) -> dict[str, dict[str, float]]:
    stages = records[0].keys()
    return {
        s: {
            'median_ms': float(np.median([r[s] for r in records]) * 1e3),
            'p95_ms': float(np.percentile([r[s] for r in records], 95) * 1e3),
        }
        for s in stages
    }


def benchmark(
    preset: str,
    device: str = 'auto',
    precision: str = 'fp32',
    checkpoint: str = '',
    frames: int = 20,
    warmup: int = 3,
    width: int = 1600,
    height: int = 900,
    encoding: str = 'rgb8',
    backend: str = 'torch',
) -> dict[str, Any]:
    config = NodeConfig.from_parameters(
        node_parameters(preset, device, precision, checkpoint, backend)
    )
    started = time.perf_counter()
    pipeline = Pipeline.from_settings(config)
    load_s = time.perf_counter() - started
    torch_device, cfg = pipeline.device, pipeline.cfg
    sets = synthetic_frames(
        config, width, height, warmup + frames, rate_hz=12.0, encoding=encoding
    )
    if torch_device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(torch_device)
    records = run_frames(pipeline, sets, cfg.class_names)[warmup:]
    forward = time_model_forward(pipeline, sets[-1], iterations=max(frames // 2, 3))
    summary = summarize(records)
    model_ms = float(np.median(forward) * 1e3)
    report = {
        'preset': preset,
        'device': str(torch_device),
        'backend': backend,
        'precision': precision,
        'images': f'6x{width}x{height}',
        'encoding': encoding,
        'frames': frames,
        'model_load_s': load_s,
        'stages': summary,
        'bare_forward_median_ms': model_ms,
        'pipeline_over_forward': summary['total']['median_ms'] / model_ms,
        'pipeline_fps': 1e3 / summary['total']['median_ms'],
        'torch': torch.__version__,
    }
    if torch_device.type == 'cuda':
        report['gpu'] = torch.cuda.get_device_name(torch_device)
        report['peak_gpu_memory_mib'] = torch.cuda.max_memory_allocated(torch_device) / 2**20
    return report


def print_report(report: dict[str, Any]) -> None:
    head = (
        f'{report["preset"]} on {report.get("gpu", report["device"])} '
        f'({report["backend"]} {report["precision"]}), {report["images"]} {report["encoding"]}, '
        f'{report["frames"]} frames'
    )
    print(head)
    for stage, s in report['stages'].items():
        print(f'  {stage:<12} median {s["median_ms"]:8.1f} ms   p95 {s["p95_ms"]:8.1f} ms')
    print(
        f'  bare model forward median {report["bare_forward_median_ms"]:.1f} ms; '
        'pipeline / forward = '
        f'{report["pipeline_over_forward"]:.2f}; pipeline {report["pipeline_fps"]:.1f} frames/s'
    )
    if 'peak_gpu_memory_mib' in report:
        print(f'  peak GPU memory {report["peak_gpu_memory_mib"]:.0f} MiB')


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument(
        '--preset',
        nargs='+',
        default=['tiny'],
        choices=['tiny', 'small', 'base', 'small-test'],
        help="one or more presets; 'small-test' is the toy model of the tests",
    )
    parser.add_argument('--device', default='auto')
    parser.add_argument(
        '--backend', default='torch', choices=ENGINE_BACKENDS, help='model.backend (default torch)'
    )
    parser.add_argument(
        '--precision', default='fp32', choices=ENGINE_PRECISIONS, help='model.precision'
    )
    parser.add_argument('--checkpoint', default='')
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--width', type=int, default=1600)
    parser.add_argument('--height', type=int, default=900)
    parser.add_argument('--encoding', choices=['rgb8', 'bgr8'], default='rgb8')
    parser.add_argument('--json', help='also write the reports (a list) to this file')
    args = parser.parse_args(argv)
    reports, failed = [], []
    for preset in args.preset:
        width, height = (160, 90) if preset == 'small-test' else (args.width, args.height)
        try:
            reports.append(
                benchmark(
                    preset,
                    args.device,
                    args.precision,
                    args.checkpoint,
                    args.frames,
                    args.warmup,
                    width,
                    height,
                    args.encoding,
                    args.backend,
                )
            )
        # one preset failing (e.g. out of memory) must not hide the others' figures
        except Exception as exc:
            print(f'{preset}: FAILED: {exc!r}', file=sys.stderr)
            failed.append(preset)
            continue
        finally:
            _free_gpu()
        print_report(reports[-1])
        sys.stdout.flush()
        if args.json:  # after every preset, so a later crash keeps the earlier figures
            with open(args.json, 'w') as f:
                json.dump(reports, f, indent=1)
    return 1 if failed else 0


def _free_gpu() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == '__main__':
    raise SystemExit(main())

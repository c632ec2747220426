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
Soak test of the node: many frames at the highest rate it sustains, memory and latency as it goes.

    python -m bevformer_ros.tools.soak --frames 10000
    python -m bevformer_ros.tools.soak --frames 2000 --device cuda --report-every 500

Starts the node as its own process (autostart, the small test model of
`bevformer_ros.model.small_model` on 160x90 images unless told otherwise, a private ROS domain on
this host) and drives it in a closed loop from this process: a new synchronized set (six images,
CameraInfo, odometry) is published as soon as fewer than `--in-flight` sets await their output, so
the rate is the highest the node sustains and nothing queues up. Every output topic is subscribed
(markers, BEV features, BEV image), so every output path runs. A set whose markers do not arrive
within `--timeout` s counts as dropped.

Every `--report-every` frames it prints one row: frames done, the rate and the end-to-end latency
percentiles (publish -> markers received, this host's clock) of that interval, drops so far, the
node's resident memory (/proc) and its GPU memory (nvidia-smi, where present). At the end: the
totals, the node's own counts from /diagnostics and the memory growth after warm-up (first row to
last), which must stay flat. Not a CI test: it takes minutes.

    python -m bevformer_ros.tools.soak --no-ros --frames 10000 --device cuda [--preset tiny]

runs the same long loop on `Pipeline` alone in this process (no ROS needed, e.g. on a GPU machine
without ROS) over a repeating mix of inputs: complete sets, sets without one or two cameras
(dropout masks change the shapes inside spatial cross-attention), an unreadable image (skipped) and
a backwards time jump (history reset) every 50 frames. Each row then shows this process's resident
memory and the CUDA allocator's allocated / reserved memory, which must stay flat.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS
from bevformer_ros.core.progress import Progress
from bevformer_ros.data.bag_io import first_element_stamp_ns
from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.model.small_model import (
    SMALL_IMAGE_HEIGHT,
    SMALL_IMAGE_WIDTH,
    small_model_parameters,
)
from bevformer_ros.ros.health import MEAN_MAX_MS
from bevformer_ros.ros.process import (
    GraphProbe,
    isolation_env,
    node_arguments,
    process_rss_mib,
    reserved_domain_id,
    RosProcess,
)
import numpy as np

NAMESPACE = '/soak'
STAMP_STEP_NS = 83_333_333  # 12 Hz
NODE = f'{NAMESPACE}/bevformer'
HEADER = (
    f'{"frames":>7} {"elapsed s":>9} {"rate Hz":>8} {"p50 ms":>7} {"p90 ms":>7} {"p99 ms":>7} '
    f'{"max ms":>7} {"drops":>6} {"node RSS MiB":>12} {"node GPU MiB":>12}'
)


@dataclass
class Interval:
    """Latencies (s) of the frames done since the last row."""

    started: float
    latencies: list[float] = field(default_factory=list)
    drops: int = 0


def gpu_memory_mib(pid: int) -> float | None:
    """
    Return the GPU memory used by process `pid` according to nvidia-smi.

    None without nvidia-smi or usage.
    """
    if shutil.which('nvidia-smi') is None:
        return None
    try:
        query = [
            'nvidia-smi',
            '--query-compute-apps=pid,used_memory',
            '--format=csv,noheader,nounits',
        ]
        out = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    used = [
        float(mib)
        for line in out.splitlines()
        if ',' in line
        for app_pid, mib in [line.split(',', 1)]
        if app_pid.strip() == str(pid)
    ]
    return sum(used) if used else None


class Driver:
    """Closed-loop publisher and output receiver on one rclpy node of this process."""

    def __init__(self, probe: GraphProbe, width: int, height: int) -> None:
        from bevformer_ros.tools.six_camera_publisher import SixCameraPublisher
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from visualization_msgs.msg import MarkerArray

        self.probe = probe
        self.rig = SixCameraPublisher(probe.node, width, height, namespace=NAMESPACE)
        self.pending: dict[int, float] = {}  # stamp ns -> monotonic publish time
        # latency (s) of each answered set, None for a dropped one
        self.done: list[float | None] = []
        self.diagnostics: list[Any] = []
        self._last_stamp = 0
        self.baseline: dict[str, str] = {}  # the node's counts when the measured run starts
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node = probe.node
        # raw: stamps are read from the bytes, as a C++ subscriber gets them (deserialising a
        # MarkerArray in Python costs this process 0.4 ms per box); the images are only received
        node.create_subscription(
            MarkerArray, f'{NODE}/markers', self._on_markers, reliable, raw=True
        )
        for topic in ('bev_features', 'bev_image'):
            node.create_subscription(
                Image, f'{NODE}/{topic}', lambda raw: None, reliable, raw=True
            )
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_markers(self, raw: bytes) -> None:
        sent = self.pending.pop(first_element_stamp_ns(raw), None)
        if sent is not None:
            self.done.append(time.monotonic() - sent)

    def _on_diagnostics(self, msg: Any) -> None:
        self.diagnostics.append(msg)

    def publish(self) -> None:
        # A camera cadence, not the wall clock: sets published back to back must not fall within
        # one sync slop, and the temporal history sees frame steps a real rig would give.
        stamp = self._last_stamp + STAMP_STEP_NS if self._last_stamp else time.time_ns()
        self._last_stamp = stamp
        self.pending[stamp] = time.monotonic()
        self.rig.publish_set(stamp)

    def expire(self, timeout_s: float) -> None:
        now = time.monotonic()
        for stamp in [s for s, t in self.pending.items() if now - t > timeout_s]:
            del self.pending[stamp]
            self.done.append(None)

    def node_counts(self) -> dict[str, str]:
        values: dict[str, str] = {}
        # newest last; a period without frames reports '-' for latencies
        for array in self.diagnostics:
            for status in array.status:
                values.update({kv.key: kv.value for kv in status.values if kv.value != '-'})
        return values

    def counts_since_start(self) -> dict[str, str]:
        """
        Return the node's counters minus their values when the run started.

        Other values are returned as they are.
        """
        now = self.node_counts()
        return {
            k: str(int(v) - int(self.baseline.get(k, '0')))
            if v.isdigit() and self.baseline.get(k, '0').isdigit()
            else v
            for k, v in now.items()
        }


def _row(
    frames: int, elapsed: float, interval: Interval, drops: int, pid: int
) -> tuple[str, float | None]:
    now = time.monotonic()
    lat = np.array(interval.latencies) * 1e3
    pct = [f'{np.percentile(lat, q):7.1f}' if lat.size else f'{"-":>7}' for q in (50, 90, 99, 100)]
    rss, gpu = process_rss_mib(pid), gpu_memory_mib(pid)
    count = len(interval.latencies) + interval.drops
    rate = count / max(now - interval.started, 1e-9)
    rss_text = f'{rss:12.1f}' if rss is not None else f'{"-":>12}'
    gpu_text = f'{gpu:12.1f}' if gpu is not None else f'{"-":>12}'
    return (
        f'{frames:7d} {elapsed:9.1f} {rate:8.2f} {" ".join(pct)} {drops:6d} {rss_text} {gpu_text}',
        rss,
    )


def soak(
    frames: int,
    width: int,
    height: int,
    device: str,
    in_flight: int,
    report_every: int,
    timeout_s: float,
    checkpoint: str = '',
    backend: str = 'torch',
    precision: str = 'fp32',
) -> int:
    from bevformer_ros.model.build import node_checkpoint_arguments

    log_dir = Path(tempfile.mkdtemp(prefix='bevformer_soak_'))
    params = small_model_parameters(
        **{
            'model.device': device,
            'model.backend': backend,
            'model.precision': precision,
            'diagnostics.period_s': 1.0,
        }
    )
    params_file = log_dir / 'params.yaml'
    write_params_file(params_file, params)
    print(f'soak: starting the node and warming it up (log {log_dir})', flush=True)
    with reserved_domain_id() as domain:
        env = dict(os.environ, **isolation_env(domain, log_dir))
        os.environ.update(env)  # this process's participant joins the same private graph
        args = [*node_arguments(params_file, NAMESPACE), *node_checkpoint_arguments(checkpoint)]
        with (
            RosProcess(args, env, log_dir=log_dir, name='bevformer') as node,
            GraphProbe('soak') as probe,
        ):
            driver = Driver(probe, width, height)
            probe.spin_until(
                driver.rig.subscribers_matched, 120.0, 'node subscriptions', watch=[node]
            )
            probe.wait_for_topics([f'{NODE}/markers'], timeout=60.0, watch=[node])
            _warm_up(driver, probe, node)
            print(
                f'soak: {frames} frames, 6x{width}x{height} rgb8, small test model on {device}, '
                f'{in_flight} in flight, node pid {node.pid}, log {node.log_path}',
                flush=True,
            )
            print(HEADER, flush=True)
            rows, rss_values, latencies = _loop(
                driver, probe, node, frames, in_flight, report_every, timeout_s
            )
            _spin(probe, 1.5)  # one more /diagnostics report
            counts = driver.counts_since_start()
            alive = node.poll() is None
        code = node.poll()
    _summary(frames, rows, rss_values, latencies, counts, alive, code)
    return 0 if alive and latencies else 1


def _warm_up(driver: Driver, probe: GraphProbe, node: RosProcess) -> None:
    """
    Publish until outputs arrive, then forget them.

    This covers discovery of this probe and the first forward passes.
    """
    deadline = time.monotonic() + 120.0
    while sum(d is not None for d in driver.done) < 5:
        if time.monotonic() > deadline:
            raise TimeoutError(f'no output during warm-up\n{node.describe()}')
        if not driver.pending:
            driver.publish()
        probe.executor.spin_once(timeout_sec=0.05)
        driver.expire(3.0)
    # the warm-up sets still in the node must not meet the first ones
    drain_until = time.monotonic() + 10.0
    while (
        driver.pending or time.monotonic() < drain_until - 9.0
    ) and time.monotonic() < drain_until:
        probe.executor.spin_once(timeout_sec=0.05)
    driver.done.clear()
    driver.pending.clear()
    driver.baseline = driver.node_counts()


def _loop(
    driver: Driver,
    probe: GraphProbe,
    node: RosProcess,
    frames: int,
    in_flight: int,
    report_every: int,
    timeout_s: float,
) -> tuple[list[str], list[float], list[float]]:
    start = time.monotonic()
    interval = Interval(start)
    rows: list[str] = []
    rss_values: list[float] = []
    latencies: list[float] = []
    sent = reported = drops = 0
    bar = Progress(frames, 'soak', 'frames')
    while reported < frames:
        if sent < frames and len(driver.pending) < in_flight:
            driver.publish()
            sent += 1
        probe.executor.spin_once(timeout_sec=0.0 if len(driver.pending) < in_flight else 0.005)
        driver.expire(timeout_s)
        for latency in driver.done:
            if latency is None:
                interval.drops += 1
                drops += 1
            else:
                interval.latencies.append(latency)
                latencies.append(latency)
        driver.done.clear()
        finished = len(latencies) + drops
        if finished > bar.done:
            bar.update(finished - bar.done, f'{drops} dropped')
        if finished >= reported + report_every or finished >= frames:
            reported = finished
            row, rss = _row(finished, time.monotonic() - start, interval, drops, node.pid)
            bar.write(row)  # a table row: stdout
            rows.append(row)
            if rss is not None:
                rss_values.append(rss)
            interval = Interval(time.monotonic())
        if node.poll() is not None:
            bar.close()
            raise RuntimeError(f'the node exited during the soak\n{node.describe()}')
    bar.close()
    return rows, rss_values, latencies


def _spin(probe: GraphProbe, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.executor.spin_once(timeout_sec=0.05)


def _summary(
    frames: int,
    rows: list[str],
    rss_values: list[float],
    latencies: list[float],
    counts: dict[str, str],
    alive: bool,
    code: int | None,
) -> None:
    lat = np.array(latencies) * 1e3
    print(
        f'\n{len(latencies)} of {frames} frames answered, '
        f'{frames - len(latencies)} dropped (no markers '
        f'within the timeout); node alive at the end: {alive}, exit code after SIGINT {code}'
    )
    if lat.size:
        print(
            'end-to-end latency over the run (ms): '
            + ', '.join(f'p{q} {np.percentile(lat, q):.1f}' for q in (50, 90, 99))
            + f', max {lat.max():.1f}'
        )
    if len(rss_values) >= 2:
        growth = rss_values[-1] - rss_values[0]
        print(
            f'node RSS after warm-up: {rss_values[0]:.1f} MiB at the first row -> '
            f'{rss_values[-1]:.1f} MiB at the last ({growth:+.1f} MiB, '
            f'{growth / max(len(rss_values) - 1, 1):+.2f} MiB per row)'
        )
    keys = (
        'frames processed',
        'frames skipped',
        'sets dropped (worker busy)',
        'outputs dropped (publisher busy)',
        'sets rejected for spread',
        'sets dropped: duplicate_stamp',
        'sets dropped: out_of_order',
    )
    print(
        'node /diagnostics during the run: ' + ', '.join(f'{k} {counts.get(k, "?")}' for k in keys)
    )
    # the node's own end-to-end figure compares stamps with its clock: meaningless with cadence
    # stamps
    stages = [
        k for k in counts if k.endswith(f'latency{MEAN_MAX_MS}') and not k.startswith('end-to-end')
    ]
    print(
        'node stage latency mean/max (ms, last period): '
        + ', '.join(f'{k.split(" latency")[0]} {counts[k]}' for k in stages)
    )
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------
# --no-ros
MIX_PERIOD = 50  # frames: the input pattern repeats with this period


def _mixed_frames(config: Any, width: int, height: int) -> tuple[list[Any], Any]:
    """
    Return the six cameras of the nuScenes rig with random images, and a broken image.

    K is scaled to the size; the broken image is truncated.
    """
    from bevformer_ros.core.rig import load_rig
    from bevformer_ros.frontend.plain_msgs import camera_info_msg, image_msg
    from bevformer_ros.pipeline import CameraInput
    from bevformer_ros.resources import config_file

    rig = load_rig(config_file(config.calibration.rig_yaml))
    rng = np.random.default_rng(0)
    cameras = []
    for name in config.cameras.names:
        cam = rig.camera(name)
        K = np.diag([width / cam.image_size[0], height / cam.image_size[1], 1.0]) @ cam.K
        image = image_msg(
            rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8), 'rgb8', name
        )
        cameras.append(
            CameraInput(image, camera_info_msg(K, width, height, name), cam.sensor2lidar)
        )
    broken = image_msg(np.zeros((height, width, 3), np.uint8), 'rgb8', 'broken')
    broken.data = broken.data[: len(broken.data) // 2]
    return cameras, broken


def _mixed_frame(k: int, cameras: list[Any], broken: Any) -> tuple[Any, str]:
    """Frame k of the repeating mix and what it is."""
    import dataclasses

    from bevformer_ros.core.ego_motion import EgoPose
    from bevformer_ros.pipeline import FrameSet

    phase, cams, kind = k % MIX_PERIOD, list(cameras), 'complete'
    if 10 <= phase < 20:
        cams[(k // MIX_PERIOD) % 6] = dataclasses.replace(cams[(k // MIX_PERIOD) % 6], image=None)
        kind = 'one camera missing'
    elif 20 <= phase < 25:
        for i in ((k // MIX_PERIOD) % 6, (k // MIX_PERIOD + 3) % 6):
            cams[i] = dataclasses.replace(cams[i], image=None)
        kind = 'two cameras missing'
    elif phase == 30:
        cams[2] = dataclasses.replace(cams[2], image=broken)
        kind = 'unreadable image'
    t = k * STAMP_STEP_NS * 1e-9 - (60.0 if phase >= 40 else 0.0)  # from frame 40 on: a bag loop
    yaw = 0.05 * t
    pose = EgoPose(
        round(t * 1e9),
        np.array([100 * np.sin(yaw), 100 * (1 - np.cos(yaw)), 0.0]),
        np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]),
        velocity=np.array([5.0, 0, 0]),
    )
    return FrameSet(round((1000.0 + t) * 1e9), cams, pose), kind


PIPELINE_HEADER = (
    f'{"frames":>7} {"elapsed s":>9} {"rate Hz":>8} {"p50 ms":>7} {"p90 ms":>7} '
    f'{"p99 ms":>7} {"max ms":>7} {"skipped":>7} {"RSS MiB":>8} {"CUDA alloc MiB":>14} '
    f'{"CUDA reserved MiB":>17}'
)


def _pipeline_row(
    frames: int,
    elapsed: float,
    latencies_s: Sequence[float],
    skipped: int,
    rss: float | None,
    device: Any,
) -> str:
    import torch

    lat = np.asarray(latencies_s) * 1e3
    memory = f'{"-":>14} {"-":>17}'
    if device.type == 'cuda':
        memory = (
            f'{torch.cuda.memory_allocated(device) / 2**20:14.1f} '
            f'{torch.cuda.memory_reserved(device) / 2**20:17.1f}'
        )
    rss_text = f'{rss:8.1f}' if rss is not None else f'{"-":>8}'
    return (
        f'{frames:7d} {elapsed:9.1f} {lat.size / (lat.sum() / 1e3):8.2f} '
        + ' '.join(f'{np.percentile(lat, q):7.1f}' for q in (50, 90, 99, 100))
        + f' {skipped:7d} {rss_text} {memory}'
    )


def _build_pipeline(
    preset: str,
    device: str,
    checkpoint: str = '',
    backend: str = 'torch',
    precision: str = 'fp32',
) -> tuple[Any, Any]:
    from bevformer_ros.config import NodeConfig
    from bevformer_ros.pipeline import Pipeline

    params = (
        small_model_parameters(**{'model.device': device})
        if preset == 'small-test'
        else {'model.preset': preset, 'model.device': device}
    )
    engine = {'model.backend': backend, 'model.precision': precision}
    config = NodeConfig.from_parameters({**params, **engine, 'model.checkpoint': checkpoint})
    return Pipeline.from_settings(config), config


def soak_pipeline(
    frames: int,
    width: int,
    height: int,
    device: str,
    report_every: int,
    preset: str,
    checkpoint: str = '',
    backend: str = 'torch',
    precision: str = 'fp32',
) -> int:
    from bevformer_ros.pipeline import FrameError
    import torch

    pipeline, config = _build_pipeline(preset, device, checkpoint, backend, precision)
    cameras, broken = _mixed_frames(config, width, height)
    cuda = pipeline.device.type == 'cuda'
    name = f' ({torch.cuda.get_device_name(pipeline.device)})' if cuda else ''
    print(
        f'soak --no-ros: {frames} frames, 6x{width}x{height}, {preset} on '
        f'{pipeline.device}{name}; every {MIX_PERIOD} frames: complete sets, '
        'one or two cameras missing, an unreadable image, a time jump',
        flush=True,
    )
    print(PIPELINE_HEADER, flush=True)
    kinds: dict[str, int] = {}
    skipped, latencies, rss_values, start = 0, [], [], time.monotonic()
    bar = Progress(frames, 'soak', 'frames')
    for k in range(frames):
        frame, kind = _mixed_frame(k, cameras, broken)
        kinds[kind] = kinds.get(kind, 0) + 1
        started = time.perf_counter()
        try:
            pipeline.run(frame, want_bev=True)
        except FrameError:
            skipped += 1
        if cuda:
            torch.cuda.synchronize(pipeline.device)
        latencies.append(time.perf_counter() - started)
        bar.update(1, f'{skipped} skipped')
        if (k + 1) % report_every == 0 or k + 1 == frames:
            rss_values.append(process_rss_mib(os.getpid()))
            bar.write(
                _pipeline_row(
                    k + 1,
                    time.monotonic() - start,
                    latencies[-report_every:],
                    skipped,
                    rss_values[-1],
                    pipeline.device,
                )
            )
    bar.close()
    print(f'inputs: {kinds}; frames skipped (the unreadable image): {skipped}')
    if len(rss_values) >= 2 and None not in rss_values:
        print(
            f'RSS after warm-up: {rss_values[0]:.1f} -> {rss_values[-1]:.1f} MiB '
            f'({rss_values[-1] - rss_values[0]:+.1f} MiB)'
        )
    if cuda:
        print(
            'CUDA peak allocated '
            f'{torch.cuda.max_memory_allocated(pipeline.device) / 2**20:.1f} MiB'
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--frames', type=int, default=10000)
    parser.add_argument('--width', type=int, default=SMALL_IMAGE_WIDTH)
    parser.add_argument('--height', type=int, default=SMALL_IMAGE_HEIGHT)
    parser.add_argument(
        '--device', default='auto', help='model.device of the node: auto, cpu, cuda'
    )
    parser.add_argument('--in-flight', type=int, default=2, help='sets awaiting output at most')
    parser.add_argument('--report-every', type=int, default=1000)
    parser.add_argument(
        '--timeout', type=float, default=5.0, help='seconds before a set counts as dropped'
    )
    parser.add_argument(
        '--no-ros', action='store_true', help='run Pipeline alone in this process (no node)'
    )
    parser.add_argument(
        '--preset',
        default='small-test',
        choices=['small-test', 'tiny', 'small', 'base'],
        help='--no-ros only: the model (small-test: the small random test model)',
    )
    parser.add_argument(
        '--checkpoint',
        default='',
        help='model.checkpoint (a .pth path or a shipped name); passed on to the node; default: '
        'random weights',
    )
    parser.add_argument(
        '--backend',
        default='torch',
        choices=ENGINE_BACKENDS,
        help='model.backend (the engine is built at the first frame)',
    )
    parser.add_argument('--precision', default='fp32', choices=ENGINE_PRECISIONS)
    args = parser.parse_args(argv)
    if args.no_ros:
        return soak_pipeline(
            args.frames,
            args.width,
            args.height,
            args.device,
            args.report_every,
            args.preset,
            args.checkpoint,
            args.backend,
            args.precision,
        )
    return soak(
        args.frames,
        args.width,
        args.height,
        args.device,
        args.in_flight,
        args.report_every,
        args.timeout,
        args.checkpoint,
        args.backend,
        args.precision,
    )


if __name__ == '__main__':
    raise SystemExit(main())

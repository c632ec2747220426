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
End-to-end benchmark of the node over DDS: six camera streams in, MarkerArray out.

    python -m bevformer_ros.tools.bench_node --preset tiny --rate 12 --seconds 30
    python -m bevformer_ros.tools.bench_node --preset small-test --width 160 --height 90

Starts the node as its own process (autostart, random weights unless `--checkpoint`, a private ROS
domain on this host with the shared-memory Fast DDS profile for large images), publishes six rgb8
streams with CameraInfo and Odometry at `--rate` from this process and receives `~/markers`.
Reports the end-to-end latency (input stamp -> MarkerArray bytes received, both on this host's
clock; the stamp is read from the bytes, as a C++ subscriber such as RViz gets them, without
Python's deserialisation), the output rate, the sets that produced no output, the node's own
counts from /diagnostics, and, after the node has stopped, the bare model forward time on this
machine, back to back and paced at the camera rate (idle between forwards, as in the node), and
the latency / forward ratios (what ROS, the sync and the pre/post-processing add).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

from bevformer_ros.config import ENGINE_BACKENDS, ENGINE_PRECISIONS
from bevformer_ros.data.bag_io import first_element_stamp_ns, first_sequence_length
from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.ros.health import MEAN_MAX_MS
from bevformer_ros.ros.process import (
    GraphProbe,
    isolation_env,
    node_arguments,
    reserved_domain_id,
    RosProcess,
)
from bevformer_ros.tools.bench_pipeline import node_parameters
import numpy as np

NAMESPACE = '/bench'


def _params_file(path: Path, preset: str, device: str, precision: str, backend: str) -> Path:
    flat = node_parameters(preset, device, precision, checkpoint='', backend=backend)
    flat.update({'autostart': True, 'diagnostics.period_s': 1.0})
    return write_params_file(path, flat)


class Bench:
    """Publisher + receiver in one rclpy node of this process."""

    def __init__(self, probe: GraphProbe, width: int, height: int) -> None:
        from bevformer_ros.tools.six_camera_publisher import SixCameraPublisher
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from visualization_msgs.msg import MarkerArray

        self.probe = probe
        self.rig = SixCameraPublisher(probe.node, width, height, namespace=NAMESPACE)
        self.received: list[tuple[int, int]] = []  # (input stamp ns, receive time ns)
        self.marker_counts: list[int] = []  # markers per received array
        # raw: the stamp is read from the bytes. Deserialising a MarkerArray in Python takes
        # 0.4 ms per box here, a cost of this subscriber that RViz (C++) does not pay.
        self.diagnostics: list[Any] = []
        probe.node.create_subscription(
            MarkerArray,
            f'{NAMESPACE}/bevformer/markers',
            self._on_markers,
            QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
            raw=True,
        )
        from diagnostic_msgs.msg import DiagnosticArray

        probe.node.create_subscription(
            DiagnosticArray, '/diagnostics', self.diagnostics.append, 10
        )

    def _on_markers(self, raw: bytes) -> None:
        stamp = first_element_stamp_ns(raw)
        if stamp is not None:
            self.received.append((stamp, time.time_ns()))
            self.marker_counts.append(first_sequence_length(raw))

    def publish_for(self, seconds: float, rate: float, until: Any = None) -> list[int]:
        """Publish sets at `rate` for `seconds` (or until `until()`); returns the stamps sent."""
        sent: list[int] = []
        period = 1.0 / rate
        start = time.monotonic()
        while time.monotonic() - start < seconds and not (until and until()):
            stamp = time.time_ns()
            self.rig.publish_set(stamp)
            sent.append(stamp)
            next_at = start + len(sent) * period
            while (remaining := next_at - time.monotonic()) > 0:
                self.probe.executor.spin_once(timeout_sec=remaining)
        return sent

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.probe.executor.spin_once(timeout_sec=0.05)

    def node_counts(self) -> dict[str, str]:
        """
        Return the node's latest /diagnostics values.

        Latencies are those of the last period that had frames.
        """
        values: dict[str, str] = {'_messages': str(len(self.diagnostics))}
        for array in self.diagnostics:
            for status in array.status:
                values.update({kv.key: kv.value for kv in status.values if kv.value != '-'})
        return values


def stage_medians(arrays: Sequence[Any]) -> dict[str, float]:
    """Per stage of the node, the median over /diagnostics arrays of the period's mean (ms)."""
    means: dict[str, list[float]] = {}
    for array in arrays:
        for status in array.status:
            for kv in status.values:
                if kv.key.endswith(MEAN_MAX_MS) and kv.value != '-':
                    stage = kv.key[: -len(MEAN_MAX_MS)].removesuffix(' latency')
                    means.setdefault(stage, []).append(float(kv.value.split('/')[0]))
    return {stage: float(np.median(values)) for stage, values in means.items()}


def run(
    preset: str,
    rate: float,
    seconds: float,
    width: int,
    height: int,
    device: str,
    precision: str,
    warmup_timeout: float,
    checkpoint: str = '',
    backend: str = 'torch',
) -> dict[str, Any]:
    from bevformer_ros.model.build import node_checkpoint_arguments

    checkpoint_args = node_checkpoint_arguments(checkpoint)  # a bad name fails before any start
    log_dir = Path(tempfile.mkdtemp(prefix='bevformer_bench_'))
    with reserved_domain_id() as domain:
        env = dict(os.environ, **isolation_env(domain, log_dir))
        os.environ.update(env)  # this process's participant joins the same private graph
        params = _params_file(log_dir / 'params.yaml', preset, device, precision, backend)
        args = [
            *node_arguments(params, NAMESPACE, autostart=False),
            *checkpoint_args,
        ]
        with (
            RosProcess(args, env, log_dir=log_dir, name='bevformer') as node,
            GraphProbe('bench_node') as probe,
        ):
            bench = Bench(probe, width, height)
            probe.spin_until(
                bench.rig.subscribers_matched, 120.0, 'node subscriptions', watch=[node]
            )
            probe.wait_for_topics([f'{NAMESPACE}/bevformer/markers'], timeout=60.0, watch=[node])
            print(f'warming up (first output of {preset} on {device})...', flush=True)
            bench.publish_for(warmup_timeout, rate, until=lambda: bool(bench.received))
            if not bench.received:
                raise TimeoutError(f'no output within {warmup_timeout} s\n{node.describe()}')
            bench.spin(2.0)  # let the warm-up backlog drain
            bench.received.clear()
            bench.marker_counts.clear()
            bench.diagnostics.clear()
            sent = bench.publish_for(seconds, rate)
            latencies = [r[1] - r[0] for r in bench.received]
            grace = max(3.0, 3 * np.median(latencies) * 1e-9) if latencies else 30.0
            bench.spin(grace)  # outputs of the last sets still in the worker
            counts = bench.node_counts()
            stages = stage_medians(bench.diagnostics)
            if node.poll() is not None:
                raise RuntimeError(node.describe())
    window = set(sent)
    outputs = [(s, r) for s, r in bench.received if s in window]
    latency_ms = np.array([(r - s) * 1e-6 for s, r in outputs])
    return {
        'preset': preset,
        'device': device,
        'rate_hz': rate,
        'seconds': seconds,
        'images': f'6x{width}x{height}',
        'sent': len(sent),
        'outputs': len(outputs),
        'no_output': len(sent) - len(outputs),
        'output_rate_hz': len(outputs) / seconds,
        'latency_median_ms': float(np.median(latency_ms)) if len(outputs) else None,
        'latency_p95_ms': float(np.percentile(latency_ms, 95)) if len(outputs) else None,
        'node_counts': counts,
        'stage_medians_ms': stages,
        'markers_median': float(np.median(bench.marker_counts)) if bench.marker_counts else 0.0,
        'log_dir': str(log_dir),
    }


def bare_forward_ms(
    preset: str,
    device: str,
    precision: str,
    width: int,
    height: int,
    iterations: int,
    checkpoint: str = '',
    backend: str = 'torch',
    periods_s: Sequence[float] = (0.0,),
) -> list[float]:
    """
    Median bare model forward on this machine (after the node has gone, so nothing competes).

    One median per period of `periods_s`, from one built model: 0 is back to back, a period one
    forward per period, idle in between like the node.
    """
    from bevformer_ros.config import NodeConfig
    from bevformer_ros.pipeline import Pipeline
    from bevformer_ros.tools.bench_pipeline import synthetic_frames, time_model_forward

    config = NodeConfig.from_parameters(
        node_parameters(preset, device, precision, checkpoint, backend)
    )
    pipeline = Pipeline.from_settings(config)
    frames = synthetic_frames(config, width, height, 2, rate_hz=12.0)
    for frame in frames:
        pipeline.run(frame, want_bev=False)
    return [
        float(np.median(time_model_forward(pipeline, frames[-1], iterations, period_s=p)) * 1e3)
        for p in periods_s
    ]


def print_report(report: dict[str, Any], forward_ms: float, paced_ms: float) -> None:
    counts = report['node_counts']
    print(
        f'{report["preset"]} on {report["device"]}, {report["images"]} rgb8 '
        f'at {report["rate_hz"]} Hz '
        f'for {report["seconds"]} s'
    )
    if report['outputs']:
        print(
            f'  end-to-end latency (stamp -> MarkerArray received): median '
            f'{report["latency_median_ms"]:.1f} ms, p95 {report["latency_p95_ms"]:.1f} ms '
            f'({report["markers_median"]:.0f} markers per array, median)'
        )
    print(
        f'  output rate {report["output_rate_hz"]:.2f} Hz: '
        f'{report["outputs"]} of {report["sent"]} sets '
        f'({report["no_output"]} without output)'
    )
    print(
        f'  node: sets dropped while busy {counts.get("sets dropped (worker busy)", "?")}, '
        f'rejected for spread {counts.get("sets rejected for spread", "?")}, '
        f'frames skipped {counts.get("frames skipped", "?")}, '
        f'outputs dropped {counts.get("outputs dropped (publisher busy)", "?")}'
    )
    stages = report['stage_medians_ms']
    print(
        '  node stage latency (ms, median over 1 s periods of their mean): '
        + ', '.join(f'{stage} {ms:.1f}' for stage, ms in stages.items())
    )
    ratio = ''
    if report['outputs']:
        latency = report['latency_median_ms']
        ratio = (
            f'; latency / forward = {latency / forward_ms:.2f} '
            f'({latency / paced_ms:.2f} against the paced forward)'
        )
    print(
        f'  bare model forward median {forward_ms:.1f} ms back to back, {paced_ms:.1f} ms paced '
        f'at {report["rate_hz"]} Hz (idle between forwards, as in the node){ratio}'
    )
    print(
        f'  node log: {report["log_dir"]}/bevformer.log '
        f'({counts.get("_messages")} diagnostics received)'
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument(
        '--preset', default='tiny', choices=['tiny', 'small', 'base', 'small-test']
    )
    parser.add_argument('--rate', type=float, default=12.0, help='camera rate (sets per second)')
    parser.add_argument('--seconds', type=float, default=30.0, help='measurement window')
    parser.add_argument('--width', type=int, default=1600)
    parser.add_argument('--height', type=int, default=900)
    parser.add_argument('--device', default='auto')
    parser.add_argument(
        '--backend',
        default='torch',
        choices=ENGINE_BACKENDS,
        help='model.backend of the node and of the bare forward (engine built at the first frame)',
    )
    parser.add_argument(
        '--precision', choices=ENGINE_PRECISIONS, default='fp32', help='model.precision'
    )
    parser.add_argument(
        '--checkpoint',
        default='',
        help='model.checkpoint of the node (a .pth path or a shipped name); default: random',
    )
    parser.add_argument('--warmup-timeout', type=float, default=180.0)
    parser.add_argument('--forward-iterations', type=int, default=5)
    args = parser.parse_args(argv)
    try:
        report = run(
            args.preset,
            args.rate,
            args.seconds,
            args.width,
            args.height,
            args.device,
            args.precision,
            args.warmup_timeout,
            args.checkpoint,
            args.backend,
        )
    except (FileNotFoundError, ValueError) as exc:  # a bad --checkpoint or option: say which
        print(f'bevformer_bench_node: {exc}', file=sys.stderr)
        return 2
    forward, paced = bare_forward_ms(
        args.preset,
        args.device,
        args.precision,
        args.width,
        args.height,
        args.forward_iterations,
        args.checkpoint,
        args.backend,
        periods_s=(0.0, 1.0 / args.rate),
    )
    print_report(report, forward, paced)
    sys.stdout.flush()
    return 0 if report['outputs'] else 1


if __name__ == '__main__':
    raise SystemExit(main())

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

"""bench_node reads the node's stage latencies from the /diagnostics arrays the node publishes."""

from __future__ import annotations

import time

from bevformer_ros.ros.convert import diagnostic_array, diagnostic_status
from bevformer_ros.ros.health import NodeHealth
from bevformer_ros.tools.bench_node import stage_medians
import pytest

STAGES_MS = [  # per period: the frames' model and publish times (ms)
    [(40.0, 5.0), (60.0, 7.0)],  # means 50, 6
    [(70.0, 9.0)],  # 70, 9
    [],  # no frame: '-' values are not zeros
    [(30.0, 2.0), (32.0, 4.0), (34.0, 6.0)],  # 32, 4
]


def _published_arrays():
    """Return the DiagnosticArrays a node with these periods publishes, as rclpy reads them."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.serialization import deserialize_message, serialize_message

    now = [0.0]
    health = NodeHealth('bevformer', ('A', 'B'), lambda: now[0])
    arrays = []
    for period in STAGES_MS:
        now[0] += 1.0
        for model_ms, publish_ms in period:
            health.frame_processed(
                {'model': model_ms / 1e3, 'publish': publish_ms / 1e3},
                end_to_end_s=(model_ms + publish_ms) / 1e3,
                processing_s=(model_ms + publish_ms) / 1e3,
            )
        reports = health.report([0, 0], 0, 0, None, True)
        statuses = [diagnostic_status(r.name, r.level, r.message, r.values) for r in reports]
        data = serialize_message(diagnostic_array(statuses, 0))
        arrays.append(deserialize_message(data, DiagnosticArray))
    return arrays


def test_stage_medians_are_medians_of_the_periods_means():
    medians = stage_medians(_published_arrays())
    assert medians['model'] == pytest.approx(50.0)  # median of 50, 70, 32
    assert medians['publish'] == pytest.approx(6.0)  # of 6, 9, 4
    assert medians['processing'] == pytest.approx(56.0)  # of 56, 79, 36
    assert medians['stamp age at publishing'] == pytest.approx(56.0)


def test_paced_forward_starts_one_forward_per_period():
    from bevformer_ros.config import NodeConfig
    from bevformer_ros.pipeline import Pipeline
    from bevformer_ros.tools.bench_pipeline import (
        node_parameters,
        synthetic_frames,
        time_model_forward,
    )

    config = NodeConfig.from_parameters(node_parameters('small-test', 'cpu', 'fp32', '', 'torch'))
    pipeline = Pipeline.from_settings(config)
    frame = synthetic_frames(config, 160, 90, 1, rate_hz=4.0)[0]
    pipeline.run(frame, want_bev=False)
    period = 0.25  # longer than a forward of the test model
    started = time.perf_counter()
    times = time_model_forward(pipeline, frame, iterations=3, warmup=1, period_s=period)
    elapsed = time.perf_counter() - started
    assert len(times) == 3 and all(t > 0 for t in times)
    assert elapsed >= 3 * period  # four forwards, each a period after the one before

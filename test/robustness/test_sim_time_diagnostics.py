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
/diagnostics under `use_sim_time:=true` when /clock stops (a bag that ends): status keeps coming.

The node runs as its own process; this test publishes /clock itself, then stops it, and waits for
more /diagnostics arrays than a timer on the stopped sim clock could ever publish (none).
"""

from __future__ import annotations

from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.model.small_model import small_model_parameters
from bevformer_ros.ros.process import GraphProbe, node_arguments, RosProcess
import pytest

clock_msgs = pytest.importorskip(
    'rosgraph_msgs.msg', reason='rosgraph_msgs (for /clock) is not installed'
)
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402, I100

NS = '/simtime'
PERIOD_S = 0.5
AFTER_STOP = 4  # arrays wanted after the clock stopped; a sim-clock timer gives none


def test_diagnostics_keep_coming_when_sim_clock_stops(ros_env, tmp_path):
    params = small_model_parameters(diagnostics__period_s=PERIOD_S, use_sim_time=True)
    params_file = tmp_path / 'params.yaml'
    write_params_file(params_file, params)
    args = node_arguments(params_file, NS)
    with (
        RosProcess(args, ros_env, log_dir=tmp_path, name='bevformer') as node,
        GraphProbe('sim_time_probe') as probe,
    ):
        arrays = probe.subscribe(DiagnosticArray, '/diagnostics', 50)
        clock_pub = probe.node.create_publisher(clock_msgs.Clock, '/clock', 10)
        sim_ns = 5 * 10**9

        def tick():
            nonlocal sim_ns
            sim_ns += 10**8  # 0.1 s of sim time per call
            msg = clock_msgs.Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(sim_ns, 10**9)
            clock_pub.publish(msg)
            return len(arrays) >= 2

        # the clock runs until the node publishes status (it is up and hears /clock)
        probe.spin_until(tick, 90.0, '/diagnostics while /clock runs', watch=[node])
        stopped_at = len(arrays)  # from here on, no /clock message at all
        probe.spin_until(
            lambda: len(arrays) >= stopped_at + AFTER_STOP,
            30.0,
            f'{AFTER_STOP} /diagnostics arrays after /clock stopped',
            watch=[node],
        )
        print(
            f'/diagnostics arrays: {stopped_at} while /clock ran, '
            f'{len(arrays) - stopped_at} after it stopped'
        )
        assert node.poll() is None, node.describe()
    assert node.stop() == 0, node.describe()

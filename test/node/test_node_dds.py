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
The node over real DDS: node, camera publisher and this test run as three processes.

The publisher (bevformer_ros.tools.six_camera_publisher --stdin) sends one synchronized set per
command (six 160x90 rgb8 images, CameraInfo, Odometry), so the test decides every stamp and fault
and waits for each result before the next set: nothing depends on timing but the timeouts. The node
runs the small random model (bevformer_ros.model.small_model) and is driven through its lifecycle
services, as a launch system would.
"""

from __future__ import annotations

import os
import signal
import time

from bevformer_ros.data.params_file import write_params_file
from bevformer_ros.model.small_model import (
    SMALL_IMAGE_HEIGHT,
    SMALL_IMAGE_WIDTH,
    small_model_parameters,
)
from bevformer_ros.ros.process import GraphProbe, node_arguments, RosProcess
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_helpers.scripted_publisher import ScriptedPublisher
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

NS = '/test'
NODE = f'{NS}/bevformer'
EMBED, BEV = 32, 10
T0 = 1000.0  # seconds; far from 0 so that going "backwards" stays positive


def _write_params(path, **overrides):
    params = small_model_parameters(
        outputs__score_threshold=0.0, diagnostics__period_s=0.2, **overrides
    )
    write_params_file(path, params)
    return path


def _stamp_s(msg):
    header = msg.markers[0].header if isinstance(msg, MarkerArray) else msg.header
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def _call(probe, client, request, node_proc, what):
    assert client.wait_for_service(timeout_sec=20.0), (
        f'{what}: service not available\n{node_proc.describe()}'
    )
    future = client.call_async(request)
    probe.spin_until(future.done, 20.0, what, watch=[node_proc])
    return future.result()


def _transition(probe, node_proc, transition_id):
    client = probe.node.create_client(ChangeState, f'{NODE}/change_state')
    request = ChangeState.Request()
    request.transition.id = transition_id
    return _call(
        probe, client, request, node_proc, f'lifecycle transition {transition_id}'
    ).success


def _state(probe, node_proc):
    client = probe.node.create_client(GetState, f'{NODE}/get_state')
    return _call(probe, client, GetState.Request(), node_proc, 'get_state').current_state.label


def _set_parameter(probe, node_proc, name, value):
    client = probe.node.create_client(SetParameters, f'{NODE}/set_parameters')
    if isinstance(value, float):
        pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
    request = SetParameters.Request(parameters=[Parameter(name=name, value=pv)])
    return _call(probe, client, request, node_proc, f'set {name}').results[0]


class Outputs:
    def __init__(self, probe):
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.probe = probe
        self.markers = probe.subscribe(MarkerArray, f'{NODE}/markers', reliable)
        self.features = probe.subscribe(Image, f'{NODE}/bev_features', reliable)
        self.pictures = probe.subscribe(Image, f'{NODE}/bev_image', reliable)
        self.diagnostics = probe.subscribe(DiagnosticArray, '/diagnostics', 50)

    def wait_for_frame(self, stamp_s, node_proc, timeout=20.0):
        """Return the (markers, features, picture) messages stamped `stamp_s`."""

        def find(stream):
            return next((m for m in stream if abs(_stamp_s(m) - stamp_s) < 1e-6), None)

        self.probe.spin_until(
            lambda: all(find(s) for s in (self.markers, self.features, self.pictures)),
            timeout,
            f'outputs stamped {stamp_s}',
            watch=[node_proc],
        )
        return find(self.markers), find(self.features), find(self.pictures)

    def has_output(self, stamp_s):
        return any(abs(_stamp_s(m) - stamp_s) < 1e-6 for m in self.markers)

    def diagnostic_value(self, status_suffix, key):
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name.endswith(status_suffix):
                    return {kv.key: kv.value for kv in status.values}.get(key)
        return None

    def wait_for_diagnostic(self, status_suffix, key, predicate, node_proc, timeout=10.0):
        self.probe.spin_until(
            lambda: predicate(self.diagnostic_value(status_suffix, key)),
            timeout,
            f'diagnostics {status_suffix!r} {key!r}',
            watch=[node_proc],
        )
        return self.diagnostic_value(status_suffix, key)


def test_node_processes_resets_and_survives_bad_frames(ros_env, tmp_path):
    params = _write_params(tmp_path / 'params.yaml')
    node_args = node_arguments(params, NS, autostart=False)
    publisher = None
    with (
        RosProcess(node_args, ros_env, log_dir=tmp_path, name='bevformer') as node,
        GraphProbe('node_test_probe') as probe,
    ):
        try:
            assert _state(probe, node) == 'unconfigured'
            assert _transition(probe, node, Transition.TRANSITION_CONFIGURE), node.describe()
            assert _transition(probe, node, Transition.TRANSITION_ACTIVATE), node.describe()
            assert _state(probe, node) == 'active'
            outputs = Outputs(probe)
            probe.wait_for_topics(
                [f'{NODE}/markers', f'{NODE}/bev_features', f'{NODE}/bev_image'],
                timeout=20,
                watch=[node],
            )
            publisher = ScriptedPublisher(
                ros_env, tmp_path, NS, SMALL_IMAGE_WIDTH, SMALL_IMAGE_HEIGHT
            )
            publisher.expect('ready')

            # First frame: resend until the node's publishers have discovered this probe.
            stamp = T0
            for _ in range(20):
                publisher.send(stamp)
                try:
                    markers, features, picture = outputs.wait_for_frame(stamp, node, timeout=3.0)
                    break
                except TimeoutError:
                    stamp += 0.5
            else:
                pytest.fail(f'no output for any first frame\n{node.describe()}')

            assert markers.markers[0].action == Marker.DELETEALL
            assert len(markers.markers) > 1
            assert all(m.header.frame_id == 'LIDAR_TOP' for m in markers.markers)
            for image in (features, picture):
                assert image.header.frame_id == 'LIDAR_TOP' and (image.height, image.width) == (
                    BEV,
                    BEV,
                )
            assert features.encoding == f'32FC{EMBED}' and features.step == BEV * EMBED * 4
            assert len(features.data) == BEV * BEV * EMBED * 4
            assert picture.encoding == 'rgb8' and len(picture.data) == BEV * BEV * 3
            assert outputs.wait_for_diagnostic(
                'temporal', 'resets: first_frame', lambda v: v == '1', node
            )

            stamp += 0.5  # a normal step keeps the history
            publisher.send(stamp)
            outputs.wait_for_frame(stamp, node)

            stamp -= 100.0  # bag loop: time goes backwards
            publisher.send(stamp)
            outputs.wait_for_frame(stamp, node)
            assert outputs.wait_for_diagnostic(
                'temporal', 'resets: time_backwards', lambda v: v == '1', node
            )
            assert outputs.diagnostic_value('temporal', 'last reset reason') == 'time_backwards'

            faults = (
                ('CAM_BACK:truncated', 'image', 'truncated'),
                ('CAM_FRONT_LEFT:encoding', 'image', 'mono16'),
                ('CAM_BACK_RIGHT:size', 'image', '80x45'),
                ('odom:nan', 'ego_pose', 'ego pose'),
            )
            for fault, kind, text in faults:
                bad = stamp + 0.5
                publisher.send(bad, [fault])
                last = outputs.wait_for_diagnostic(
                    'inference',
                    'last skipped frame',
                    lambda v, text=text: v is not None and text in v,
                    node,
                )
                assert last.startswith(f'{kind}:')
                stamp = bad + 0.5  # the next good frame is processed
                publisher.send(stamp)
                outputs.wait_for_frame(stamp, node)
                assert not outputs.has_output(bad)
            assert outputs.diagnostic_value('inference', 'skipped: image') == '3'
            assert outputs.diagnostic_value('inference', 'skipped: ego_pose') == '1'
            assert outputs.diagnostic_value('inputs', 'odometry messages rejected') == '1'
            # skipped frames are not history breaks: 1.0 s after the last good frame, no reset
            assert outputs.diagnostic_value('temporal', 'resets') == '2'

            reset = _call(
                probe,
                probe.node.create_client(Trigger, f'{NODE}/reset'),
                Trigger.Request(),
                node,
                '~/reset',
            )
            assert reset.success
            stamp += 0.5
            publisher.send(stamp)
            outputs.wait_for_frame(stamp, node)
            assert outputs.wait_for_diagnostic(
                'temporal', 'resets: requested', lambda v: v == '1', node
            )

            rejected = _set_parameter(probe, node, 'outputs.score_threshold', 1.5)
            assert not rejected.successful and 'outputs.score_threshold' in rejected.reason
            fixed = _set_parameter(probe, node, 'model.preset', 'base')
            assert not fixed.successful and 'configure' in fixed.reason
            assert _set_parameter(probe, node, 'outputs.score_threshold', 1.0).successful
            stamp += 0.5
            publisher.send(stamp)
            markers, _, _ = outputs.wait_for_frame(stamp, node)
            # no random score reaches 1.0
            assert [m.action for m in markers.markers] == [Marker.DELETEALL]

            assert node.poll() is None, node.describe()
            assert _transition(probe, node, Transition.TRANSITION_DEACTIVATE)
            assert _transition(probe, node, Transition.TRANSITION_CLEANUP)
            assert _state(probe, node) == 'unconfigured'
            assert _transition(probe, node, Transition.TRANSITION_UNCONFIGURED_SHUTDOWN)
            # the process ends by itself after the shutdown transition, with status 0
            probe.spin_until(lambda: node.poll() is not None, 30.0, 'the node process exiting')
            assert node.poll() == 0, node.describe()
        finally:
            if publisher is not None:
                publisher.close()
        assert node.stop() == 0, node.describe()


def test_interrupts_during_shutdown_still_end_the_node_cleanly(ros_env, tmp_path):
    """Ctrl-C under ros2 launch reaches the node twice; later ones land in its shutdown."""
    node_args = node_arguments(_write_params(tmp_path / 'params.yaml'), NS, autostart=True)
    with RosProcess(node_args, ros_env, log_dir=tmp_path, name='bevformer') as node:
        deadline = time.monotonic() + 120.0
        while 'active: waiting for' not in node.output(100_000):
            assert node.poll() is None and time.monotonic() < deadline, node.describe()
            time.sleep(0.1)
        interrupts, until = 0, time.monotonic() + 10.0
        while node.poll() is None and time.monotonic() < until:  # a stream, until it has gone
            os.kill(node.pid, signal.SIGINT)
            interrupts += 1
            time.sleep(0.0005)
        code = node.stop()
        assert interrupts > 1, node.describe()  # the shutdown did see further interrupts
        assert code == 0 and 'Traceback' not in node.output(100_000), node.describe()

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

"""ros_process: children always stop, hand-built environments load rclpy, probes explain waits."""

from __future__ import annotations

import os
import signal
import time

from bevformer_ros.ros.process import (
    BOOTSTRAP_GUARD,
    child_env,
    GraphProbe,
    isolation_env,
    reserved_domain_id,
    RosProcess,
)
import pytest


def wait_for_output(process: RosProcess, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.output():
        assert process.poll() is None, process.describe()
        assert time.monotonic() < deadline, process.describe()
        time.sleep(0.02)


SLEEPER = "import time; print('ready', flush=True); time.sleep(60)"


def test_stop_sends_sigint_first(tmp_path):
    with RosProcess(['-c', SLEEPER], os.environ, log_dir=tmp_path) as process:
        wait_for_output(process, 'ready')
        assert process.stop() == -signal.SIGINT  # python died of the SIGINT, nothing was killed
        assert 'KeyboardInterrupt' in process.output()


def test_stop_kills_a_child_that_ignores_sigint(tmp_path):
    code = 'import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); ' + SLEEPER
    with RosProcess(['-c', code], os.environ, log_dir=tmp_path, stop_timeout=0.5) as process:
        wait_for_output(process, 'ready')
        started = time.monotonic()
        assert process.stop() == -signal.SIGKILL
        assert time.monotonic() - started < 5


def test_child_is_stopped_when_the_body_raises(tmp_path):
    process = RosProcess(['-c', SLEEPER], os.environ, log_dir=tmp_path)
    with pytest.raises(ZeroDivisionError), process:
        wait_for_output(process, 'ready')
        _ = 1 / 0
    assert process.poll() is not None


def test_child_env_drops_the_bootstrap_guard_without_ld_library_path():
    env = child_env({'PATH': '/usr/bin', BOOTSTRAP_GUARD: '1'})
    assert BOOTSTRAP_GUARD not in env
    kept = child_env({'PATH': '/usr/bin', BOOTSTRAP_GUARD: '1', 'LD_LIBRARY_PATH': '/x'})
    assert (kept[BOOTSTRAP_GUARD], kept['LD_LIBRARY_PATH']) == ('1', '/x')


@pytest.mark.skipif(
    BOOTSTRAP_GUARD not in os.environ, reason='only the pip ROS wheels re-exec python'
)
def test_hand_built_environment_still_imports_rclpy(tmp_path):
    # Inheriting the guard without LD_LIBRARY_PATH would make `import rclpy` fail (librcl*.so).
    env = {'PATH': os.environ['PATH'], 'HOME': str(tmp_path), BOOTSTRAP_GUARD: '1'}
    with RosProcess(
        ['-c', "import rclpy; print('rclpy imported')"], env, log_dir=tmp_path
    ) as process:
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() == 0, process.describe()
        assert 'rclpy imported' in process.output()


def test_reserved_domain_passes_the_blocks_exceptions_through():
    for error in (TimeoutError('no output within 5 s'), FileNotFoundError('no such checkpoint')):
        with pytest.raises(type(error), match=str(error)):
            with reserved_domain_id() as domain:
                assert 1 <= domain <= 100
                raise error
    with reserved_domain_id() as first, reserved_domain_id() as second:
        assert first != second  # held while the block runs


def test_domain_coordinator_alone_garbles_an_os_error():
    # Why reserved_domain_id exists: its OSError retry loop swallows the block's own OSError.
    from domain_coordinator import domain_id

    with pytest.raises(RuntimeError, match="generator didn't stop after throw"):
        with domain_id():
            raise TimeoutError('no output within 5 s')


def test_isolation_env_keeps_the_graph_on_this_host(tmp_path):
    env = isolation_env(42, tmp_path / 'logs')
    assert env['ROS_DOMAIN_ID'] == '42'
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
    assert env['ROS_LOG_DIR'] == str(tmp_path / 'logs')
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'].endswith('config/fastdds_shm.xml')
    assert 'FASTDDS_DEFAULT_PROFILES_FILE' not in isolation_env(42, tmp_path, large_images=False)


def test_waiting_for_a_topic_nobody_publishes_times_out_with_details(ros_env, tmp_path):
    with (
        RosProcess(['-c', SLEEPER], ros_env, log_dir=tmp_path, name='sleeper') as process,
        GraphProbe() as probe,
    ):
        with pytest.raises(TimeoutError) as caught:
            probe.wait_for_topics(['/never_published'], timeout=0.5, watch=[process])
    message = str(caught.value)
    assert "missing: ['/never_published']" in message
    assert "process 'sleeper' (running)" in message


def test_waiting_stops_early_when_the_child_dies(ros_env, tmp_path):
    code = "import sys; print('config error: no such file', flush=True); sys.exit(3)"
    with (
        RosProcess(['-c', code], ros_env, log_dir=tmp_path, name='node') as process,
        GraphProbe() as probe,
    ):
        started = time.monotonic()
        with pytest.raises(
            RuntimeError, match='(?s)exited with code 3.*config error: no such file'
        ):
            probe.wait_for_topics(['/markers'], timeout=30, watch=[process])
        assert time.monotonic() - started < 10

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
Run ROS 2 processes on a private graph: isolation variables, a child-process handle, a probe.

Used by the tests, the demo and the benchmarks, which all start nodes as separate processes:
- `isolation_env` keeps a graph on this machine and on one domain (Kilted ignores
  ROS_LOCALHOST_ONLY).
- `RosProcess` starts `python <args>` with the caller's environment and always stops it: SIGINT so
  rclpy shuts down and frees its /dev/shm segments, then SIGKILL if it hangs.
- `GraphProbe` is an rclpy node in its own Context that waits for topics and collects messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
import contextlib
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any

import bevformer_ros
from bevformer_ros.launch_spec import NODE_ARGUMENTS, node_ros_arguments
from bevformer_ros.resources import config_file

# The venv's ros_wheels_bootstrapper.pth sets LD_LIBRARY_PATH and re-execs python once, marking the
# environment with this guard. A child that inherits the guard but not LD_LIBRARY_PATH skips the
# re-exec and cannot load librcl*.so, so the two must travel together or not at all.
BOOTSTRAP_GUARD = '_ROS_WHEELS_BOOTSTRAP_COMPLETE'


@contextlib.contextmanager
def reserved_domain_id() -> Iterator[int]:
    """
    Reserve a ROS_DOMAIN_ID no other process on this host holds (domain_coordinator's).

    The block's exceptions come out unchanged: domain_coordinator catches OSError around its
    `yield` to try the next ID, so a TimeoutError or a missing file inside its own `with` block
    surfaces as "generator didn't stop after throw()" instead.
    """
    from domain_coordinator import domain_id

    reservation = domain_id()
    domain = reservation.__enter__()
    try:
        yield domain
    finally:
        reservation.__exit__(None, None, None)  # releases the port; never sees the exception


def node_arguments(
    params_file: str | Path, namespace: str = '', autostart: bool = True
) -> list[str]:
    """
    Return the arguments of ``python -m bevformer_ros.node`` for a params file and namespace.

    The command line the launch file builds (`launch_spec`), so that tests, benchmarks and the
    demo start the node the way a robot does; ``autostart=False`` leaves it an unconfigured
    lifecycle node.
    """
    args = node_ros_arguments(str(params_file), namespace)  # [*NODE_ARGUMENTS, '--ros-args', ...]
    if not autostart:
        args = args[len(NODE_ARGUMENTS):]
    return ['-m', 'bevformer_ros.node', *args]


def isolation_env(domain_id: int, log_dir: Path, *, large_images: bool = True) -> dict[str, str]:
    """
    Return the variables that keep a ROS graph on this host and domain, with logs in `log_dir`.

    `large_images` adds the Fast DDS shared-memory profile (config/fastdds_shm.xml); every
    process of one graph should agree on it.
    """
    env = {
        'ROS_DOMAIN_ID': str(domain_id),
        'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
        'ROS_LOG_DIR': str(log_dir),
    }
    if large_images:
        env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(config_file('fastdds_shm.xml'))
    return env


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """
    Return `env` made safe for a child python.

    The bootstrap guard stays only together with LD_LIBRARY_PATH, and this package is importable
    from the same place as in the parent.
    """
    child = dict(env)
    if 'LD_LIBRARY_PATH' not in child:
        child.pop(BOOTSTRAP_GUARD, None)
    package_root = str(Path(bevformer_ros.__file__).resolve().parents[1])
    paths = [p for p in child.get('PYTHONPATH', '').split(os.pathsep) if p]
    child['PYTHONPATH'] = os.pathsep.join([package_root, *(p for p in paths if p != package_root)])
    return child


class RosProcess:
    """
    `python <args>` as a child process that is always stopped; output goes to a log file.

    with RosProcess(['-m', 'bevformer_ros.node', '--ros-args', ...], env, log_dir=tmp) as proc:
        ...
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        *,
        log_dir: Path,
        name: str = 'child',
        stop_timeout: float = 10.0,
    ) -> None:
        self.args = [sys.executable, *args]
        self.env = child_env(env)
        self.name = name
        self.log_path = Path(log_dir) / f'{name}.log'
        self.stop_timeout = stop_timeout
        self._popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RosProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, 'wb') as log:  # the child keeps its own handle
            self._popen = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self._require().pid

    def poll(self) -> int | None:
        """Return the exit code, or None while running."""
        return self._require().poll()

    def output(self, tail_chars: int = 4000) -> str:
        """Return the last `tail_chars` characters the child wrote to stdout and stderr."""
        try:
            text = self.log_path.read_text(errors='replace')
        except FileNotFoundError:
            return ''
        return text[-tail_chars:]

    def stop(self) -> int:
        """SIGINT, wait up to stop_timeout, then SIGKILL; return the exit code (<0: signal)."""
        popen = self._require()
        if popen.poll() is None:
            popen.send_signal(signal.SIGINT)
            try:
                popen.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()
        return popen.returncode

    def describe(self) -> str:
        """Describe for error messages how the child is doing and what it printed."""
        code = self.poll()
        state = 'running' if code is None else f'exited with code {code}'
        return f'process {self.name!r} ({state}), output tail:\n{self.output()}'

    def _require(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(
                f'process {self.name!r} was not started; use it as a context manager'
            )
        return self._popen


class GraphProbe:
    """
    An rclpy node in its own Context that watches a graph from the calling process.

    Reads ROS_DOMAIN_ID and friends from os.environ when created (see `isolation_env`).
    """

    def __init__(self, name: str = 'graph_probe') -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        self.context = rclpy.Context()
        # No rclpy signal handlers: Ctrl-C stays with the caller (pytest, a tool's main).
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def __enter__(self) -> GraphProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def spin_until(
        self, done: Callable[[], bool], timeout: float, what: str, watch: Iterable[RosProcess] = ()
    ) -> None:
        """
        Spin until `done()` returns True.

        Raises TimeoutError after `timeout` s, and RuntimeError as soon as a watched process exits;
        both messages say what was awaited and what the watched processes printed.
        """
        watch = list(watch)
        deadline = time.monotonic() + timeout
        while not done():
            for process in watch:
                if process.poll() is not None:
                    raise RuntimeError(f'{what}: {process.describe()}')
            if time.monotonic() > deadline:
                details = ''.join(f'\n{process.describe()}' for process in watch)
                raise TimeoutError(f'{what}: not done after {timeout:.1f} s{details}')
            self.executor.spin_once(timeout_sec=0.05)

    def topics(self) -> dict[str, list[str]]:
        """Return topic name -> type names, as discovered so far."""
        return dict(self.node.get_topic_names_and_types())

    def wait_for_topics(
        self, topics: Iterable[str], timeout: float = 10.0, watch: Iterable[RosProcess] = ()
    ) -> None:
        """Wait until every topic (fully qualified, e.g. '/camera/image') has a publisher."""
        wanted = set(topics)

        def all_published() -> bool:
            return all(self.node.count_publishers(topic) > 0 for topic in wanted)

        try:
            self.spin_until(all_published, timeout, f'waiting for topics {sorted(wanted)}', watch)
        except TimeoutError as error:
            missing = sorted(t for t in wanted if self.node.count_publishers(t) == 0)
            raise TimeoutError(
                f'{error}\nmissing: {missing}; seen: {sorted(self.topics())}'
            ) from None

    def subscribe(self, msg_type: Any, topic: str, qos: Any = 10) -> list[Any]:
        """Subscribe now; the returned list fills with messages as the probe spins."""
        received: list[Any] = []
        self.node.create_subscription(msg_type, topic, received.append, qos)
        return received

    def collect(
        self,
        msg_type: Any,
        topic: str,
        count: int,
        timeout: float = 10.0,
        qos: Any = 10,
        watch: Iterable[RosProcess] = (),
    ) -> list[Any]:
        """Subscribe to `topic` and return its first `count` messages."""
        received = self.subscribe(msg_type, topic, qos)
        self.spin_until(
            lambda: len(received) >= count,
            timeout,
            f'waiting for {count} messages on {topic}',
            watch,
        )
        return received[:count]


def process_rss_mib(pid: int) -> float | None:
    """Resident memory of process `pid` in MiB (Linux /proc), or None where it cannot be read."""
    try:
        with open(f'/proc/{pid}/status') as status:
            for line in status:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0  # the kernel reports kB
    except OSError:
        return None
    return None

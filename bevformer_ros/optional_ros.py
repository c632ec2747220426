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
Which optional ROS 2 pieces can be imported here, decided once per process.

A full ROS 2 install has message_filters, cv_bridge, tf2_ros, launch, ...; the PyPI wheels used for
development have only rclpy and the message packages. The rest of the code asks `available(name)`
instead of scattering try/except imports, so every fallback is chosen in one place. cv_bridge
must also pass a self-test in a child process (`cv_bridge_refusal`): one that crashes or decodes
differently from the numpy path is not used.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import logging
import os
import signal
import subprocess
import sys

_LOG = logging.getLogger(__name__)
SELF_TEST_TIMEOUT_S = 60.0  # importing cv_bridge, OpenCV and numpy in a cold child: a few seconds

# name -> (module to import, attribute only the real package has). The attribute guards against
# look-alikes: the unrelated PyPI `launch` app launcher, or a bare `launch/` folder of a source
# tree, which Python imports as an empty namespace package.
PIECES: dict[str, tuple[str, str]] = {
    'rclpy': ('rclpy', 'init'),
    'ament_index_python': ('ament_index_python.packages', 'get_package_share_directory'),
    'message_filters': ('message_filters', 'ApproximateTimeSynchronizer'),
    'cv_bridge': ('cv_bridge', 'CvBridge'),
    'tf2_ros': ('tf2_ros', 'Buffer'),
    'launch': ('launch', 'LaunchDescription'),
    'launch_ros': ('launch_ros.actions', 'Node'),
    'launch_testing': ('launch_testing.actions', 'ReadyToTest'),
    'vision_msgs': ('vision_msgs.msg', 'Detection3DArray'),
    'cv2': ('cv2', 'imdecode'),
    'PIL': ('PIL.Image', 'open'),
}


@functools.cache
def available(name: str) -> bool:
    """Return True when the optional piece `name` (a key of PIECES) imports and is the real one."""
    if name not in PIECES:
        raise KeyError(f'unknown optional piece {name!r}; known: {", ".join(PIECES)}')
    module_name, attribute = PIECES[name]
    try:
        module = importlib.import_module(module_name)
    except (ImportError, OSError):  # a broken install (a .so that does not load) counts as absent
        return False
    if not hasattr(module, attribute):
        return False
    return name != 'cv_bridge' or (_is_ros2_cv_bridge() and cv_bridge_refusal() is None)


def summary() -> dict[str, bool]:
    """Return {piece: importable} for every piece in PIECES (imports each once)."""
    return {name: available(name) for name in PIECES}


def _is_ros2_cv_bridge() -> bool:
    # PyPI `cv-bridge` is ROS 1 code with a pure-Python stand-in for the compiled boost module and
    # is broken with NumPy 2 (big-endian, 16UC1, step padding); a ROS build ships the compiled
    # module.
    try:
        spec = importlib.util.find_spec('cv_bridge.boost.cv_bridge_boost')
    except ImportError:
        return False
    origin = spec.origin if spec is not None else None
    return origin is not None and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


@functools.cache
def cv_bridge_refusal() -> str | None:
    """
    Return None when cv_bridge decodes like the numpy path, else why it is not used (logged once).

    The self-test (`frontend/cv_bridge_check.py`) runs in a child process with this process's
    interpreter and module path, so a cv_bridge that segfaults (built against another NumPy ABI)
    costs the child, not the node.
    """
    reason = _run_cv_bridge_self_test()
    if reason is not None:
        _LOG.warning('cv_bridge not used, images are decoded with numpy: %s', reason)
    return reason


def _run_cv_bridge_self_test() -> str | None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    command = [sys.executable, '-m', 'bevformer_ros.frontend.cv_bridge_check']
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=SELF_TEST_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return f'its self-test did not finish within {SELF_TEST_TIMEOUT_S:.0f} s'
    if done.returncode == 0:
        return None
    lines = done.stdout.splitlines()
    cases = [line.split(' ', 1)[1] for line in lines if line.startswith('case ')]
    where = f' on {cases[-1]}' if cases else ''
    if done.returncode < 0:
        return (
            f'its self-test crashed ({_signal_name(-done.returncode)}){where}; a cv_bridge built '
            f'against another NumPy than this one (NumPy 1 vs 2) does that'
        )
    verdict = [line for line in lines if line.startswith('disagree')]
    last = (verdict or done.stderr.strip().splitlines() or ['no output'])[-1]
    return f'its self-test failed (exit {done.returncode}){where}: {last}'


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f'signal {number}'

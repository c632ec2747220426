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

"""The six-camera publisher as a child process driven line by line; node parameter files."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

from bevformer_ros.ros.process import child_env


class ScriptedPublisher:
    """The six-camera publisher in --stdin mode: `send(stamp, faults)` returns once published."""

    def __init__(self, env, log_dir, namespace, width, height):
        args = [
            sys.executable,
            '-m',
            'bevformer_ros.tools.six_camera_publisher',
            '--stdin',
            '--namespace',
            namespace,
            '--width',
            str(width),
            '--height',
            str(height),
        ]
        self._stderr = open(log_dir / 'publisher.log', 'wb')
        self.proc = subprocess.Popen(
            args,
            env=child_env(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line
        raise TimeoutError(f'publisher did not print {prefix!r} (exit code {self.proc.poll()})')

    def send(self, stamp_s, faults=()):
        self.proc.stdin.write(f'frame {stamp_s:.9f} {" ".join(faults)}\n')
        self.proc.stdin.flush()
        self.expect('sent')

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('quit\n')
                self.proc.stdin.close()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

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

"""`call_in_passing_thread`: the result or the exception comes back, the OpenMP pool does not."""

import os
import subprocess
import sys
import textwrap

from bevformer_ros.model.passing_thread import call_in_passing_thread
import pytest


def test_returns_the_value_and_raises_the_exception():
    assert call_in_passing_thread(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ValueError, match='bad parameter'):
        call_in_passing_thread(_raise, ValueError('bad parameter'))


def _raise(exc: Exception) -> None:
    raise exc


def _threads_after_parallel_work(passing: bool) -> tuple[int, int]:
    """(threads before, after) a parallel torch op in a child, done in a passing thread or not."""
    call = 'call_in_passing_thread(work)' if passing else 'work()'
    wait_s = 10.0 if passing else 0.5  # for the threads to leave, where they should
    script = textwrap.dedent(f"""
        import os
        import time
        import torch
        from bevformer_ros.model.passing_thread import call_in_passing_thread
        x = torch.randn(1000, 1000)

        def work():
            return float((x @ x).relu().sum())

        before = len(os.listdir('/proc/self/task'))
        {call}
        deadline = time.monotonic() + {wait_s}
        while len(os.listdir('/proc/self/task')) > before and time.monotonic() < deadline:
            time.sleep(0.05)  # a pool's threads leave when told to, not at once
        print(before, len(os.listdir('/proc/self/task')))
    """)
    out = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = out.stdout.split()[-2:]
    return int(before), int(after)


@pytest.mark.skipif(
    not os.path.isdir('/proc/self/task') or (os.cpu_count() or 1) < 2,
    reason='needs Linux /proc and 2 CPUs (an OpenMP pool of one thread has no workers)',
)
def test_parallel_work_leaves_no_openmp_pool_behind():
    before, after = _threads_after_parallel_work(passing=False)
    assert after > before  # the probe sees a pool: the calling thread keeps one for its life
    before, after = _threads_after_parallel_work(passing=True)
    assert after == before

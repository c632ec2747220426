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
Run torch set-up work in a thread that ends, so that its OpenMP thread pool ends with it.

libgomp keeps one pool of worker threads per thread that ever ran a parallel region, for that
thread's life. When the pools together hold more threads than there are CPUs, every pool spins
only briefly before sleeping between parallel regions, and a forward pass of a few hundred small
ops pays a wake-up for each. The node builds its model at configure (main thread) and runs it on
its inference thread: with the main thread's pool alive as well, the tiny model's forward took
twice as long on a 2-core machine. Work done through `call_in_passing_thread` leaves no pool.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from typing import Any, TypeVar

T = TypeVar('T')


def call_in_passing_thread(fn: Callable[..., T], *args: Any, name: str = 'setup') -> T:
    """Return `fn(*args)` computed in a new thread that has ended; its exception is re-raised."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome['value'] = fn(*args)
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome['error'] = exc

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']

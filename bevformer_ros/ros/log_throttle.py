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
One log line per distinct problem per period, however often it repeats.

rclpy's `throttle_duration_sec` throttles per call site, so two different faults reported from the
same line within the period would show only the first. `LogThrottle` keys on the message with its
numbers masked (stamps, sizes and counts vary between repeats of one problem) and says how many
repeats it held back.
"""

from __future__ import annotations

from collections.abc import Callable
import re
import threading
import time

_NUMBER = re.compile(r'[-+]?\d[\d.e+-]*')


def problem_key(text: str) -> str:
    """`text` with every number replaced by '#': repeats of one problem share the key."""
    return _NUMBER.sub('#', text)


class LogThrottle:
    """`allow(text)` is the text to log now (with a held-back count after repeats) or None."""

    def __init__(
        self, period_s: float, clock: Callable[[], float] = time.monotonic, max_keys: int = 256
    ) -> None:
        self.period_s = period_s
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, text: str) -> str | None:
        key = problem_key(text)
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            # bounded: forget the oldest
            if len(self._last) >= self._max_keys and key not in self._last:
                oldest = min(self._last, key=self._last.__getitem__)
                del self._last[oldest]
                self._held.pop(oldest, None)
            self._last[key] = now
            held = self._held.pop(key, 0)
        return (
            text if not held else f'{text} ({held} more like this in the last {now - last:.0f} s)'
        )

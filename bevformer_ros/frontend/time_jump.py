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
Detect that the image stamps went back in time (a bag loop, a restarted simulator).

Every queue between the subscriptions and the model is ordered by stamp and trims its oldest
entry: after a jump back, each new message is older than a full queue of pre-jump ones and is
trimmed on arrival, so nothing matches again. `TimeJumpWatch.check` is asked about every image
before the queues see it and says when they must be cleared.

A jump is judged per camera (a camera whose own stamp goes back by more than the threshold), so
that a camera lagging behind the others is no jump. The cameras go back one after the other; the
first starts the new timeline, the others, still ahead on the old one at that moment, join it
without clearing again (that would drop the new messages of the cameras that already joined).
"""

from __future__ import annotations

import threading


class TimeJumpWatch:
    """Per camera image stamps -> whether a message starts a new timeline."""

    def __init__(self, count: int, threshold_ns: int) -> None:
        """Watch `count` cameras; a jump is a camera's stamp going back by > `threshold_ns`."""
        self.threshold_ns = threshold_ns
        self._lock = threading.Lock()
        self._last: list[int | None] = [None] * count  # newest stamp per camera
        self._to_join: set[int] = set()  # cameras still on the timeline before the last jump
        self.jumps = 0

    def check(self, index: int, stamp: int) -> bool:
        """Record camera `index`'s `stamp`; True when it starts a new timeline (clear queues)."""
        with self._lock:
            last, self._last[index] = self._last[index], stamp
            if last is None or stamp >= last - self.threshold_ns:
                return False
            if index in self._to_join:  # joins the timeline another camera already started
                self._to_join.discard(index)
                return False
            self._to_join = {
                i
                for i, other in enumerate(self._last)
                if i != index and other is not None and other > stamp + self.threshold_ns
            }
            self.jumps += 1
            return True

    def restart(self) -> None:
        """Forget the stamps (a reset was requested: whatever comes next is a new sequence)."""
        with self._lock:
            self._last = [None] * len(self._last)
            self._to_join = set()

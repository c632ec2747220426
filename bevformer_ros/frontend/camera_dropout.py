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
Keep forming camera sets while one or two cameras are silent (dropout), marked missing.

The approximate-time synchronizer waits for every camera, so one dead camera would stop all output.
`DropoutAssembler` listens to the same inputs. A camera is *silent* once it has delivered nothing
for `timeout_s` (arrival time) while some other camera delivered at least `MIN_MISSED` messages
since its last one; the second condition keeps the first cameras to arrive after a pause of the
whole rig from declaring the others dead. While a camera is silent and at least `min_cameras` are
live, each arriving message is matched against the live cameras with the synchronizer's
approximate-time rule, and a complete live set is signalled with None in place of every silent
camera (the model then leaves those cameras out of spatial cross-attention: Autoware's bevfusion
masks stale cameras the same way). With every camera live this filter signals nothing and the
synchronizer does the work. When a camera returns, a set may be signalled here and again by the
synchronizer with the same stamp; `sync.OrderGuard` drops the repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import threading
import time
from typing import Any

from bevformer_ros.core.stamps import NS_PER_S, stamp_ns
from bevformer_ros.frontend.sync import approximate_match, SimpleFilter

MIN_MISSED = (
    2  # messages another camera delivered since a camera's last one before it can count as silent
)


@dataclass(frozen=True)
class CameraLiveness:
    """
    Hold the liveness of each camera, in input order.

    Per camera: silent (left out of sets), seconds since its last image (None: never), and images
    received so far.
    """

    silent: tuple[bool, ...]
    silent_s: tuple[float | None, ...]
    received: tuple[int, ...]

    @property
    def live_count(self) -> int:
        return sum(not s for s in self.silent)


class DropoutAssembler(SimpleFilter):
    """Signals sets of the live cameras (None for silent ones) while any camera is silent."""

    def __init__(
        self,
        inputs: Sequence[Any],
        queue_size: int,
        slop_s: float,
        timeout_s: float,
        min_cameras: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        count = len(inputs)
        if not 1 <= min_cameras <= count or timeout_s <= 0 or queue_size < 1:
            raise ValueError(
                f'need 1 <= min_cameras <= {count}, timeout_s > 0 and queue_size >= 1; got '
                f'{min_cameras}, {timeout_s}, {queue_size}'
            )
        self.queue_size = queue_size
        self.slop_ns = int(slop_s * NS_PER_S)
        self.timeout_s = timeout_s
        self.min_cameras = min_cameras
        self._clock = clock
        self._lock = threading.Lock()
        # stamp -> message, per camera
        self._queues: list[dict[int, Any]] = [{} for _ in range(count)]
        self._last_arrival: list[float | None] = [None] * count
        self._since = clock()  # a camera that never delivered counts as silent from here
        self._received = [0] * count
        # `_received` when camera i last delivered
        self._seen_at = [[0] * count for _ in range(count)]
        self.sets = 0  # degraded sets signalled
        self.input_connections = [f.registerCallback(self.add, i) for i, f in enumerate(inputs)]

    def add(self, msg: Any, index: int) -> None:
        stamp = stamp_ns(msg)
        if stamp is None:
            return
        with self._lock:
            now = self._clock()
            self._received[index] += 1
            self._last_arrival[index] = now
            self._seen_at[index] = list(self._received)
            queue = self._queues[index]
            queue[stamp] = msg
            while len(queue) > self.queue_size:
                del queue[min(queue)]
            # A message older than a full queue is trimmed on arrival and can join no set.
            msgs = self._assemble(index, stamp, now) if stamp in queue else None
        if msgs is not None:
            self.signalMessage(*msgs)

    def clear(self) -> None:
        """Drop the queued messages (time jumped back); liveness, which is arrival time, stays."""
        with self._lock:
            for queue in self._queues:
                queue.clear()

    def liveness(self) -> CameraLiveness:
        with self._lock:
            now = self._clock()
            return CameraLiveness(
                silent=tuple(self._silent(i, now) for i in range(len(self._queues))),
                silent_s=tuple(None if t is None else now - t for t in self._last_arrival),
                received=tuple(self._received),
            )

    def _assemble(self, index: int, stamp: int, now: float) -> list[Any] | None:
        live = [i for i in range(len(self._queues)) if not self._silent(i, now)]
        if len(live) == len(self._queues) or len(live) < self.min_cameras:
            return None
        keys = approximate_match(
            [self._queues[i] for i in live], live.index(index), stamp, self.slop_ns
        )
        if keys is None:
            return None
        msgs: list[Any] = [None] * len(self._queues)
        for i, key in zip(live, keys):
            msgs[i] = self._queues[i].pop(key)
        self.sets += 1
        return msgs

    def _silent(self, index: int, now: float) -> bool:
        last = self._last_arrival[index]
        if now - (self._since if last is None else last) <= self.timeout_s:
            return False
        missed = max(r - s for r, s in zip(self._received, self._seen_at[index]))
        return missed >= MIN_MISSED

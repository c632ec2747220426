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
Random arrival sequences for approximate-time synchronisers, and a runner that records the sets.

Shared by the property test (fallback only) and the differential test (fallback against the real
message_filters); any module with message_filters' SimpleFilter and ApproximateTimeSynchronizer can
be run.
"""

from __future__ import annotations

from dataclasses import dataclass
import random
from types import ModuleType

NS_PER_MS = 1_000_000


class _PlainTime:
    """The `builtin_interfaces/Time` shape, where the message package is absent."""

    def __init__(self, sec: int = 0, nanosec: int = 0) -> None:
        self.sec, self.nanosec = sec, nanosec


try:  # the real message_filters accepts only the real message type (rclpy Time.from_msg)
    from builtin_interfaces.msg import Time as _Time
except ImportError:
    _Time = _PlainTime


class _Header:
    def __init__(self, ns: int) -> None:
        sec, nanosec = divmod(ns, 1_000_000_000)
        self.stamp = _Time(sec=sec, nanosec=nanosec)


class Msg:
    def __init__(self, ident: int, ns: int) -> None:
        self.ident = ident
        self.header = _Header(ns)


@dataclass(frozen=True)
class Sequence:
    inputs: int
    queue_size: int
    slop_s: float
    arrivals: tuple[tuple[int, int], ...]  # (input, stamp in ms), in arrival order


def random_sequence(rng: random.Random) -> Sequence:
    """Return a short sequence whose stamps collide, arrive late and overflow small queues."""
    inputs = rng.randint(2, 4)
    arrivals = tuple(
        (rng.randrange(inputs), rng.randrange(0, 600, rng.choice((10, 25, 50))))
        for _ in range(rng.randint(1, 30))
    )
    return Sequence(inputs, rng.randint(1, 4), rng.choice((0.02, 0.05, 0.1, 0.25)), arrivals)


def run(backend: ModuleType, seq: Sequence) -> list[tuple[int, ...]]:
    """Feed `seq` through `backend`'s ApproximateTimeSynchronizer; return the sets' message ids."""
    filters = [backend.SimpleFilter() for _ in range(seq.inputs)]
    sync = backend.ApproximateTimeSynchronizer(filters, seq.queue_size, seq.slop_s)
    sets: list[tuple[int, ...]] = []
    sync.registerCallback(lambda *msgs: sets.append(tuple(m.ident for m in msgs)))
    for ident, (index, ms) in enumerate(seq.arrivals):
        filters[index].signalMessage(Msg(ident, ms * NS_PER_MS))
    return sets

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
Synchronise the six camera streams: the ros2/message_filters Python API, or an in-project fallback.

`select_backend()` returns the real `message_filters` classes when that package imports (a full ROS
install: `apt install ros-kilted-message-filters`) and otherwise the classes below. They follow the
Kilted (7.1.x) semantics of message_filters:

- `SimpleFilter.registerCallback(cb, *args) -> conn`; `signalMessage(*msgs)` calls
  `cb(*(msgs + args))`.
- `TimeSynchronizer(fs, queue_size)`: one dict stamp → message per input, trimmed to `queue_size`
  by dropping the oldest; on a stamp present in every input the set is signalled in input order and
  older stamps are deleted.
- `ApproximateTimeSynchronizer(fs, queue_size, slop, queue_offset=False, allow_headerless=False,
  sync_arrival_time=False)`: on each message, candidates from every other input within `slop`
  (inclusive) are sorted by distance; `itertools.product` over them; the first combination with
  max - min < slop (strict) is signalled in input order and removed. The 4th positional argument
  is `queue_offset` since Kilted (it was `allow_headerless` in Jazzy): pass the options by keyword.

Differences, all deliberate: connection ids are never reused after `unregisterCallback`; a callback
that raises does not leave the lock held; `queue_offset[i]` (ns) shifts input i's stamps
consistently (upstream compares the arriving message at its unshifted stamp); `Cache` times are
`Stamp`s, integer nanoseconds that compare with rclpy Times. Stamps are read duck-typed from
`msg.header.stamp` (`builtin_interfaces/Time` or `rclpy.time.Time`); headerless / arrival times use
`time.time_ns()`, what an unattached `rclpy.clock.ROSClock` reads.

`SpreadGuard` sits behind either backend: it rejects sets whose stamps spread wider than a bound
and keeps `SyncStats`. `OrderGuard` comes last: it drops a set that repeats the previous stamp or
arrives a little out of order, and lets a large backwards step through (a bag loop, which the
temporal reset policy handles). Running `signalMessage` inside the synchroniser lock is upstream
behaviour; keep callbacks cheap (hand the set to a `LatestSlot`). Sets may hold None for a missing
camera (`camera_dropout`); the guards skip those.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import importlib
import importlib.util
import itertools
import logging
import threading
import time
from typing import Any

from bevformer_ros.core.stamps import NS_PER_S, stamp_ns, time_ns

_LOG = logging.getLogger(__name__)


class SimpleFilter:
    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Callable, tuple]] = {}
        self._next_conn = 0

    def registerCallback(self, cb: Callable, *args: Any) -> int:  # noqa: N802 (message_filters)
        conn = self._next_conn
        self._next_conn += 1
        self.callbacks[conn] = (cb, args)
        return conn

    def unregisterCallback(self, conn: int) -> None:  # noqa: N802 (message_filters API)
        self.callbacks.pop(conn, None)

    def signalMessage(self, *msg: Any) -> None:  # noqa: N802 (message_filters API)
        for cb, args in list(self.callbacks.values()):
            cb(*(msg + args))


class Subscriber(SimpleFilter):
    """A subscription as a filter. Only `node` talks to rclpy, so this module never imports it."""

    def __init__(
        self, node: Any, msg_type: Any, topic: str, qos_profile: Any = 10, **kwargs: Any
    ) -> None:
        super().__init__()
        self.node = node
        self.topic = topic
        self.sub = node.create_subscription(
            msg_type, topic, self.callback, qos_profile=qos_profile, **kwargs
        )

    def callback(self, msg: Any) -> None:
        self.signalMessage(msg)

    def getTopic(self) -> str:  # noqa: N802 (message_filters API)
        return self.topic

    def __getattr__(self, key: str) -> Any:
        sub = self.__dict__.get('sub')
        if sub is None or key.startswith('__'):
            raise AttributeError(key)
        return getattr(sub, key)


class Stamp(int):
    """
    Integer nanoseconds that compare with rclpy Times too, as message_filters' Cache times do.

    Upstream stores `rclpy.time.Time` objects; this module may not import rclpy, so a stamp is an
    int that also offers `.nanoseconds` and orders against anything that has `.nanoseconds`
    (rclpy's Time returns NotImplemented for foreign types, so Python asks this side).
    """

    @property
    def nanoseconds(self) -> int:
        return int(self)

    def __eq__(self, other: object) -> bool:
        return int(self) == _ns(other) if _comparable(other) else NotImplemented

    def __ne__(self, other: object) -> bool:
        return int(self) != _ns(other) if _comparable(other) else NotImplemented

    def __lt__(self, other: object) -> bool:
        return int(self) < _ns(other) if _comparable(other) else NotImplemented

    def __le__(self, other: object) -> bool:
        return int(self) <= _ns(other) if _comparable(other) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return int(self) > _ns(other) if _comparable(other) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return int(self) >= _ns(other) if _comparable(other) else NotImplemented

    __hash__ = int.__hash__


def _comparable(value: object) -> bool:
    return isinstance(value, int) or hasattr(value, 'nanoseconds')


def header_stamp(msg: Any) -> Stamp | None:
    """
    Return `msg.header.stamp` as a Stamp; None for a message without one.

    Accepts what message_filters accepts (`builtin_interfaces/Time`, `rclpy.time.Time`) and also
    integer nanoseconds, which plain test messages and bag tools use.
    """
    stamp = getattr(getattr(msg, 'header', None), 'stamp', None)
    if stamp is None:
        return None
    return Stamp(stamp) if isinstance(stamp, int) else Stamp(time_ns(stamp))


class Cache(SimpleFilter):
    """
    The last `cache_size` messages of a filter, queryable by stamp; message_filters' Cache API.

    Times are `Stamp`s: they equal the rclpy Times upstream would store, and queries take rclpy
    Times, `builtin_interfaces/Time`-like values or integer nanoseconds. `time_getter(msg)`
    (upstream's hook) returns a message's time or None; the default reads `header.stamp`.
    """

    def __init__(
        self,
        f: Any,
        cache_size: int = 1,
        allow_headerless: bool = False,
        time_getter: Callable[[Any], Any] | None = None,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__()
        self.cache_size = cache_size
        self.allow_headerless = allow_headerless
        self.time_getter = time_getter
        self.cache_msgs: list[Any] = []
        self.cache_times: list[Stamp] = []
        self._clock_ns = clock_ns
        self.connectInput(f)

    def connectInput(self, f: Any) -> None:  # noqa: N802 (message_filters API)
        self.incoming_connection = f.registerCallback(self.add)

    def add(self, msg: Any) -> None:
        stamp = self._time_of(msg)
        if stamp is None:
            if not self.allow_headerless:
                _LOG.warning(
                    'Cache: dropping a message without header.stamp (allow_headerless is False)'
                )
                return
            stamp = Stamp(self._clock_ns())
        self.cache_times.append(stamp)
        self.cache_msgs.append(msg)
        if len(self.cache_msgs) > self.cache_size:
            del self.cache_msgs[0], self.cache_times[0]
        self.signalMessage(msg)

    def _time_of(self, msg: Any) -> Stamp | None:
        if self.time_getter is None:
            return header_stamp(msg)
        got = self.time_getter(msg)
        return None if got is None else Stamp(_ns(got))

    def getInterval(self, from_stamp: Any, to_stamp: Any) -> list[Any]:  # noqa: N802 (API)
        lo, hi = _ns(from_stamp), _ns(to_stamp)
        if lo > hi:
            raise ValueError(f'getInterval: from_stamp {lo} is after to_stamp {hi}')
        return [m for m, t in zip(self.cache_msgs, self.cache_times) if lo <= t <= hi]

    def getElemAfterTime(self, stamp: Any) -> Any:  # noqa: N802 (message_filters API)
        newer = [m for m, t in zip(self.cache_msgs, self.cache_times) if t >= _ns(stamp)]
        return newer[0] if newer else None

    def getElemBeforeTime(self, stamp: Any) -> Any:  # noqa: N802 (message_filters API)
        older = [m for m, t in zip(self.cache_msgs, self.cache_times) if t <= _ns(stamp)]
        return older[-1] if older else None

    def getLatestTime(self) -> Stamp | None:  # noqa: N802 (message_filters API)
        """Return the time of the message added last (not the largest: arrival order counts)."""
        return self.cache_times[-1] if self.cache_times else None

    getLastestTime = getLatestTime  # noqa: N815 (the name before message_filters fixed the typo)

    def getOldestTime(self) -> Stamp | None:  # noqa: N802 (message_filters API)
        return self.cache_times[0] if self.cache_times else None

    def getLast(self) -> Any:  # noqa: N802 (message_filters API)
        """Return the first cached message at or after the latest time, as upstream does."""
        latest = self.getLatestTime()
        return None if latest is None else self.getElemAfterTime(latest)


def set_stamp_ns(msgs: Sequence[Any]) -> int | None:
    """Return the stamp of a set: the first present message's (the reference camera when there)."""
    for msg in msgs:
        stamp = stamp_ns(msg) if msg is not None else None
        if stamp is not None:
            return stamp
    return None


def approximate_match(
    queues: Sequence[dict[int, Any]], index: int, stamp: int, slop_ns: int
) -> list[int] | None:
    """
    Return the stamps of the first combination spanning < slop, one per queue; None if none.

    The combination includes `stamp` of queue `index`. Candidates within slop (inclusive) are tried
    closest first.
    """
    candidates = []
    for i, queue in enumerate(queues):
        if i == index:
            continue
        near = sorted(
            (s for s in queue if abs(s - stamp) <= slop_ns), key=lambda s: abs(s - stamp)
        )
        if not near:
            return None
        candidates.append(near)
    for combo in itertools.product(*candidates):
        keys = list(combo)
        keys.insert(index, stamp)
        if max(keys) - min(keys) < slop_ns:
            return keys
    return None


def _ns(stamp: Any) -> int:
    """Return the nanoseconds of an int, an rclpy Time or a `builtin_interfaces/Time`-like."""
    return int(stamp) if isinstance(stamp, int) else time_ns(stamp)


def _trim(queue: dict[int, Any], queue_size: int) -> None:
    while len(queue) > queue_size:
        del queue[min(queue)]


class TimeSynchronizer(SimpleFilter):
    """Signals one message per input when all inputs hold the same stamp."""

    def __init__(self, fs: Sequence[Any], queue_size: int) -> None:
        super().__init__()
        self.queue_size = queue_size
        self.lock = threading.Lock()
        self.connectInput(fs)

    def connectInput(self, fs: Sequence[Any]) -> None:  # noqa: N802 (message_filters API)
        self.queues: list[dict[int, Any]] = [{} for _ in fs]
        self.input_connections = [
            f.registerCallback(self.add, q, i) for i, (f, q) in enumerate(zip(fs, self.queues))
        ]

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        stamp = stamp_ns(msg)
        if stamp is None:
            raise ValueError(
                'TimeSynchronizer needs msg.header.stamp; use ApproximateTimeSynchronizer'
                '(..., allow_headerless=True) for headerless messages'
            )
        with self.lock:
            my_queue[stamp] = msg
            _trim(my_queue, self.queue_size)
            common = set.intersection(*(set(q) for q in self.queues))
            if not common:
                return
            t = min(common)
            msgs = [q.pop(t) for q in self.queues]
            # like the C++ policy: a set older than a signalled one can never complete
            for q in self.queues:
                for old in [s for s in q if s < t]:
                    del q[old]
            self.signalMessage(*msgs)


class ApproximateTimeSynchronizer(TimeSynchronizer):
    """Signals one message per input when their stamps span less than `slop` seconds."""

    def __init__(
        self,
        fs: Sequence[Any],
        queue_size: int,
        slop: float,
        queue_offset: Sequence[int] | bool = False,
        allow_headerless: bool = False,
        sync_arrival_time: bool = False,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        super().__init__(fs, queue_size)
        self.slop_ns = int(slop * NS_PER_S)  # what rclpy Duration(seconds=slop) stores
        self.queue_offset = queue_offset
        self.allow_headerless = allow_headerless
        self.sync_arrival_time = sync_arrival_time
        self.headerless_dropped = 0
        self._clock_ns = clock_ns

    def add(self, msg: Any, my_queue: dict[int, Any], my_queue_index: int | None = None) -> None:
        stamp = None if self.sync_arrival_time else stamp_ns(msg)
        if stamp is None:
            if not (self.allow_headerless or self.sync_arrival_time):
                self.headerless_dropped += 1
                if self.headerless_dropped == 1:
                    _LOG.warning(
                        'ApproximateTimeSynchronizer: dropping messages without header.stamp '
                        '(set allow_headerless=True to stamp them with the arrival time)'
                    )
                return
            stamp = self._clock_ns()
        if my_queue_index is None:
            my_queue_index = next(i for i, q in enumerate(self.queues) if q is my_queue)
        if self.queue_offset:
            stamp -= int(self.queue_offset[my_queue_index])
        with self.lock:
            my_queue[stamp] = msg
            _trim(my_queue, self.queue_size)
            if stamp not in my_queue:
                # Older than a full queue: trimmed on arrival. Upstream signals only combinations
                # whose every stamp is still queued, so this message matches nothing.
                return
            keys = self._match(stamp, my_queue_index)
            if keys is None:
                return
            msgs = [q.pop(k) for q, k in zip(self.queues, keys)]
            self.signalMessage(*msgs)

    def _match(self, stamp: int, index: int) -> list[int] | None:
        """Stamps, one per input, of the first combination spanning < slop; None if none."""
        return approximate_match(self.queues, index, stamp, self.slop_ns)


@dataclass(frozen=True)
class SyncStats:
    received: tuple[int, ...]  # messages seen per input
    matched: int  # sets the synchroniser signalled
    accepted: int  # sets passed on (spread within the bound)
    rejected_spread: int  # sets dropped for spreading wider than the bound
    last_spread_s: float | None
    max_spread_s: float | None  # widest spread seen in a matched set

    @property
    def unmatched(self) -> tuple[int, ...]:
        """Per input, messages not (yet) in a set: dropped by the synchroniser or still queued."""
        return tuple(max(r - self.matched, 0) for r in self.received)


class SpreadGuard(SimpleFilter):
    """
    Passes on synchronised sets whose stamps span at most `max_spread_s`; counts everything.

    ApproximateTimeSynchronizer bounds the spread by `slop`, but a large slop (needed for jittery
    drivers) also admits sets mixing two camera frames; this bound is the physical one (StreamPETR
    uses 0.15 s).
    """

    def __init__(
        self,
        synchronizer: Any,
        max_spread_s: float,
        inputs: Sequence[Any] = (),
        on_reject: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.set_max_spread(max_spread_s)
        self.on_reject = on_reject  # called with a description of every rejected set
        self._lock = threading.Lock()
        self._received = [0] * len(inputs)
        self._matched = self._accepted = self._rejected = 0
        self._last_spread: int | None = None
        self._max_spread: int | None = None
        self.incoming_connection = synchronizer.registerCallback(self.add)
        for i, f in enumerate(inputs):
            f.registerCallback(self._count_input, i)

    def set_max_spread(self, max_spread_s: float) -> None:
        """Bound the stamp spread of the sets let through from now on (`sync.max_spread`)."""
        if not max_spread_s >= 0:
            raise ValueError(f'max_spread_s must be >= 0, got {max_spread_s}')
        self.max_spread_ns = int(round(max_spread_s * NS_PER_S))

    def _count_input(self, msg: Any, index: int) -> None:
        with self._lock:
            self._received[index] += 1

    def add(self, *msgs: Any) -> None:
        stamps = [s for s in (stamp_ns(m) for m in msgs if m is not None) if s is not None]
        spread = max(stamps) - min(stamps) if stamps else 0
        ok = spread <= self.max_spread_ns
        with self._lock:
            self._matched += 1
            self._last_spread = spread
            self._max_spread = (
                spread if self._max_spread is None else max(self._max_spread, spread)
            )
            if ok:
                self._accepted += 1
            else:
                self._rejected += 1
        if ok:
            self.signalMessage(*msgs)
        elif self.on_reject is not None:
            self.on_reject(
                f'set {min(stamps) / NS_PER_S:.3f} spreads {spread / NS_PER_S * 1e3:.0f} ms > '
                f'{self.max_spread_ns / NS_PER_S * 1e3:.0f} ms (sync.max_spread); dropped'
            )

    def stats(self) -> SyncStats:
        with self._lock:
            last, widest = self._last_spread, self._max_spread
            return SyncStats(
                received=tuple(self._received),
                matched=self._matched,
                accepted=self._accepted,
                rejected_spread=self._rejected,
                last_spread_s=None if last is None else last / NS_PER_S,
                max_spread_s=None if widest is None else widest / NS_PER_S,
            )


class OrderGuard(SimpleFilter):
    """
    Pass on sets in stamp order; drop a repeated stamp and a set slightly older than the last.

    - `duplicate_stamp`: the same stamp as the last set passed on (a driver or bag that repeats a
      frame, or a degraded set followed by the complete one when a camera returns);
    - `out_of_order`: at most `max_out_of_order_s` older than the last set (late delivery); running
      the model on it would only make the temporal history jump back and forth;
    - an older stamp beyond that bound passes: time really went back (bag loop), the reset policy
      drops the history. So does the `max_consecutive_drops`-th drop in a row, so that a short
      looping bag or a clock that stepped back a little cannot silence the node.

    `on_drop(kind, detail)` is called for every dropped set (outside the lock): the node logs and
    counts it.
    """

    def __init__(
        self,
        source: Any,
        max_out_of_order_s: float,
        max_consecutive_drops: int = 3,
        on_drop: Callable[[str, str], None] | None = None,
    ) -> None:
        super().__init__()
        if not max_out_of_order_s >= 0 or max_consecutive_drops < 1:
            raise ValueError(
                f'need max_out_of_order_s >= 0 and max_consecutive_drops >= 1, got '
                f'{max_out_of_order_s}, {max_consecutive_drops}'
            )
        self.max_out_of_order_ns = int(round(max_out_of_order_s * NS_PER_S))
        self.max_consecutive_drops = max_consecutive_drops
        self.on_drop = on_drop
        self._lock = threading.Lock()
        self._last: int | None = None
        self._consecutive = 0
        self.dropped: dict[str, int] = {'duplicate_stamp': 0, 'out_of_order': 0}
        self.incoming_connection = source.registerCallback(self.add)

    def add(self, *msgs: Any) -> None:
        stamp = set_stamp_ns(msgs)
        if stamp is None:
            return
        with self._lock:
            kind, last = self._classify(stamp), self._last
            if kind is not None and self._consecutive + 1 < self.max_consecutive_drops:
                self._consecutive += 1
                self.dropped[kind] += 1
            else:
                self._last, self._consecutive, kind = stamp, 0, None
        if kind is None:
            self.signalMessage(*msgs)
            return
        if self.on_drop is not None:
            how = (
                'repeats the stamp of'
                if kind == 'duplicate_stamp'
                else f'is {(last - stamp) / NS_PER_S:.3f} s older than'
            )
            self.on_drop(kind, f'set {stamp / NS_PER_S:.3f} {how} the last set; dropped')

    def _classify(self, stamp: int) -> str | None:
        if self._last is None or stamp > self._last:
            return None
        if stamp == self._last:
            return 'duplicate_stamp'
        return 'out_of_order' if self._last - stamp <= self.max_out_of_order_ns else None

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.dropped)


@dataclass(frozen=True)
class SyncBackend:
    name: str  # 'message_filters' or 'fallback'
    SimpleFilter: type
    Subscriber: type
    TimeSynchronizer: type
    ApproximateTimeSynchronizer: type


FALLBACK = SyncBackend(
    'fallback', SimpleFilter, Subscriber, TimeSynchronizer, ApproximateTimeSynchronizer
)


def _message_filters_available() -> bool:
    try:
        from bevformer_ros import optional_ros
    except ImportError:  # the foundation module may not exist yet: probe directly
        optional_ros = None
    if optional_ros is not None and hasattr(optional_ros, 'available'):
        return bool(optional_ros.available('message_filters'))
    return importlib.util.find_spec('message_filters') is not None


def select_backend(prefer_message_filters: bool = True) -> SyncBackend:
    """Return the real message_filters classes when importable (and preferred), else our own."""
    if prefer_message_filters and _message_filters_available():
        try:
            mf = importlib.import_module('message_filters')
            return SyncBackend(
                'message_filters',
                mf.SimpleFilter,
                mf.Subscriber,
                mf.TimeSynchronizer,
                mf.ApproximateTimeSynchronizer,
            )
        except (ImportError, AttributeError) as exc:
            _LOG.warning(
                'message_filters found but unusable (%s); using the in-project synchroniser', exc
            )
    return FALLBACK

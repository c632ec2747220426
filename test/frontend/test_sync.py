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
The in-project synchroniser, driven the way ros2/message_filters' own tests drive theirs.

Inputs are plain SimpleFilter objects fed with `signalMessage`, messages are small objects with
`header.stamp` (sec, nanosec); no rclpy, no executor. The expected sets are written out by hand.
"""

from __future__ import annotations

import random
import threading
import time

from bevformer_ros.frontend import sync
from bevformer_ros.frontend.sync import (
    ApproximateTimeSynchronizer,
    Cache,
    SimpleFilter,
    SpreadGuard,
    stamp_ns,
    Subscriber,
    TimeSynchronizer,
)
import pytest

NS = 1_000_000_000


class Stamp:
    def __init__(self, ns: int):
        self.sec, self.nanosec = divmod(ns, NS)


class Header:
    def __init__(self, ns: int):
        self.stamp = Stamp(ns)


class Msg:
    def __init__(self, t: float, data=None):
        self.header = Header(round(t * NS))
        self.data = data

    def __repr__(self):
        return f'Msg({stamp_ns(self) / NS}, {self.data})'


class HeaderlessMsg:
    def __init__(self, data=None):
        self.data = data


def collect(synchronizer):
    out = []
    synchronizer.registerCallback(lambda *msgs: out.append(msgs))
    return out


# --- SimpleFilter
# -------------------------------------------------------------------------------------------


def test_simple_filter_passes_extra_args_and_unregisters():
    f = SimpleFilter()
    got = []
    a = f.registerCallback(lambda m, tag: got.append((m, tag)), 'a')
    b = f.registerCallback(lambda m, tag: got.append((m, tag)), 'b')
    f.signalMessage(1)
    f.unregisterCallback(a)
    c = f.registerCallback(lambda m: got.append((m, 'c')))
    f.signalMessage(2)
    assert got == [(1, 'a'), (1, 'b'), (2, 'b'), (2, 'c')]
    assert len({a, b, c}) == 3  # ids are not reused after unregistering


def test_stamp_ns_reads_sec_nanosec_and_rclpy_time():
    from rclpy.time import Time  # only the value class, no context needed

    class RclpyStamped:
        def __init__(self):
            self.header = type('H', (), {'stamp': Time(seconds=3, nanoseconds=5)})()

    assert stamp_ns(Msg(1.25)) == 1_250_000_000
    assert stamp_ns(RclpyStamped()) == 3 * NS + 5
    assert stamp_ns(HeaderlessMsg()) is None


# --- TimeSynchronizer (exact)
# ------------------------------------------------------------------------------


def test_exact_sync_pairs_equal_stamps_for_every_queue_length():
    for n in range(1, 10):
        seq0 = [Msg(t, 0) for t in range(n)]
        seq1 = [Msg(t, 1) for t in range(n)]
        m0, m1 = SimpleFilter(), SimpleFilter()
        got = collect(TimeSynchronizer([m0, m1], n))
        for msg in seq0:
            m0.signalMessage(msg)
        assert got == []
        for msg in seq1:
            m1.signalMessage(msg)
        assert got == list(zip(seq0, seq1))


def test_exact_sync_drops_sets_older_than_a_signalled_one():
    f0, f1 = SimpleFilter(), SimpleFilter()
    got = collect(TimeSynchronizer([f0, f1], 10))
    x0, x1, y0, y1 = Msg(0, 'x0'), Msg(0, 'x1'), Msg(1, 'y0'), Msg(1, 'y1')
    f0.signalMessage(x0)
    f1.signalMessage(y1)
    f0.signalMessage(y0)
    assert got == [(y0, y1)]
    f1.signalMessage(x1)  # x0 was deleted when t=1 signalled, so t=0 can never complete
    assert got == [(y0, y1)]


def test_exact_sync_headerless_message_is_a_clear_error():
    f0, f1 = SimpleFilter(), SimpleFilter()
    TimeSynchronizer([f0, f1], 3)
    with pytest.raises(ValueError, match='allow_headerless'):
        f0.signalMessage(HeaderlessMsg())


# --- ApproximateTimeSynchronizer
# ----------------------------------------------------------------------------


def test_approx_sync_pairs_in_lockstep():
    m0, m1 = SimpleFilter(), SimpleFilter()
    got = collect(ApproximateTimeSynchronizer([m0, m1], 1, 0.1))
    for t in range(10):
        got.clear()
        a, b = Msg(t, 33), Msg(t, 34)
        m0.signalMessage(a)
        assert got == []
        m1.signalMessage(b)
        assert got == [(a, b)]


def test_approx_sync_recombines_scrambled_sequences():
    rng = random.Random(0)
    for n in range(1, 10):
        m0, m1 = SimpleFilter(), SimpleFilter()
        seq0 = [Msg(t, rng.random()) for t in range(n)]
        seq1 = [Msg(t, rng.random()) for t in range(n)]
        got = collect(ApproximateTimeSynchronizer([m0, m1], n, 0.1))
        for msg in rng.sample(seq0, n):
            m0.signalMessage(msg)
        assert got == []
        for msg in rng.sample(seq1, n):
            m1.signalMessage(msg)
        assert set(got) == set(zip(seq0, seq1))


def test_approx_sync_six_cameras_with_jitter_and_interleaved_arrival():
    rng = random.Random(1)
    cams = [SimpleFilter() for _ in range(6)]
    got = collect(ApproximateTimeSynchronizer(cams, 5, 0.03))
    frames = []
    for k in range(40):  # 12 Hz frames, each camera within +-10 ms of the trigger
        frames.append([Msg(k / 12 + rng.uniform(-0.01, 0.01), (k, c)) for c in range(6)])
    # jittery delivery order
    arrivals = [(k + rng.uniform(0, 0.5), c) for k in range(40) for c in range(6)]
    for _, c in sorted(arrivals):
        k = next(k for k in range(40) if frames[k][c] is not None)
        cams[c].signalMessage(frames[k][c])
        frames[k][c] = None
    assert len(got) == 40
    for k, msgs in enumerate(sorted(got, key=lambda s: s[0].data[0])):
        assert [m.data for m in msgs] == [(k, c) for c in range(6)]  # one frame, in input order


def test_approx_sync_slop_is_strict():
    slop = 0.05
    for delta_ns, expect in ((50_000_000, False), (49_999_999, True)):
        m0, m1 = SimpleFilter(), SimpleFilter()
        got = collect(ApproximateTimeSynchronizer([m0, m1], 3, slop))
        a = Msg(10.0)
        b = Msg(0)
        b.header = Header(10 * NS + delta_ns)
        m0.signalMessage(a)
        m1.signalMessage(b)
        assert (got == [(a, b)]) is expect, delta_ns


def test_approx_sync_picks_the_closest_candidate():
    m0, m1 = SimpleFilter(), SimpleFilter()
    got = collect(ApproximateTimeSynchronizer([m0, m1], 5, 0.05))
    early, late = Msg(1.00, 'early'), Msg(1.04, 'late')
    m0.signalMessage(early)
    m0.signalMessage(late)
    b = Msg(1.03, 'b')
    m1.signalMessage(b)  # both are within slop; 1.04 is 10 ms away, 1.00 is 30 ms away
    assert got == [(late, b)]


def test_approx_sync_out_of_order_arrival():
    m0, m1, m2 = SimpleFilter(), SimpleFilter(), SimpleFilter()
    got = collect(ApproximateTimeSynchronizer([m0, m1, m2], 4, 0.02))
    a = [Msg(t + 0.001 * i, (t, i)) for i, t in enumerate((3.0, 1.0, 2.0))]
    b = [Msg(t - 0.002, (t, 'b')) for t in (2.0, 3.0, 1.0)]
    c = [Msg(t, (t, 'c')) for t in (1.0, 3.0, 2.0)]
    for msg in a:
        m0.signalMessage(msg)
    for msg in b:
        m1.signalMessage(msg)
    assert got == []
    for msg in c:
        m2.signalMessage(msg)
    frames = sorted(tuple(m.data[0] for m in s) for s in got)
    assert frames == [(1.0,) * 3, (2.0,) * 3, (3.0,) * 3]


def test_approx_sync_queue_overflow_drops_the_oldest():
    m0, m1 = SimpleFilter(), SimpleFilter()
    ts = ApproximateTimeSynchronizer([m0, m1], 2, 0.01)
    got = collect(ts)
    for t in (0.0, 1.0, 2.0):
        m0.signalMessage(Msg(t, t))
    assert sorted(ts.queues[0]) == [1 * NS, 2 * NS]  # t=0 trimmed
    m1.signalMessage(Msg(0.0))
    assert got == []
    partner = Msg(2.0, 'b')
    m1.signalMessage(partner)
    assert [(s[0].data, s[1].data) for s in got] == [(2.0, 'b')]


def test_approx_sync_preserves_input_order_whoever_arrives_last():
    for last in range(4):
        fs = [SimpleFilter() for _ in range(4)]
        got = collect(ApproximateTimeSynchronizer(fs, 2, 0.05))
        msgs = [Msg(5.0 + 0.01 * i, i) for i in range(4)]
        for i in [j for j in range(4) if j != last] + [last]:
            fs[i].signalMessage(msgs[i])
        assert got == [tuple(msgs)]


def test_approx_sync_headerless_policy():
    m0, m1 = SimpleFilter(), SimpleFilter()
    strict = ApproximateTimeSynchronizer([m0, m1], 3, 10, allow_headerless=False)
    got = collect(strict)
    m0.signalMessage(Msg(100.0))
    m1.signalMessage(HeaderlessMsg())
    assert got == [] and strict.headerless_dropped == 1 and strict.queues[1] == {}

    m0, m1 = SimpleFilter(), SimpleFilter()
    lenient = ApproximateTimeSynchronizer(
        [m0, m1], 3, 10, allow_headerless=True, clock_ns=lambda: 103 * NS
    )
    got = collect(lenient)
    stamped, bare = Msg(100.0), HeaderlessMsg()
    m0.signalMessage(stamped)
    m1.signalMessage(bare)  # stamped with the clock: 3 s from 100 s, inside a 10 s slop
    assert got == [(stamped, bare)]


def test_approx_sync_arrival_time_ignores_header_stamps():
    clock = iter([7 * NS, 7 * NS + 1_000_000])
    m0, m1 = SimpleFilter(), SimpleFilter()
    got = collect(
        ApproximateTimeSynchronizer(
            [m0, m1], 3, 0.01, sync_arrival_time=True, clock_ns=lambda: next(clock)
        )
    )
    a, b = Msg(1.0), Msg(500.0)  # header stamps far apart; arrival 1 ms apart
    m0.signalMessage(a)
    m1.signalMessage(b)
    assert got == [(a, b)]


def test_approx_sync_queue_offset_shifts_one_input():
    m0, m1 = SimpleFilter(), SimpleFilter()
    got = collect(ApproximateTimeSynchronizer([m0, m1], 3, 0.01, queue_offset=[0, 50_000_000]))
    a, b = Msg(1.0), Msg(1.05)  # input 1 is known to lag by 50 ms
    m1.signalMessage(b)
    m0.signalMessage(a)
    assert got == [(a, b)]


def test_approx_sync_concurrent_inputs_lose_nothing():
    cams = [SimpleFilter() for _ in range(6)]
    got = collect(ApproximateTimeSynchronizer(cams, 50, 0.01))

    def feed(c):
        for k in range(50):
            cams[c].signalMessage(Msg(k * 0.1, (k, c)))

    threads = [threading.Thread(target=feed, args=(c,)) for c in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(s[0].data[0] for s in got) == list(range(50))


# --- Cache
# -------------------------------------------------------------------------------------------------


def test_cache_ring_buffer_and_queries():
    f = SimpleFilter()
    cache = Cache(f, cache_size=3)
    msgs = [Msg(t, t) for t in (1.0, 2.0, 3.0, 4.0)]
    for m in msgs:
        f.signalMessage(m)
    assert cache.getOldestTime() == 2 * NS and cache.getLastestTime() == 4 * NS
    assert cache.getInterval(2 * NS, 3 * NS) == msgs[1:3]
    assert cache.getElemAfterTime(int(2.5 * NS)) is msgs[2]
    assert cache.getElemBeforeTime(int(2.5 * NS)) is msgs[1]
    assert cache.getLast() is msgs[3]
    f.signalMessage(HeaderlessMsg())  # dropped: allow_headerless is False
    assert cache.getLast() is msgs[3]


# --- SpreadGuard
# -------------------------------------------------------------------------------------------


def test_spread_guard_rejects_wide_sets_and_counts():
    cams = [SimpleFilter() for _ in range(3)]
    ts = ApproximateTimeSynchronizer(cams, 3, 0.2)  # a loose slop lets two-frame mixtures through
    guard = SpreadGuard(ts, max_spread_s=0.05, inputs=cams)
    got = collect(guard)
    tight = [Msg(1.00), Msg(1.01), Msg(1.04)]  # spread 40 ms: passes
    # spread 150 ms: matched by slop, rejected by the guard
    wide = [Msg(2.00), Msg(2.02), Msg(2.15)]
    # spread exactly 50 ms: passes (the bound is inclusive)
    edge = [Msg(3.00), Msg(3.00), Msg(3.05)]
    for group in (tight, wide, edge):
        for cam, msg in zip(cams, group):
            cam.signalMessage(msg)
    cams[0].signalMessage(Msg(9.0))  # never matched
    assert got == [tuple(tight), tuple(edge)]
    stats = guard.stats()
    assert (stats.matched, stats.accepted, stats.rejected_spread) == (3, 2, 1)
    assert stats.received == (4, 3, 3) and stats.unmatched == (1, 0, 0)
    assert stats.max_spread_s == pytest.approx(0.15) and stats.last_spread_s == pytest.approx(0.05)


def test_spread_guard_rejects_negative_bound():
    with pytest.raises(ValueError, match='max_spread_s'):
        SpreadGuard(SimpleFilter(), -1.0)


def test_spread_guard_takes_a_new_bound_at_run_time():
    cams = [SimpleFilter() for _ in range(2)]
    guard = SpreadGuard(ApproximateTimeSynchronizer(cams, 3, 0.2), max_spread_s=0.05)
    got = collect(guard)
    for t0, t1 in ((1.0, 1.1), (2.0, 2.1)):  # both spread 100 ms
        cams[0].signalMessage(Msg(t0))
        cams[1].signalMessage(Msg(t1))
        guard.set_max_spread(0.15)  # the second set is judged by the new bound
    assert [m[0].header.stamp.sec for m in got] == [2]
    with pytest.raises(ValueError, match='max_spread_s'):
        guard.set_max_spread(-0.1)
    assert guard.max_spread_ns == 150_000_000  # a refused bound leaves the old one


# --- Subscriber and backend selection
# ----------------------------------------------------------------------


def test_select_backend_prefers_real_message_filters_only_when_available():
    from bevformer_ros.optional_ros import available

    assert sync.select_backend(prefer_message_filters=False) is sync.FALLBACK
    backend = sync.select_backend()
    assert backend.name == ('message_filters' if available('message_filters') else 'fallback')


def test_subscriber_forwards_messages_of_a_real_rclpy_subscription(ros_env):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from std_msgs.msg import Header as HeaderMsg

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node('sync_subscriber_test', context=ctx)
        sub = Subscriber(node, HeaderMsg, 'stamps', qos_profile=10)
        got = []
        sub.registerCallback(got.append)
        # forwarded to the rclpy object
        assert sub.getTopic() == 'stamps' and sub.topic_name == '/stamps'
        pub = node.create_publisher(HeaderMsg, 'stamps', 10)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            pub.publish(HeaderMsg(frame_id='cam'))
            executor.spin_once(timeout_sec=0.1)
        assert got and got[0].frame_id == 'cam'
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)

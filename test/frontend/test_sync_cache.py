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
The fallback Cache behaves as message_filters' Cache: the same names, rclpy Times in and out.

What upstream's own Cache tests check, restated: a ring buffer of `cache_size`, inclusive
interval queries, the newest / oldest time, headerless messages only when allowed (stamped on
arrival), a custom `time_getter`. Beyond upstream, integer-nanosecond stamps work throughout.
"""

from __future__ import annotations

from bevformer_ros.frontend.sync import Cache, SimpleFilter, Stamp
from builtin_interfaces.msg import Time as TimeMsg
import pytest
from rclpy.duration import Duration
from rclpy.time import Time

NS = 1_000_000_000


class Header:
    def __init__(self, stamp):
        self.stamp = stamp


class Msg:
    def __init__(self, stamp, data=None):
        self.header = Header(stamp)
        self.data = data


class Plain:
    def __init__(self, sec):
        self.sec = sec


def filled(stamps, size=5, **options):
    source = SimpleFilter()
    cache = Cache(source, size, **options)
    msgs = [Msg(s, i) for i, s in enumerate(stamps)]
    for m in msgs:
        source.signalMessage(m)
    return cache, msgs


def test_rclpy_times_in_and_out():
    cache, msgs = filled([Time(seconds=s) for s in range(5)])
    assert len(cache.getInterval(Time(seconds=2.5), Time(seconds=3.5))) == 1
    assert cache.getInterval(Time(seconds=2), Time(seconds=3)) == msgs[2:4]  # both ends included
    assert len(cache.getInterval(Time(), Time(seconds=4))) == 5
    assert cache.getElemAfterTime(Time()) is msgs[0]
    assert cache.getElemBeforeTime(Time(seconds=3.5)) is msgs[3]
    assert cache.getLatestTime() == Time(seconds=4) and Time(seconds=4) == cache.getLatestTime()
    assert cache.getOldestTime() == Time()
    assert cache.getLastestTime() == Time(seconds=4)  # the misspelt name older releases have


def test_a_full_cache_forgets_the_oldest():
    cache, msgs = filled([Time(seconds=s) for s in range(6)])
    assert cache.getOldestTime() == Time(seconds=1)
    assert cache.cache_msgs == msgs[1:]


def test_integer_and_message_stamps_mix_with_integer_queries():
    cache, msgs = filled([2 * NS, TimeMsg(sec=3), Time(seconds=4)])
    assert [t.nanoseconds for t in cache.cache_times] == [2 * NS, 3 * NS, 4 * NS]
    assert cache.getInterval(2 * NS, 3 * NS) == msgs[:2]
    assert cache.getElemAfterTime(int(2.5 * NS)) is msgs[1]
    assert cache.getElemBeforeTime(TimeMsg(sec=3, nanosec=1)) is msgs[1]
    assert cache.getLatestTime() == 4 * NS and cache.getLatestTime() < Time(seconds=5)


def test_latest_time_is_the_last_added_and_get_last_follows_upstream():
    cache, msgs = filled([1 * NS, 3 * NS, 2 * NS])  # arrival order, not stamp order
    assert cache.getLatestTime() == 2 * NS
    assert cache.getLast() is msgs[1]  # the first cached message at or after the latest time


def test_empty_cache_answers_none():
    cache, _ = filled([])
    assert cache.getLatestTime() is None and cache.getOldestTime() is None
    assert cache.getLast() is None and cache.getElemAfterTime(0) is None


def test_headerless_messages_only_when_allowed_and_stamped_on_arrival():
    refused, _ = filled([])
    refused.add(Plain(1))
    assert refused.cache_msgs == []
    source = SimpleFilter()
    cache = Cache(source, 5, allow_headerless=True, clock_ns=lambda: 7 * NS)
    source.signalMessage(Plain(1))
    assert cache.getLatestTime() == Time(seconds=7)
    assert cache.getInterval(Time(), Time(seconds=7) + Duration(seconds=2)) == cache.cache_msgs


def test_custom_time_getter():
    source = SimpleFilter()
    cache = Cache(source, 5, time_getter=lambda m: Time(seconds=m.sec))
    for sec in (1, 2, 3):
        source.signalMessage(Plain(sec))
    assert [t.nanoseconds for t in cache.cache_times] == [NS, 2 * NS, 3 * NS]


def test_reversed_interval_is_an_error():
    cache, _ = filled([Time(seconds=1)])
    with pytest.raises(ValueError, match='after to_stamp'):
        cache.getInterval(Time(seconds=2), Time(seconds=1))


def test_stamp_orders_against_ints_and_times_and_stays_hashable():
    stamp = Stamp(5)
    assert stamp == 5 and stamp == Time(nanoseconds=5) and Time(nanoseconds=5) == stamp
    assert Time(nanoseconds=4) < stamp < Time(nanoseconds=6) and stamp != Time(nanoseconds=6)
    assert {stamp: 1}[5] == 1
    assert (stamp == 'five') is False

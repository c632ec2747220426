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

"""LatestSlot with real producer and consumer threads."""

from __future__ import annotations

import threading
import time

from bevformer_ros.ros.latest_slot import LatestSlot, SlotClosedError
import pytest


def test_put_replaces_an_untaken_item_and_counts_it_dropped():
    slot = LatestSlot()
    assert slot.put('a') is False
    assert slot.put('b') is True
    assert slot.get(timeout=0) == 'b'
    assert slot.get(timeout=0) is None
    stats = slot.stats()
    assert (stats.put, stats.taken, stats.dropped) == (2, 1, 1)


def test_get_times_out_with_none():
    slot = LatestSlot()
    t0 = time.monotonic()
    assert slot.get(timeout=0.05) is None
    assert 0.04 <= time.monotonic() - t0 < 1.0


def test_slow_consumer_sees_increasing_items_and_the_last_one():
    slot = LatestSlot()
    n = 2000
    seen = []

    def consume():
        while True:
            try:
                item = slot.get(timeout=1.0)
            except SlotClosedError:
                return
            if item is not None:
                seen.append(item)
                time.sleep(0.001)  # a "model" slower than the producer

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(n):
        slot.put(i)
    time.sleep(0.05)  # let the consumer take the final item before closing
    slot.close()
    consumer.join(timeout=5)
    assert not consumer.is_alive()
    # never stale, never repeated, newest delivered
    assert seen == sorted(set(seen)) and seen[-1] == n - 1
    stats = slot.stats()
    assert stats.put == n and stats.taken == len(seen) and stats.taken + stats.dropped == n
    assert stats.dropped > 0  # the producer outran the consumer, so some sets were skipped


def test_close_wakes_a_blocked_get():
    slot = LatestSlot()
    outcome = []

    def wait_forever():
        try:
            slot.get()
        except SlotClosedError:
            outcome.append('closed')

    waiter = threading.Thread(target=wait_forever)
    waiter.start()
    time.sleep(0.05)
    slot.close()
    waiter.join(timeout=2)
    assert outcome == ['closed'] and slot.closed


def test_item_put_before_close_is_delivered_then_closed():
    slot = LatestSlot()
    slot.put('last')
    slot.close()
    assert slot.get(timeout=0) == 'last'
    with pytest.raises(SlotClosedError):
        slot.get(timeout=0)
    assert slot.put('late') is True  # discarded, counted as dropped
    assert slot.stats().dropped == 1

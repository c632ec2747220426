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
Test camera dropout and stamp order, ROS-free.

DropoutAssembler, OrderGuard and the node's chain synchronizer -> SpreadGuard -> OrderGuard with
the assembler beside the synchronizer.

Inputs are plain SimpleFilters fed by hand and the arrival clock is set by the test, so every
expected set is written out.
"""

from __future__ import annotations

from bevformer_ros.frontend.camera_dropout import DropoutAssembler, MIN_MISSED
from bevformer_ros.frontend.sync import (
    ApproximateTimeSynchronizer,
    OrderGuard,
    set_stamp_ns,
    SimpleFilter,
    SpreadGuard,
    stamp_ns,
)
import pytest

NS = 1_000_000_000
CAMS = 6
TIMEOUT_S = 0.5


class Msg:
    def __init__(self, t, cam=None):
        ns = round(t * NS)

        class Stamp:
            sec, nanosec = divmod(ns, NS)

        class Header:
            stamp = Stamp

        self.header = Header
        self.cam = cam

    def __repr__(self):
        return f'Msg({stamp_ns(self) / NS}, cam {self.cam})'


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Rig:
    """The node's filter chain on six plain inputs; `send` delivers one set, skipping `silent`."""

    def __init__(self, min_cameras=4):
        self.clock = Clock()
        self.cams = [SimpleFilter() for _ in range(CAMS)]
        sync = ApproximateTimeSynchronizer(self.cams, 5, 0.08)
        self.dropout = DropoutAssembler(
            self.cams, 5, 0.08, TIMEOUT_S, min_cameras, clock=self.clock
        )
        guard = SpreadGuard(sync, 0.06, inputs=self.cams)
        self.dropout.registerCallback(guard.add)
        self.drops = []
        self.order = OrderGuard(guard, 0.3, on_drop=lambda kind, detail: self.drops.append(kind))
        self.sets = []
        self.order.registerCallback(lambda *msgs: self.sets.append(msgs))

    def send(self, t, silent=(), order=None, dt=0.1):
        self.clock.now += dt
        for i in order or range(CAMS):
            if i not in silent:
                self.cams[i].signalMessage(Msg(t, i))

    def last_set(self):
        return [None if m is None else stamp_ns(m) / NS for m in self.sets[-1]]


def test_all_cameras_live_the_assembler_stays_quiet():
    rig = Rig()
    for k in range(5):
        rig.send(1.0 + 0.1 * k)
    assert len(rig.sets) == 5 and rig.dropout.sets == 0
    assert all(m is not None for m in rig.sets[-1])
    assert not any(rig.dropout.liveness().silent)


def test_a_silent_camera_is_left_out_after_the_timeout_and_rejoins():
    rig = Rig()
    rig.send(1.0)
    t = 1.0
    for _ in range(4):  # 0.4 s of silence from camera 3: within the timeout, no set forms
        t = round(t + 0.1, 6)
        rig.send(t, silent=(3,))
    assert len(rig.sets) == 1
    t = round(t + 0.2, 6)
    rig.send(t, silent=(3,), dt=0.2)  # 0.6 s silent: degraded sets from the five others
    assert rig.last_set() == [t, t, t, None, t, t]
    liveness = rig.dropout.liveness()
    assert (
        liveness.silent == (False, False, False, True, False, False) and liveness.live_count == 5
    )
    assert liveness.silent_s[3] == pytest.approx(0.6)
    t = round(t + 0.1, 6)
    rig.send(t, silent=(3,))
    assert rig.last_set() == [t, t, t, None, t, t]
    t = round(t + 0.1, 6)
    rig.send(t, order=(3, 0, 1, 2, 4, 5))  # camera 3 first: live again before the others arrive
    assert rig.last_set() == [t] * CAMS and rig.drops == []
    assert not any(rig.dropout.liveness().silent)


def test_a_returning_camera_arriving_last_gives_one_set_per_stamp():
    rig = Rig()
    rig.send(1.0)
    rig.send(1.7, silent=(5,), dt=0.7)  # 5 silent but the others sent only one set since: not yet
    assert len(rig.sets) == 1
    rig.send(1.8, silent=(5,))
    assert rig.last_set()[5] is None
    count = len(rig.sets)
    # camera 5 (last in order) comes back: degraded set first, the full one is a duplicate
    rig.send(1.9)
    assert len(rig.sets) == count + 1 and rig.last_set() == [1.9, 1.9, 1.9, 1.9, 1.9, None]
    assert rig.drops == ['duplicate_stamp']
    rig.send(2.0)
    assert rig.last_set() == [2.0] * CAMS


def test_after_a_pause_of_the_whole_rig_the_first_arrivals_wait_for_the_others():
    rig = Rig()
    rig.send(1.0)
    rig.send(9.0, dt=5.0)  # every camera silent for 5 s, then all return within one set
    assert len(rig.sets) == 2 and rig.last_set() == [9.0] * CAMS and rig.dropout.sets == 0
    assert MIN_MISSED == 2


def test_too_few_live_cameras_form_no_set():
    rig = Rig(min_cameras=5)
    rig.send(1.0)
    t = 1.0
    for _ in range(8):
        t = round(t + 0.1, 6)
        rig.send(t, silent=(1, 4))
    assert len(rig.sets) == 1
    assert rig.dropout.liveness().live_count == 4


def test_a_camera_that_never_published_is_left_out_after_the_timeout():
    rig = Rig()
    rig.send(1.0, silent=(2,))
    rig.send(1.1, silent=(2,))
    assert rig.sets == []
    rig.send(1.6, silent=(2,), dt=0.5)
    assert rig.last_set() == [1.6, 1.6, None, 1.6, 1.6, 1.6]
    assert rig.dropout.liveness().silent_s[2] is None


def test_assembler_rejects_impossible_settings():
    with pytest.raises(ValueError, match='min_cameras'):
        DropoutAssembler([SimpleFilter()] * 3, 5, 0.08, 0.5, min_cameras=4)


# ------------------------------------------------------------------------------------------
# OrderGuard
def _order_guard(**kw):
    source = SimpleFilter()
    drops = []
    guard = OrderGuard(
        source, kw.pop('max_out_of_order_s', 0.3), on_drop=lambda *d: drops.append(d), **kw
    )
    out = []
    guard.registerCallback(lambda *msgs: out.append(set_stamp_ns(msgs) / NS))
    return source, out, drops, guard


def test_order_guard_drops_repeats_and_late_sets_and_lets_time_jumps_through():
    source, out, drops, guard = _order_guard()
    for t in (10.0, 10.5, 10.5, 10.3, 11.0, 10.0, 5.0, 5.5):
        source.signalMessage(Msg(t))
    assert out == [
        10.0,
        10.5,
        11.0,
        10.0,
        5.0,
        5.5,
    ]  # 10.0 after 11.0 is 1 s back: a jump, not a late set
    assert [kind for kind, _ in drops] == ['duplicate_stamp', 'out_of_order']
    assert 'repeats the stamp' in drops[0][1] and '0.200 s older' in drops[1][1]
    assert guard.stats() == {'duplicate_stamp': 1, 'out_of_order': 1}


def test_order_guard_gives_way_after_consecutive_drops():
    source, out, drops, _ = _order_guard(max_consecutive_drops=3)
    for t in (
        10.0,
        9.9,
        9.95,
        9.97,
        10.05,
    ):  # a clock that stepped back 0.1 s: only two sets are lost
        source.signalMessage(Msg(t))
    assert out == [10.0, 9.97, 10.05] and len(drops) == 2


def test_order_guard_uses_the_first_present_message_of_a_degraded_set():
    source, out, _, _ = _order_guard()
    source.signalMessage(None, Msg(3.0), Msg(3.0))
    assert out == [3.0]
    assert set_stamp_ns([None, None]) is None


def test_spread_guard_reports_each_rejected_set():
    cams = [SimpleFilter() for _ in range(2)]
    rejected = []
    SpreadGuard(
        ApproximateTimeSynchronizer(cams, 3, 0.2), 0.05, inputs=cams, on_reject=rejected.append
    )
    for cam, t in zip(cams, (1.0, 1.07)):
        cam.signalMessage(Msg(t))
    assert len(rejected) == 1 and 'spreads 70 ms > 50 ms' in rejected[0]

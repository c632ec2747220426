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
Approximate-time matching on arbitrary arrival orders, including a message trimmed on arrival.

A message older than everything in its full queue is dropped by the queue trim before matching;
it used to be matched anyway and then popped, raising KeyError out of the subscriber callback
(and losing the set). The differential test runs the same sequences through the real
message_filters where it is installed (a ROS 2 workspace) and needs identical sets.
"""

from __future__ import annotations

import random

from bevformer_ros.frontend import sync
from bevformer_ros.frontend.camera_dropout import DropoutAssembler
from hypothesis import example, given, settings
from hypothesis import strategies as st
import pytest
from sync_sequences import Msg, NS_PER_MS, random_sequence, run, Sequence


@st.composite
def sequences(draw: st.DrawFn) -> Sequence:
    inputs = draw(st.integers(2, 4))
    arrival = st.tuples(st.integers(0, inputs - 1), st.integers(0, 60).map(lambda k: k * 10))
    return Sequence(
        inputs,
        draw(st.integers(1, 4)),
        draw(st.sampled_from((0.02, 0.05, 0.1, 0.25))),
        tuple(draw(st.lists(arrival, min_size=1, max_size=30))),
    )


# The first sequence the differential run found raising KeyError: input 0's queue (size 1) holds
# 500 ms when 0 ms arrives, so the trim drops the newcomer that input 1's 0 ms would match.
@example(Sequence(2, 1, 0.1, ((0, 500), (1, 0), (0, 0))))
@given(sequences())
@settings(max_examples=300, deadline=None)
def test_sets_are_tight_disjoint_and_in_input_order(seq):
    sets = run(sync, seq)  # raised KeyError before the fix
    stamp_ms = [ms for _, ms in seq.arrivals]
    source = [index for index, _ in seq.arrivals]
    used = [ident for s in sets for ident in s]
    assert len(used) == len(set(used))
    for s in sets:
        assert [source[ident] for ident in s] == list(range(seq.inputs))
        spread_ms = max(stamp_ms[i] for i in s) - min(stamp_ms[i] for i in s)
        assert spread_ms * NS_PER_MS < int(seq.slop_s * 1e9)


def test_trimmed_newcomer_joins_no_set_and_later_sets_still_form():
    seq = Sequence(2, 1, 0.1, ((0, 500), (1, 0), (0, 0), (1, 500)))
    assert run(sync, seq) == [(0, 3)]


def test_dropout_assembler_survives_a_trimmed_newcomer():
    # Camera 2 is silent; camera 0's late 0 ms is trimmed, camera 1's 0 ms stays unmatched.
    now = [100.0]
    cams = [sync.SimpleFilter() for _ in range(3)]
    dropout = DropoutAssembler(cams, 1, 0.1, 0.5, 2, clock=lambda: now[0])
    sets = []
    dropout.registerCallback(lambda *msgs: sets.append([m and m.ident for m in msgs]))
    now[0] = 101.0  # camera 2 has delivered nothing for longer than the timeout
    for ident, (cam, ms) in enumerate(((0, 500), (0, 510), (1, 0), (0, 0), (1, 505))):
        cams[cam].signalMessage(Msg(ident, ms * NS_PER_MS))  # the 4th raised KeyError before
    assert sets == [[1, 4, None]]


def test_fallback_matches_the_real_message_filters():
    real = pytest.importorskip(
        'message_filters',
        reason='message_filters is not installed: apt install ros-<distro>-message-filters',
    )
    rng = random.Random(0)
    for _ in range(500):
        seq = random_sequence(rng)
        assert run(sync, seq) == run(real, seq), seq

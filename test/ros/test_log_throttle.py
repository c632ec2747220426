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

"""LogThrottle: one line per distinct problem per period, repeats counted."""

from __future__ import annotations

from bevformer_ros.ros.log_throttle import LogThrottle, problem_key


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_numbers_do_not_make_a_new_problem():
    assert problem_key('frame 1000.500 skipped: 21600 bytes') == problem_key(
        'frame 12.0 skipped: 5 bytes'
    )
    assert problem_key('camera 3 (CAM_BACK) truncated') != problem_key(
        'camera 4 (CAM_BACK_LEFT) truncated'
    )


def test_repeats_are_held_back_and_counted_different_problems_are_not():
    clock = Clock()
    throttle = LogThrottle(5.0, clock)
    assert throttle.allow('frame 1.0 skipped: truncated') == 'frame 1.0 skipped: truncated'
    # another problem
    assert throttle.allow('frame 1.5 skipped: mono16') == 'frame 1.5 skipped: mono16'
    clock.now = 1.0
    assert throttle.allow('frame 2.0 skipped: truncated') is None
    assert throttle.allow('frame 2.5 skipped: truncated') is None
    clock.now = 5.0
    expected = 'frame 3.0 skipped: truncated (2 more like this in the last 5 s)'
    assert throttle.allow('frame 3.0 skipped: truncated') == expected
    clock.now = 6.0
    assert throttle.allow('frame 3.5 skipped: truncated') is None


def test_the_key_table_stays_bounded():
    clock = Clock()
    throttle = LogThrottle(5.0, clock, max_keys=3)
    for word in ('a', 'b', 'c', 'd'):
        clock.now += 0.1
        assert throttle.allow(f'problem {word}') is not None
    assert len(throttle._last) == 3
    assert throttle.allow('problem a') is not None  # the oldest key was forgotten

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

"""NodeHealth: what /diagnostics reports from the node's counters (rates, levels, resets)."""

from __future__ import annotations

from bevformer_ros.frontend.camera_dropout import CameraLiveness
from bevformer_ros.ros.health import ERROR, NodeHealth, OK, WARN

CAMERAS = ('A', 'B')


class FakeClock:
    """Monotonic seconds set by the test (the health code only reads it)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _report(health, received=(0, 0), **kw):
    args = {
        'dropped_sets': 0, 'rejected_spread': 0, 'last_spread_s': None, 'temporal_enabled': True,
    }
    args.update(kw)
    return {r.name.split(': ')[1]: r for r in health.report(received, **args)}


def test_rates_and_latencies_cover_one_period():
    clock = FakeClock()
    health = NodeHealth('bevformer', CAMERAS, clock)
    clock.now += 2.0
    for ms in (10.0, 30.0):
        health.frame_processed(
            {'model': ms / 1e3}, end_to_end_s=96000.0, processing_s=2 * ms / 1e3
        )
    reports = _report(health, received=(24, 20), last_spread_s=0.012)
    inputs, inference = reports['inputs'], reports['inference']
    assert inputs.level == OK
    assert (inputs.values['A rate (Hz)'], inputs.values['B rate (Hz)']) == ('12.00', '10.00')
    assert inputs.values['sync spread last (ms)'] == '12.0'
    assert inference.level == OK and inference.values['output rate (Hz)'] == '1.00'
    assert inference.values['model latency mean/max (ms)'] == '20.0 / 30.0'
    # wall time from arrival to publishing, apart from the stamp age (a replay without sim time)
    assert inference.values['processing latency mean/max (ms)'] == '40.0 / 60.0'
    assert inference.values['stamp age at publishing mean/max (ms)'] == '96000000.0 / 96000000.0'
    clock.now += 1.0
    later = _report(health, received=(36, 20))  # B went silent; no frames this period
    assert later['inputs'].level == WARN and 'B' in later['inputs'].message
    assert later['inputs'].values['A rate (Hz)'] == '12.00'
    assert 'model latency mean/max (ms)' not in later['inference'].values


def test_skips_warn_for_one_period_and_stay_counted():
    clock = FakeClock()
    health = NodeHealth('bevformer', CAMERAS, clock)
    health.frame_skipped('image', 'camera 3 (CAM_BACK): image data is truncated')
    clock.now += 1.0
    first = _report(health, received=(12, 12))['inference']
    assert first.level == WARN and 'truncated' in first.message
    assert first.values['skipped: image'] == '1' and first.values['degraded'] == 'true'
    clock.now += 1.0
    second = _report(health, received=(24, 24))['inference']
    assert second.level == OK
    assert (second.values['skipped: image'], second.values['degraded']) == ('1', 'false')


def test_resets_and_standing_warnings():
    clock = FakeClock()
    health = NodeHealth('bevformer', CAMERAS, clock)
    health.warnings['weights'] = 'random weights'
    for kind in ('first_frame', 'time_backwards', 'time_backwards'):
        health.temporal_reset(kind)
    clock.now += 1.0
    reports = _report(health, received=(12, 12), dropped_sets=5, rejected_spread=2)
    temporal = reports['temporal']
    assert temporal.values['resets'] == '3' and temporal.values['resets: time_backwards'] == '2'
    assert temporal.values['last reset reason'] == 'time_backwards'
    assert reports['inference'].level == WARN and 'random weights' in reports['inference'].message
    assert reports['inputs'].values['sets dropped (worker busy)'] == '5'
    assert reports['inputs'].level == WARN and '2 sets rejected' in reports['inputs'].message
    assert _report(health, temporal_enabled=False)['temporal'].message == 'disabled'


def _liveness(silent, received=(5, 5, 5)):
    return CameraLiveness(
        silent=tuple(silent),
        silent_s=tuple(2.0 if s else 0.05 for s in silent),
        received=tuple(received),
    )


def test_cameras_status_degrades_names_the_missing_and_recovers():
    clock = FakeClock()
    health = NodeHealth('bevformer', ('A', 'B', 'C'), clock, min_cameras=2)
    report = _report(health, received=(1, 1, 1), liveness=_liveness([False] * 3))['cameras']
    assert (report.level, report.message) == (OK, 'all 3 cameras in use')
    health.frame_processed({}, None, missing_cameras=(1,))
    degraded = _report(health, received=(2, 1, 2), liveness=_liveness([False, True, False]))[
        'cameras'
    ]
    assert degraded.level == WARN
    assert degraded.message == 'DEGRADED: detecting with 2 of 3 cameras, missing B (silent)'
    assert degraded.values['B'] == 'silent for 2.0 s' and degraded.values['A'] == 'live'
    assert degraded.values['cameras in use'] == '2/3'
    assert degraded.values['frames processed with missing cameras'] == '1'
    stalled = _report(health, received=(3, 1, 2), liveness=_liveness([False, True, True]))[
        'cameras'
    ]
    assert stalled.level == ERROR and 'fewer than sync.min_cameras=2' in stalled.message
    waiting = _report(health, liveness=_liveness([False] * 3, received=(0, 0, 0)))['cameras']
    assert (waiting.level, waiting.message) == (WARN, 'waiting for images')
    assert 'cameras' not in _report(health)  # no dropout handling: no status


def test_a_camera_far_slower_than_the_others_warns_and_drops_are_reported():
    clock = FakeClock()
    health = NodeHealth('bevformer', CAMERAS, clock)
    clock.now += 1.0
    slow = _report(health, received=(12, 6))['inputs']
    assert slow.level == WARN and slow.message.startswith(
        'B slower than the other cameras (6.0 vs 12.0 Hz)'
    )
    clock.now += 1.0
    # 10 of 12: jitter, not a slow camera
    assert _report(health, received=(24, 16))['inputs'].level == OK
    health.set_dropped('duplicate_stamp', 'set 3.000 repeats the stamp of the last set; dropped')
    health.camera_info_changed('A', 'size 160x90 -> 80x45')
    clock.now += 1.0
    inputs = _report(health, received=(36, 28))['inputs']
    assert inputs.level == WARN and '1 sets dropped (duplicate_stamp: set 3.000' in inputs.message
    assert inputs.values['sets dropped: duplicate_stamp'] == '1'
    assert inputs.values['sets dropped: out_of_order'] == '0'


def test_degraded_says_detecting_only_while_frames_come_out():
    health = NodeHealth('bevformer', ('A', 'B', 'C'), FakeClock(), min_cameras=2)
    report = _report(health, received=(2, 1, 2), liveness=_liveness([False, True, False]))
    assert report['cameras'].message == (
        'DEGRADED: 2 of 3 cameras live, missing B (silent); no output this period'
    )


def test_a_camera_that_comes_and_goes_does_not_flap_the_status():
    health = NodeHealth('bevformer', ('A', 'B', 'C'), FakeClock(), min_cameras=2)
    levels = []
    for k in range(6):  # B silent in every other report
        silent = [False, k % 2 == 0, False]
        levels.append(_report(health, received=(k, k, k), liveness=_liveness(silent))['cameras'])
    assert [r.level for r in levels] == [WARN] * 6
    assert 'live again' in levels[1].message
    for _ in range(3):
        last = _report(health, received=(9, 9, 9), liveness=_liveness([False] * 3))['cameras']
    assert (last.level, last.message) == (OK, 'all 3 cameras in use')


def test_a_rig_gone_silent_is_stale_not_ok():
    health = NodeHealth('bevformer', ('A', 'B'), FakeClock(), camera_timeout_s=0.5)
    liveness = CameraLiveness(silent=(False, False), silent_s=(3.0, 3.2), received=(7, 7))
    report = _report(health, received=(7, 7), liveness=liveness)['cameras']
    assert report.level == ERROR and 'stale' in report.message
    assert report.values['A'] == 'stale: no image for 3.0 s'

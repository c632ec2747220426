"""NodeHealth: what /diagnostics reports from the node's counters (rates per period, levels, resets)."""

from __future__ import annotations

from bevformer_ros.health import OK, WARN, NodeHealth

CAMERAS = ('A', 'B')


class FakeClock:
    """Monotonic seconds set by the test (the health code only reads it)."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _report(health, received=(0, 0), **kw):
    args = dict(dropped_sets=0, rejected_spread=0, last_spread_s=None, temporal_enabled=True)
    args.update(kw)
    return {r.name.split(': ')[1]: r for r in health.report(received, **args)}


def test_rates_and_latencies_cover_one_period():
    clock = FakeClock()
    health = NodeHealth('bevformer', CAMERAS, clock)
    clock.now += 2.0
    for ms in (10.0, 30.0):
        health.frame_processed({'model': ms / 1e3}, end_to_end_s=2 * ms / 1e3)
    reports = _report(health, received=(24, 20), last_spread_s=0.012)
    inputs, inference = reports['inputs'], reports['inference']
    assert inputs.level == OK
    assert (inputs.values['A rate (Hz)'], inputs.values['B rate (Hz)']) == ('12.00', '10.00')
    assert inputs.values['sync spread last (ms)'] == '12.0'
    assert inference.level == OK and inference.values['output rate (Hz)'] == '1.00'
    assert inference.values['model latency mean/max (ms)'] == '20.0 / 30.0'
    assert inference.values['end-to-end latency mean/max (ms)'] == '40.0 / 60.0'
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

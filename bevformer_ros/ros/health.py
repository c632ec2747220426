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
What the node reports on /diagnostics, accumulated without ROS types.

The node calls `frame_processed`, `frame_skipped` and `temporal_reset` from its worker,
`set_dropped`, `odometry_rejected` and `camera_info_changed` from its callbacks and `report` from
its diagnostics timer; `report` turns the counters since the previous report into a few
`StatusReport`s (one per `diagnostic_msgs/DiagnosticStatus`), with rates over the period and
latency statistics of the period's frames:

- inputs: per-camera rates (WARN for a silent camera or one far slower than the others), sync
  spread, sets dropped (worker busy, duplicate or out-of-order stamps), odometry rejected;
- inference: output rate, skipped frames by reason, stage latencies (WARN for a period with skips);
- temporal: history resets by reason;
- cameras: the cameras in use (WARN "DEGRADED" naming the missing ones while detection runs without
  them, ERROR when fewer than `min_cameras` are left), CameraInfo changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import threading
import time

from bevformer_ros.frontend.camera_dropout import CameraLiveness
import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
SLOW_CAMERA_RATIO = (
    0.6  # a camera delivering less than this share of the fastest one limits the set rate
)
OK_AFTER_REPORTS = 3  # reports in a row with every camera live before cameras is OK again
SLOW_CAMERA_MIN_COUNT = 4  # images the fastest camera needs in a period before rates are compared
MEAN_MAX_MS = ' mean/max (ms)'  # suffix of the timing values: '<what><MEAN_MAX_MS>' = 'mean / max'


@dataclass(frozen=True)
class StatusReport:
    name: str
    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class _Period:
    processed: int = 0
    skipped: Counter = field(default_factory=Counter)
    set_drops: Counter = field(default_factory=Counter)
    stage_s: dict[str, list[float]] = field(default_factory=dict)
    end_to_end_s: list[float] = field(default_factory=list)
    processing_s: list[float] = field(default_factory=list)


class NodeHealth:
    """Thread-safe counters for /diagnostics; `clock` is monotonic seconds (injectable)."""

    def __init__(
        self,
        node_name: str,
        camera_names: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
        min_cameras: int | None = None,
        camera_timeout_s: float | None = None,
    ) -> None:
        self.node_name = node_name
        self.camera_timeout_s = camera_timeout_s  # no image for this long: the camera is stale
        self._ok_streak = OK_AFTER_REPORTS  # reports in a row with every camera live
        self.camera_names = tuple(camera_names)
        self.min_cameras = len(self.camera_names) if min_cameras is None else min_cameras
        self._clock = clock
        self._lock = threading.Lock()
        self._period = _Period()
        self._period_start = clock()
        self._last_received = [0] * len(self.camera_names)
        self._last_dropped = 0
        self._last_rejected = 0
        self.processed = 0
        self.skipped: Counter = Counter()
        self.last_skip = ''
        self.resets: Counter = Counter()
        self.last_reset = ''
        self.bad_odometry = 0
        self.stale_odometry = 0  # older than the whole pose history: ignored
        self.set_drops: Counter = Counter()
        self.last_set_drop = ''
        self.frames_missing_cameras = 0
        self.camera_info_changes = 0
        self.last_camera_info_change = ''
        self.warnings: dict[str, str] = {}  # standing conditions, e.g. random weights

    def frame_processed(
        self,
        stage_s: Mapping[str, float],
        end_to_end_s: float | None,
        missing_cameras: Sequence[int] = (),
        processing_s: float | None = None,
    ) -> None:
        """
        Count a published frame.

        end_to_end_s: stamp age at publishing (node clock - image stamp; huge on a replay without
        sim time); processing_s: wall time from the set's arrival to its publishing.
        """
        with self._lock:
            if processing_s is not None:
                self._period.processing_s.append(processing_s)
            self.processed += 1
            self.frames_missing_cameras += bool(missing_cameras)
            self._period.processed += 1
            for stage, seconds in stage_s.items():
                self._period.stage_s.setdefault(stage, []).append(seconds)
            if end_to_end_s is not None:
                self._period.end_to_end_s.append(end_to_end_s)

    def frame_skipped(self, reason: str, detail: str) -> None:
        with self._lock:
            self.skipped[reason] += 1
            self._period.skipped[reason] += 1
            self.last_skip = f'{reason}: {detail}'

    def temporal_reset(self, reason: str) -> None:
        with self._lock:
            self.resets[reason] += 1
            self.last_reset = reason

    def odometry_rejected(self) -> None:
        with self._lock:
            self.bad_odometry += 1

    def odometry_out_of_order(self) -> None:
        with self._lock:
            self.stale_odometry += 1

    def set_dropped(self, reason: str, detail: str) -> None:
        """Count a synchronized set dropped before the model (duplicate_stamp, out_of_order)."""
        with self._lock:
            self.set_drops[reason] += 1
            self._period.set_drops[reason] += 1
            self.last_set_drop = f'{reason}: {detail}'

    def camera_info_changed(self, camera: str, detail: str) -> None:
        with self._lock:
            self.camera_info_changes += 1
            self.last_camera_info_change = f'{camera}: {detail}'

    def report(
        self,
        received: Sequence[int],
        dropped_sets: int,
        rejected_spread: int,
        last_spread_s: float | None,
        temporal_enabled: bool,
        dropped_outputs: int = 0,
        liveness: CameraLiveness | None = None,
    ) -> list[StatusReport]:
        """
        Return the reports for the period since the last call.

        `received` counts images per camera so far; `liveness` (from the dropout assembler) adds
        the cameras status.
        """
        with self._lock:
            now = self._clock()
            elapsed = max(now - self._period_start, 1e-9)
            period, self._period, self._period_start = self._period, _Period(), now
            counts = [r - last for r, last in zip(received, self._last_received)]
            new_dropped = dropped_sets - self._last_dropped
            new_rejected = rejected_spread - self._last_rejected
            self._last_received = list(received)
            self._last_dropped, self._last_rejected = dropped_sets, rejected_spread
            reports = [
                self._inputs(
                    counts,
                    elapsed,
                    period,
                    new_dropped,
                    new_rejected,
                    dropped_sets,
                    rejected_spread,
                    last_spread_s,
                ),
                self._inference(period, elapsed, dropped_outputs),
                self._temporal(temporal_enabled),
            ]
            if liveness is not None:
                reports.append(self._cameras(liveness, period.processed))
            return reports

    def _inputs(
        self,
        counts: list[int],
        elapsed: float,
        period: _Period,
        new_dropped: int,
        new_rejected: int,
        dropped: int,
        rejected: int,
        last_spread_s: float | None,
    ) -> StatusReport:
        rates = [count / elapsed for count in counts]
        silent = [name for name, count in zip(self.camera_names, counts) if count == 0]
        values = {
            f'{name} rate (Hz)': f'{rate:.2f}' for name, rate in zip(self.camera_names, rates)
        }
        values.update(
            {
                'sync spread last (ms)': '-'
                if last_spread_s is None
                else f'{last_spread_s * 1e3:.1f}',
                'sets rejected for spread': str(rejected),
                'sets dropped (worker busy)': str(dropped),
                'odometry messages rejected': str(self.bad_odometry),
                'odometry messages out of order (ignored)': str(self.stale_odometry),
            }
        )
        for reason in ('duplicate_stamp', 'out_of_order'):
            values[f'sets dropped: {reason}'] = str(self.set_drops[reason])
        values['last dropped set'] = self.last_set_drop or '-'
        problems = []  # every WARN condition of the period, most specific first
        if new_rejected:
            problems.append(f'{new_rejected} sets rejected: camera stamps spread too wide')
        if period.set_drops:
            problems.append(
                f'{sum(period.set_drops.values())} sets dropped ({self.last_set_drop})'
            )
        slow = _slow_cameras(self.camera_names, counts)
        if slow:
            problems.append(
                f'{", ".join(slow)} slower than the other cameras ({min(rates):.1f} vs '
                f"{max(rates):.1f} Hz): sets come at the slowest camera's rate"
            )
        if silent:
            problems.append(f'no images from {", ".join(silent)}')
        if problems:
            return StatusReport(f'{self.node_name}: inputs', WARN, '; '.join(problems), values)
        message = f'{min(rates):.1f}-{max(rates):.1f} Hz per camera'
        if new_dropped:
            message += f', {new_dropped} sets dropped while the model was busy'
        return StatusReport(f'{self.node_name}: inputs', OK, message, values)

    def _cameras(self, liveness: CameraLiveness, processed: int) -> StatusReport:
        names = self.camera_names
        timeout = self.camera_timeout_s
        stale = [
            timeout is not None and received > 0 and silent_s is not None and silent_s > timeout
            for silent_s, received in zip(liveness.silent_s, liveness.received)
        ]
        values = {
            name: _camera_state(silent, silent_s, received, is_stale)
            for name, silent, silent_s, received, is_stale in zip(
                names, liveness.silent, liveness.silent_s, liveness.received, stale
            )
        }
        missing = [name for name, silent in zip(names, liveness.silent) if silent]
        live = len(names) - len(missing)
        values.update(
            {
                'cameras in use': f'{live}/{len(names)}',
                'missing cameras': ', '.join(missing) or '-',
                'frames processed with missing cameras': str(self.frames_missing_cameras),
                'camera_info changes': str(self.camera_info_changes),
                'last camera_info change': self.last_camera_info_change or '-',
            }
        )
        self._ok_streak = self._ok_streak + 1 if not missing and not any(stale) else 0
        if not any(liveness.received):
            level, message = WARN, 'waiting for images'
        elif all(stale):  # the whole rig went silent: no camera is "silent" against the others
            level, message = (
                ERROR,
                f'stale: no image from any camera for over {timeout} s (sync.camera_timeout_s)',
            )
        elif not missing and self._ok_streak >= OK_AFTER_REPORTS:
            level, message = OK, f'all {len(names)} cameras in use'
        elif not missing:  # hysteresis: a camera that comes and goes must not flap the status
            level, message = (
                WARN,
                f'DEGRADED: all {len(names)} cameras live again, OK after '
                f'{OK_AFTER_REPORTS} reports in a row',
            )
        elif live >= self.min_cameras:
            # "detecting" only when frames actually came out in this period
            level, message = (
                WARN,
                (
                    f'DEGRADED: detecting with {live} of {len(names)} cameras, missing '
                    f'{", ".join(missing)} (silent)'
                    if processed
                    else f'DEGRADED: {live} of {len(names)} cameras live, missing '
                    f'{", ".join(missing)} (silent); no output this period'
                ),
            )
        else:
            level, message = (
                ERROR,
                (
                    f'only {live} cameras publishing, fewer than sync.min_cameras='
                    f'{self.min_cameras}: no output; missing {", ".join(missing)}'
                ),
            )
        return StatusReport(f'{self.node_name}: cameras', level, message, values)

    def _inference(self, period: _Period, elapsed: float, dropped_outputs: int) -> StatusReport:
        values = {
            'output rate (Hz)': f'{period.processed / elapsed:.2f}',
            'frames processed': str(self.processed),
            'frames skipped': str(sum(self.skipped.values())),
            'outputs dropped (publisher busy)': str(dropped_outputs),
        }
        for reason, count in sorted(self.skipped.items()):
            values[f'skipped: {reason}'] = str(count)
        values['last skipped frame'] = self.last_skip or '-'
        for stage, seconds in period.stage_s.items():
            values[f'{stage} latency{MEAN_MAX_MS}'] = _mean_max_ms(seconds)
        values[f'processing latency{MEAN_MAX_MS}'] = _mean_max_ms(period.processing_s)
        values[f'stamp age at publishing{MEAN_MAX_MS}'] = _mean_max_ms(period.end_to_end_s)
        values.update(self.warnings)
        degraded = bool(period.skipped) or bool(self.warnings)
        values['degraded'] = str(degraded).lower()
        if period.skipped:
            # an impossible calibration stops inference for good: that is an error, not a blip
            level = ERROR if 'calibration' in period.skipped else WARN
            message = f'skipped {sum(period.skipped.values())} frames ({self.last_skip})'
        elif self.warnings:
            level, message = WARN, '; '.join(self.warnings.values())
        else:
            level = OK
            model = period.stage_s.get('model')
            message = f'{period.processed / elapsed:.1f} Hz' + (
                f', model {np.mean(model) * 1e3:.0f} ms' if model else ''
            )
        return StatusReport(f'{self.node_name}: inference', level, message, values)

    def _temporal(self, enabled: bool) -> StatusReport:
        total = sum(self.resets.values())
        values = {
            'enabled': str(enabled).lower(),
            'resets': str(total),
            'last reset reason': self.last_reset or '-',
        }
        for reason, count in sorted(self.resets.items()):
            values[f'resets: {reason}'] = str(count)
        message = f'{total} resets' + (f' (last: {self.last_reset})' if self.last_reset else '')
        return StatusReport(
            f'{self.node_name}: temporal', OK, message if enabled else 'disabled', values
        )


def _slow_cameras(names: Sequence[str], counts: Sequence[int]) -> list[str]:
    fastest = max(counts, default=0)
    if fastest < SLOW_CAMERA_MIN_COUNT:
        return []
    return [name for name, count in zip(names, counts) if 0 < count < SLOW_CAMERA_RATIO * fastest]


def _camera_state(silent: bool, silent_s: float | None, received: int, stale: bool) -> str:
    if received == 0:
        return 'no image yet'
    if stale:
        return f'stale: no image for {silent_s:.1f} s'
    return f'silent for {silent_s:.1f} s' if silent else 'live'


def _mean_max_ms(seconds: Sequence[float]) -> str:
    if not seconds:
        return '-'
    return f'{np.mean(seconds) * 1e3:.1f} / {np.max(seconds) * 1e3:.1f}'
